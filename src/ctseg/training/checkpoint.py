"""Checkpoints: weights-only state dicts (never arbitrary pickles) plus JSON sidecars."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._fileio import atomic_path
from ..errors import RunFolderError

__all__ = ["save_state", "load_state", "capture_rng", "restore_rng"]


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Save a dict of tensors / plain Python values atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a corrupt file gives a clear RunFolderError."""
    path = Path(path)
    if not path.is_file():
        raise RunFolderError(f"{path}: checkpoint not found; was the training run finished?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise RunFolderError(f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc}); it may be truncated or not a ctseg checkpoint") from None


def capture_rng(rng: np.random.Generator) -> dict[str, Any]:
    """Every RNG state the trainer depends on, in a weights-only-loadable form."""
    return {
        "numpy": json.dumps(rng.bit_generator.state),
        "python": json.dumps(random.getstate()),
        "torch": torch.get_rng_state(),
    }


def restore_rng(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = json.loads(state["numpy"])
    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    torch.set_rng_state(state["torch"])
