"""Axial-slice sampling for 2D networks, from the same preprocessed 3D cases as the patch sampler.

A case is (C, X, Y, Z) with Z the canonical cranio-caudal axis; a 2D sample is an in-plane patch
(C, px, py) of one axial slice ``[..., z]`` and its (px, py) labels. Slices are class-balanced as
3D patches are: a foreground-centred sample draws a foreground class uniformly, then one of its
voxels (which fixes the slice); any other sample draws a slice uniformly. With ``drop_empty``
only slices holding some foreground label are ever drawn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import AugmentSettings
from .augment import PatchParams, apply_flips, apply_intensity, apply_lesion_contrast, make_params
from .sampling import add_components, choose_center, extract_patch

__all__ = ["SliceSampler", "foreground_slices", "choose_slice", "slice_patch", "in_plane_params"]


def foreground_slices(seg: np.ndarray) -> np.ndarray:
    """Indices z of the axial slices of a (1, X, Y, Z) label volume holding any label > 0 (int64, sorted)."""
    return np.flatnonzero(np.asarray(seg)[0].any(axis=(0, 1))).astype(np.int64)


def choose_slice(
    case: dict[str, Any], patch: Sequence[int], rng: np.random.Generator, foreground: bool, slices: np.ndarray | None = None
) -> tuple[int, np.ndarray]:
    """The slice ``z`` and in-plane centre (2,) of one 2D sample of ``case``.

    With ``foreground`` (and some foreground in the case) the centre is a voxel of a uniformly
    drawn foreground class, jittered in-plane as :func:`~ctseg.data.sampling.choose_center` does.
    Otherwise ``z`` is drawn uniformly from ``slices`` (default: every slice) and the centre
    uniformly over positions where the patch overlaps the slice.
    """
    px, py = (int(p) for p in patch)
    if foreground and any(len(v) for v in case["locations"].values()):
        center = choose_center(case, (px, py, 1), rng, True)
        return int(center[2]), center[:2]
    pool = np.arange(case["image"].shape[-1]) if slices is None else slices
    z = int(pool[int(rng.integers(len(pool)))])
    shape = np.array(case["image"].shape[1:3])
    half = np.array([px, py]) // 2
    lo = np.minimum(half, shape // 2)
    hi = np.maximum(shape - half, lo + 1)
    return z, np.array([int(rng.integers(a, b)) for a, b in zip(lo, hi)])


def in_plane_params(params: PatchParams) -> PatchParams:
    """``params`` without flips along the slice axis (2D samples have only the axes 0 and 1)."""
    return dataclasses.replace(params, flips=tuple(a for a in params.flips if a < 2))


def slice_patch(
    case: dict[str, Any], z: int, center: np.ndarray, patch: Sequence[int], params: PatchParams, pad_value: float
) -> tuple[np.ndarray, np.ndarray]:
    """The (C, px, py) image and (px, py) label patch of slice ``z`` centred on ``center``, with the
    spatial part of ``params`` (in-plane rotation, scaling, elastic deformation) applied."""
    image, seg = case["image"][..., z], case["seg"][..., z]
    return extract_patch(image, seg, np.asarray(center), tuple(int(p) for p in patch), params, pad_value)


@dataclass
class SliceSampler:
    """Draws augmented 2D training batches (axial slices) from loaded preprocessed 3D cases.

    Raises:
        ValueError: ``drop_empty`` and no case has a slice with foreground.
    """

    cases: list[dict[str, Any]]
    patch_size: tuple[int, int]
    batch_size: int
    foreground_fraction: float
    augment: AugmentSettings | None
    drop_empty: bool = False
    by_component: bool = False  # as :class:`~ctseg.data.sampling.PatchSampler`
    _slices: list[np.ndarray | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.by_component:
            for case in self.cases:
                add_components(case)
        self._slices = [foreground_slices(c["seg"]) if self.drop_empty else None for c in self.cases]
        if self.drop_empty and not any(len(s) for s in self._slices if s is not None):
            raise ValueError("train.drop_empty_slices is on but no training case has a slice with a foreground label")

    def draw(self, rng: np.random.Generator, foreground: bool) -> tuple[int, int, np.ndarray]:
        """(case index, slice z, in-plane centre) of one sample; cases without a usable slice are skipped."""
        usable = [i for i, s in enumerate(self._slices) if s is None or len(s)]
        index = usable[int(rng.integers(len(usable)))]
        z, center = choose_slice(self.cases[index], self.patch_size, rng, foreground, self._slices[index])
        return index, z, center

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One batch: images (B, 1, px, py) float32 and labels (B, px, py) int64.

        As the 3D sampler, at least one item per batch is foreground-centred when
        ``foreground_fraction`` > 0.
        """
        images, labels = [], []
        for b in range(self.batch_size):
            fg = rng.random() < self.foreground_fraction or (
                b == self.batch_size - 1 and self.foreground_fraction > 0 and not any(x.any() for x in labels)
            )
            params = in_plane_params(make_params(rng, self.augment)) if self.augment else PatchParams()
            index, z, center = self.draw(rng, fg)
            case = self.cases[index]
            pad = float(case.get("pad_value", case["image"][0].min()))
            img, lab = slice_patch(case, z, center, self.patch_size, params, pad)
            img, lab = apply_flips(img, lab, params)
            images.append(apply_intensity(apply_lesion_contrast(img, lab, params), params))
            labels.append(lab)
        return np.stack(images).astype(np.float32), np.stack(labels).astype(np.int64)
