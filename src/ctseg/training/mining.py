"""Hard-negative mining: where the network, part way through training, calls background foreground.

A 9-minute CPU run leaves confusions that random and class-balanced patches rarely show it again:
on the demo's liver run, the stomach's content (20 mL, in a *training* case) and the pancreas
touching the liver were called tumour. Mining labels each training case once with tiles laid side
by side (no overlap: only the argmax is needed, at half the tiles of a sliding window) and keeps
the background voxels it called foreground; the sampler then centres a share of its patches there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..models.runtime import forward

__all__ = ["label_volume", "false_foreground", "mine_cases", "MAX_HARD_PER_CASE"]

#: mined voxels kept per case and class (drawn uniformly when there are more)
MAX_HARD_PER_CASE = 20000


def _starts(size: int, patch: int) -> list[int]:
    """Tile starts along one axis: side by side from 0, the last one moved back to end at ``size``
    (one tile at 0 when the axis is shorter than the patch)."""
    if size <= patch:
        return [0]
    starts = list(range(0, size - patch, patch))
    return [*starts, size - patch]


@torch.inference_mode()
def label_volume(volume: np.ndarray, model: nn.Module, patch: Sequence[int], *, batch_size: int = 4, device: torch.device | str = "cpu", memory_format: torch.memory_format = torch.contiguous_format) -> np.ndarray:
    """The network's argmax labels (uint8, *spatial) of a preprocessed (C, *spatial) volume, from
    tiles of ``patch`` laid side by side (padded with the volume's minimum where it is smaller)."""
    device = torch.device(device)
    spatial = volume.shape[1:]
    size = [max(s, p) for s, p in zip(spatial, patch)]
    if list(size) != list(spatial):
        padded = np.full((volume.shape[0], *size), float(volume.min()), dtype=np.float32)
        padded[(slice(None), *(slice(0, s) for s in spatial))] = volume
        volume = padded
    labels = np.zeros(size, dtype=np.uint8)
    grids = [_starts(s, p) for s, p in zip(size, patch)]
    corners = [tuple(c) for c in np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, len(patch))]
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(corners), batch_size):
            group = corners[i : i + batch_size]
            boxes = [tuple(slice(c, c + p) for c, p in zip(corner, patch)) for corner in group]
            x = torch.from_numpy(np.stack([volume[(slice(None), *box)] for box in boxes]).astype(np.float32))
            x = x.to(device).contiguous(memory_format=memory_format)
            out = forward(model, x)
            out = out[0] if isinstance(out, (list, tuple)) else out  # deep supervision: full resolution first
            for box, tile in zip(boxes, out.argmax(1).to(torch.uint8).cpu().numpy()):
                labels[box] = tile
    finally:
        model.train(was_training)
    return labels[tuple(slice(0, s) for s in spatial)]


def false_foreground(predicted: np.ndarray, reference: np.ndarray, rng: np.random.Generator, limit: int = MAX_HARD_PER_CASE) -> dict[str, np.ndarray]:
    """Voxels the prediction calls foreground where the reference is background, per predicted
    class (``{"2": (N, ndim) int32}``, so that a small false tumour is drawn as often as the thin
    shell of false organ around the organ's edge), at most ``limit`` per class drawn uniformly."""
    out = {}
    wrong = (predicted > 0) & (reference == 0)
    for cls in np.unique(predicted[wrong]):
        coords = np.argwhere(wrong & (predicted == cls))
        if len(coords) > limit:
            coords = coords[rng.choice(len(coords), limit, replace=False)]
        out[str(int(cls))] = coords.astype(np.int32)
    return out


def mine_cases(cases: list[dict[str, Any]], model: nn.Module, patch: Sequence[int], rng: np.random.Generator, **kwargs: Any) -> list[int]:
    """Store each case's false-foreground voxels per class as ``case["hard"]``; returns their counts."""
    counts = []
    for case in cases:
        predicted = label_volume(case["image"], model, patch, **kwargs)
        case["hard"] = false_foreground(predicted, case["seg"][0], rng)
        counts.append(sum(len(v) for v in case["hard"].values()))
    return counts
