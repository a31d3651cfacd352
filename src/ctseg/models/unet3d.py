"""The 3D U-Net of Çiçek et al. (2016), 3D only.

An analysis path of ``len(features)`` levels, each two ``3x3x3 conv -> batch norm -> ReLU``
layers whose second doubles the channels (32 -> 64 at the first level by default), with 2x2x2
max-pooling between levels; a synthesis path of 2x2x2 transposed convolutions (keeping the
channels), concatenation with the analysis level's output and two convolutions back to that
level's width; a final 1x1x1 convolution to class logits. Unlike the paper, convolutions are
padded ("same"), so the output has the input's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from .base import SegmentationNetwork, check_features
from .blocks import ConvNormAct, conv_nd, conv_transpose_nd, init_weights, max_pool_nd
from .registry import register_model

__all__ = ["UNet3D"]


@register_model("unet3d")
class UNet3D(SegmentationNetwork):
    """Çiçek-style 3D U-Net (channel doubling within a level, max-pooling); 3D only.

    Args:
        spatial_dims: must be 3.
        in_channels: input channels.
        out_channels: classes, background included.
        features: width of the first convolution of each level; the second doubles it
            (default 32, 64, 128, 256: levels of 64, 128, 256 and 512 channels).
        dropout: channel dropout in every convolution.
        norm: "batch" (default, as in the paper), "instance" or "none".
        act: "relu" (default), "leaky_relu", "prelu" or "elu".
        final_activation: None (logits; default), "softmax" or "sigmoid".

    Shapes: input (B, in_channels, D, H, W), every size divisible by 2^(len(features) - 1) (8 by
    default) and at least twice that on one axis; output (B, out_channels, D, H, W). No deep
    supervision.
    """

    supported_dims: ClassVar[tuple[int, ...]] = (3,)

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 3,
        features: Sequence[int] = (32, 64, 128, 256),
        dropout: float = 0.0,
        norm: str = "batch",
        act: str = "relu",
        final_activation: str | None = None,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, final_activation)
        features = check_features(features)
        n = len(features)
        self.features = features
        self._divisor = (2 ** (n - 1),) * spatial_dims
        common = {"dropout": dropout, "norm": norm, "act": act}

        def level(cin: int, mid: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                ConvNormAct(3, cin, mid, **common), ConvNormAct(3, mid, cout, **common)
            )

        self.pool = max_pool_nd(3)(kernel_size=2, stride=2)
        self.encoder = nn.ModuleList(
            level(in_channels if i == 0 else 2 * features[i - 1], features[i], 2 * features[i])
            for i in range(n)
        )
        conv_t = conv_transpose_nd(3)
        # Decoder, deepest first: level i receives 2 * features[i + 1] channels from below.
        self.upsamples = nn.ModuleList(
            conv_t(2 * features[i + 1], 2 * features[i + 1], kernel_size=2, stride=2)
            for i in range(n - 2, -1, -1)
        )
        self.decoder = nn.ModuleList(
            level(2 * features[i + 1] + 2 * features[i], 2 * features[i], 2 * features[i])
            for i in range(n - 2, -1, -1)
        )
        self.head = conv_nd(3)(2 * features[0], out_channels, kernel_size=1)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, D, H, W) -> (B, out_channels, D, H, W) logits.

        Raises:
            InputError: wrong rank or channels, or a size not divisible by
                :meth:`required_divisor` (the message names the padded size).
        """
        self.check_input(x)
        skips: list[torch.Tensor] = []
        for i, stage in enumerate(self.encoder):
            x = stage(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, stage in zip(self.upsamples, self.decoder):
            x = stage(torch.cat((up(x), skips.pop()), dim=1))
        return self.finish(self.head(x))
