"""Segmentation networks, built by name through an explicit registry.

>>> from ctseg.models import create_model, list_models
>>> model = create_model("unet", spatial_dims=3, in_channels=1, out_channels=3)

Every network takes ``spatial_dims`` (2 or 3) and maps (B, in_channels, *spatial) to
(B, out_channels, *spatial) logits.
"""

from __future__ import annotations

from .blocks import (
    ConvNormAct,
    InstanceNorm,
    StackedConvBlock,
    conv_nd,
    conv_transpose_nd,
    dropout_nd,
    instance_norm_nd,
)
from .registry import create_model, list_models, register_model
from .unet import UNet

__all__ = [
    "create_model",
    "list_models",
    "register_model",
    "UNet",
    "ConvNormAct",
    "InstanceNorm",
    "StackedConvBlock",
    "conv_nd",
    "conv_transpose_nd",
    "instance_norm_nd",
    "dropout_nd",
]
