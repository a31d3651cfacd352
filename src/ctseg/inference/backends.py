"""Which engine runs the network inside the sliding window: torch (default) or onnxruntime."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..errors import InputError
from ..models.runtime import as_logits

__all__ = ["BACKENDS", "network_backend"]

#: Names accepted by ``ctseg predict --backend``.
BACKENDS = ("torch", "onnx")


def network_backend(
    model: nn.Module, patch: Sequence[int], backend: str = "torch", device: torch.device | str = "cpu"
) -> nn.Module | Callable[[torch.Tensor], torch.Tensor]:
    """``model`` for "torch" (on the CPU in the channels-last layout, 3D or 2D); for "onnx", the model exported in memory at ``patch`` and
    loaded into an onnxruntime CPU session (threads = cores), as a callable of the same contract.

    Raises:
        InputError: an unknown backend, "onnx" on a non-CPU device, or onnx/onnxruntime missing.
    """
    if backend == "torch":
        if torch.device(device).type != "cpu":
            return model
        if any(isinstance(m, nn.Conv3d) for m in model.modules()):
            return _ChannelsLast(model, torch.channels_last_3d)
        return _ChannelsLast(model, torch.channels_last) if any(isinstance(m, nn.Conv2d) for m in model.modules()) else model
    if backend != "onnx":
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if torch.device(device).type != "cpu":
        raise InputError(f"the onnx backend runs on the CPU only, got device {device!s}; use --backend torch for {device!s}")
    from .export import OnnxNetwork, onnx_bytes

    return OnnxNetwork(onnx_bytes(model, tuple(int(p) for p in patch)))


class _ChannelsLast(nn.Module):
    """A network run in oneDNN's channels-last layout on the CPU: 107 ms instead of 186 ms for
    4 tiles of 40x48x48 with the demo's 3D network on 2 cores (outputs within 2e-3); 2.0 s instead
    of 3.7 s for 4 slices of 128x128 with the 5-level 2D U-Net (64-1024). A probability head's
    output comes back as logits (:func:`~ctseg.models.runtime.as_logits`)."""

    def __init__(self, model: nn.Module, memory_format: torch.memory_format) -> None:
        super().__init__()
        self.memory_format = memory_format
        self.model = model.to(memory_format=memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return as_logits(self.model, self.model(x.contiguous(memory_format=self.memory_format)))
