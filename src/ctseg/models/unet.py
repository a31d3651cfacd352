"""A configurable U-Net for 2D or 3D input: the nnU-Net-class network and its classic variants.

Encoder stages of stacked ``conv -> norm -> activation`` blocks (or residual blocks), each
downsampling by its strided first convolution (nnU-Net) or by a max-pooling before it (the
classic U-Net); decoder stages upsample with a transposed convolution (kernel = stride),
concatenate the skip connection and apply another block; a 1x1 convolution maps features to
class logits. Strides and kernel sizes can differ per axis, which is how anisotropic CT (thick
slices) is handled: e.g. ``strides=[1, 2, 2, 2, (2, 2, 1)]`` and
``kernel_sizes=[(3, 3, 1), 3, 3, 3, 3]``.

Registered as ``unet`` and ``default`` (the nnU-Net-class network: instance norm, leaky ReLU,
strided convolutions, deep supervision; depth, widths, strides and kernels from the plan),
``unet_small``, ``simple_unet`` (a shallow classic U-Net: three levels, batch norm, ReLU,
max-pooling) and ``resunet`` (residual blocks, widths 16-32-64-128).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from .base import SegmentationNetwork, check_features
from .blocks import (
    IntOrSeq,
    ResidualBlock,
    StackedConvBlock,
    check_choice,
    conv_nd,
    conv_transpose_nd,
    ensure_tuple,
    init_weights,
    max_pool_nd,
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


@register_model("resunet", features=(16, 32, 64, 128), block="residual")
@register_model(
    "simple_unet", features=(16, 32, 64), norm="batch", act="relu", downsample="maxpool"
)
@register_model("unet_small", features=(8, 16, 32, 64))
@register_model("default", uses_plan=True, deep_supervision=True)
@register_model("unet", uses_plan=True)
class UNet(SegmentationNetwork):
    """U-Net; ``spatial_dims`` 2 or 3.

    Args:
        spatial_dims: 2 for (B, C, H, W) input, 3 for (B, C, D, H, W).
        in_channels: input channels (1 for CT).
        out_channels: classes, background included.
        features: channels per resolution stage, shallowest first; ``len(features)`` stages.
            The classic 5-level 2D U-Net is ``(64, 128, 256, 512, 1024)``.
        strides: per stage, an int or a per-axis tuple; the first must be 1. Default: 1, then 2.
        kernel_sizes: per stage, an odd int or per-axis tuple. Default: 3 everywhere. The decoder
            stage at a resolution uses the encoder's kernel of that resolution.
        convs_per_stage: convolutions per encoder and decoder stage.
        decoder_convs_per_stage: convolutions per decoder stage when it differs from
            ``convs_per_stage`` (nnU-Net's residual-encoder presets use 1: the decoder's
            full-resolution convolutions are the costliest of a training step on the CPU).
        deep_supervision: in training mode, return logits of every decoder stage (see ``forward``).
        dropout: channel-dropout probability inside every conv layer (0 disables it).
        norm: "instance" (default), "batch" or "none".
        act: "leaky_relu" (default), "relu", "prelu" or "elu".
        downsample: "stride" (the first convolution of a stage is strided; default) or "maxpool"
            (max-pooling with kernel = stride before the stage).
        block: "plain" (stacked convolutions; default) or "residual" (:class:`ResidualBlock`).
        final_activation: None (logits; default), "softmax" or "sigmoid"; see
            :class:`~ctseg.models.base.SegmentationNetwork`.

    Shapes: input (B, in_channels, *spatial), every spatial size divisible by
    :meth:`required_divisor` (the product of the strides per axis: 16 for the default five
    stages); output (B, out_channels, *spatial).
    """

    supports_deep_supervision: ClassVar[bool] = True

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 3,
        features: Sequence[int] = (16, 32, 64, 128, 256),
        strides: Sequence[IntOrSeq] | None = None,
        kernel_sizes: Sequence[IntOrSeq] | None = None,
        convs_per_stage: int = 2,
        decoder_convs_per_stage: int | None = None,
        deep_supervision: bool = False,
        dropout: float = 0.0,
        norm: str = "instance",
        act: str = "leaky_relu",
        downsample: str = "stride",
        block: str = "plain",
        final_activation: str | None = None,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, final_activation)
        features = check_features(features)
        check_choice(downsample, ("stride", "maxpool"), "downsample")
        check_choice(block, ("plain", "residual"), "block")
        n = len(features)
        self.features = features
        self.strides = _per_stage(strides, [1] + [2] * (n - 1), n, spatial_dims, "strides")
        self.kernel_sizes = _per_stage(kernel_sizes, [3] * n, n, spatial_dims, "kernel_sizes")
        if any(s != 1 for s in self.strides[0]):
            raise ValueError(f"strides[0] must be 1 (full-resolution first stage), got {strides!r}")
        self.deep_supervision = bool(deep_supervision)
        self._divisor = tuple(
            math.prod(s[axis] for s in self.strides) for axis in range(spatial_dims)
        )
        block_cls = StackedConvBlock if block == "plain" else ResidualBlock
        common = {"num_convs": convs_per_stage, "dropout": dropout, "norm": norm, "act": act}
        decoder_common = {**common, "num_convs": convs_per_stage if decoder_convs_per_stage is None else decoder_convs_per_stage}

        def encoder_stage(i: int) -> nn.Module:
            cin = in_channels if i == 0 else features[i - 1]
            kernel = self.kernel_sizes[i]
            if downsample == "stride" or i == 0:
                return block_cls(
                    spatial_dims,
                    cin,
                    features[i],
                    kernel_size=kernel,
                    stride=self.strides[i],
                    **common,
                )
            pool = max_pool_nd(spatial_dims)(kernel_size=self.strides[i], stride=self.strides[i])
            return nn.Sequential(
                pool, block_cls(spatial_dims, cin, features[i], kernel_size=kernel, **common)
            )

        self.encoder = nn.ModuleList(encoder_stage(i) for i in range(n))
        # Decoder lists run from the deepest stage up to full resolution.
        conv_t = conv_transpose_nd(spatial_dims)
        self.upsamples = nn.ModuleList(
            conv_t(
                features[s], features[s - 1], kernel_size=self.strides[s], stride=self.strides[s]
            )
            for s in range(n - 1, 0, -1)
        )
        self.decoder = nn.ModuleList(
            block_cls(
                spatial_dims,
                2 * features[s - 1],
                features[s - 1],
                kernel_size=self.kernel_sizes[s - 1],
                **decoder_common,
            )
            for s in range(n - 1, 0, -1)
        )
        conv = conv_nd(spatial_dims)
        self.heads = nn.ModuleList(
            conv(features[s - 1], out_channels, kernel_size=1) for s in range(n - 1, 0, -1)
        )
        self.apply(init_weights)

    def deep_supervision_scales(self) -> list[tuple[int, ...]]:
        """Per deep-supervision output (full resolution first), the per-axis downsampling factor."""
        scales, current = [], [1] * self.spatial_dims
        for stride in self.strides[:-1]:
            current = [c * s for c, s in zip(current, stride, strict=True)]
            scales.append(tuple(current))
        return scales

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
        self.check_input(x)
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
                outputs.append(self.finish(self.heads[i](x)))
        if not all_outputs:
            return self.finish(self.heads[-1](x))
        return outputs[::-1]
