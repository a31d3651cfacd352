"""Lesion copy-paste augmentation: lesions cut from the training cases, rescaled, pasted into the
host organ of other patches.

A training set of two dozen cases holds two dozen lesions, few of them small; a network trained on
it finds the large dark ones and misses those of 1-3 mL. Pasting lesions (as TumorCP does for the
kidney) multiplies the examples: each bank entry is one connected lesion component of a case, kept
as its intensities *relative to its host organ's median* and its mask; a paste draws an entry, a
scale (log-uniform, so small copies are as common as large ones), random flips, and a place in the
patch where at least ``MIN_INSIDE`` of it lies on the host organ; the pasted voxels take the patch's
own organ median plus the lesion's relative intensities, blended over a half-voxel blur at the edge
(the scanner's partial volume), and the label becomes the lesion where the copy lies on the organ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cc3d
import numpy as np
from scipy import ndimage

__all__ = ["Lesion", "check_paste_scale", "lesion_bank", "paste_lesion", "MIN_INSIDE"]

#: share of a pasted copy's voxels that must land on the host organ (else another place is tried)
MIN_INSIDE = 0.8
#: places tried per paste before the patch is left as it is
TRIES = 6


def check_paste_scale(scale_range: Sequence[float]) -> None:
    """Raise ValueError unless ``scale_range`` is two sizes 0 < low <= high."""
    values = list(scale_range)
    if len(values) != 2 or not 0 < values[0] <= values[1]:
        raise ValueError(f"lesion_paste_scale {values} must be two sizes 0 < low <= high, e.g. [0.3, 1.0]")


@dataclass(frozen=True)
class Lesion:
    """One lesion component: intensities minus its host organ's median (C, *box), and its mask."""

    delta: np.ndarray
    mask: np.ndarray


def lesion_bank(cases: Sequence[dict[str, Any]], labels: tuple[int, int], min_voxels: int = 8) -> list[Lesion]:
    """Every connected component (26-connectivity) of the lesion label of at least ``min_voxels``
    voxels in the cases' ``seg`` (1, *spatial), with the case's ``image`` (C, *spatial) minus the
    median of the host organ label per channel inside the component's bounding box."""
    lesion, host = labels
    bank = []
    for case in cases:
        seg = np.asarray(case["seg"][0])
        in_host, in_lesion = seg == host, seg == lesion
        if not in_host.any() or not in_lesion.any():
            continue
        image = np.asarray(case["image"])
        median = np.array([np.median(ch[in_host]) for ch in image], dtype=np.float32)
        ids = cc3d.connected_components(in_lesion, connectivity=26)
        for k, box in enumerate(ndimage.find_objects(ids), 1):
            if box is None:
                continue
            mask = ids[box] == k
            if mask.sum() < min_voxels:
                continue
            delta = image[(slice(None), *box)].astype(np.float32) - median.reshape(-1, *([1] * mask.ndim))
            bank.append(Lesion(delta, mask.copy()))
    return bank


def _resized(lesion: Lesion, scale: float, flips: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The lesion's relative intensities and mask zoomed by ``scale`` (linear; the mask thresholded
    at one half) and flipped along ``flips``."""
    mask = ndimage.zoom(lesion.mask.astype(np.float32), scale, order=1, mode="nearest", grid_mode=True) > 0.5
    delta = np.stack([ndimage.zoom(ch, scale, order=1, mode="nearest", grid_mode=True) for ch in lesion.delta])
    for axis in flips:
        mask, delta = np.flip(mask, axis), np.flip(delta, axis + 1)
    return delta, mask


def _placed(mask: np.ndarray, corner: np.ndarray, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """(patch slices, mask slices) of ``mask`` put with its first voxel at ``corner``, clipped to ``shape``."""
    lo = np.maximum(corner, 0)
    hi = np.minimum(corner + np.array(mask.shape), shape)
    if np.any(hi <= lo):
        return None
    dst = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    src = tuple(slice(int(a - c), int(b - c)) for a, b, c in zip(lo, hi, corner))
    return dst, src


def paste_lesion(
    image: np.ndarray,
    label: np.ndarray,
    bank: Sequence[Lesion],
    rng: np.random.Generator,
    scale_range: tuple[float, float],
    labels: tuple[int, int],
    mirror: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Paste one lesion of ``bank`` into the host organ of a (C, *spatial) patch and its labels.

    With chance ``mirror`` the copy's intensities relative to the organ change sign (a hypodense
    lesion becomes hyperdense by as much, and back).

    Returns new arrays; the inputs are returned unchanged when the bank is empty, the patch holds
    fewer than 64 host voxels, the rescaled copy has fewer than 4 voxels, or no place of ``TRIES``
    puts ``MIN_INSIDE`` of it on the host organ. All draws come from ``rng``.
    """
    lesion, host = labels
    in_host = label == host
    hosts = np.flatnonzero(in_host)
    if not len(bank) or hosts.size < 64:
        return image, label
    entry = bank[int(rng.integers(len(bank)))]
    lo, hi = np.log(scale_range[0]), np.log(scale_range[1])
    scale = float(np.exp(rng.uniform(lo, hi)))
    flips = [a for a in range(label.ndim) if rng.random() < 0.5]
    delta, mask = _resized(entry, scale, flips)
    if mirror > 0 and rng.random() < mirror:
        delta = -delta
    size = int(mask.sum())
    if size < 4:
        return image, label
    centre = (np.array(mask.shape) - 1) // 2
    for _ in range(TRIES):
        at = np.array(np.unravel_index(int(hosts[int(rng.integers(hosts.size))]), label.shape))
        where = _placed(mask, at - centre, label.shape)
        if where is None:
            continue
        dst, src = where
        part = mask[src] & in_host[dst]
        if part.sum() >= MIN_INSIDE * size:
            break
    else:
        return image, label
    final = np.zeros(label.shape, dtype=bool)
    final[dst] = part
    weight = ndimage.gaussian_filter(final.astype(np.float32), 0.5, mode="nearest")
    out = image.astype(np.float32, copy=True)
    for c in range(out.shape[0]):
        organ = float(np.median(out[c][in_host]))
        fill = float(delta[c][mask].mean())
        target = np.full(label.shape, organ + fill, dtype=np.float32)
        target[dst] = np.where(mask[src], organ + delta[c][src], organ + fill)
        out[c] += weight * (target - out[c])
    new_label = label.copy()
    new_label[final] = lesion
    return out, new_label
