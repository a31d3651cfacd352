"""Gaussian-weighted sliding-window inference over a whole (preprocessed) volume.

Two tile grids (``grid``):

- ``"spread"`` (ctseg's default): along each axis the starts are spread evenly over
  ``[0, size - patch]``, as few as keep consecutive tiles at most ``step * patch`` apart; weights are
  a Gaussian of sigma patch/8 peaking at 1 on the centre voxel ``patch // 2``; a volume smaller
  than the patch is padded at the end with its minimum.
- ``"monai"``: the rule of MONAI's ``sliding_window_inference(overlap=1 - step, mode="gaussian")``
  (checked against MONAI 1.6): starts every ``int(patch * (1 - overlap))`` voxels from 0, the last
  tile moved back to end at the volume's end; weights are the product of 1D Gaussians of sigma
  patch/8 centred at ``(patch - 1) / 2`` (between the two middle voxels of an even size), clamped
  from below at max(their minimum, 1e-3); an axis smaller than the patch is padded on both sides (half, the odd
  voxel after) with 0. The stitched probabilities equal MONAI's up to float rounding.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage

from ..errors import InputError
from ..models.runtime import forward

__all__ = [
    "TILE_GRIDS",
    "gaussian_importance",
    "monai_importance",
    "tile_starts",
    "monai_tile_starts",
    "tile_grid",
    "tiles_touching",
    "mirror_sets",
    "mirrored_softmax",
    "sliding_window",
]

#: Tile grids accepted by :func:`sliding_window` (and ``ctseg predict --tile-grid``).
TILE_GRIDS = ("spread", "monai")

Tile = tuple[int, ...]  # the start voxel of a tile, one index per axis


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


@lru_cache(maxsize=8)
def _monai_gaussian(patch: tuple[int, ...], sigma_scale: float) -> np.ndarray:
    weights = torch.ones((), dtype=torch.float32)
    for p in patch:  # float32 throughout, as MONAI computes it
        x = torch.arange(p, dtype=torch.float32) - (p - 1) / 2.0
        sigma = p * sigma_scale
        weights = weights.unsqueeze(-1) * torch.exp(x * x / (-2.0 * sigma * sigma))
    floor = max(float(weights.min()), 1e-3)
    return weights.clamp(min=floor).numpy()


def monai_importance(patch: Sequence[int], sigma_scale: float = 0.125) -> np.ndarray:
    """Weights of a tile in the ``"monai"`` grid (float32, shape ``patch``): the product over axes
    of ``exp(-x^2 / (2 sigma^2))`` with x the distance in voxels from ``(p - 1) / 2`` and sigma =
    ``p * sigma_scale``, raised to at least max(its minimum, 1e-3). Its peak is 1 only for odd
    sizes (the weights are only ever used relative to each other)."""
    return _monai_gaussian(tuple(int(p) for p in patch), float(sigma_scale))


def tile_starts(size: int, patch: int, step: float) -> list[int]:
    """Evenly spaced tile starts covering [0, size) with tiles of ``patch`` overlapping by ``1-step``."""
    if size <= patch:
        return [0]
    n = int(np.ceil((size - patch) / (patch * step))) + 1
    return sorted({int(round(x)) for x in np.linspace(0, size - patch, n)})


def monai_tile_starts(size: int, patch: int, overlap: float) -> list[int]:
    """MONAI's tile starts along one axis of ``size`` voxels (already padded to at least ``patch``):
    0, i, 2i, ... with the interval ``i = max(1, int(patch * (1 - overlap)))``, up to the first
    tile that reaches the end, which is moved back to end exactly at ``size``. One tile when
    ``size <= patch``. The starts are strictly increasing (no duplicates to drop)."""
    if size <= patch:
        return [0]
    interval = max(1, int(patch * (1 - overlap)))
    count = next(d for d in range(size) if d * interval + patch >= size) + 1
    return [min(d * interval, size - patch) for d in range(count)]


def tile_grid(shape: Sequence[int], patch: Sequence[int], step: float = 0.5, grid: str = "spread") -> list[Tile]:
    """Starts of the tiles covering a volume of ``shape``, in its own voxel indices, in the order the
    sliding window runs them (last axis fastest).

    A start may be negative and a tile may reach past the end along an axis shorter than the patch:
    those voxels are padding (``"spread"`` pads after the volume, ``"monai"`` on both sides, the
    odd voxel after). ``step`` is the fraction of the patch between tiles (MONAI's overlap is
    ``1 - step``).

    Raises:
        InputError: an unknown ``grid``, or ``step`` outside (0, 1].
    """
    if grid not in TILE_GRIDS:
        raise InputError(f"tile grid must be one of {', '.join(TILE_GRIDS)}, got {grid!r}")
    if not 0 < step <= 1:
        raise InputError(f"step must be in (0, 1], got {step}")
    axes = []
    for size, p in zip((int(s) for s in shape), (int(p) for p in patch)):
        if grid == "spread":
            axes.append(tile_starts(size, p, step))
        else:
            before = max(0, p - size) // 2  # MONAI pads half before, the rest after
            axes.append([s - before for s in monai_tile_starts(max(size, p), p, 1 - step)])
    return list(itertools.product(*axes))


def tiles_touching(tiles: Sequence[Tile], patch: Sequence[int], box: Sequence[slice]) -> list[Tile]:
    """The tiles (starts, in the order given) that share at least one voxel with ``box``."""
    return [t for t in tiles if all(s < b.stop and s + p > b.start for s, p, b in zip(t, patch, box))]


def mirror_sets(tta: bool | Sequence[int], spatial_dims: int = 3) -> list[tuple[int, ...]]:
    """Flip sets of mirror TTA: every subset of the spatial axes for ``True`` (8 in 3D, 4 in 2D),
    of the given axes below ``spatial_dims`` otherwise, and only the identity for ``False``."""
    if tta is False:
        return [()]
    axes = tuple(range(spatial_dims)) if tta is True else tuple(a for a in tta if a < spatial_dims)
    return [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]


def mirrored_softmax(model: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mirrors: Sequence[tuple[int, ...]]) -> torch.Tensor:
    """Softmax of ``model`` on a (B, 1, *patch) batch averaged over the flip sets ``mirrors`` (spatial
    axes; see :func:`mirror_sets`), each flipped back: (B, C, *patch) float32. The network runs as
    given: its precision and layout are :func:`~ctseg.inference.backends.network_backend`'s."""

    def one(axes: tuple[int, ...]) -> torch.Tensor:
        dims = [a + 2 for a in axes]
        xi = torch.flip(x, dims) if dims else x
        p = torch.softmax(forward(model, xi).float(), dim=1)
        return torch.flip(p, dims) if dims else p

    total = one(mirrors[0])
    for axes in mirrors[1:]:
        total += one(axes)
    return total / len(mirrors)


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
    grid: str = "spread",
    tiles: Sequence[Tile] | None = None,
) -> np.ndarray:
    """Class probabilities (C, X, Y, Z) float32 for a (1, X, Y, Z) volume.

    Tiles of ``patch`` voxels are placed by :func:`tile_grid` (``grid`` "spread" or "monai", see
    the module's docstring; ``step`` the fraction of the patch between tiles), or exactly at
    ``tiles`` (starts in the volume's voxels, as :func:`tile_grid` gives them; a tile may reach
    outside the volume, which is then padded). Each tile's softmax is weighted by the grid's
    Gaussian and the weighted sum is divided by the summed weights; voxels that no tile covers
    (only possible with ``tiles``) are background (probability 1 for class 0). ``tta`` averages
    the predictions of mirrored inputs (True: all 8 flips of the 3 axes; or a tuple of axes).
    Padding is ``pad_value`` (default: the volume's minimum for "spread", 0 for "monai", as
    MONAI pads). ``model`` is a torch module or any callable mapping a (B, 1, *patch) float32
    tensor to (B, C, *patch) logits (e.g. :class:`~ctseg.inference.export.OnnxNetwork`).
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    patch = tuple(int(p) for p in patch)
    shape = volume.shape[1:]
    starts = tile_grid(shape, patch, step, grid) if tiles is None else [tuple(int(v) for v in t) for t in tiles]
    if not starts:
        raise InputError("sliding_window got an empty list of tiles; give at least one tile start or tiles=None")
    before = [max(0, -min(t[a] for t in starts)) for a in range(len(patch))]
    after = [max(0, max(t[a] for t in starts) + p - s) for a, (p, s) in enumerate(zip(patch, shape))]
    if pad_value is None:
        pad_value = 0.0 if grid == "monai" else float(volume.min())
    padded = volume
    if any(before) or any(after):
        padded = np.pad(volume, [(0, 0), *zip(before, after)], constant_values=pad_value)
    starts = [tuple(v + b for v, b in zip(t, before)) for t in starts]
    full = padded.shape[1:]
    weight = torch.from_numpy(monai_importance(patch) if grid == "monai" else gaussian_importance(patch)).to(device)
    probs = torch.zeros((num_classes, *full), dtype=torch.float32, device=device)
    norm = torch.zeros(full, dtype=torch.float32, device=device)
    mirrors = mirror_sets(tta)
    x_all = torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32))
    for i in tqdm(range(0, len(starts), batch_size), desc="tiles", unit="batch", leave=False, disable=not progress):
        batch_starts = starts[i : i + batch_size]
        slices = [tuple(slice(s, s + p) for s, p in zip(st, patch)) for st in batch_starts]
        x = torch.stack([x_all[(slice(None), *sl)] for sl in slices]).to(device)
        out = mirrored_softmax(model, x, mirrors)
        for j, sl in enumerate(slices):
            probs[(slice(None), *sl)] += out[j] * weight
            norm[sl] += weight
    crop = tuple(slice(b, b + s) for b, s in zip(before, shape))
    probs, norm = probs[(slice(None), *crop)], norm[crop]
    if tiles is None:
        probs /= norm
    else:  # some voxels may lie outside every tile
        uncovered = norm == 0
        probs /= torch.where(uncovered, torch.ones_like(norm), norm)
        probs[0][uncovered] = 1.0
    return probs.cpu().numpy()
