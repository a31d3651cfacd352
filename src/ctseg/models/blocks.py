"""Layer factories and small building blocks shared by every network.

Every block takes ``spatial_dims`` (2 or 3) and picks the matching ``torch.nn`` layer through a
factory, so one network definition serves 2D slices and 3D volumes. Tensors are laid out
(B, C, *spatial) with ``len(spatial) == spatial_dims``.

Normalisations (``norm``): ``"instance"`` (:class:`InstanceNorm`), ``"batch"`` (``BatchNorm2d/3d``)
or ``"none"``. Activations (``act``): ``"leaky_relu"`` (slope 0.01), ``"relu"``, ``"prelu"`` (one
learned slope per channel), ``"elu"``; ``None`` where a block ends without one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._norm_act import group_norm, instance_norm_leaky_relu

__all__ = [
    "IntOrSeq",
    "NORMS",
    "ACTIVATIONS",
    "check_choice",
    "conv_nd",
    "conv_transpose_nd",
    "max_pool_nd",
    "instance_norm_nd",
    "dropout_nd",
    "norm_layer",
    "act_layer",
    "interpolation_mode",
    "InstanceNorm",
    "InstanceNormLeakyReLU",
    "ensure_tuple",
    "ConvNormAct",
    "StackedConvBlock",
    "ResidualBlock",
    "init_weights",
]

#: An int applied to every spatial axis, or one value per axis.
IntOrSeq = int | Sequence[int]

#: Accepted ``norm`` names.
NORMS = ("instance", "batch", "none")
#: Accepted ``act`` names.
ACTIVATIONS = ("leaky_relu", "relu", "prelu", "elu")

_CONV: dict[int, type[nn.Module]] = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T: dict[int, type[nn.Module]] = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_DROPOUT: dict[int, type[nn.Module]] = {2: nn.Dropout2d, 3: nn.Dropout3d}
_MAX_POOL: dict[int, type[nn.Module]] = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
_BATCH_NORM: dict[int, type[nn.Module]] = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


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


def max_pool_nd(spatial_dims: int) -> type[nn.Module]:
    """``nn.MaxPool2d`` or ``nn.MaxPool3d`` for ``spatial_dims`` 2 or 3."""
    return _MAX_POOL[_check_spatial_dims(spatial_dims)]


def interpolation_mode(spatial_dims: int) -> str:
    """The linear ``F.interpolate`` mode for ``spatial_dims``: "bilinear" or "trilinear"."""
    return {2: "bilinear", 3: "trilinear"}[_check_spatial_dims(spatial_dims)]


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)  # bfloat16 on the CPU via float32


class InstanceNormLeakyReLU(InstanceNorm):
    """:class:`InstanceNorm` followed by a leaky ReLU (``negative_slope``, default 0.01), in one module.

    Same parameters (so checkpoints interchange with :class:`InstanceNorm` + ``nn.LeakyReLU``) and
    the same outputs; when training on the CPU its backward is one node with a faster closed form
    than PyTorch's group-norm backward on channels-last tensors (a 3D U-Net training step of the demo
    network: see :mod:`ctseg.models._norm_act`).

    Shapes: (B, num_features, *spatial) -> same.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True, negative_slope: float = 0.01) -> None:
        super().__init__(num_features, eps=eps, affine=affine)
        self.negative_slope = float(negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm_leaky_relu(x, self.num_groups, self.weight, self.bias, self.eps, self.negative_slope)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, negative_slope={self.negative_slope}"


def instance_norm_nd(spatial_dims: int) -> type[nn.Module]:
    """The instance-norm layer for ``spatial_dims`` 2 or 3: :class:`InstanceNorm` (works for both),
    constructed as ``InstanceNorm(num_features, eps=1e-5, affine=True)``."""
    _check_spatial_dims(spatial_dims)
    return InstanceNorm


def dropout_nd(spatial_dims: int) -> type[nn.Module]:
    """Channel dropout (``nn.Dropout2d`` / ``nn.Dropout3d``) for ``spatial_dims`` 2 or 3."""
    return _DROPOUT[_check_spatial_dims(spatial_dims)]


def check_choice(value: object, choices: Sequence[object], name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the valid ``choices`` unless ``value`` is one."""
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {valid}, got {value!r}")


def norm_layer(norm: str, spatial_dims: int, channels: int) -> nn.Module | None:
    """A normalisation layer over ``channels`` (see :data:`NORMS`), or None for ``"none"``."""
    check_choice(norm, NORMS, "norm")
    _check_spatial_dims(spatial_dims)
    if norm == "instance":
        return InstanceNorm(channels, eps=1e-5, affine=True)
    if norm == "batch":
        return _BATCH_NORM[spatial_dims](channels, eps=1e-5, momentum=0.1)
    return None


def act_layer(act: str | None, channels: int) -> nn.Module | None:
    """An activation (see :data:`ACTIVATIONS`; ``prelu`` learns one slope per channel), or None."""
    if act is None:
        return None
    check_choice(act, ACTIVATIONS, "act")
    if act == "leaky_relu":
        return nn.LeakyReLU(negative_slope=0.01, inplace=True)
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "prelu":
        return nn.PReLU(num_parameters=channels, init=0.25)
    return nn.ELU(inplace=True)


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
    """Convolution -> [channel dropout] -> [norm] -> [activation].

    The defaults (InstanceNorm with affine, LeakyReLU(0.01) in place) follow nnU-Net's
    ``ConvDropoutNormReLU``. The convolution has a bias only when ``norm="none"``: a norm that
    follows subtracts every channel's mean, so a bias would be dead weight. Padding is
    ``kernel // 2`` per axis, so with stride ``s`` an input of size ``n`` (divisible by ``s``)
    becomes ``n / s``. An even kernel is allowed only where it equals the stride (a
    non-overlapping downsampling convolution, padding 0).

    Shapes: (B, in_channels, *spatial) -> (B, out_channels, *spatial / stride).

    Raises:
        ValueError: an even kernel size that differs from the stride (the output would not stay
            aligned with the input), an unknown ``norm``/``act``, dropout outside [0, 1).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrSeq = 3,
        stride: IntOrSeq = 1,
        dropout: float = 0.0,
        norm: str = "instance",
        act: str | None = "leaky_relu",
    ) -> None:
        kernel = ensure_tuple(kernel_size, spatial_dims, "kernel_size")
        strides = ensure_tuple(stride, spatial_dims, "stride")
        if any(k % 2 == 0 and k != s for k, s in zip(kernel, strides, strict=True)):
            raise ValueError(
                f"kernel_size must be odd on every axis (or equal to the stride), got {kernel}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        norm_mod = norm_layer(norm, spatial_dims, out_channels)
        act_mod = act_layer(act, out_channels)
        if isinstance(norm_mod, InstanceNorm) and isinstance(act_mod, nn.LeakyReLU):  # one module: same parameters, faster backward
            norm_mod, act_mod = InstanceNormLeakyReLU(out_channels, eps=norm_mod.eps, affine=norm_mod.affine, negative_slope=act_mod.negative_slope), None
        layers: list[nn.Module] = [
            conv_nd(spatial_dims)(
                in_channels,
                out_channels,
                kernel_size=kernel,
                stride=strides,
                padding=tuple(k // 2 if k % 2 else 0 for k in kernel),
                bias=norm_mod is None,
            )
        ]
        if dropout > 0:
            layers.append(dropout_nd(spatial_dims)(p=dropout, inplace=True))
        layers.extend(m for m in (norm_mod, act_mod) if m is not None)
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
        norm: str = "instance",
        act: str = "leaky_relu",
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
                norm=norm,
                act=act,
            )
            for i in range(num_convs)
        ]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """``act(convs(x) + shortcut(x))``: a ResNet basic block generalised to ``num_convs`` convs.

    ``convs`` is ``num_convs`` :class:`ConvNormAct` layers (only the first strided; the last one
    without activation); ``shortcut`` is the identity when shape and channels are unchanged,
    else a 1x1 convolution (with the block's stride) followed by the norm.

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
        norm: str = "instance",
        act: str = "leaky_relu",
    ) -> None:
        super().__init__()
        if not isinstance(num_convs, int) or num_convs < 1:
            raise ValueError(f"num_convs must be a positive int, got {num_convs!r}")
        strides = ensure_tuple(stride, spatial_dims, "stride")
        self.convs = nn.Sequential(
            *(
                ConvNormAct(
                    spatial_dims,
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    kernel_size=kernel_size,
                    stride=strides if i == 0 else 1,
                    dropout=dropout,
                    norm=norm,
                    act=act if i < num_convs - 1 else None,
                )
                for i in range(num_convs)
            )
        )
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels or any(s != 1 for s in strides):
            # A strided 1x1 convolution samples the top-left voxel of every stride cell.
            self.shortcut = ConvNormAct(
                spatial_dims, in_channels, out_channels, 1, strides, norm=norm, act=None
            )
        self.act = act_layer(act, out_channels) or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + self.shortcut(x))


@torch.no_grad()
def init_weights(module: nn.Module, neg_slope: float = 0.01) -> None:
    """nnU-Net initialisation: Kaiming normal (``a=neg_slope``) for (transposed) convolutions,
    zero biases. Use as ``model.apply(init_weights)``."""
    if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        nn.init.kaiming_normal_(module.weight, a=neg_slope)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
