"""Convolutions into few channels computed two output columns at a time: the same outputs as
``nn.Conv3d`` (to float rounding), a view without a copy, the original path for inputs it does not
fit, and the caller's model left as it was."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ctseg.inference import column_pairs
from ctseg.inference.backends import network_backend
from ctseg.inference.column_pairs import (
    ColumnPairConv3d,
    pair_output_columns,
    pairable,
    paired_kernel,
    vector_lanes,
)
from ctseg.inference.sliding_window import sliding_window
from ctseg.models import UNet

CL = torch.channels_last_3d


@pytest.mark.parametrize(
    ("conv", "expected"),
    [
        (nn.Conv3d(8, 8, 3, padding=1), True),
        (nn.Conv3d(16, 4, (3, 3, 3), padding=(1, 1, 1), bias=False), True),
        (nn.Conv3d(8, 8, (1, 3, 5), padding=(0, 1, 2)), True),
        (nn.Conv3d(8, 16, 3, padding=1), False),  # fills the vectors already
        (nn.Conv3d(1, 8, 3, padding=1), False),  # one input channel: comes back in the default layout
        (nn.Conv3d(8, 8, 3, padding=1, stride=2), False),
        (nn.Conv3d(8, 8, 3, padding=2, dilation=2), False),
        (nn.Conv3d(8, 8, 3, padding=0), False),  # not "same"
        (nn.Conv3d(8, 8, 3, padding="same"), False),
        (nn.Conv3d(8, 8, 3, padding=1, groups=2), False),
        (nn.Conv3d(8, 8, 3, padding=1, padding_mode="reflect"), False),
        (nn.Conv3d(8, 8, (3, 3, 1), padding=(1, 1, 0)), False),  # one tap wide: nothing to pair
        (nn.Conv3d(8, 8, 2, padding=1), False),  # even kernel
        (nn.Conv2d(8, 8, 3, padding=1), False),
        (nn.ConvTranspose3d(8, 8, 2, stride=2), False),
    ],
)
def test_which_convolutions_are_paired(conv: nn.Module, expected: bool) -> None:
    assert pairable(conv) is expected


def test_only_convolutions_into_half_a_vector_are_paired() -> None:
    assert pairable(nn.Conv3d(8, 8, 3, padding=1), 8)
    assert not pairable(nn.Conv3d(8, 8, 3, padding=1), 4)  # AVX2: 8 channels fill its vectors
    assert pairable(nn.Conv3d(8, 4, 3, padding=1), 4)
    assert not pairable(nn.Conv3d(8, 1, 3, padding=1), 0)  # unknown CPU: nothing
    model = nn.Sequential(nn.Conv3d(8, 8, 3, padding=1), nn.Conv3d(8, 4, 3, padding=1))
    assert pair_output_columns(model, max_channels=4) == 1
    assert type(model[0]) is nn.Conv3d and isinstance(model[1], ColumnPairConv3d)


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n", encoding="ascii")
    return path


@pytest.mark.parametrize(
    ("flags", "cap", "lanes"),
    [
        ("fpu sse2 avx avx2 fma avx512f avx512bw", None, 16),
        ("fpu sse2 avx avx2 fma", None, 8),
        ("fpu sse2 avx", None, 0),
        ("", None, 0),  # not x86, or no /proc/cpuinfo
        ("avx2 avx512f", "AVX2", 8),  # oneDNN capped below AVX-512
        ("avx2 avx512f", "avx512_core", 16),
        ("avx2 avx512f", "ALL", 16),
        ("avx2 avx512f", "SSE41", 0),
        ("avx2", "AVX512_CORE_AMX", 8),  # a cap never raises what the CPU has
    ],
)
def test_vector_lanes_from_the_cpu_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str, cap: str | None, lanes: int) -> None:
    if cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert vector_lanes(_cpuinfo(tmp_path, flags)) == lanes
    assert vector_lanes(tmp_path / "missing") == 0


def test_paired_kernel_holds_the_kernel_twice_one_tap_apart() -> None:
    w, b = torch.randn(3, 2, 3, 3, 3), torch.randn(3)
    paired, pb = paired_kernel(w, b)
    assert paired.shape == (6, 2, 3, 3, 4) and paired.is_contiguous(memory_format=CL)
    torch.testing.assert_close(paired[:3, ..., :3], w, rtol=0, atol=0)
    torch.testing.assert_close(paired[3:, ..., 1:], w, rtol=0, atol=0)
    assert not paired[:3, ..., 3].any() and not paired[3:, ..., 0].any()
    torch.testing.assert_close(pb, torch.cat([b, b]), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("cin", "cout", "kernel", "bias"),
    [(8, 8, (3, 3, 3), False), (16, 8, (3, 3, 3), True), (5, 3, (1, 3, 5), True), (2, 1, (3, 1, 3), False)],
)
def test_same_outputs_as_the_convolution(cin: int, cout: int, kernel: tuple[int, int, int], bias: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv3d(cin, cout, kernel, padding=tuple(k // 2 for k in kernel), bias=bias).to(memory_format=CL)
    x = torch.randn(2, cin, 6, 7, 10).contiguous(memory_format=CL)
    with torch.inference_mode():
        ref = conv(x)
        ref64 = nn.functional.conv3d(x.double(), conv.weight.double(), None if conv.bias is None else conv.bias.double(), padding=conv.padding)
        assert pair_output_columns(conv) == 1 and isinstance(conv, ColumnPairConv3d)
        got = conv(x)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    assert got.is_contiguous(memory_format=CL)  # the paired result reinterpreted, not copied
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    # as close to the exact sums as the original is
    assert (got.double() - ref64).abs().max() <= 4 * max((ref.double() - ref64).abs().max().item(), 1e-7)


def test_the_view_shares_the_convolutions_memory() -> None:
    conv = nn.Conv3d(8, 8, 3, padding=1).to(memory_format=CL)
    pair_output_columns(conv)
    x = torch.randn(1, 8, 4, 4, 6).contiguous(memory_format=CL)
    with torch.inference_mode():
        y = conv(x)
    # (N, C, D, H, W) channels-last strides of a buffer written once: no copy after the convolution
    assert y.stride() == (4 * 4 * 6 * 8, 1, 4 * 6 * 8, 6 * 8, 8)


@pytest.mark.parametrize("layout", ["odd width", "default layout", "4D"])
def test_inputs_it_does_not_fit_take_the_convolutions_own_path(layout: str) -> None:
    torch.manual_seed(1)
    conv = nn.Conv3d(4, 4, 3, padding=1)
    ref = nn.Conv3d(4, 4, 3, padding=1)
    ref.load_state_dict(conv.state_dict())
    pair_output_columns(conv)
    x = {"odd width": torch.randn(1, 4, 5, 6, 7).contiguous(memory_format=CL), "default layout": torch.randn(1, 4, 5, 6, 8), "4D": torch.randn(4, 5, 6, 8)}[layout]
    with torch.inference_mode():
        torch.testing.assert_close(conv(x), ref(x), rtol=0, atol=0)


def test_parameters_hooks_and_state_dict_stay() -> None:
    conv = nn.Conv3d(8, 4, 3, padding=1)
    seen: list[torch.Size] = []
    conv.register_forward_hook(lambda _m, _a, out: seen.append(out.shape))
    keys, weight = set(conv.state_dict()), conv.weight
    pair_output_columns(conv)
    assert set(conv.state_dict()) == keys and conv.weight is weight
    with torch.inference_mode():
        conv(torch.randn(1, 8, 4, 4, 4).contiguous(memory_format=CL))
    assert seen == [torch.Size([1, 4, 4, 4, 4])]
    # new weights: refresh rebuilds the paired kernel
    with torch.no_grad():
        conv.weight.mul_(2)
    conv.refresh()  # type: ignore[operator]
    torch.testing.assert_close(conv.paired_weight[:4, ..., :3], conv.weight.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_network_backend_pairs_a_copy_and_agrees(precision: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(column_pairs, "vector_lanes", lambda: 16)  # as on an AVX-512 CPU, whatever runs the test
    torch.manual_seed(0)
    model = UNet(3, 1, 3, features=(4, 8, 16), strides=[1, 2, 2]).eval()
    layout = model.encoder[0][0][0].weight.stride()
    net = network_backend(model, (16, 16, 16), precision=precision)
    paired = [m for m in net.modules() if isinstance(m, ColumnPairConv3d)]
    assert len(paired) >= 3  # the 4- and 8-channel convolutions after the first
    assert not any(isinstance(m, ColumnPairConv3d) for m in model.modules())  # the caller's model as it was
    assert model.encoder[0][0][0].weight.stride() == layout
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(1, 24, 20, 16)).astype(np.float32)
    volume[0, 6:18, 5:15, 4:12] += 2.0
    with torch.inference_mode():
        x = torch.from_numpy(volume[None, :, :16, :16, :16].copy())
        ref, got = model(x), net(x)
    if precision == "float32":
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    else:
        assert (got - ref).abs().max() < 0.05 * ref.abs().max()
    p_ref = sliding_window(volume, model, (16, 16, 16), 3)
    p_got = sliding_window(volume, net, (16, 16, 16), 3)
    assert np.abs(p_ref - p_got).max() < (1e-4 if precision == "float32" else 0.05)


def test_the_benchmark_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "column_pairs.py"
    spec = importlib.util.spec_from_file_location("ctseg_benchmark_column_pairs", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--size", "8", "8", "16", "--repeat", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "->" in line or line.startswith("| demo")]
    float32 = [r for r in rows if "| float32 |" in r]
    assert len(float32) == 6  # five convolutions and the network
    for row in float32:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[3] != "-":  # a paired row: timed, and the same outputs
            assert cells[4].endswith("x") and float(cells[6]) < 1e-5
