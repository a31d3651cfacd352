"""Optimisers and learning-rate schedules, chosen by name from :class:`TrainSettings`.

Schedules are plain functions of training progress in [0, 1] (iterations done / planned, or the
share of the time budget used, whichever is larger), so they work the same with an iteration
count and with a wall-clock budget:

- ``constant``: ``lr``;
- ``poly``: ``lr * (1 - q) ** poly_power`` (nnU-Net: power 0.9);
- ``cosine``: ``lr * (1 + cos(pi * q)) / 2``;
- ``step``: ``lr * lr_gamma ** k``, ``k`` the number of ``lr_milestones`` (fractions of the
  whole training) already passed.

With ``warmup_fraction = w > 0`` the rate first ramps linearly from 1% to the schedule's value
over ``progress < w``; ``poly`` and ``cosine`` then run over the rest, ``q = (p - w) / (1 - w)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from ..config import TrainSettings
from ..errors import InputError

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "create_optimizer",
    "check_optim_settings",
    "lr_at",
    "scheduled_lr",
    "set_lr",
]

#: Names accepted by ``TrainSettings.optimizer``.
OPTIMIZERS = ("sgd", "adam", "adamw")
#: Names accepted by ``TrainSettings.schedule``.
SCHEDULES = ("poly", "cosine", "step", "constant")

_WARMUP_START = 0.01


def check_optim_settings(s: TrainSettings) -> None:
    """Refuse optimiser/schedule settings that cannot work, naming the ``train.*`` field.

    Raises:
        InputError: an unknown optimiser or schedule, or a value out of range.
    """
    problems = []
    if s.optimizer.lower() not in OPTIMIZERS:
        problems.append(f"train.optimizer: unknown {s.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    if s.schedule not in SCHEDULES:
        problems.append(f"train.schedule: unknown {s.schedule!r}; valid: {', '.join(SCHEDULES)}")
    if not s.lr > 0:
        problems.append(f"train.lr must be > 0, got {s.lr}")
    if s.weight_decay < 0:
        problems.append(f"train.weight_decay must be >= 0, got {s.weight_decay}")
    if not 0 <= s.momentum < 1:
        problems.append(f"train.momentum must be in [0, 1), got {s.momentum}")
    if s.optimizer.lower() == "sgd" and s.nesterov and s.momentum == 0:
        problems.append("train.nesterov needs train.momentum > 0 (or set nesterov: false)")
    if len(s.betas) != 2 or not all(0 <= b < 1 for b in s.betas):
        problems.append(f"train.betas must be two values in [0, 1), got {s.betas}")
    if not s.poly_power > 0:
        problems.append(f"train.poly_power must be > 0, got {s.poly_power}")
    milestones = tuple(s.lr_milestones)
    if not all(0 < m < 1 for m in milestones) or list(milestones) != sorted(milestones):
        problems.append(
            f"train.lr_milestones must be increasing fractions of training in (0, 1), "
            f"got {s.lr_milestones}"
        )
    if not 0 < s.lr_gamma <= 1:
        problems.append(f"train.lr_gamma must be in (0, 1], got {s.lr_gamma}")
    if not 0 <= s.warmup_fraction < 1:
        problems.append(f"train.warmup_fraction must be in [0, 1), got {s.warmup_fraction}")
    if problems:
        raise InputError("; ".join(problems))


def create_optimizer(
    params: Iterable[torch.nn.Parameter], s: TrainSettings
) -> torch.optim.Optimizer:
    """The optimiser ``s.optimizer`` ("sgd" with momentum, Nesterov by default; "adam"; "adamw")
    at the initial rate ``s.lr`` with ``s.weight_decay``; all settings are checked first
    (:func:`check_optim_settings`), the schedule's included."""
    check_optim_settings(s)
    name = s.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay
        )
    betas = (float(s.betas[0]), float(s.betas[1]))
    if name == "adam":
        return torch.optim.Adam(params, lr=s.lr, betas=betas, weight_decay=s.weight_decay)
    return torch.optim.AdamW(params, lr=s.lr, betas=betas, weight_decay=s.weight_decay)


def lr_at(
    progress: float,
    base_lr: float,
    schedule: str,
    *,
    poly_power: float = 0.9,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
    warmup_fraction: float = 0.0,
) -> float:
    """Learning rate at ``progress`` in [0, 1] of training (clipped); see the module docstring.

    Raises:
        ValueError: an unknown ``schedule``.
    """
    p = min(max(progress, 0.0), 1.0)
    w = warmup_fraction
    q = (p - w) / (1.0 - w) if p >= w else 0.0
    if schedule == "poly":
        lr = base_lr * (1.0 - q) ** poly_power
    elif schedule == "cosine":
        lr = base_lr * 0.5 * (1.0 + math.cos(math.pi * q))
    elif schedule == "step":
        lr = base_lr * gamma ** sum(p >= m for m in milestones)
    elif schedule == "constant":
        lr = base_lr
    else:
        raise ValueError(f"train.schedule: unknown {schedule!r}; valid: {', '.join(SCHEDULES)}")
    if p < w:
        lr *= _WARMUP_START + (1.0 - _WARMUP_START) * p / w
    return lr


def scheduled_lr(progress: float, s: TrainSettings) -> float:
    """:func:`lr_at` with every schedule setting taken from ``s``."""
    return lr_at(
        progress,
        s.lr,
        s.schedule,
        poly_power=s.poly_power,
        milestones=s.lr_milestones,
        gamma=s.lr_gamma,
        warmup_fraction=s.warmup_fraction,
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
