"""Gaussian-weighted sliding-window inference over a whole (preprocessed) volume."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage

from ..models.runtime import forward

__all__ = ["gaussian_importance", "tile_starts", "sliding_window"]


@lru_cache(maxsize=8)
def _gaussian(patch: tuple[int, ...], sigma_scale: float) -> np.ndarray:
    impulse = np.zeros(patch, dtype=np.float32)
    impulse[tuple(p // 2 for p in patch)] = 1.0
    g = ndimage.gaussian_filter(impulse, sigma=[p * sigma_scale for p in patch], mode="constant")
    g /= g.max()
    g[g == 0] = g[g > 0].min()
    return g.astype(np.float32)


def gaussian_importance(patch: Sequence[int], sigma_scale: float = 1.0 / 8) -> np.ndarray:
    """Weights of a tile: a Gaussian of sigma = patch/8 peaking at 1 in the centre (never 0)."""
    return _gaussian(tuple(int(p) for p in patch), float(sigma_scale))


def tile_starts(size: int, patch: int, step: float) -> list[int]:
    """Evenly spaced tile starts covering [0, size) with tiles of ``patch`` overlapping by ``1-step``."""
    if size <= patch:
        return [0]
    n = int(np.ceil((size - patch) / (patch * step))) + 1
    return sorted({int(round(x)) for x in np.linspace(0, size - patch, n)})


def _mirror_sets(tta: bool | Sequence[int]) -> list[tuple[int, ...]]:
    if tta is False:
        return [()]
    axes = (0, 1, 2) if tta is True else tuple(tta)
    return [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]


@torch.inference_mode()
def sliding_window(
    volume: np.ndarray,
    model: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor],
    patch: Sequence[int],
    num_classes: int,
    *,
    step: float = 0.5,
    batch_size: int = 4,
    tta: bool | Sequence[int] = False,
    device: str | torch.device = "cpu",
    pad_value: float | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Class probabilities (C, X, Y, Z) float32 for a (1, X, Y, Z) volume.

    Tiles of ``patch`` voxels start every ``step * patch``; each tile's softmax is weighted by a
    Gaussian and the weighted sum is divided by the summed weights. ``tta`` averages the
    predictions of mirrored inputs (True: all 8 flips of the 3 axes; or a tuple of axes).
    Volumes smaller than the patch are padded with ``pad_value`` (default: their minimum).
    ``model`` is a torch module or any callable mapping a (B, 1, *patch) float32 tensor to
    (B, C, *patch) logits (e.g. :class:`~ctseg.inference.export.OnnxNetwork`).
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    patch = tuple(int(p) for p in patch)
    shape = volume.shape[1:]
    pad = [(0, max(0, p - s)) for p, s in zip(patch, shape)]
    fill = float(volume.min()) if pad_value is None else pad_value
    padded = np.pad(volume, [(0, 0), *pad], constant_values=fill) if any(b for _, b in pad) else volume
    full = padded.shape[1:]
    weight = torch.from_numpy(gaussian_importance(patch)).to(device)
    probs = torch.zeros((num_classes, *full), dtype=torch.float32, device=device)
    norm = torch.zeros(full, dtype=torch.float32, device=device)
    starts = list(itertools.product(*(tile_starts(s, p, step) for s, p in zip(full, patch))))
    mirrors = _mirror_sets(tta)
    x_all = torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32))
    for i in tqdm(range(0, len(starts), batch_size), desc="tiles", unit="batch", leave=False, disable=not progress):
        batch_starts = starts[i : i + batch_size]
        slices = [tuple(slice(s, s + p) for s, p in zip(st, patch)) for st in batch_starts]
        x = torch.stack([x_all[(slice(None), *sl)] for sl in slices]).to(device)
        out = torch.zeros((len(slices), num_classes, *patch), dtype=torch.float32, device=device)
        for axes in mirrors:
            dims = [a + 2 for a in axes]
            xi = torch.flip(x, dims) if dims else x
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = forward(model, xi)
            p = torch.softmax(logits.float(), dim=1)
            out += torch.flip(p, dims) if dims else p
        out /= len(mirrors)
        for j, sl in enumerate(slices):
            probs[(slice(None), *sl)] += out[j] * weight
            norm[sl] += weight
    probs /= norm
    crop = tuple(slice(0, s) for s in shape)
    return probs[(slice(None), *crop)].cpu().numpy()
