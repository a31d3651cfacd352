"""Model specs (JSON) and weights-only saving/loading for run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._fileio import atomic_path, read_json, write_json
from ..errors import RunFolderError

__all__ = ["model_spec", "build_model", "save_model", "load_model"]


def model_spec(network: dict[str, Any], num_classes: int, name: str = "unet", *, deep_supervision: bool = True, dropout: float = 0.0) -> dict[str, Any]:
    """A JSON-able description of a network built from a plan's ``network`` section."""
    return {
        "name": name,
        "kwargs": {
            "spatial_dims": 3,
            "in_channels": 1,
            "out_channels": int(num_classes),
            "features": list(network["features"]),
            "strides": [list(s) for s in network["strides"]],
            "kernel_sizes": [list(k) for k in network["kernel_sizes"]],
            "deep_supervision": bool(deep_supervision),
            "dropout": float(dropout),
        },
    }


def build_model(spec: dict[str, Any]) -> nn.Module:
    from .registry import create_model

    kwargs = dict(spec["kwargs"])
    kwargs["strides"] = [tuple(s) for s in kwargs["strides"]]
    kwargs["kernel_sizes"] = [tuple(k) for k in kwargs["kernel_sizes"]]
    return create_model(spec["name"], **kwargs)


def save_model(model: nn.Module, spec: dict[str, Any], path: str | Path) -> None:
    """Weights as a state dict at ``path`` and the spec as JSON beside it (``<path>.json``)."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    write_json(path.with_suffix(".json"), spec)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from ``<path>.json`` and load ``path`` with ``weights_only=True``."""
    path = Path(path)
    spec_path = path.with_suffix(".json")
    if not path.is_file() or not spec_path.is_file():
        raise RunFolderError(f"{path}: model weights or their spec ({spec_path.name}) not found in the run folder")
    spec = read_json(spec_path)
    model = build_model(spec)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - corrupt, tampered or mismatched weights
        raise RunFolderError(f"{path}: cannot load weights ({type(exc).__name__}: {str(exc)[:200]}); the file is corrupt or does not match {spec_path.name}") from None
    return model.to(device).eval(), spec
