"""Where to cut the overlay planes: the largest lesion's centre, else the organ's centroid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

__all__ = ["lesion_labels", "focus_voxel"]

_LESION_WORDS = ("tumour", "tumor", "lesion", "cancer", "metasta", "nodule", "mass")


def lesion_labels(labels: Mapping[int, str]) -> tuple[int, ...]:
    """Label values whose name reads as a lesion (tumour, tumor, lesion, cancer, metastasis...)."""
    return tuple(sorted(int(k) for k, v in labels.items() if int(k) > 0 and any(w in str(v).lower() for w in _LESION_WORDS)))


def _largest_component_centre(mask: np.ndarray) -> np.ndarray | None:
    """Voxel (3,) nearest the centroid of the largest 26-connected component of ``mask``."""
    box = _bbox(mask)
    if box is None:
        return None
    lo = [b.start for b in box]
    crop = mask[box]
    components, count = ndimage.label(crop, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    biggest = components == int(np.argmax(sizes))
    centre = _centroid(biggest) + lo
    voxels = np.argwhere(biggest) + lo  # the centroid of a curved lesion may lie outside it
    return voxels[int(np.argmin(((voxels - centre) ** 2).sum(1)))]


def _mask(arr: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """Boolean mask of the voxels whose value is in ``values`` (elementwise: fast in any memory order)."""
    out = np.zeros_like(arr, dtype=bool)  # same memory order as arr (NIfTI arrays are Fortran-ordered)
    for v in values:
        out |= arr == v
    return out


def _bbox(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of a boolean mask from its three projections (None when empty)."""
    box = []
    for axis in range(3):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _centroid(mask: np.ndarray) -> np.ndarray:
    """Centre of mass (3,) of a non-empty boolean mask, from its projections (fast)."""
    out = np.empty(3)
    for axis in range(3):
        weights = mask.sum(axis=tuple(a for a in range(3) if a != axis), dtype=np.int64)
        out[axis] = float((weights * np.arange(weights.size)).sum()) / float(weights.sum())
    return out


def focus_voxel(ref: np.ndarray | None, pred: np.ndarray | None, lesions: Sequence[int], shape: Sequence[int]) -> tuple[int, int, int]:
    """Where the three planes cross, as an (i, j, k) voxel of the given integer label arrays.

    The centre of the largest reference lesion (labels ``lesions``, 26-connected components);
    else of the largest predicted lesion; else the centroid of the reference foreground, then of the
    predicted foreground; else the middle of the volume. Components are labelled only inside the
    bounding box of the lesion voxels.
    """
    for arr in (ref, pred):
        if arr is not None and lesions:
            found = _largest_component_centre(_mask(arr, lesions))
            if found is not None:
                return tuple(int(v) for v in found)  # type: ignore[return-value]
    for arr in (ref, pred):
        mask = arr > 0 if arr is not None else None
        box = _bbox(mask) if mask is not None else None
        if mask is not None and box is not None:
            centre = np.round(_centroid(mask[box])).astype(int)
            return tuple(int(v + b.start) for v, b in zip(centre, box))  # type: ignore[return-value]
    return tuple(int(n) // 2 for n in shape)  # type: ignore[return-value]
