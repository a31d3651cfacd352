"""Segmentation networks, built by name through an explicit registry.

>>> from ctseg.models import create_model, list_models
>>> model = create_model("unet", spatial_dims=3, in_channels=1, out_channels=3)

Every network takes ``spatial_dims`` (2 or 3 where the architecture allows: see
:func:`model_info`) and maps (B, in_channels, *spatial) to (B, out_channels, *spatial) logits.
Registered names: ``unet`` and ``default`` (nnU-Net-class, driven by the plan), ``unet_small``,
``simple_unet``, ``resunet``, ``fcn``, ``vnet`` and ``unet3d`` (3D only).
"""

from __future__ import annotations

from .base import SegmentationNetwork, count_parameters
from .blocks import (
    ConvNormAct,
    InstanceNorm,
    InstanceNormLeakyReLU,
    ResidualBlock,
    StackedConvBlock,
    act_layer,
    conv_nd,
    conv_transpose_nd,
    dropout_nd,
    instance_norm_nd,
    max_pool_nd,
    norm_layer,
)
from .fcn import FCN
from .registry import ModelInfo, create_model, list_models, model_info, register_model
from .unet import UNet
from .unet3d import UNet3D
from .vnet import VNet

__all__ = [
    "create_model",
    "list_models",
    "model_info",
    "ModelInfo",
    "register_model",
    "count_parameters",
    "SegmentationNetwork",
    "UNet",
    "UNet3D",
    "VNet",
    "FCN",
    "ConvNormAct",
    "InstanceNorm",
    "InstanceNormLeakyReLU",
    "StackedConvBlock",
    "ResidualBlock",
    "conv_nd",
    "conv_transpose_nd",
    "max_pool_nd",
    "instance_norm_nd",
    "norm_layer",
    "act_layer",
    "dropout_nd",
]
