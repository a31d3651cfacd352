"""Segmentation losses: maths in :mod:`ctseg.losses.functional`, thin modules around it.

>>> from ctseg.losses import DeepSupervisionLoss, create_loss
>>> loss = DeepSupervisionLoss(create_loss("dice_ce"), ignore_lowest=True)

Logits are (B, C, *spatial); targets are integer labels (B, *spatial) or (B, 1, *spatial).
"""

from __future__ import annotations

from . import functional
from .functional import cross_entropy, dice_ce_loss, dice_loss, one_hot, soft_dice_per_class
from .modules import (
    CrossEntropyLoss,
    DeepSupervisionLoss,
    DiceCELoss,
    DiceLoss,
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
    "DiceLoss",
    "CrossEntropyLoss",
    "DiceCELoss",
    "DeepSupervisionLoss",
    "create_loss",
    "list_losses",
]
