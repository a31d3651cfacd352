"""Model specs (JSON) and weights-only saving/loading for run folders.

A spec is ``{"name": <registry name>, "kwargs": {...}}``: everything :func:`create_model` needs
to rebuild the network, saved beside the weights so a run folder is self-contained.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._fileio import atomic_path, read_json, write_json
from ..errors import RunFolderError
from .registry import model_info

__all__ = ["model_spec", "build_model", "save_model", "load_model", "PLAN_KEYS"]

#: The ``network`` entries of a plan that a plan-driven model (``unet``, ``default``) takes.
PLAN_KEYS = ("features", "strides", "kernel_sizes")


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the spec is JSON and compares equal after a round trip."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def model_spec(
    network: Mapping[str, Any] | None,
    num_classes: int,
    name: str = "unet",
    *,
    deep_supervision: bool = True,
    dropout: float = 0.0,
    spatial_dims: int = 3,
    in_channels: int = 1,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON-able description of the network ``name`` for a plan.

    Precedence, lowest first: the model's registered defaults; the plan's ``network`` section
    (``features``, ``strides``, ``kernel_sizes``), used only by plan-driven models
    (:attr:`ModelInfo.uses_plan`) and only when ``overrides`` sets none of those three;
    ``deep_supervision`` (dropped for a model without it: the deep-supervision loss wrapper then
    passes its single output straight through) and ``dropout``; finally ``overrides`` (the
    config's ``model.kwargs``), which may set any argument the model takes.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid ones).
    """
    info = model_info(name)
    kwargs: dict[str, Any] = {
        "spatial_dims": int(spatial_dims),
        "in_channels": int(in_channels),
        "out_channels": int(num_classes),
    }
    extra = dict(overrides or {})
    if info.uses_plan and network is not None and not set(extra) & set(PLAN_KEYS):
        kwargs.update({key: network[key] for key in PLAN_KEYS})
    if info.deep_supervision:
        kwargs["deep_supervision"] = bool(deep_supervision)
    if "dropout" in info.parameters:
        kwargs["dropout"] = float(dropout)
    kwargs.update(extra)
    return {"name": name, "kwargs": _plain(kwargs)}


def build_model(spec: Mapping[str, Any]) -> nn.Module:
    """The network a spec describes (freshly initialised)."""
    from .registry import create_model

    return create_model(spec["name"], **dict(spec["kwargs"]))


def save_model(model: nn.Module, spec: dict[str, Any], path: str | Path) -> None:
    """Weights as a state dict at ``path`` and the spec as JSON beside it (``<path>.json``)."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    write_json(path.with_suffix(".json"), spec)


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from ``<path>.json`` and load ``path`` with ``weights_only=True``."""
    path = Path(path)
    spec_path = path.with_suffix(".json")
    if not path.is_file() or not spec_path.is_file():
        raise RunFolderError(
            f"{path}: model weights or their spec ({spec_path.name}) not found in the run folder"
        )
    spec = read_json(spec_path)
    try:
        model = build_model(spec)
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(
            f"{spec_path}: not a valid model spec ({type(exc).__name__}: {str(exc)[:200]}); it was written by another ctseg version or edited"
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - corrupt, tampered or mismatched weights
        raise RunFolderError(
            f"{path}: cannot load weights ({type(exc).__name__}: {str(exc)[:200]}); the file is corrupt or does not match {spec_path.name}"
        ) from None
    return model.to(device).eval(), spec
