"""benchmarks/inference.py's reference rate: measured on dense convolutions, or a stated peak."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "inference.py"


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("monai", reason="monai is in the test extra: pip install -e '.[test]'")
    spec = importlib.util.spec_from_file_location("ctseg_benchmark_inference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("patch", [(8, 8, 8), (16, 16)])
def test_dense_convolution_rate_is_measured(bench, patch) -> None:
    rate = bench._dense_conv_rate(patch, batch=1)
    assert math.isfinite(rate) and rate > 0.01  # GFLOP/s: any CPU does more than 10 MFLOP/s


def test_dense_convolution_rate_grows_with_the_work_it_is_given(bench, monkeypatch) -> None:
    # the rate is FLOP / seconds: a clock that runs ten times slower gives a tenth of the rate
    rate = bench._dense_conv_rate((8, 8, 8), batch=1)
    ticks = iter(range(10**6))
    monkeypatch.setattr(bench.time, "perf_counter", lambda: float(next(ticks)))  # each call 1 s later
    slow = bench._dense_conv_rate((8, 8, 8), batch=1)
    flop = 2.0 * 64 * 64 * 27 * 1 * 4 * 4 * 4  # the largest of the three blocks: 64 channels at 8 // 2
    assert slow == pytest.approx(flop / 1e9)
    assert rate > slow


def test_theoretical_peak_is_cores_times_clock_times_flop_per_cycle(bench) -> None:
    assert bench._theoretical_peak(3.0, 32) == pytest.approx(bench.cpu_threads() * 3.0 * 32)


def test_bfloat16_reference_runs_where_asked(bench) -> None:
    assert bench._dense_conv_rate((8, 8, 8), batch=1, dtype=torch.bfloat16) > 0
