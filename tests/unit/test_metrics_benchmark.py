"""benchmarks/metrics.py on a small case: the table is printed and both libraries agree."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "metrics.py"


def test_benchmark_runs_on_a_small_case(capsys):
    pytest.importorskip("monai", reason="monai is in the test extra: pip install -e '.[test]'")
    spec = importlib.util.spec_from_file_location("ctseg_benchmark_metrics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.main(["--shape", "128", "128", "75", "--repeats", "1"])
    printed = capsys.readouterr().out
    assert "| ctseg: all metrics" in printed and "MONAI HD95 + ASD + NSD" in printed
    assert len(table) == 5 and all(row["seconds"] > 0 for row in table)
    rows = table[0]["rows"]
    assert (
        rows[1]["lesions_ref"] == 3
        and rows[1]["lesions_detected"] == 2
        and rows[1]["lesions_false"] == 1
    )
    assert 0.85 < rows[0]["dice"] < 0.97  # a realistic organ prediction
    for key in ("hd95", "asd", "nsd"):
        monai = next(t["values"][key] for t in table[1:] if key in t["values"])
        assert table[0]["values"][key] == pytest.approx(monai, rel=1e-5), key
