"""A fully convolutional network with skip-fused upsampling (FCN-8s style), 2D or 3D.

Long, Shelhamer and Darrell's FCN-8s, with a VGG-like encoder: ``len(features)`` stages of
``conv -> norm -> activation`` layers, each followed by a 2x max-pooling, then two more
convolutions at the coarsest level (the "fc6/fc7" of the paper, as convolutions). Class scores
are predicted from the last three pooling levels by 1x1 convolutions and fused from coarse to
fine: the coarsest scores are upsampled 2x by a learned transposed convolution (initialised as
linear interpolation) and added to the next level's, twice; the fused scores at 1/2^(n-2)
resolution are then interpolated (bi/trilinear) to the input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import SegmentationNetwork, check_features
from .blocks import (
    StackedConvBlock,
    conv_nd,
    conv_transpose_nd,
    init_weights,
    interpolation_mode,
    max_pool_nd,
)
from .registry import register_model

__all__ = ["FCN"]


@torch.no_grad()
def _init_linear_upsampling(layer: nn.Module, spatial_dims: int) -> None:
    """Set a (C, C, 4, ..., 4) stride-2 transposed convolution to per-channel linear upsampling."""
    size = layer.weight.shape[2]  # type: ignore[union-attr]
    factor = (size + 1) // 2
    centre = factor - 0.5 if size % 2 == 0 else factor - 1
    ramp = 1 - (torch.arange(size, dtype=torch.float32) - centre).abs() / factor
    kernel = ramp
    for _ in range(spatial_dims - 1):
        kernel = kernel.unsqueeze(-1) * ramp
    layer.weight.zero_()  # type: ignore[union-attr]
    for c in range(layer.weight.shape[0]):  # type: ignore[union-attr]
        layer.weight[c, c] = kernel  # type: ignore[index]


@register_model("fcn")
class FCN(SegmentationNetwork):
    """FCN-8s-style fully convolutional network with skip-fused upsampling; 2D or 3D.

    Args:
        spatial_dims: 2 for (B, C, H, W) input, 3 for (B, C, D, H, W).
        in_channels: input channels.
        out_channels: classes, background included.
        features: channels per encoder stage (at least 3; VGG-16 at half width by default).
        convs_per_stage: convolutions per stage, one int per stage (default VGG-16's 2, 2, 3, 3,
            3 for five stages; 2 for every stage otherwise).
        dropout: channel dropout in the two coarsest-level convolutions ("fc6/fc7").
        norm: "batch" (default), "instance" or "none".
        act: "relu" (default), "leaky_relu", "prelu" or "elu".
        final_activation: None (logits; default), "softmax" or "sigmoid".

    Shapes: input (B, in_channels, *spatial), every size divisible by 2^len(features) (32 by
    default) and at least twice that on one axis; output (B, out_channels, *spatial). No deep
    supervision.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 3,
        features: Sequence[int] = (32, 64, 128, 256, 512),
        convs_per_stage: Sequence[int] | None = None,
        dropout: float = 0.0,
        norm: str = "batch",
        act: str = "relu",
        final_activation: str | None = None,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, final_activation)
        features = check_features(features, minimum=3)
        n = len(features)
        if convs_per_stage is None:
            convs_per_stage = (2, 2, 3, 3, 3) if n == 5 else (2,) * n
        convs = tuple(convs_per_stage)
        if len(convs) != n:
            raise ValueError(
                f"convs_per_stage must have one entry per stage ({n}), got {convs_per_stage!r}"
            )
        self.features = features
        self._divisor = (2**n,) * spatial_dims
        conv = conv_nd(spatial_dims)
        pool = max_pool_nd(spatial_dims)
        self.encoder = nn.ModuleList(
            nn.Sequential(
                StackedConvBlock(
                    spatial_dims,
                    in_channels if i == 0 else features[i - 1],
                    features[i],
                    num_convs=convs[i],
                    norm=norm,
                    act=act,
                ),
                pool(kernel_size=2, stride=2),
            )
            for i in range(n)
        )
        self.bottleneck = StackedConvBlock(
            spatial_dims, features[-1], features[-1], 2, dropout=dropout, norm=norm, act=act
        )
        # Scores at 1/2^n (after the bottleneck), 1/2^(n-1) and 1/2^(n-2): coarsest first.
        self.scores = nn.ModuleList(
            conv(c, out_channels, kernel_size=1) for c in (features[-1], features[-2], features[-3])
        )
        conv_t = conv_transpose_nd(spatial_dims)
        self.upsamples = nn.ModuleList(
            conv_t(out_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=False)
            for _ in range(2)
        )
        self.apply(init_weights)
        for layer in self.upsamples:
            _init_linear_upsampling(layer, spatial_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, *spatial) -> (B, out_channels, *spatial) logits.

        Raises:
            InputError: wrong rank or channels, or a size not divisible by
                :meth:`required_divisor` (the message names the padded size).
        """
        self.check_input(x)
        size = x.shape[2:]
        pooled: list[torch.Tensor] = []
        for stage in self.encoder:
            x = stage(x)
            pooled.append(x)
        score = self.scores[0](self.bottleneck(pooled[-1]))
        for up, head, skip in zip(self.upsamples, self.scores[1:], (pooled[-2], pooled[-3])):
            score = up(score) + head(skip)
        mode = interpolation_mode(self.spatial_dims)
        return self.finish(F.interpolate(score, size=size, mode=mode, align_corners=False))
