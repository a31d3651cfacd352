"""Running a network efficiently on the CPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["forward", "as_logits"]


#: a lone CPU input with fewer voxels than this is sent as a batch of two (see :func:`forward`)
DUPLICATE_BELOW_VOXELS = 2**18


def forward(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, never with a small batch of one on the CPU.

    PyTorch (2.x) routes a 3D convolution with batch size 1 and a small input (batch x channels x
    the first two spatial sizes <= 20480) on the CPU to its slow im2col kernel instead of oneDNN:
    about 6x slower per sample (measured on 2 cores: 49 ms vs 8 ms for an 8-channel 40x48x48
    convolution). A lone input of fewer than :data:`DUPLICATE_BELOW_VOXELS` voxels is therefore
    duplicated and one copy dropped; outputs are identical (instance normalisation is per sample).
    Larger inputs take oneDNN anyway, where a copy would only double the work (a 19 M-parameter 3D
    U-Net on 128x128x64: 15.7 s alone, 32.6 s as a pair). A module with a probability head gives
    logits (:func:`as_logits`). Any other callable ``model`` (an ONNX runtime session wrapper, say)
    is called as it is.
    """
    small = x.shape[2:].numel() < DUPLICATE_BELOW_VOXELS
    if x.shape[0] == 1 and small and x.device.type == "cpu" and x.ndim == 5 and isinstance(model, nn.Module):
        return as_logits(model, model(torch.cat([x, x])))[:1]
    return as_logits(model, model(x)) if isinstance(model, nn.Module) else model(x)


def as_logits(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], output: Any) -> Any:
    """The output of a network with a probability head (``final_activation`` "softmax" or
    "sigmoid") turned back into logits that ctseg's losses and softmax expect; any other output
    (a tensor or a deep-supervision list of them) unchanged.

    ``log(softmax(z))`` differs from ``z`` by a constant per voxel, so its softmax is the network's
    own probabilities (and the cross-entropy the same); probabilities are kept above the smallest
    normal float so that the log stays finite.
    """
    act = getattr(model, "final_activation", None)
    if act not in ("softmax", "sigmoid"):
        return output
    if isinstance(output, (list, tuple)):
        return [as_logits(model, o) for o in output]
    tiny = torch.finfo(output.dtype).tiny
    if act == "softmax":
        return torch.log(output.clamp_min(tiny))
    return torch.log(output.clamp_min(tiny)) - torch.log((1.0 - output).clamp_min(tiny))
