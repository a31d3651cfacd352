"""3D convolutions with few output channels, computed two output columns at a time (CPU inference).

oneDNN computes a channels-last 3D convolution on an AVX-512 CPU in 16-lane vectors of output
channels, and its time follows the input channels x kernel taps x output positions; a
convolution into 8 channels fills half of each vector. Measured on 2 cores (AMD EPYC, Zen 5),
a batch of 4 x 8 x 40 x 48 x 48: 8 -> 8 channels took 6.2 ms and 8 -> 16 took 6.4 ms; 16 -> 8 took
11.4 ms and 16 -> 16 11.8 ms. The full-resolution level of a U-Net with 8 base features runs
there at a third of the rate of its 64-channel layers.

A stride-1, zero-padded ("same") convolution with ``C`` output channels (at most half a vector,
below) and a kernel ``k``
wide along the last axis is rewritten as a convolution with ``2C`` output channels, a kernel
``k + 1`` wide and stride 2 along that axis: output channel ``c`` holds column ``2j`` (taps
``0..k-1`` of the original kernel) and channel ``C + c`` column ``2j + 1`` (the same taps
shifted by one). In the channels-last layout its (N, D, H, W/2, 2C) result is, byte for byte,
the (N, D, H, W, C) result of the original, so it is handed back as a view without a copy.
A quarter of the taps are zeros, yet it is faster: 1.3x in float32 (4.8 against 6.2 ms for 8 -> 8,
8.8 against 11.4 ms for 16 -> 8) and 1.3-1.4x in bfloat16; the demo's network, 1.15x in float32
and 1.10x in bfloat16 (``benchmarks/column_pairs.py``). The sums hold the same products plus
exact zeros; with torch 2.13's oneDNN the outputs came out bit for bit equal, and in any case they
agree to float rounding.

It pays only while the paired channels still fit one vector: with AVX2's 8 float32 lanes
(oneDNN capped with ``ONEDNN_MAX_CPU_ISA=AVX2`` on the same CPU) pairing 8 -> 8 ran at 0.91x and
the demo's network at 0.96x, while 8 -> 4 gained 1.43x. So convolutions into at most half of
:func:`vector_lanes` channels are paired: 8 with AVX-512, 4 with AVX2, none where the vector width
is unknown (other CPUs).

Only for inference with fixed weights: the paired kernel is made once from the weights at the
time of :func:`pair_output_columns`. Training gains nothing (its backward pass was slower).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from .._resources import cpu_flags

__all__ = ["ColumnPairConv3d", "pair_output_columns", "pairable", "vector_lanes"]


def vector_lanes(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> int:
    """float32 lanes of the vectors oneDNN computes convolutions in on this CPU: 16 with AVX-512
    (flag ``avx512f``), 8 with AVX2, 0 where unknown (no x86 flags). ``ONEDNN_MAX_CPU_ISA`` naming
    an ISA below AVX-512 (e.g. ``AVX2``) caps it at 8."""
    flags = cpu_flags(cpuinfo)
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 0
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and cap not in ("ALL", "DEFAULT") and not any(isa in cap for isa in ("AVX512", "AVX10", "AMX")):
        lanes = min(lanes, 8 if "AVX2" in cap else 0)
    return lanes


def pairable(module: nn.Module, max_channels: int = 8) -> bool:
    """Whether ``module`` is a plain ``nn.Conv3d`` that :class:`ColumnPairConv3d` computes the same
    and faster: at most ``max_channels`` output channels and 2 or more input channels, stride and
    dilation 1, one group, zero padding of half an odd kernel on every axis, and a kernel at least 3
    wide along the last axis. (With one input channel, PyTorch hands oneDNN the input in its default
    layout and the result comes back in it too: the copy into channels-last cost more than pairing
    saved.)"""
    if type(module) is not nn.Conv3d:
        return False
    kernel, padding = tuple(module.kernel_size), module.padding
    return (
        module.out_channels <= max_channels
        and module.in_channels >= 2
        and module.groups == 1
        and module.padding_mode == "zeros"
        and tuple(module.stride) == (1, 1, 1)
        and tuple(module.dilation) == (1, 1, 1)
        and not isinstance(padding, str)
        and all(k % 2 == 1 for k in kernel)
        and tuple(padding) == tuple(k // 2 for k in kernel)
        and kernel[-1] >= 3
    )


def paired_kernel(weight: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The (2C, Cin, kd, kh, kw + 1) kernel and (2C,) bias of the paired convolution of a
    (C, Cin, kd, kh, kw) ``weight``: channels ``0..C-1`` see taps ``0..kw-1``, channels ``C..2C-1``
    the same kernel one tap later (channels-last, as oneDNN takes it)."""
    channels, width = weight.shape[0], weight.shape[-1]
    paired = weight.new_zeros((2 * channels, *weight.shape[1:-1], width + 1))
    paired[:channels, ..., :width] = weight
    paired[channels:, ..., 1:] = weight
    return paired.contiguous(memory_format=torch.channels_last_3d), None if bias is None else torch.cat([bias, bias])


class ColumnPairConv3d(nn.Conv3d):
    """An ``nn.Conv3d`` (same parameters, hooks and ``state_dict``) whose forward pass on a
    channels-last input of even width computes two output columns per position (see the module's
    docstring); any other input takes ``nn.Conv3d``'s own path. Made by :func:`pair_output_columns`."""

    paired_weight: torch.Tensor
    paired_bias: torch.Tensor | None

    def refresh(self) -> None:
        """Rebuild the paired kernel from the current ``weight`` and ``bias``."""
        with torch.no_grad():
            weight, bias = paired_kernel(self.weight.detach(), None if self.bias is None else self.bias.detach())
        self.register_buffer("paired_weight", weight, persistent=False)
        self.register_buffer("paired_bias", bias, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layout = torch.channels_last_3d
        if x.dim() != 5 or x.shape[-1] % 2 or not x.is_contiguous(memory_format=layout):
            return super().forward(x)
        y = F.conv3d(x, self.paired_weight, self.paired_bias, stride=(1, 1, 2), padding=self.padding)
        y = y.contiguous(memory_format=layout)  # oneDNN returns channels-last already: no copy
        n, _, d, h, w = y.shape
        return y.permute(0, 2, 3, 4, 1).reshape(n, d, h, 2 * w, self.out_channels).permute(0, 4, 1, 2, 3)


def pair_output_columns(model: nn.Module, max_channels: int | None = None) -> int:
    """Turn every :func:`pairable` convolution of ``model`` into a :class:`ColumnPairConv3d`, in place
    (its parameters, forward hooks and ``state_dict`` keys stay); returns how many. Convolutions
    into at most ``max_channels`` channels qualify (default: half of :func:`vector_lanes`, so none
    where the vector width is unknown). For a network that runs on the CPU in the channels-last
    layout with fixed weights (inference): after a change of weights call
    :meth:`ColumnPairConv3d.refresh`."""
    if max_channels is None:
        max_channels = vector_lanes() // 2
    count = 0
    for module in model.modules():
        if pairable(module, max_channels):
            module.__class__ = ColumnPairConv3d
            module.refresh()  # type: ignore[attr-defined]
            count += 1
    return count
