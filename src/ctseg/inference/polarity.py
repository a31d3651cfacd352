"""Polarity test-time augmentation: lesions brighter than their organ, found as darker ones.

A network trained on mostly hypodense lesions (most liver tumours) gives hyperdense ones a
probability near 0, yet finds the same lesion once its contrast is mirrored (measured on the demo's
runs: README, "What `ctseg demo` does"). This pass predicts once more on the volume with the
intensities just above the host organ's median mirrored below it, and adds the lesion regions found
there that are brighter than the organ, lie in it, are large enough and are not elongated: the
partial-volume rims of contrast vessels also fall in the mirrored band, and mirrored they are dark
tubes, which a network trained on dark lesions calls lesion (measured on the demo's runs: README).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cc3d
import numpy as np
from scipy import ndimage

from ..config import Config
from ..errors import InputError
from ..preprocessing import Plan

__all__ = ["PolarityRule", "add_mirrored_lesions", "elongation", "mirror_above_median", "polarity_rule"]


@dataclass(frozen=True)
class PolarityRule:
    """Labels and thresholds of the pass; HU values are converted with ``hu_per_unit``."""

    lesion: int
    host: int
    hu_per_unit: float  # the plan's normalisation: one network unit is this many HU
    band_hu: float = 50.0  # intensities up to this far above the organ's median are mirrored
    min_contrast_hu: float = 10.0  # an added region is brighter than the organ's median by this (3-voxel mean)
    min_volume_mm3: float = 1000.0  # smaller regions found this way are not added
    max_elongation: float = 2.0  # more elongated regions (vessel rims) are not added; 0 = no limit


def elongation(region: np.ndarray, spacing: tuple[float, ...]) -> float:
    """Length over width of a region: the square root of the largest over the smallest eigenvalue
    of the covariance of its voxels' positions in mm, each voxel a box of ``spacing`` (so that a
    region one slice thick is not infinitely flat). A ball is 1, a tube of length L and diameter D
    about L / D * 1.15 (sqrt(4/3)) once L is several times D.
    """
    points = np.argwhere(region).astype(np.float64) * np.asarray(spacing, dtype=np.float64)
    if len(points) == 0:
        return float("inf")
    cov = np.atleast_2d(np.cov(points.T, bias=True)) + np.diag(np.asarray(spacing, dtype=np.float64) ** 2 / 12.0)
    eigen = np.linalg.eigvalsh(cov)
    return float(np.sqrt(eigen[-1] / eigen[0]))


def mirror_above_median(volume: np.ndarray, median: float, band: float) -> np.ndarray:
    """``volume`` with the values in (median, median + band) mirrored about ``median``; the rest
    (the organ's darker half, vessels and bone above the band) unchanged."""
    out = volume.astype(np.float32, copy=True)
    inside = (volume > median) & (volume < median + band)
    out[inside] = 2.0 * median - volume[inside]
    return out


def add_mirrored_lesions(
    volume: np.ndarray,
    probs: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
    rule: PolarityRule,
    spacing: tuple[float, ...],
) -> np.ndarray:
    """Class probabilities (C, *spatial) with the lesions of the mirrored pass added.

    ``volume`` is the preprocessed (*spatial) image that gave ``probs``; ``predict`` maps such a
    volume to probabilities. A region the mirrored pass labels as the lesion is added (its voxels
    take the mirrored pass's probabilities) when it is not already lesion, lies in the organ (host
    or lesion, closed by 3 voxels), is brighter than the organ's median by ``min_contrast_hu``,
    holds at least ``min_volume_mm3`` and is at most ``max_elongation`` times as long as it is wide
    (:func:`elongation`). Without 27 voxels of the organ nothing changes.
    """
    labels = probs.argmax(0)
    host = labels == rule.host
    if int(host.sum()) < 27:
        return probs
    median = float(np.median(volume[host]))
    mirrored = predict(mirror_above_median(volume, median, rule.band_hu / rule.hu_per_unit))
    organ = ndimage.binary_closing(host | (labels == rule.lesion), iterations=3)
    bright = ndimage.uniform_filter(volume.astype(np.float32), 3) > median + rule.min_contrast_hu / rule.hu_per_unit
    found = (mirrored.argmax(0) == rule.lesion) & organ & bright & (labels != rule.lesion)
    if not found.any():
        return probs
    regions = cc3d.connected_components(found, connectivity=26)
    sizes = np.bincount(regions.ravel())
    keep = np.flatnonzero(sizes * float(np.prod(spacing)) >= rule.min_volume_mm3)
    keep = keep[keep > 0]
    if rule.max_elongation > 0:  # each region measured in its own box (one pass finds them all)
        boxes = ndimage.find_objects(regions)
        keep = np.array([k for k in keep if elongation(regions[boxes[k - 1]] == k, spacing) <= rule.max_elongation], dtype=np.int64)
    if keep.size == 0:
        return probs
    added = np.isin(regions, keep)
    out = probs.copy()
    out[:, added] = mirrored[:, added]
    return out


def polarity_rule(cfg: Config, plan: Plan, run: Path, strict: bool) -> PolarityRule | None:
    """The polarity pass's labels and thresholds. Where it cannot work: an error when ``strict``
    (asked for by name), else None (on in a config shared by runs it does not fit, e.g. 2D)."""
    lesion, host = (int(v) for v in cfg.train.augment.lesion_labels)
    missing = [v for v in (lesion, host) if v not in plan.labels]
    problem = None
    if missing:
        problem = f"polarity TTA needs the lesion and host labels {lesion} and {host} (train.augment.lesion_labels) but the plan has no label {missing[0]}; set them or drop --polarity-tta"
    elif plan.spatial_dims != 3 or plan.normalization.get("equalize"):
        problem = "polarity TTA needs a 3D run with linear intensity normalisation (no histogram equalisation); drop --polarity-tta"
    if problem is not None:
        if strict:
            raise InputError(f"{run}: {problem}")
        return None
    p = cfg.predict
    return PolarityRule(lesion, host, float(plan.normalization["std"]), p.polarity_band_hu, p.polarity_min_contrast_hu, 1000.0 * p.polarity_min_ml, p.polarity_max_elongation)
