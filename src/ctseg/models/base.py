"""What every segmentation network in the registry offers on top of ``nn.Module``.

:class:`SegmentationNetwork` holds the shared contract: ``spatial_dims``, ``in_channels``,
``out_channels``, the input-size divisor (:meth:`~SegmentationNetwork.required_divisor`) and the
nearest valid size (:meth:`~SegmentationNetwork.padded_size`), input checks that raise
:class:`ctseg.errors.InputError` with the fix, and an optional final activation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from ..errors import InputError
from .blocks import check_choice

__all__ = ["SegmentationNetwork", "FINAL_ACTIVATIONS", "count_parameters", "check_features"]

#: Accepted ``final_activation`` values: None (logits), "softmax" (over channels), "sigmoid".
FINAL_ACTIVATIONS = (None, "softmax", "sigmoid")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``model`` (works on the ``meta`` device too)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def check_features(features: Sequence[int], minimum: int = 2) -> tuple[int, ...]:
    """``features`` as a tuple of at least ``minimum`` positive ints, else ``ValueError``."""
    if isinstance(features, (int, str)) or not isinstance(features, Sequence):
        raise ValueError(f"features must be a list of channel counts, got {features!r}")
    out = tuple(features)
    if len(out) < minimum or not all(
        isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in out
    ):
        raise ValueError(f"features must hold at least {minimum} positive ints, got {features!r}")
    return out


class SegmentationNetwork(nn.Module):
    """Base class: maps (B, in_channels, *spatial) to (B, out_channels, *spatial).

    Subclasses set ``self._divisor`` (one int per spatial axis) in ``__init__`` and call
    :meth:`check_input` first and :meth:`finish` last in ``forward``.

    Class attributes:
        supported_dims: the ``spatial_dims`` values the architecture allows.
        supports_deep_supervision: whether the constructor takes ``deep_supervision``.

    Args:
        spatial_dims: 2 for (B, C, H, W) input, 3 for (B, C, D, H, W).
        in_channels: input channels (1 for CT).
        out_channels: output channels (classes, background included).
        final_activation: None returns logits (what ctseg's losses and predictor expect: they
            apply the softmax themselves); "softmax" or "sigmoid" return probabilities, for a
            network exported or used outside ctseg.
    """

    supported_dims: ClassVar[tuple[int, ...]] = (2, 3)
    supports_deep_supervision: ClassVar[bool] = False

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        final_activation: str | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if spatial_dims not in self.supported_dims:
            dims = " or ".join(str(d) for d in self.supported_dims)
            hint = "; it is a 3D-only architecture, use 'unet' for 2D" if dims == "3" else ""
            raise ValueError(f"{name}: spatial_dims must be {dims}, got {spatial_dims!r}{hint}")
        for arg, val in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{arg} must be a positive int, got {val!r}")
        check_choice(final_activation, FINAL_ACTIVATIONS, "final_activation")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.final_activation = final_activation
        self.deep_supervision = False
        self._divisor: tuple[int, ...] = (1,) * spatial_dims

    def required_divisor(self) -> tuple[int, ...]:
        """Per spatial axis, the number every input size must be a multiple of."""
        return self._divisor

    def padded_size(self, spatial_size: Sequence[int]) -> tuple[int, ...]:
        """Smallest valid input size at least ``spatial_size`` on every axis."""
        return tuple(
            -(-int(n) // d) * d for n, d in zip(spatial_size, self.required_divisor(), strict=True)
        )

    def deep_supervision_scales(self) -> list[tuple[int, ...]]:
        """Per deep-supervision output (full resolution first), the per-axis downsampling factor;
        empty for a network without deep supervision."""
        return []

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputError` unless ``x`` is (B, in_channels, *spatial) with every size a
        multiple of :meth:`required_divisor` and more than one voxel at the coarsest level."""
        name = type(self).__name__
        if x.ndim != self.spatial_dims + 2:
            raise InputError(
                f"{name}(spatial_dims={self.spatial_dims}) expects input (B, C, "
                f"{'D, H, W' if self.spatial_dims == 3 else 'H, W'}), got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise InputError(
                f"{name} expects {self.in_channels} input channel(s), got {x.shape[1]} "
                f"(input shape {tuple(x.shape)})"
            )
        size = tuple(x.shape[2:])
        divisor = self.required_divisor()
        if any(n % d for n, d in zip(size, divisor, strict=True)):
            raise InputError(
                f"{name}: input spatial size {size} is not divisible by the network's required "
                f"divisor {divisor} (its total downsampling per axis); pad or resize the input "
                f"to {self.padded_size(size)}"
            )
        if math.prod(n // d for n, d in zip(size, divisor, strict=True)) == 1:
            raise InputError(
                f"{name}: input spatial size {size} leaves a single voxel at the coarsest level, "
                f"where normalisation has nothing to normalise over; use at least "
                f"{tuple(2 * d for d in divisor)}"
            )

    def finish(self, logits: torch.Tensor) -> torch.Tensor:
        """Apply ``final_activation`` (if any) to (B, out_channels, *spatial) logits."""
        if self.final_activation == "softmax":
            return torch.softmax(logits, dim=1)
        if self.final_activation == "sigmoid":
            return torch.sigmoid(logits)
        return logits
