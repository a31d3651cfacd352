"""Thin ``nn.Module`` wrappers around :mod:`ctseg.losses.functional`: they validate and hold
settings; the maths lives in the functions.

Every loss is called as ``loss(logits, target)`` with logits (B, C, *spatial) and integer labels
(B, *spatial) or (B, 1, *spatial), and returns a scalar tensor. Losses for binary tasks
(``binary = True``: :class:`BCELoss`) take one-channel logits and labels in {0, 1}.

Names for :func:`create_loss`: ``ce``, ``weighted_ce``, ``bce``, ``dice``, ``weighted_dice``,
``generalised_dice``, ``dice_ce`` (the default of ``TrainSettings.loss``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from . import functional as LF

__all__ = [
    "DiceLoss",
    "CrossEntropyLoss",
    "BCELoss",
    "GeneralisedDiceLoss",
    "DiceCELoss",
    "DeepSupervisionLoss",
    "create_loss",
    "list_losses",
]


def _weights_buffer(module: nn.Module, weights: torch.Tensor | Sequence[float] | None) -> None:
    tensor = None
    if weights is not None:
        tensor = torch.as_tensor(weights, dtype=torch.float32).flatten().clone()
        if bool((tensor < 0).any()):
            raise ValueError(f"class_weights must be non-negative, got {tensor.tolist()}")
    # Not persistent: settings belong to the config, not to the checkpoint.
    module.register_buffer("class_weights", tensor, persistent=False)


def _check_smooth(smooth: float) -> None:
    if not smooth > 0:
        raise ValueError(
            f"smooth must be > 0 (it keeps empty classes from giving NaN), got {smooth}"
        )


class DiceLoss(nn.Module):
    """Soft Dice loss, see :func:`ctseg.losses.functional.dice_loss`.

    ``smooth`` (> 0) is added to numerator and denominator; ``batch_dice`` pools the batch
    (else per-sample Dice over the classes present); ``class_weights`` (C,) weight the classes.
    """

    class_weights: torch.Tensor | None

    def __init__(
        self,
        include_background: bool = False,
        smooth: float = 1e-5,
        batch_dice: bool = True,
        class_weights: torch.Tensor | Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        _check_smooth(smooth)
        self.include_background = include_background
        self.smooth = smooth
        self.batch_dice = batch_dice
        _weights_buffer(self, class_weights)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.dice_loss(
            logits,
            target,
            include_background=self.include_background,
            smooth=self.smooth,
            batch_dice=self.batch_dice,
            class_weights=self.class_weights,
        )


class CrossEntropyLoss(nn.Module):
    """Voxel-wise cross-entropy, see :func:`ctseg.losses.functional.cross_entropy`."""

    class_weights: torch.Tensor | None

    def __init__(
        self, class_weights: torch.Tensor | Sequence[float] | None = None, ignore_index: int = -100
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        _weights_buffer(self, class_weights)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.cross_entropy(logits, target, self.class_weights, self.ignore_index)


class BCELoss(nn.Module):
    """Binary cross-entropy on one-channel logits (sigmoid), see
    :func:`ctseg.losses.functional.binary_cross_entropy`. For binary tasks only: the network
    must have ``out_channels=1`` and the labels must be 0 or 1."""

    binary = True

    def __init__(self, pos_weight: float | None = None) -> None:
        super().__init__()
        if pos_weight is not None and not pos_weight > 0:
            raise ValueError(f"pos_weight must be > 0, got {pos_weight}")
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.binary_cross_entropy(logits, target, self.pos_weight)


class GeneralisedDiceLoss(nn.Module):
    """Generalised Dice loss (class weights ``1 / volume^2``), see
    :func:`ctseg.losses.functional.generalised_dice_loss`."""

    def __init__(
        self, include_background: bool = True, smooth: float = 1e-5, batch_dice: bool = True
    ) -> None:
        super().__init__()
        _check_smooth(smooth)
        self.include_background = include_background
        self.smooth = smooth
        self.batch_dice = batch_dice

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.generalised_dice_loss(
            logits,
            target,
            include_background=self.include_background,
            smooth=self.smooth,
            batch_dice=self.batch_dice,
        )


class DiceCELoss(nn.Module):
    """``dice_weight * Dice + ce_weight * CE`` (nnU-Net's default), one softmax for both.

    See :func:`ctseg.losses.functional.dice_ce_loss`. ``class_weights`` apply to both terms.
    """

    class_weights: torch.Tensor | None

    def __init__(
        self,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
        include_background: bool = False,
        smooth: float = 1e-5,
        batch_dice: bool = True,
        class_weights: torch.Tensor | Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if dice_weight < 0 or ce_weight < 0 or dice_weight + ce_weight == 0:
            raise ValueError(
                "dice_weight and ce_weight must be non-negative and not both 0, "
                f"got {dice_weight} and {ce_weight}"
            )
        _check_smooth(smooth)
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight
        self.include_background = include_background
        self.smooth = smooth
        self.batch_dice = batch_dice
        _weights_buffer(self, class_weights)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.dice_ce_loss(
            logits,
            target,
            dice_weight=self.dice_weight,
            ce_weight=self.ce_weight,
            include_background=self.include_background,
            smooth=self.smooth,
            batch_dice=self.batch_dice,
            class_weights=self.class_weights,
        )


class DeepSupervisionLoss(nn.Module):
    """Weighted sum of ``loss`` over deep-supervision outputs at decreasing resolution.

    Args:
        loss: a loss module ``loss(logits, target) -> scalar``.
        weights: one non-negative weight per output (full resolution first); normalised to sum 1.
            Default: 1, 1/2, 1/4, ... for as many outputs as given.
        ignore_lowest: with default weights, give the lowest-resolution output weight 0 (as
            nnU-Net does). Outputs of weight 0 are not evaluated at all.

    Call with ``outputs`` a list of (B, C, *spatial_i) logits (or a single tensor, passed straight
    to ``loss``) and the full-resolution ``target``; the target is downsampled per output by
    nearest neighbour (:func:`ctseg.losses.functional.downsample_labels`).
    """

    def __init__(
        self,
        loss: nn.Module | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        weights: Sequence[float] | None = None,
        *,
        ignore_lowest: bool = False,
    ) -> None:
        super().__init__()
        if not callable(loss):
            raise TypeError(f"loss must be callable (an nn.Module loss), got {type(loss).__name__}")
        if weights is not None:
            weights = [float(w) for w in weights]
            if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
        self.loss = loss
        self.weights = weights
        self.ignore_lowest = ignore_lowest

    def output_weights(self, num_outputs: int) -> list[float]:
        """Normalised weights for ``num_outputs`` outputs (full resolution first)."""
        if self.weights is not None:
            if len(self.weights) != num_outputs:
                raise ValueError(
                    f"DeepSupervisionLoss has {len(self.weights)} weights but got "
                    f"{num_outputs} outputs"
                )
            weights = list(self.weights)
        else:
            weights = [0.5**i for i in range(num_outputs)]
            if self.ignore_lowest and num_outputs > 1:
                weights[-1] = 0.0
        total = sum(weights)
        return [w / total for w in weights]

    def forward(
        self, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor
    ) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return self.loss(outputs, target)
        if len(outputs) == 0:
            raise ValueError("DeepSupervisionLoss got an empty list of outputs")
        total: torch.Tensor | None = None
        for weight, logits in zip(self.output_weights(len(outputs)), outputs, strict=True):
            if weight == 0:
                continue
            term = weight * self.loss(logits, LF.downsample_labels(target, logits.shape[2:]))
            total = term if total is None else total + term
        if total is None:  # unreachable: weights sum to 1
            raise ValueError("all deep-supervision weights are 0")
        return total


def _class_weighted(cls: type[nn.Module], name: str) -> Callable[..., nn.Module]:
    """A builder of ``cls`` that insists on ``class_weights`` (one per class)."""

    def build(class_weights: Sequence[float] | None = None, **kwargs: Any) -> nn.Module:
        if class_weights is None:
            raise ValueError(
                f"loss {name!r} needs class_weights: one non-negative weight per class, "
                "background first, e.g. [1.0, 1.0, 5.0] (train.loss_kwargs.class_weights)"
            )
        return cls(class_weights=class_weights, **kwargs)

    build.__name__ = cls.__name__
    return build


_LOSSES: dict[str, Callable[..., nn.Module]] = {
    "ce": CrossEntropyLoss,
    "weighted_ce": _class_weighted(CrossEntropyLoss, "weighted_ce"),
    "bce": BCELoss,
    "dice": DiceLoss,
    "weighted_dice": _class_weighted(DiceLoss, "weighted_dice"),
    "generalised_dice": GeneralisedDiceLoss,
    "dice_ce": DiceCELoss,
}


def list_losses() -> list[str]:
    """Names accepted by :func:`create_loss`."""
    return sorted(_LOSSES)


def create_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build a loss by name (see :func:`list_losses`) with its keyword arguments.

    ``weighted_ce`` and ``weighted_dice`` are ``ce`` and ``dice`` that require
    ``class_weights``; ``dice_ce`` takes ``dice_weight`` and ``ce_weight`` for its two terms.

    Raises:
        ValueError: unknown name (the message lists the valid ones), or a bad setting.
        TypeError: an argument the loss does not take.
    """
    builder = _LOSSES.get(name)
    if builder is None:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(list_losses())}")
    try:
        return builder(**kwargs)
    except TypeError as err:
        raise TypeError(f"loss {name!r} ({builder.__name__}): {err}") from err
