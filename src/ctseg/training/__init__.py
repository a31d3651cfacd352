"""Training: run folders, the training loop, checkpoints and curves."""

from __future__ import annotations

from .run import RunFolder, prepare_run
from .trainer import Trainer, TrainResult, train

__all__ = ["RunFolder", "prepare_run", "Trainer", "TrainResult", "train"]
