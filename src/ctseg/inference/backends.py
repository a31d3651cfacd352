"""Which engine runs the network inside the sliding window: torch (default) or onnxruntime, and in
which precision: float32, or bfloat16 autocast (``ctseg predict --precision``)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .._resources import cpu_has_bf16_dot
from ..errors import InputError
from ..models.runtime import as_logits
from .column_pairs import pair_output_columns

__all__ = ["BACKENDS", "PRECISIONS", "keep_float32", "network_backend", "resolve_precision"]

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


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def keep_float32(module: nn.Module) -> nn.Module:
    """Hooks that run ``module`` in float32 when it is called under autocast (its tensor inputs cast
    to float32, autocast off inside it, on again after); called without autocast it runs as before.
    Returns ``module`` (hooked in place, once: a second call adds nothing)."""
    if getattr(module, "_ctseg_float32", False):
        return module
    entered: list[torch.autocast] = []

    def before(_: nn.Module, args: tuple) -> tuple | None:
        device = next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")
        if not torch.is_autocast_enabled(device):
            return None
        off = torch.autocast(device, enabled=False)
        off.__enter__()
        entered.append(off)
        return tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)

    def after(_: nn.Module, args: tuple, output: object) -> None:
        if entered:
            entered.pop().__exit__(None, None, None)

    module.register_forward_pre_hook(before)
    module.register_forward_hook(after)
    module._ctseg_float32 = True  # type: ignore[assignment]
    return module


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
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    precision = resolve_precision(precision, device, backend)
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
    if torch.device(device).type != "cpu":
        raise InputError(f"the onnx backend runs on the CPU only, got device {device!s}; use --backend torch for {device!s}")
    from .export import OnnxNetwork, onnx_bytes

    return OnnxNetwork(onnx_bytes(model, tuple(int(p) for p in patch)))


class _TorchNetwork(nn.Module):
    """A torch network as the sliding window runs it.

    - ``memory_format``: oneDNN's channels-last layout on the CPU: 107 ms instead of 186 ms for 4
      tiles of 40x48x48 with the demo's 3D network on 2 cores (outputs within 2e-3); 2.0 s instead
      of 3.7 s for 4 slices of 128x128 with the 5-level 2D U-Net (64-1024). In 3D, convolutions
      into few channels (8 or fewer with AVX-512, 4 with AVX2) compute two output columns at a
      time (:mod:`~ctseg.inference.column_pairs`).
    - ``bfloat16``: autocast (convolutions in bfloat16, accumulated in float32; the norms in float32,
      :func:`~ctseg.models._norm_act.group_norm`), except the first and the last convolution, which
      run in float32 (:func:`keep_float32`): the CT's intensities and the logits are not rounded
      to bfloat16's 8 bits. Logits come back as float32.

    A probability head's output comes back as logits (:func:`~ctseg.models.runtime.as_logits`).
    The module runs a copy of ``model`` where it changes the layout or the convolutions; ``model``
    itself is left as it was."""

    def __init__(self, model: nn.Module, memory_format: torch.memory_format | None, bfloat16: bool) -> None:
        super().__init__()
        self.memory_format = memory_format
        self.bfloat16 = bool(bfloat16)
        if memory_format is not None:
            model = copy.deepcopy(model).to(memory_format=memory_format)
            if memory_format == torch.channels_last_3d:
                pair_output_columns(model)
        self.model = model
        if self.bfloat16:
            convs = [m for m in self.model.modules() if isinstance(m, _CONVS)]
            for conv in {id(c): c for c in convs[:1] + convs[-1:]}.values():
                keep_float32(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory_format is not None:
            x = x.contiguous(memory_format=self.memory_format)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bfloat16):
            out = self.model(x)
        return as_logits(self.model, out.float() if isinstance(out, torch.Tensor) else out)
