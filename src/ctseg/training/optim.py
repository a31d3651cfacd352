"""Optimisers and learning-rate schedules (as plain functions of training progress)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from ..config import TrainSettings

__all__ = ["create_optimizer", "lr_at", "set_lr"]


def create_optimizer(params: Iterable[torch.nn.Parameter], s: TrainSettings) -> torch.optim.Optimizer:
    name = s.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, nesterov=True, weight_decay=s.weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    raise ValueError(f"train.optimizer: unknown {s.optimizer!r}; valid: sgd, adam, adamw")


def lr_at(progress: float, base_lr: float, schedule: str) -> float:
    """Learning rate at ``progress`` in [0, 1] of training (``poly``: (1-p)^0.9 as in nnU-Net)."""
    p = min(max(progress, 0.0), 1.0)
    if schedule == "poly":
        return base_lr * (1.0 - p) ** 0.9
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "constant":
        return base_lr
    raise ValueError(f"train.schedule: unknown {schedule!r}; valid: poly, cosine, constant")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
