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
    """``model`` for "torch" (a 3D model on the CPU in the channels-last layout); for "onnx", the model exported in memory at ``patch`` and
    loaded into an onnxruntime CPU session (threads = cores), as a callable of the same contract.

    Raises:
        InputError: an unknown backend, "onnx" on a non-CPU device, or onnx/onnxruntime missing.
    """
    if backend == "torch":
        is_3d = any(isinstance(m, nn.Conv3d) for m in model.modules())
        return _ChannelsLast3d(model) if is_3d and torch.device(device).type == "cpu" else model
    if backend != "onnx":
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if torch.device(device).type != "cpu":
        raise InputError(f"the onnx backend runs on the CPU only, got device {device!s}; use --backend torch for {device!s}")
    from .export import OnnxNetwork, onnx_bytes

    return OnnxNetwork(onnx_bytes(model, tuple(int(p) for p in patch)))


class _ChannelsLast3d(nn.Module):
    """A 3D network run in oneDNN's channels-last layout on the CPU: 107 ms instead of 186 ms for
    4 tiles of 40x48x48 with the demo's network on 2 cores (outputs within 2e-3)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last_3d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last_3d))
