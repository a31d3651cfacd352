"""The plan's grid over a whole CT, and the preprocessing of one box of it.

:func:`~ctseg.preprocessing.preprocess_image` resamples the body's box onto a grid of its own, so
where tiles fall depends on the crop. Tiles anchored to the whole volume (MONAI's rule applied
to the uncropped preprocessed CT) need the whole volume's grid instead: :func:`volume_grid`
defines it (cheaply: nothing is resampled) and says which of its voxels the body covers, and
:func:`preprocess_region` resamples only a box of it. That box equals the same box cut from the
whole preprocessed volume (``preprocess_region(grid, plan, whole)``) up to float rounding, so a
prediction can skip what lies outside the body and still match one over the whole volume there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..io.image import Image
from ..io.orientation import Reorientation
from .intensity import normalize
from .pipeline import CaseGeometry, crop_box, shifted_affine
from .plan import Plan
from .resample import grid_for_spacing, resample_array

__all__ = ["VolumeGrid", "volume_grid", "preprocess_region", "tiles_on_body"]

Box = tuple[slice, slice, slice]

# source voxels kept beyond what cubic interpolation reads, so that the spline prefilter (whose
# edge effect decays by 0.27 per voxel) sees the same data as over the whole volume: 0.27^16 ~ 1e-9
_PREFILTER_MARGIN = 16


@dataclass(frozen=True)
class VolumeGrid:
    """A CT reoriented to RAS with the plan's grid over all of it (nothing resampled yet).

    ``crop`` is the box that prediction keeps (the body's, or an organ's box within it) in
    canonical voxels; ``box`` is the block of the plan grid that restoring ``crop`` reads (the
    grid voxels next to every ``crop`` voxel centre, as linear interpolation needs them).
    """

    canonical: np.ndarray  # HU, float32, RAS axis order
    reorientation: Reorientation
    crop: Box
    affine: np.ndarray  # the plan grid over the whole canonical volume: voxel -> RAS mm
    shape: tuple[int, int, int]
    box: Box


def _grid_coords(grid_affine: np.ndarray, canonical_affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) per axis with canonical index = scale * grid index + offset."""
    m = np.linalg.inv(canonical_affine) @ grid_affine
    return np.diag(m[:3, :3]).copy(), m[:3, 3].copy()


def volume_grid(image: Image, plan: Plan, box: Box | None = None) -> VolumeGrid:
    """The plan's grid over the whole of ``image`` (its voxels about ``plan.spacing`` mm, the outer
    faces on the volume's, as :func:`~ctseg.preprocessing.resample.grid_for_spacing` lays them)
    and the body's box on it. ``box`` (canonical voxels) replaces the body's box as in
    :func:`~ctseg.preprocessing.preprocess_image`."""
    reo = Reorientation(image.affine, image.shape)
    canonical = reo.apply(np.asarray(image.array, dtype=np.float32))
    crop = crop_box(canonical, plan, box)
    affine, shape = grid_for_spacing(reo.target_affine, canonical.shape, plan.spacing)
    scale, offset = _grid_coords(affine, reo.target_affine)
    first = (np.array([s.start for s in crop]) - offset) / scale  # grid position of the crop's first voxel centre
    last = (np.array([s.stop - 1 for s in crop]) - offset) / scale
    lo = np.clip(np.floor(first - 1e-6).astype(int), 0, shape)
    hi = np.clip(np.floor(last + 1e-6).astype(int) + 2, 1, shape)
    grid_box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    return VolumeGrid(canonical, reo, crop, affine, shape, grid_box)  # type: ignore[arg-type]


def preprocess_region(grid: VolumeGrid, plan: Plan, region: Box) -> tuple[np.ndarray, CaseGeometry]:
    """Resample (cubic, anti-aliased) and normalise the block ``region`` of ``grid`` (slices of its
    voxels, within ``grid.shape``); returns (float32 array of the region's shape, geometry).

    Only the canonical voxels the region reads (plus the filters' reach) are resampled, and the
    values equal those of the same block of the whole volume preprocessed at once up to float
    rounding (except with histogram equalisation, computed over the region). The geometry restores
    ``grid.crop`` (outside it: background), reading the region for the probabilities there.
    """
    lo = np.array([s.start for s in region])
    hi = np.array([s.stop for s in region])
    if np.any(lo < 0) or np.any(hi > np.asarray(grid.shape)) or np.any(hi <= lo):
        raise ValueError(f"region {region} is not a non-empty block of the grid of shape {grid.shape}")
    target = grid.reorientation.target_affine
    scale, offset = _grid_coords(grid.affine, target)
    reach = np.array([math.ceil(4 * max(0.0, (s - 1) / 2)) + 2 + _PREFILTER_MARGIN for s in scale])
    src_lo = np.maximum(0, np.floor(scale * lo + offset).astype(int) - reach)
    src_hi = np.minimum(grid.canonical.shape, np.ceil(scale * (hi - 1) + offset).astype(int) + 1 + reach)
    source: Box = tuple(slice(int(a), int(b)) for a, b in zip(src_lo, src_hi))  # type: ignore[assignment]
    region_affine = shifted_affine(grid.affine, region)
    shape = tuple(int(b - a) for a, b in zip(lo, hi))
    resampled = resample_array(grid.canonical[source], shifted_affine(target, source), region_affine, shape, order=3)
    geometry = CaseGeometry(
        input_shape=grid.reorientation.source_shape,  # type: ignore[arg-type]
        input_affine=grid.reorientation.source_affine.tolist(),
        crop=[[s.start, s.stop] for s in grid.crop],
        crop_affine=shifted_affine(target, grid.crop).tolist(),
        resampled_shape=shape,  # type: ignore[arg-type]
        resampled_affine=region_affine.tolist(),
    )
    return normalize(resampled, plan.normalization), geometry


def tiles_on_body(grid: VolumeGrid, tiles: list[tuple[int, ...]], patch: tuple[int, ...], threshold: float = -500.0) -> list[tuple[int, ...]]:
    """The tiles (starts on ``grid``, in the order given) whose block, grown by one grid voxel on
    every side, holds a canonical voxel above ``threshold`` HU (the body's: ``plan.crop_threshold_hu``).

    A tile left out covers only air: every voxel it could change, and every input voxel whose
    restored value reads one of them (linear interpolation reads grid voxels less than one grid
    voxel away), lies outside the body, so the probabilities on the body are the same without it.
    """
    scale, offset = _grid_coords(grid.affine, grid.reorientation.target_affine)
    if np.any(scale <= 0):
        return list(tiles)  # only RAS-ordered grids are laid out by grid_for_spacing
    body = grid.canonical > threshold
    size = np.asarray(body.shape)
    keep = []
    for t in tiles:
        first, last = np.asarray(t) - 1, np.asarray(t) + np.asarray(patch)  # grid voxels, one beyond
        lo = np.clip(np.floor(scale * first + offset).astype(int), 0, size)
        hi = np.clip(np.ceil(scale * last + offset).astype(int) + 1, 0, size)
        if np.all(hi > lo) and body[tuple(slice(a, b) for a, b in zip(lo, hi))].any():
            keep.append(t)
    return keep
