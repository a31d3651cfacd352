"""Running a network efficiently on the CPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["forward", "as_logits"]


def forward(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, never with a batch of one on the CPU.

    PyTorch (2.x) routes a 3D convolution with batch size 1 on the CPU to its slow im2col kernel
    instead of oneDNN: about 8x slower per sample (measured: 67 ms vs 8 ms for an 8-channel
    40x40x48 convolution on 2 cores). A lone input is therefore duplicated and one copy dropped.
    Outputs are identical (instance normalisation is per sample). A module with a probability head
    gives logits (:func:`as_logits`). Any other callable ``model`` (an ONNX runtime session
    wrapper, say) is called as it is.
    """
    if x.shape[0] == 1 and x.device.type == "cpu" and x.ndim == 5 and isinstance(model, nn.Module):
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
