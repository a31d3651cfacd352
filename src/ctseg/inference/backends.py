"""Which engine runs the network inside the sliding window: torch (default) or onnxruntime, and in
which precision: float32, or bfloat16 autocast (``ctseg predict --precision``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .._resources import cpu_has_bf16_dot
from ..errors import InputError
from ..models.runtime import as_logits

__all__ = ["BACKENDS", "PRECISIONS", "network_backend", "resolve_precision"]

#: Names accepted by ``ctseg predict --backend``.
BACKENDS = ("torch", "onnx")
#: Names accepted by ``ctseg predict --precision`` (``predict.precision``).
PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(precision: str, device: torch.device | str = "cpu", backend: str = "torch") -> str:
    """"float32" or "bfloat16" for ``precision`` ("auto", "float32" or "bfloat16").

    "auto" is bfloat16 autocast where it is faster at the same labels: on CUDA, and on a CPU that
    multiplies bfloat16 in hardware (:func:`~ctseg._resources.cpu_has_bf16_dot`; the measurements are
    in the README's "Prediction speed"); float32 elsewhere and on the onnx backend.

    Raises:
        InputError: an unknown name, or "bfloat16" asked of the onnx backend.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r} (predict.precision or --precision)")
    device = torch.device(device)
    if backend == "onnx":
        if precision == "bfloat16":
            raise InputError("the onnx backend runs in float32; drop --precision bfloat16 or use --backend torch")
        return "float32"
    if precision != "auto":
        return precision
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16_dot()):
        return "bfloat16"
    return "float32"


def network_backend(
    model: nn.Module, patch: Sequence[int], backend: str = "torch", device: torch.device | str = "cpu", precision: str = "float32"
) -> nn.Module | Callable[[torch.Tensor], torch.Tensor]:
    """``model`` for "torch" (on the CPU in the channels-last layout, 3D or 2D; in bfloat16 autocast
    for ``precision`` "bfloat16", which :func:`resolve_precision` gives); for "onnx", the model
    exported in memory at ``patch`` and loaded into an onnxruntime CPU session (threads = cores), as
    a callable of the same contract.

    Raises:
        InputError: an unknown backend or precision, "onnx" on a non-CPU device, or onnx/onnxruntime missing.
    """
    precision = resolve_precision(precision, device, backend if backend in BACKENDS else "torch")
    if backend == "torch":
        layout = None
        if torch.device(device).type == "cpu":
            if any(isinstance(m, nn.Conv3d) for m in model.modules()):
                layout = torch.channels_last_3d
            elif any(isinstance(m, nn.Conv2d) for m in model.modules()):
                layout = torch.channels_last
        if layout is None and precision == "float32":
            return model
        return _TorchNetwork(model, layout, precision == "bfloat16")
    if backend != "onnx":
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if torch.device(device).type != "cpu":
        raise InputError(f"the onnx backend runs on the CPU only, got device {device!s}; use --backend torch for {device!s}")
    from .export import OnnxNetwork, onnx_bytes

    return OnnxNetwork(onnx_bytes(model, tuple(int(p) for p in patch)))


class _TorchNetwork(nn.Module):
    """A torch network as the sliding window runs it.

    - ``memory_format``: oneDNN's channels-last layout on the CPU: 107 ms instead of 186 ms for 4
      tiles of 40x48x48 with the demo's 3D network on 2 cores (outputs within 2e-3); 2.0 s instead
      of 3.7 s for 4 slices of 128x128 with the 5-level 2D U-Net (64-1024).
    - ``bfloat16``: autocast (convolutions in bfloat16, accumulated in float32; the norms in float32,
      :func:`~ctseg.models._norm_act.group_norm`); logits come back as float32.

    A probability head's output comes back as logits (:func:`~ctseg.models.runtime.as_logits`)."""

    def __init__(self, model: nn.Module, memory_format: torch.memory_format | None, bfloat16: bool) -> None:
        super().__init__()
        self.memory_format = memory_format
        self.bfloat16 = bool(bfloat16)
        self.model = model if memory_format is None else model.to(memory_format=memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory_format is not None:
            x = x.contiguous(memory_format=self.memory_format)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bfloat16):
            out = self.model(x)
        return as_logits(self.model, out.float() if isinstance(out, torch.Tensor) else out)
