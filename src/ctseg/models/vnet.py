"""V-Net (Milletari, Navab and Ahmadi, 2016) for 2D or 3D input.

Residual stages of 5x5(x5) convolutions with PReLU activations; downsampling by strided 2x2(x2)
convolutions (no pooling) and upsampling by 2x2(x2) transposed convolutions. The input stage adds
the input, repeated over the first stage's channels, to its convolution's output; every other
stage adds its input to the output of its convolutions (:class:`ResidualBlock`). Decoder stages
concatenate the skip connection, so a decoder stage is twice as wide as the encoder stage at its
resolution (V-Net's 256-128-64-32 right side for the default 16-32-64-128-256 left side).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import SegmentationNetwork, check_features
from .blocks import (
    ConvNormAct,
    IntOrSeq,
    ResidualBlock,
    act_layer,
    conv_nd,
    conv_transpose_nd,
    init_weights,
    norm_layer,
)
from .registry import register_model

__all__ = ["VNet"]


@register_model("vnet")
class VNet(SegmentationNetwork):
    """V-Net: residual 5x5(x5) convolution stages, PReLU, strided down / transposed up; 2D or 3D.

    Args:
        spatial_dims: 2 for (B, C, H, W) input, 3 for (B, C, D, H, W).
        in_channels: input channels.
        out_channels: classes, background included.
        features: channels per encoder stage, shallowest first (default 16, 32, 64, 128, 256).
        num_convs: convolutions per encoder stage (default the paper's 1, 2, 3, 3, 3, cut or
            extended with 3s to ``len(features)``); decoder stage ``i`` uses ``num_convs[i + 1]``.
        kernel_size: the stage convolutions' kernel (odd; 5 in the paper).
        dropout: channel dropout in every stage convolution.
        norm: "batch" (default), "instance" or "none".
        act: "prelu" (default; one slope per channel), "relu", "leaky_relu" or "elu".
        final_activation: None (logits; default), "softmax" or "sigmoid".

    Shapes: input (B, in_channels, *spatial), every size divisible by 2^(len(features) - 1) (16
    by default) and at least twice that on one axis; output (B, out_channels, *spatial). No deep
    supervision.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 3,
        features: Sequence[int] = (16, 32, 64, 128, 256),
        num_convs: Sequence[int] | None = None,
        kernel_size: IntOrSeq = 5,
        dropout: float = 0.0,
        norm: str = "batch",
        act: str = "prelu",
        final_activation: str | None = None,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, final_activation)
        features = check_features(features)
        n = len(features)
        if num_convs is None:
            num_convs = ((1, 2, 3, 3, 3) + (3,) * n)[:n]
        counts = tuple(num_convs)
        if len(counts) != n:
            raise ValueError(f"num_convs must have one entry per stage ({n}), got {num_convs!r}")
        self.features = features
        self._divisor = (2 ** (n - 1),) * spatial_dims
        common = {"kernel_size": kernel_size, "dropout": dropout, "norm": norm, "act": act}

        # Input stage: act(conv(x) + x repeated over the channels), or a 1x1 projection of x
        # when in_channels does not divide features[0].
        self.input_convs = nn.Sequential(
            *(
                ConvNormAct(
                    spatial_dims,
                    in_channels if i == 0 else features[0],
                    features[0],
                    kernel_size=kernel_size,
                    dropout=dropout,
                    norm=norm,
                    act=act if i < counts[0] - 1 else None,
                )
                for i in range(counts[0])
            )
        )
        self.input_projection: nn.Module | None = None
        if features[0] % in_channels:
            self.input_projection = conv_nd(spatial_dims)(in_channels, features[0], 1)
        self.input_act = act_layer(act, features[0]) or nn.Identity()

        self.down = nn.ModuleList(
            ConvNormAct(spatial_dims, features[i - 1], features[i], 2, 2, norm=norm, act=act)
            for i in range(1, n)
        )
        self.encoder = nn.ModuleList(
            ResidualBlock(spatial_dims, features[i], features[i], counts[i], **common)
            for i in range(1, n)
        )
        # Decoder, deepest first: up from the stage below to features[i], concat, residual stage.
        conv_t = conv_transpose_nd(spatial_dims)
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        below = features[-1]
        for i in range(n - 2, -1, -1):
            norm_mod = norm_layer(norm, spatial_dims, features[i])
            act_mod = act_layer(act, features[i])
            self.up.append(
                nn.Sequential(
                    conv_t(below, features[i], kernel_size=2, stride=2, bias=norm_mod is None),
                    *(m for m in (norm_mod, act_mod) if m is not None),
                )
            )
            width = 2 * features[i]
            self.decoder.append(ResidualBlock(spatial_dims, width, width, counts[i + 1], **common))
            below = width
        self.head = conv_nd(spatial_dims)(below, out_channels, kernel_size=1)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, *spatial) -> (B, out_channels, *spatial) logits.

        Raises:
            InputError: wrong rank or channels, or a size not divisible by
                :meth:`required_divisor` (the message names the padded size).
        """
        self.check_input(x)
        if self.input_projection is not None:
            shortcut = self.input_projection(x)
        else:
            shortcut = x.repeat(1, self.features[0] // self.in_channels, *(1,) * self.spatial_dims)
        x = self.input_act(self.input_convs(x) + shortcut)
        skips = [x]
        for down, stage in zip(self.down, self.encoder):
            x = stage(down(x))
            skips.append(x)
        skips.pop()  # the deepest stage feeds the decoder directly
        for up, stage in zip(self.up, self.decoder):
            x = stage(torch.cat((up(x), skips.pop()), dim=1))
        return self.finish(self.head(x))
