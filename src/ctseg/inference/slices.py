"""Slice-wise prediction for a 2D network: every axial slice of a preprocessed volume through the
network, the probabilities stacked back into the volume.

Slices are run in batches; a slice larger than the network's patch is covered by a 2D
Gaussian-weighted sliding window (the same tile rule and weights as the 3D sliding window), a
smaller one is padded with the volume's minimum.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..preprocessing import Plan
from .sliding_window import (
    gaussian_importance,
    mirror_sets,
    mirrored_softmax,
    sliding_window,
    tile_starts,
)

__all__ = ["slice_probabilities", "volume_probabilities"]

Network = torch.nn.Module | Callable[[torch.Tensor], torch.Tensor]


@torch.inference_mode()
def slice_probabilities(
    volume: np.ndarray,
    model: Network,
    patch: Sequence[int],
    num_classes: int,
    *,
    step: float = 0.5,
    batch_size: int = 16,
    tta: bool | Sequence[int] = False,
    device: str | torch.device = "cpu",
    pad_value: float | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Class probabilities (C, X, Y, Z) float32 of a (1, X, Y, Z) volume from a 2D network.

    Each axial slice ``[..., z]`` is cut into in-plane tiles of ``patch`` (px, py) starting every
    ``step * patch`` (one tile when the slice fits); ``batch_size`` tiles, from one slice or
    several, go through the network at once. Each tile's softmax is weighted by a 2D Gaussian and
    divided by the summed weights. ``tta`` averages in-plane mirrored predictions (True: the 4
    flips of the axes 0 and 1; or a tuple of axes, the slice axis 2 ignored). Slices smaller than
    the patch are padded with ``pad_value`` (default: the volume's minimum). ``model`` maps a
    (B, 1, px, py) float32 tensor to (B, C, px, py) logits.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    patch = tuple(int(p) for p in patch)
    if len(patch) != 2:
        raise ValueError(f"slice_probabilities needs an in-plane (2D) patch, got {patch}")
    nx, ny, nz = volume.shape[1:]
    fill = float(volume.min()) if pad_value is None else pad_value
    full = (max(nx, patch[0]), max(ny, patch[1]))
    # slices first, contiguous, padded in-plane: (Z, 1, X', Y')
    stack = np.full((nz, 1, *full), fill, dtype=np.float32)
    stack[:, 0, :nx, :ny] = np.moveaxis(np.asarray(volume[0], dtype=np.float32), -1, 0)
    x_all = torch.from_numpy(stack)
    weight = torch.from_numpy(gaussian_importance(patch)).to(device)
    tiles = list(itertools.product(*(tile_starts(s, p, step) for s, p in zip(full, patch))))
    norm = torch.zeros(full, dtype=torch.float32, device=device)
    for sx, sy in tiles:
        norm[sx : sx + patch[0], sy : sy + patch[1]] += weight
    probs = torch.zeros((nz, num_classes, *full), dtype=torch.float32, device=device)
    items = [(z, t) for z in range(nz) for t in tiles]
    mirrors = mirror_sets(tta, spatial_dims=2)
    for i in tqdm(range(0, len(items), batch_size), desc="slices", unit="batch", leave=False, disable=not progress):
        chunk = items[i : i + batch_size]
        x = torch.stack([x_all[z, :, sx : sx + patch[0], sy : sy + patch[1]] for z, (sx, sy) in chunk]).to(device)
        out = mirrored_softmax(model, x, mirrors) * weight
        for j, (z, (sx, sy)) in enumerate(chunk):
            probs[z, :, sx : sx + patch[0], sy : sy + patch[1]] += out[j]
    probs /= norm
    return probs[:, :, :nx, :ny].permute(1, 2, 3, 0).cpu().numpy()  # a (C, X, Y, Z) view, no copy on the CPU


def volume_probabilities(
    volume: np.ndarray,
    model: Network,
    plan: Plan,
    *,
    step: float = 0.5,
    batch_size: int = 4,
    tta: bool | Sequence[int] = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
    grid: str = "spread",
    tiles: Sequence[tuple[int, ...]] | None = None,
) -> np.ndarray:
    """Class probabilities (C, X, Y, Z) of a preprocessed (1, X, Y, Z) volume with the plan's
    network: the 3D sliding window (on ``grid``, or at ``tiles``; see
    :func:`~ctseg.inference.sliding_window.sliding_window`), or slice by slice for a 2D plan."""
    if plan.spatial_dims == 2:
        return slice_probabilities(volume, model, plan.patch_size, plan.num_classes, step=step, batch_size=batch_size, tta=tta, device=device, progress=progress)
    return sliding_window(volume, model, plan.patch_size, plan.num_classes, step=step, batch_size=batch_size, tta=tta, device=device, progress=progress, grid=grid, tiles=tiles)
