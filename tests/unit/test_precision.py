"""The network's precision: "auto" picks bfloat16 only where the CPU multiplies it in hardware (or on
CUDA), bfloat16 autocast keeps the norms in float32, and its outputs stay close to float32's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ctseg._resources import cpu_has_bf16_dot
from ctseg.errors import InputError
from ctseg.inference import backends
from ctseg.inference.backends import network_backend, resolve_precision
from ctseg.inference.sliding_window import sliding_window
from ctseg.models import InstanceNorm, InstanceNormLeakyReLU, UNet
from ctseg.models._norm_act import group_norm


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n", encoding="ascii")
    return path


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse2 avx avx2 fma", False),  # AVX2 only: bfloat16 is emulated, slower than float32
        ("avx2 avx512f avx512bw avx512vl", False),  # AVX-512 without BF16 (oneDNN emulates it)
        ("avx2 avx512f avx512_bf16 avx512_vnni", True),
        ("avx2 avx512f amx_tile amx_bf16", True),
    ],
)
def test_bf16_dot_is_read_from_the_cpu_flags(tmp_path, flags, expected) -> None:
    assert cpu_has_bf16_dot(_cpuinfo(tmp_path, flags)) is expected


def test_unreadable_cpu_flags_mean_no_bf16(tmp_path) -> None:
    assert cpu_has_bf16_dot(tmp_path / "missing") is False
    (tmp_path / "noflags").write_text("processor\t: 0\n", encoding="ascii")
    assert cpu_has_bf16_dot(tmp_path / "noflags") is False


@pytest.mark.parametrize("has_bf16", [True, False])
def test_auto_precision_follows_the_hardware(monkeypatch, has_bf16) -> None:
    monkeypatch.setattr(backends, "cpu_has_bf16_dot", lambda: has_bf16)
    assert resolve_precision("auto", "cpu") == ("bfloat16" if has_bf16 else "float32")
    assert resolve_precision("auto", "cuda") == "bfloat16"  # no device needed to decide
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    assert resolve_precision("auto", "cpu", backend="onnx") == "float32"


def test_bad_precisions_are_refused() -> None:
    with pytest.raises(InputError, match="precision must be one of auto, float32, bfloat16"):
        resolve_precision("fp16")
    with pytest.raises(InputError, match="onnx backend runs in float32"):
        resolve_precision("bfloat16", backend="onnx")


def test_bf16_group_norm_runs_in_float32_and_casts_back() -> None:
    torch.manual_seed(0)
    x = (torch.randn(2, 8, 6, 8, 10) * 3 + 5).contiguous(memory_format=torch.channels_last_3d)
    w, b = torch.randn(8), torch.randn(8)
    xb = x.to(torch.bfloat16)
    got = group_norm(xb, 8, w, b, 1e-5)
    assert got.dtype == torch.bfloat16
    # exactly float32's kernel on the bfloat16 input, rounded once
    torch.testing.assert_close(got, F.group_norm(xb.float(), 8, w, b, 1e-5).to(torch.bfloat16), rtol=0, atol=0)
    # float32 input: untouched PyTorch
    torch.testing.assert_close(group_norm(x, 8, w, b, 1e-5), F.group_norm(x, 8, w, b, 1e-5), rtol=0, atol=0)
    for module in (InstanceNorm(8), InstanceNormLeakyReLU(8)):
        with torch.inference_mode():
            ref = module(x.clone())
            out = module(xb.clone())
        assert out.dtype == torch.bfloat16
        assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_bf16_network_agrees_with_float32() -> None:
    torch.manual_seed(0)
    model = UNet(3, 1, 3, features=(4, 8, 16), strides=[1, 2, 2]).eval()
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(1, 24, 20, 16)).astype(np.float32)
    volume[0, 6:18, 5:15, 4:12] += 2.0  # something for the network to respond to
    fp32 = network_backend(model, (16, 16, 16), precision="float32")
    bf16 = network_backend(model, (16, 16, 16), precision="bfloat16")
    x = torch.from_numpy(volume[None, :, :16, :16, :16].copy())
    with torch.inference_mode():
        a, b = fp32(x), bf16(x)
    assert b.dtype == torch.float32 and b.shape == a.shape  # logits back in float32
    assert not torch.equal(a, b)  # bfloat16 really ran
    assert (a - b).abs().max() < 0.05 * a.abs().max()
    p32 = sliding_window(volume, fp32, (16, 16, 16), 3)
    p16 = sliding_window(volume, bf16, (16, 16, 16), 3)
    assert np.abs(p32 - p16).max() < 0.05
    assert (p32.argmax(0) == p16.argmax(0)).mean() > 0.99


def test_first_and_last_convolutions_stay_float32_under_bfloat16() -> None:
    torch.manual_seed(0)
    model = UNet(3, 1, 3, features=(4, 8, 16), strides=[1, 2, 2]).eval()
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))]
    dtypes: dict[int, torch.dtype] = {}
    for i, conv in enumerate(convs):
        conv.register_forward_hook(lambda _m, _a, out, i=i: dtypes.__setitem__(i, out.dtype))
    net = network_backend(model, (16, 16, 16), precision="bfloat16")
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.inference_mode():
        net(x)
    ran = sorted(dtypes)  # in eval mode only the full-resolution head of the deep-supervision heads runs
    assert dtypes[0] == torch.float32 and dtypes[len(convs) - 1] == torch.float32
    assert all(dtypes[i] == torch.bfloat16 for i in ran[1:-1]) and len(ran) > 3
    assert not torch.is_autocast_enabled("cpu")  # the hooks leave autocast as they found it
    dtypes.clear()
    with torch.inference_mode():
        network_backend(model, (16, 16, 16), precision="float32")(x)  # the hooks do nothing without autocast
    assert set(dtypes.values()) == {torch.float32}
