"""Overlap metrics of binary masks: confusion counts, Dice, Jaccard and volumes in mL.

Masks are boolean (or 0/1) arrays of identical shape, any number of dimensions; voxel order does
not matter. Counts are voxel counts; volumes use the voxel size in mm (1 mL = 1000 mm^3).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "confusion",
    "dice",
    "jaccard",
    "dice_from_counts",
    "jaccard_from_counts",
    "precision_from_counts",
    "recall_from_counts",
    "volume_error_pct",
    "voxel_volume_ml",
    "volume_ml",
]


def as_mask_pair(
    pred_mask: npt.ArrayLike, ref_mask: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as boolean arrays; ValueError when their shapes differ."""
    pred = np.asarray(pred_mask).astype(bool, copy=False)
    ref = np.asarray(ref_mask).astype(bool, copy=False)
    if pred.shape != ref.shape:
        raise ValueError(
            f"pred_mask and ref_mask must have the same shape, found {pred.shape} and {ref.shape}; "
            "resample the prediction onto the reference grid first"
        )
    return pred, ref


def confusion(pred_mask: npt.ArrayLike, ref_mask: npt.ArrayLike) -> tuple[int, int, int]:
    """Voxel counts ``(tp, fp, fn)`` of a predicted mask against a reference mask.

    ``tp`` = in both, ``fp`` = predicted only, ``fn`` = reference only. Non-zero values count as
    foreground.

    Raises:
        ValueError: the two masks differ in shape.
    """
    pred, ref = as_mask_pair(pred_mask, ref_mask)
    n_pred = int(np.count_nonzero(pred))
    n_ref = int(np.count_nonzero(ref))
    tp = int(np.count_nonzero(pred & ref))
    return tp, n_pred - tp, n_ref - tp


def dice_from_counts(tp: int, fp: int, fn: int) -> float:
    """Dice ``2 tp / (2 tp + fp + fn)``; ``nan`` when both masks are empty (all counts zero)."""
    denom = 2 * tp + fp + fn
    return float("nan") if denom == 0 else 2.0 * tp / denom


def jaccard_from_counts(tp: int, fp: int, fn: int) -> float:
    """Jaccard (IoU) ``tp / (tp + fp + fn)``; ``nan`` when both masks are empty."""
    denom = tp + fp + fn
    return float("nan") if denom == 0 else tp / denom


def precision_from_counts(tp: int, fp: int, fn: int) -> float:
    """Precision (positive predictive value) ``tp / (tp + fp)``, in [0, 1].

    Undefined -> ``nan`` when the prediction is empty (``tp + fp == 0``), whatever the reference.
    ``fn`` is accepted for a uniform signature and ignored.
    """
    denom = tp + fp
    return float("nan") if denom == 0 else tp / denom


def recall_from_counts(tp: int, fp: int, fn: int) -> float:
    """Recall (sensitivity) ``tp / (tp + fn)``, in [0, 1].

    Undefined -> ``nan`` when the reference is empty (``tp + fn == 0``), whatever the prediction.
    ``fp`` is accepted for a uniform signature and ignored.
    """
    denom = tp + fn
    return float("nan") if denom == 0 else tp / denom


def volume_error_pct(pred_volume: float, ref_volume: float) -> float:
    """Relative volume error ``100 (pred - ref) / ref`` in percent (any volume unit, both alike).

    Positive = over-segmentation. Reference empty: ``nan`` when the prediction is empty too,
    ``inf`` when it is not (an infinitely large relative error, as for the surface distances).
    """
    if ref_volume == 0:
        return float("nan") if pred_volume == 0 else float("inf")
    return 100.0 * (pred_volume - ref_volume) / ref_volume


def dice(pred_mask: npt.ArrayLike, ref_mask: npt.ArrayLike) -> float:
    """Dice similarity coefficient of two binary masks, in [0, 1].

    Edge cases: both masks empty -> ``nan`` (undefined; summaries count it apart); exactly one
    empty -> ``0.0``.
    """
    return dice_from_counts(*confusion(pred_mask, ref_mask))


def jaccard(pred_mask: npt.ArrayLike, ref_mask: npt.ArrayLike) -> float:
    """Jaccard index (intersection over union) of two binary masks, in [0, 1].

    Edge cases: both masks empty -> ``nan``; exactly one empty -> ``0.0``.
    """
    return jaccard_from_counts(*confusion(pred_mask, ref_mask))


def voxel_volume_ml(spacing: Sequence[float]) -> float:
    """Volume of one voxel in mL from its size in mm along each axis (mm^3 / 1000)."""
    return float(np.prod(np.asarray(spacing, dtype=np.float64))) / 1000.0


def volume_ml(mask_or_count: npt.ArrayLike | int, spacing: Sequence[float]) -> float:
    """Volume in mL of a mask (its non-zero voxels) or of a voxel count, given spacing in mm."""
    if isinstance(mask_or_count, (int, np.integer)):
        count = int(mask_or_count)
    else:
        count = int(np.count_nonzero(np.asarray(mask_or_count)))
    return count * voxel_volume_ml(spacing)
