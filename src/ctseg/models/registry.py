"""An explicit model registry: names map to constructors, nothing is discovered by crawling.

Register with the decorator (optionally with default keyword arguments, so one class can serve
several named presets)::

    @register_model("unet", uses_plan=True)
    class UNet(nn.Module): ...

    register_model("unet_small", features=(8, 16, 32, 64))(UNet)

and build with ``create_model("unet", spatial_dims=2, out_channels=4)``. :func:`model_info`
describes an entry (the spatial dims it allows, whether it takes deep supervision, whether its
depth and widths come from the plan) without building it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

__all__ = ["register_model", "create_model", "list_models", "model_info", "ModelInfo"]

_F = TypeVar("_F", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    uses_plan: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one name.

    Attributes:
        name: the registry key.
        spatial_dims: the ``spatial_dims`` values the architecture allows.
        deep_supervision: whether the model takes a ``deep_supervision`` argument.
        uses_plan: whether ``features``, ``strides`` and ``kernel_sizes`` come from the plan's
            ``network`` section (see :func:`ctseg.models.persist.model_spec`).
        defaults: keyword arguments the name applies before the caller's.
        parameters: every keyword argument the builder accepts.
        summary: first line of the builder's docstring.
    """

    name: str
    spatial_dims: tuple[int, ...]
    deep_supervision: bool
    uses_plan: bool
    defaults: dict[str, Any]
    parameters: tuple[str, ...]
    summary: str


_REGISTRY: dict[str, _Entry] = {}


def register_model(name: str, *, uses_plan: bool = False, **defaults: Any) -> Callable[[_F], _F]:
    """Decorator registering a model class or factory function under ``name``.

    Args:
        name: the key for :func:`create_model`; must be new.
        uses_plan: the network's depth, widths, strides and kernels come from the plan.
        **defaults: keyword arguments applied before the caller's own (which override them).

    Raises:
        ValueError: ``name`` is already registered, or a default is not a parameter of the builder.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")

    def decorator(builder: _F) -> _F:
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered")
        try:
            inspect.signature(builder).bind_partial(**defaults)
        except TypeError as err:
            raise ValueError(f"register_model({name!r}): bad default arguments: {err}") from err
        _REGISTRY[name] = _Entry(builder, dict(defaults), bool(uses_plan))
        return builder

    return decorator


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    return entry


def model_info(name: str) -> ModelInfo:
    """Describe the model registered under ``name`` (unknown names list the valid ones)."""
    entry = _entry(name)
    params = tuple(
        p.name
        for p in inspect.signature(entry.builder).parameters.values()
        if p.kind is not p.VAR_KEYWORD
    )
    doc = inspect.getdoc(entry.builder) or ""
    return ModelInfo(
        name=name,
        spatial_dims=tuple(getattr(entry.builder, "supported_dims", (2, 3))),
        deep_supervision="deep_supervision" in params,
        uses_plan=entry.uses_plan,
        defaults=dict(entry.defaults),
        parameters=params,
        summary=doc.splitlines()[0] if doc else "",
    )


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered under ``name`` with its defaults updated by ``kwargs``.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid ones), or an invalid argument
            value (the message names the model).
        TypeError: an argument the model does not take (the message lists those it takes).
    """
    entry = _entry(name)
    params = {**entry.defaults, **kwargs}
    signature = inspect.signature(entry.builder)
    try:
        signature.bind(**params)
    except TypeError as err:
        accepted = ", ".join(
            p.name for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD
        )
        raise TypeError(f"model {name!r}: {err}; accepted arguments: {accepted}") from err
    try:
        return entry.builder(**params)
    except ValueError as err:
        raise ValueError(f"model {name!r}: {err}") from err
