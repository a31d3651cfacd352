"""Which engine runs the network inside the sliding window: torch (default) or onnxruntime."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..errors import InputError

__all__ = ["BACKENDS", "network_backend"]

#: Names accepted by ``ctseg predict --backend``.
BACKENDS = ("torch", "onnx")


def network_backend(
    model: nn.Module, patch: Sequence[int], backend: str = "torch", device: torch.device | str = "cpu"
) -> nn.Module | Callable[[torch.Tensor], torch.Tensor]:
    """``model`` itself for "torch"; for "onnx", the model exported in memory at ``patch`` and
    loaded into an onnxruntime CPU session (threads = cores), as a callable of the same contract.

    Raises:
        InputError: an unknown backend, "onnx" on a non-CPU device, or onnx/onnxruntime missing.
    """
    if backend == "torch":
        return model
    if backend != "onnx":
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if torch.device(device).type != "cpu":
        raise InputError(f"the onnx backend runs on the CPU only, got device {device!s}; use --backend torch for {device!s}")
    from .export import OnnxNetwork, onnx_bytes

    return OnnxNetwork(onnx_bytes(model, tuple(int(p) for p in patch)))
