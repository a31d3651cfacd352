"""Class-balanced patch sampling from preprocessed cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cc3d
import numpy as np
from scipy import ndimage

from ..config import AugmentSettings
from .augment import (
    PatchParams,
    apply_flips,
    apply_intensity,
    apply_lesion_contrast,
    elastic_displacement,
    make_params,
)
from .paste import check_paste_scale, lesion_bank, paste_lesion

__all__ = ["PatchSampler", "extract_patch", "choose_center", "hard_center", "add_components"]

#: components smaller than this (voxels of the preprocessed grid) are not drawn as their own group
MIN_COMPONENT_VOXELS = 27


def add_components(case: dict[str, Any], min_voxels: int = MIN_COMPONENT_VOXELS) -> dict[str, Any]:
    """Group each class's sampled ``locations`` by connected component (26-connectivity) of that
    class in ``case["seg"]``, so that foreground patches can be centred on a uniformly drawn
    component (a 1 mL tumour as often as the 60 mL one beside it) rather than on a uniformly drawn
    voxel. Stored as ``case["components"][cls]``: index arrays into ``case["locations"][cls]``,
    only for classes with two or more components of at least ``min_voxels`` voxels."""
    seg = np.asarray(case["seg"][0])
    groups: dict[int, list[np.ndarray]] = {}
    for cls, locs in case["locations"].items():
        if not len(locs):
            continue
        ids = cc3d.connected_components(seg == cls, connectivity=26)
        sizes = np.bincount(ids.ravel())
        at = ids[tuple(np.asarray(locs).T)]
        found = [np.nonzero(at == k)[0] for k in np.unique(at) if k > 0 and sizes[k] >= min_voxels]
        if len(found) > 1:
            groups[int(cls)] = found
    case["components"] = groups
    return case


def choose_center(
    case: dict[str, Any], patch: Sequence[int], rng: np.random.Generator, foreground: bool
) -> np.ndarray:
    """Voxel on which to centre a patch (before a random offset inside the patch).

    With ``foreground``, a class is drawn uniformly among the foreground classes present in the
    case (class-balanced: small tumours are seen as often as the organ), then one of its voxels;
    where :func:`add_components` grouped the class's voxels, first one of its components
    (uniformly), then one of that component's voxels. Otherwise the centre is uniform over
    positions where the patch overlaps the volume.
    """
    shape = np.array(case["image"].shape[1:])
    half = np.array(patch) // 2
    classes = [c for c, locs in case["locations"].items() if len(locs)]
    if foreground and classes:
        cls = classes[int(rng.integers(len(classes)))]
        locs = case["locations"][cls]
        groups = case.get("components", {}).get(cls)
        pool = groups[int(rng.integers(len(groups)))] if groups else None
        pick = int(rng.integers(len(locs))) if pool is None else int(pool[int(rng.integers(len(pool)))])
        return _jittered(locs[pick], half, shape, rng)
    lo = np.minimum(half, shape // 2)
    hi = np.maximum(shape - half, lo + 1)
    return np.array([int(rng.integers(a, b)) for a, b in zip(lo, hi)])


def _jittered(voxel: np.ndarray, half: np.ndarray, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``voxel`` moved by up to half a half-patch along each axis, inside the volume."""
    jitter = np.array([int(rng.integers(-h // 2, h // 2 + 1)) if h > 1 else 0 for h in half])
    return np.clip(voxel.astype(np.int64) + jitter, 0, shape - 1)


def hard_center(case: dict[str, Any], patch: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """A patch centre near a mined voxel of ``case["hard"]`` (``{class: (N, ndim) voxels}`` the
    network called that class wrongly): a class drawn uniformly among those present, then one of
    its voxels, with the same jitter as a foreground centre."""
    groups = [v for _, v in sorted(case["hard"].items()) if len(v)]
    hard = groups[int(rng.integers(len(groups)))]
    return _jittered(hard[int(rng.integers(len(hard)))], np.array(patch) // 2, np.array(case["image"].shape[1:]), rng)


def _has_hard(case: dict[str, Any]) -> bool:
    return any(len(v) for v in case.get("hard", {}).values())


def extract_patch(
    image: np.ndarray, seg: np.ndarray, center: np.ndarray, patch: Sequence[int], params: PatchParams, pad_value: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a patch of ``patch`` voxels centred on ``center`` from (C, X, Y, Z) image and (1, X, Y, Z) seg
    (or, for a 2D patch, from a (C, X, Y) slice and its (1, X, Y) labels).

    Without spatial augmentation this is an integer slice with padding outside the volume; with it
    the patch grid is rotated about the last (cranio-caudal) axis (in 2D: in the slice's plane),
    scaled about the centre and (optionally) elastically deformed, and sampled by linear (image)
    and nearest (label) interpolation.
    """
    patch = np.asarray(patch)
    if not params.is_spatial:
        lo = center - patch // 2
        img = _slice_padded(image, lo, patch, pad_value)
        lab = _slice_padded(seg, lo, patch, 0)[0]
        return img, lab
    theta = np.deg2rad(params.rotation_deg)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])[: len(patch), : len(patch)]
    matrix = rot / params.scale
    offset = center - matrix @ ((patch - 1) / 2.0)
    if params.elastic_alpha > 0.0:
        return _deformed_patch(image, seg, matrix, offset, patch, params, pad_value)
    img = np.stack(
        [ndimage.affine_transform(ch, matrix, offset, output_shape=tuple(patch), order=1, mode="constant", cval=pad_value) for ch in image]
    )
    lab = ndimage.affine_transform(seg[0], matrix, offset, output_shape=tuple(patch), order=0, mode="constant", cval=0)
    return img.astype(np.float32), lab


def _deformed_patch(
    image: np.ndarray, seg: np.ndarray, matrix: np.ndarray, offset: np.ndarray, patch: np.ndarray, params: PatchParams, pad_value: float
) -> tuple[np.ndarray, np.ndarray]:
    """The rotated/scaled patch grid plus a smooth random displacement, sampled with map_coordinates."""
    ndim = len(patch)
    grid = np.indices(tuple(patch), dtype=np.float32).reshape(ndim, -1)
    coords = (matrix @ grid).reshape(ndim, *patch) + offset.reshape(ndim, *([1] * ndim))
    coords += elastic_displacement(tuple(int(p) for p in patch), params.elastic_alpha, params.elastic_sigma, params.elastic_seed)
    img = np.stack([ndimage.map_coordinates(ch, coords, order=1, mode="constant", cval=pad_value) for ch in image])
    lab = ndimage.map_coordinates(seg[0], coords, order=0, mode="constant", cval=0)
    return img.astype(np.float32), lab


def _slice_padded(array: np.ndarray, lo: np.ndarray, size: np.ndarray, pad_value: float) -> np.ndarray:
    shape = np.array(array.shape[1:])
    src_lo = np.maximum(lo, 0)
    src_hi = np.minimum(lo + size, shape)
    out = np.full((array.shape[0], *size), pad_value, dtype=array.dtype)
    dst_lo = src_lo - lo
    dst_hi = dst_lo + (src_hi - src_lo)
    out[(slice(None), *(slice(a, b) for a, b in zip(dst_lo, dst_hi)))] = array[
        (slice(None), *(slice(a, b) for a, b in zip(src_lo, src_hi)))
    ]
    return out


@dataclass
class PatchSampler:
    """Draws augmented training batches from a list of loaded preprocessed cases."""

    cases: list[dict[str, Any]]
    patch_size: tuple[int, int, int]
    batch_size: int
    foreground_fraction: float
    augment: AugmentSettings | None
    by_component: bool = False  # foreground patches: a uniformly drawn component of the class
    hard_fraction: float = 0.0  # share of patches centred on a case's mined ``"hard"`` voxels, where it has some

    def __post_init__(self) -> None:
        if self.by_component:
            for case in self.cases:
                add_components(case)
        paste = self.augment is not None and self.augment.lesion_paste_prob > 0
        if paste:
            check_paste_scale(self.augment.lesion_paste_scale)  # type: ignore[union-attr]
        self.bank = lesion_bank(self.cases, self.augment.lesion_labels) if paste else []  # type: ignore[union-attr]

    def sample(self, rng: np.random.Generator, patch_size: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One batch: images (B, 1, *patch) float32 and labels (B, *patch) int64, of ``patch_size``
        when given (progressive training's smaller patches), else of the sampler's.

        At least one item per batch is foreground-centred when ``foreground_fraction`` > 0 (as
        nnU-Net forces for the last third of each batch).
        """
        patch = tuple(int(p) for p in patch_size) if patch_size is not None else tuple(self.patch_size)
        images, labels = [], []
        for b in range(self.batch_size):
            case = self.cases[int(rng.integers(len(self.cases)))]
            # no draw at all while nothing is mined, so that runs without mining keep their patches
            hard = self.hard_fraction > 0 and _has_hard(case) and rng.random() < self.hard_fraction
            fg = not hard and (
                rng.random() < self.foreground_fraction
                or (b == self.batch_size - 1 and self.foreground_fraction > 0 and not any(x.any() for x in labels))
            )
            params = make_params(rng, self.augment) if self.augment else PatchParams()
            center = hard_center(case, patch, rng) if hard else choose_center(case, patch, rng, fg)
            pad = float(case.get("pad_value", case["image"][0].min()))
            img, lab = extract_patch(case["image"], case["seg"], center, patch, params, pad)
            if params.paste_seed >= 0 and self.augment is not None:
                img, lab = paste_lesion(img, lab, self.bank, np.random.default_rng(params.paste_seed), self.augment.lesion_paste_scale, params.lesion_labels, self.augment.lesion_paste_mirror)
            img, lab = apply_flips(img, lab, params)
            img = apply_intensity(apply_lesion_contrast(img, lab, params), params)
            images.append(img)
            labels.append(lab)
        return np.stack(images).astype(np.float32), np.stack(labels).astype(np.int64)

