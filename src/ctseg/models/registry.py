"""An explicit model registry: names map to constructors, nothing is discovered by crawling.

Register with the decorator (optionally with default keyword arguments, so one class can serve
several named presets)::

    @register_model("unet")
    class UNet(nn.Module): ...

    register_model("unet_small", features=(8, 16, 32, 64))(UNet)

and build with ``create_model("unet", spatial_dims=2, out_channels=4)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

__all__ = ["register_model", "create_model", "list_models"]

_F = TypeVar("_F", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}


def register_model(name: str, **defaults: Any) -> Callable[[_F], _F]:
    """Decorator registering a model class or factory function under ``name``.

    Args:
        name: the key for :func:`create_model`; must be new.
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
        _REGISTRY[name] = _Entry(builder, dict(defaults))
        return builder

    return decorator


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered under ``name`` with its defaults updated by ``kwargs``.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid ones), or an invalid argument
            value (the message names the model).
        TypeError: an argument the model does not take (the message lists those it takes).
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
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
