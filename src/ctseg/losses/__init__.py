"""Segmentation losses: maths in :mod:`ctseg.losses.functional`, thin modules around it.

>>> from ctseg.losses import DeepSupervisionLoss, create_loss
>>> loss = DeepSupervisionLoss(create_loss("dice_ce"), ignore_lowest=True)

Logits are (B, C, *spatial); targets are integer labels (B, *spatial) or (B, 1, *spatial).
"""

from __future__ import annotations

from . import functional
from .functional import (
    binary_cross_entropy,
    cross_entropy,
    dice_ce_loss,
    dice_loss,
    generalised_dice_loss,
    one_hot,
    soft_dice_per_class,
)
from .modules import (
    BCELoss,
    CrossEntropyLoss,
    DeepSupervisionLoss,
    DiceCELoss,
    DiceLoss,
    GeneralisedDiceLoss,
    create_loss,
    list_losses,
)

__all__ = [
    "functional",
    "one_hot",
    "soft_dice_per_class",
    "dice_loss",
    "cross_entropy",
    "dice_ce_loss",
    "generalised_dice_loss",
    "binary_cross_entropy",
    "DiceLoss",
    "CrossEntropyLoss",
    "BCELoss",
    "GeneralisedDiceLoss",
    "DiceCELoss",
    "DeepSupervisionLoss",
    "create_loss",
    "list_losses",
]
