"""A configurable nnU-Net-style U-Net for 2D or 3D input.

Encoder stages of stacked ``conv -> InstanceNorm -> LeakyReLU`` blocks, downsampling by the strided
first convolution of each stage (no pooling); decoder stages upsample with a transposed convolution
(kernel = stride), concatenate the skip connection and apply another stacked block; a 1x1
convolution maps features to class logits. Strides and kernel sizes can differ per axis, which is
how anisotropic CT (thick slices) is handled: e.g. ``strides=[1, 2, 2, 2, (2, 2, 1)]`` and
``kernel_sizes=[(3, 3, 1), 3, 3, 3, 3]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import InputError
from .blocks import (
    IntOrSeq,
    StackedConvBlock,
    conv_nd,
    conv_transpose_nd,
    ensure_tuple,
    init_weights,
)
from .registry import register_model

__all__ = ["UNet"]


def _per_stage(
    value: Sequence[IntOrSeq] | None,
    default: list[IntOrSeq],
    n_stages: int,
    spatial_dims: int,
    name: str,
) -> tuple[tuple[int, ...], ...]:
    if value is None:
        value = default
    if isinstance(value, (int, str)) or not isinstance(value, Sequence) or len(value) != n_stages:
        raise ValueError(
            f"{name} must be a list with one entry per stage ({n_stages}, as many as features), "
            f"got {value!r}"
        )
    return tuple(ensure_tuple(v, spatial_dims, f"{name}[{i}]") for i, v in enumerate(value))


@register_model("unet_small", features=(8, 16, 32, 64))
@register_model("unet")
class UNet(nn.Module):
    """nnU-Net-style U-Net; ``spatial_dims`` 2 or 3.

    Args:
        spatial_dims: 2 for (B, C, H, W) input, 3 for (B, C, D, H, W).
        in_channels: input channels (1 for CT).
        out_channels: classes, background included (logits, no softmax).
        features: channels per resolution stage, shallowest first; ``len(features)`` stages.
        strides: per stage, an int or a per-axis tuple; the first must be 1. Default: 1, then 2.
        kernel_sizes: per stage, an odd int or per-axis tuple. Default: 3 everywhere. The decoder
            stage at a resolution uses the encoder's kernel of that resolution.
        convs_per_stage: ConvNormAct layers per encoder and decoder stage.
        deep_supervision: in training mode, return logits of every decoder stage (see ``forward``).
        dropout: channel-dropout probability inside every conv layer (0 disables it).

    Shapes: input (B, in_channels, *spatial), every spatial size divisible by
    :meth:`required_divisor`; output (B, out_channels, *spatial).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 3,
        features: Sequence[int] = (16, 32, 64, 128, 256),
        strides: Sequence[IntOrSeq] | None = None,
        kernel_sizes: Sequence[IntOrSeq] | None = None,
        convs_per_stage: int = 2,
        deep_supervision: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        for arg, val in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f"{arg} must be a positive int, got {val!r}")
        features = tuple(features)
        if len(features) < 2 or not all(isinstance(f, int) and f >= 1 for f in features):
            raise ValueError(f"features must hold at least two positive ints, got {features!r}")
        n = len(features)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.features = features
        self.strides = _per_stage(strides, [1] + [2] * (n - 1), n, spatial_dims, "strides")
        self.kernel_sizes = _per_stage(kernel_sizes, [3] * n, n, spatial_dims, "kernel_sizes")
        if any(s != 1 for s in self.strides[0]):
            raise ValueError(f"strides[0] must be 1 (full-resolution first stage), got {strides!r}")
        self.deep_supervision = bool(deep_supervision)

        self.encoder = nn.ModuleList(
            StackedConvBlock(
                spatial_dims,
                in_channels if i == 0 else features[i - 1],
                features[i],
                num_convs=convs_per_stage,
                kernel_size=self.kernel_sizes[i],
                stride=self.strides[i],
                dropout=dropout,
            )
            for i in range(n)
        )
        # Decoder lists run from the deepest stage up to full resolution.
        conv_t = conv_transpose_nd(spatial_dims)
        self.upsamples = nn.ModuleList(
            conv_t(
                features[s], features[s - 1], kernel_size=self.strides[s], stride=self.strides[s]
            )
            for s in range(n - 1, 0, -1)
        )
        self.decoder = nn.ModuleList(
            StackedConvBlock(
                spatial_dims,
                2 * features[s - 1],
                features[s - 1],
                num_convs=convs_per_stage,
                kernel_size=self.kernel_sizes[s - 1],
                dropout=dropout,
            )
            for s in range(n - 1, 0, -1)
        )
        conv = conv_nd(spatial_dims)
        self.heads = nn.ModuleList(
            conv(features[s - 1], out_channels, kernel_size=1) for s in range(n - 1, 0, -1)
        )
        self.apply(init_weights)

    def required_divisor(self) -> tuple[int, ...]:
        """Per spatial axis, the number every input size must be a multiple of (stride product)."""
        return tuple(math.prod(s[axis] for s in self.strides) for axis in range(self.spatial_dims))

    def padded_size(self, spatial_size: Sequence[int]) -> tuple[int, ...]:
        """Smallest valid input size at least ``spatial_size`` on every axis."""
        return tuple(
            -(-int(n) // d) * d for n, d in zip(spatial_size, self.required_divisor(), strict=True)
        )

    def deep_supervision_scales(self) -> list[tuple[int, ...]]:
        """Per deep-supervision output (full resolution first), the per-axis downsampling factor."""
        scales, current = [], [1] * self.spatial_dims
        for stride in self.strides[:-1]:
            current = [c * s for c, s in zip(current, stride, strict=True)]
            scales.append(tuple(current))
        return scales

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != self.spatial_dims + 2:
            raise InputError(
                f"UNet(spatial_dims={self.spatial_dims}) expects input (B, C, "
                f"{'D, H, W' if self.spatial_dims == 3 else 'H, W'}), got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise InputError(
                f"UNet expects {self.in_channels} input channel(s), got {x.shape[1]} "
                f"(input shape {tuple(x.shape)})"
            )
        size = tuple(x.shape[2:])
        divisor = self.required_divisor()
        if any(n % d for n, d in zip(size, divisor, strict=True)):
            raise InputError(
                f"input spatial size {size} is not divisible by the network's required divisor "
                f"{divisor} (product of strides per axis); pad the input to {self.padded_size(size)}"
            )
        if math.prod(n // d for n, d in zip(size, divisor, strict=True)) == 1:
            raise InputError(
                f"input spatial size {size} leaves a single voxel at the bottleneck, where instance "
                f"normalisation has nothing to normalise over; use at least "
                f"{tuple(2 * d for d in divisor)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits for ``x`` of shape (B, in_channels, *spatial).

        Returns:
            (B, out_channels, *spatial) logits; or, when ``deep_supervision`` is set and the module
            is in training mode, a list of ``len(features) - 1`` logit tensors at decreasing
            resolution: full, then divided by the cumulative strides (``deep_supervision_scales``).

        Raises:
            InputError (a ValueError): wrong rank or channel count, a spatial size not divisible
                by :meth:`required_divisor` (the message gives the padded size to use), or one
                equal to it (a single bottleneck voxel; the message gives the minimum).
        """
        self._check_input(x)
        skips: list[torch.Tensor] = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = skips.pop()  # bottleneck output; no skip at this resolution
        all_outputs = self.deep_supervision and self.training
        outputs: list[torch.Tensor] = []
        for i, (up, block) in enumerate(zip(self.upsamples, self.decoder, strict=True)):
            x = block(torch.cat((up(x), skips.pop()), dim=1))
            if all_outputs:
                outputs.append(self.heads[i](x))
        if not all_outputs:
            return self.heads[-1](x)
        return outputs[::-1]
