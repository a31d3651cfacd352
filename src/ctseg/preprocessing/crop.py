"""Crop a CT to the patient's body."""

from __future__ import annotations

from collections.abc import Sequence

import cc3d
import numpy as np

__all__ = ["body_bbox", "mask_bbox"]


def body_bbox(array: np.ndarray, threshold: float = -500.0, margin: int = 2) -> tuple[slice, slice, slice]:
    """Bounding box of the largest connected component above ``threshold`` HU (the body).

    Falls back to the whole volume when nothing is above the threshold. ``margin`` voxels are kept
    around the box (within the volume).
    """
    mask = array > threshold
    labels, count = cc3d.connected_components(mask, connectivity=6, return_N=True)
    if count == 0:
        return tuple(slice(0, s) for s in array.shape)  # type: ignore[return-value]
    # the largest component and its box from cc3d's per-label statistics: 0.16 s and 125 MiB for a
    # 512x512x100 CT against 0.19 s and 150 MiB with cc3d.largest_k, which relabels and copies
    # the volume (np.bincount would cast the labels to int64: 325 MiB)
    stats = cc3d.statistics(labels, no_slice_conversion=True)
    sizes = np.asarray(stats["voxel_counts"])
    sizes[0] = 0
    box = stats["bounding_boxes"][int(np.argmax(sizes))]  # (first, last) voxel per axis
    return _grown(box[0::2], box[1::2], array.shape, [int(np.ceil(margin))] * array.ndim)  # type: ignore[return-value]


def _grown(first: Sequence[int], last: Sequence[int], shape: Sequence[int], grow: Sequence[int]) -> tuple[slice, ...]:
    """The box from ``first`` to ``last`` voxel (inclusive) per axis, ``grow`` voxels wider on each
    side, clipped to ``shape``."""
    return tuple(slice(max(0, int(a) - int(g)), min(int(n), int(b) + 1 + int(g))) for a, b, n, g in zip(first, last, shape, grow))


def mask_bbox(
    mask: np.ndarray, spacing: tuple[float, float, float] | np.ndarray, margin_mm: float = 0.0
) -> tuple[slice, slice, slice] | None:
    """Bounding box of the ``True`` voxels grown by ``margin_mm`` on every side (within the volume).

    ``spacing`` is the voxel size (mm) along the array's axes. Returns ``None`` for an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    # the box from the mask's projections on each axis: two passes over the volume instead of the
    # index arrays of every True voxel (0.37 s -> a few ms for a 512x512x100 body)
    first_two = mask.any(axis=tuple(range(2, mask.ndim))) if mask.ndim > 2 else mask
    along = [first_two.any(axis=1), first_two.any(axis=0)] + [mask.any(axis=tuple(a for a in range(mask.ndim) if a != k)) for k in range(2, mask.ndim)]
    if not along[0].any():
        return None
    grow = np.ceil(float(margin_mm) / np.asarray(spacing, dtype=np.float64)).astype(int)
    hits = [np.flatnonzero(hit) for hit in along]
    return _grown([h[0] for h in hits], [h[-1] for h in hits], mask.shape, grow)  # type: ignore[return-value]
