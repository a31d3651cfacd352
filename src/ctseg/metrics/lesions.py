"""Lesion-wise detection: connected components matched between prediction and reference.

A *lesion* is a connected component of one label's mask (``cc3d``; 26-connectivity by default,
6 or 18 selectable; 8 or 4 for 2D arrays). Every pair (predicted lesion p, reference lesion r)
that shares voxels gets a match score, by default the IoU ``|p & r| / |p | r|``; the pair
*matches* when the score is strictly greater than the threshold (default IoU > 0.1;
``threshold=0`` means "any overlap").

Counting (the default, many-to-many): a reference lesion is *detected* when at least one
predicted lesion matches it, else *missed*; a predicted lesion is a *true positive* when it
matches at least one reference lesion, else a *false* lesion. So one reference lesion predicted
as two halves is one detected lesion and two true-positive predictions, and one prediction
merging two reference lesions detects both. With ``one_to_one=True`` each lesion takes part in at
most one match (the assignment of largest total score, Hungarian algorithm): a split lesion then
leaves one half as a false lesion, a merge leaves one reference lesion missed.

Rates and their undefined cases: lesion recall = detected / reference lesions (``nan`` without
reference lesions), precision = true-positive predictions / predicted lesions (``nan`` without
predicted lesions), F1 = their harmonic mean (``nan`` when there are no lesions at all, 0 when
only one side has lesions).

Per-lesion Dice of a reference lesion is ``2 |r & P| / (|r| + |P|)`` with ``P`` the union of the
predicted lesions matched to it (0 for a missed lesion); volumes are in mL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cc3d
import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from .overlap import as_mask_pair, voxel_volume_ml
from .surface import check_spacing

__all__ = ["LesionSettings", "LesionResult", "lesion_metrics", "LESION_COLUMNS", "CRITERIA"]

#: Match scores of a (pred, ref) lesion pair: intersection over union, Dice, or intersection over
#: the smaller of the two (overlap coefficient: 1 when one lesion lies inside the other).
CRITERIA = ("iou", "dice", "overlap")
_CONNECTIVITY = {3: (6, 18, 26), 2: (4, 8)}

#: Keys of one lesion row (one per reference lesion, then one per false predicted lesion).
LESION_COLUMNS = (
    "lesion",
    "status",
    "ref_volume_ml",
    "pred_volume_ml",
    "dice",
    "score",
    "n_matched",
    "diameter_mm",
    "centroid_i",
    "centroid_j",
    "centroid_k",
)


@dataclass(frozen=True)
class LesionSettings:
    """How lesions are found and matched (see the module docstring for the conventions).

    Attributes:
        connectivity: 6, 18 or 26 for 3D masks (4 or 8 for 2D; 26 is read as 8 there).
        criterion: match score, one of :data:`CRITERIA`.
        threshold: a pair matches when its score is > threshold, in [0, 1). 0 = any overlap.
        one_to_one: each lesion matched at most once (Hungarian on the score) instead of
            many-to-many.
    """

    connectivity: int = 26
    criterion: str = "iou"
    threshold: float = 0.1
    one_to_one: bool = False

    def __post_init__(self) -> None:
        if self.connectivity not in (4, 6, 8, 18, 26):
            raise ValueError(
                f"lesion connectivity must be 6, 18 or 26 (3D) or 4, 8 (2D), found {self.connectivity}"
            )
        if self.criterion not in CRITERIA:
            raise ValueError(
                f"lesion criterion must be one of {CRITERIA}, found {self.criterion!r}"
            )
        if not 0.0 <= float(self.threshold) < 1.0:
            raise ValueError(f"lesion threshold must lie in [0, 1), found {self.threshold}")

    def describe(self) -> str:
        """One line stating the convention, for summaries."""
        mode = "one-to-one (Hungarian)" if self.one_to_one else "many-to-many"
        return (
            f"connected components ({self.connectivity}-connectivity); a pair matches when its "
            f"{self.criterion} > {self.threshold:g}; {mode}"
        )


@dataclass(frozen=True)
class LesionResult:
    """Lesion detection of one label in one case.

    Attributes:
        n_ref, n_pred: number of reference / predicted lesions.
        n_detected: reference lesions matched by a prediction; ``n_missed = n_ref - n_detected``.
        n_pred_matched: predicted lesions that match a reference lesion;
            ``n_false = n_pred - n_pred_matched``.
        recall, precision, f1: lesion-wise rates (``nan`` where undefined, see the module).
        lesions: one dict per reference lesion, then per false predicted lesion, keys
            :data:`LESION_COLUMNS`: ``lesion`` (``"ref-<n>"`` / ``"pred-<n>"``), ``status``
            (``detected`` | ``missed`` | ``false``), volumes in mL, per-lesion ``dice``, best
            match ``score``, ``n_matched`` partners, equivalent-sphere ``diameter_mm`` and the
            voxel centroid ``centroid_i/j/k`` in the input array's index space.
    """

    n_ref: int
    n_pred: int
    n_detected: int
    n_pred_matched: int
    lesions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_missed(self) -> int:
        return self.n_ref - self.n_detected

    @property
    def n_false(self) -> int:
        return self.n_pred - self.n_pred_matched

    @property
    def recall(self) -> float:
        return self.n_detected / self.n_ref if self.n_ref else float("nan")

    @property
    def precision(self) -> float:
        return self.n_pred_matched / self.n_pred if self.n_pred else float("nan")

    @property
    def f1(self) -> float:
        return f1_from_rates(self.recall, self.precision, self.n_ref, self.n_pred)

    def counts(self) -> dict[str, Any]:
        """Counts and rates as a flat dict (``lesions_*`` and ``lesion_*`` keys)."""
        return {
            "lesions_ref": self.n_ref,
            "lesions_pred": self.n_pred,
            "lesions_detected": self.n_detected,
            "lesions_missed": self.n_missed,
            "lesions_false": self.n_false,
            "lesion_recall": self.recall,
            "lesion_precision": self.precision,
            "lesion_f1": self.f1,
        }


def f1_from_rates(recall: float, precision: float, n_ref: int, n_pred: int) -> float:
    """Harmonic mean of lesion recall and precision: nan without any lesion, 0 when only one side
    has lesions or nothing matches."""
    if n_ref == 0 and n_pred == 0:
        return float("nan")
    if n_ref == 0 or n_pred == 0 or recall + precision == 0:
        return 0.0
    return 2.0 * recall * precision / (recall + precision)


def _components(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    if mask.ndim == 2 and connectivity in (18, 26):
        connectivity = 8
    allowed = _CONNECTIVITY.get(mask.ndim)
    if allowed is None or connectivity not in allowed:
        raise ValueError(
            f"lesion connectivity {connectivity} does not apply to {mask.ndim}D masks "
            f"(use one of {allowed or (6, 18, 26)})"
        )
    labels, n = cc3d.connected_components(mask, connectivity=connectivity, return_N=True)
    return np.asarray(labels), int(n)


def _scores(
    inter: np.ndarray, size_p: np.ndarray, size_r: np.ndarray, criterion: str
) -> np.ndarray:
    if criterion == "iou":
        return inter / (size_p + size_r - inter)
    if criterion == "dice":
        return 2.0 * inter / (size_p + size_r)
    return inter / np.minimum(size_p, size_r)


def _match(
    pairs_p: np.ndarray, pairs_r: np.ndarray, score: np.ndarray, settings: LesionSettings
) -> np.ndarray:
    """Boolean per overlapping pair: does it count as a match."""
    ok = score > settings.threshold
    if not settings.one_to_one or not ok.any():
        return ok
    rows, p_idx = np.unique(pairs_p[ok], return_inverse=True)
    cols, r_idx = np.unique(pairs_r[ok], return_inverse=True)
    gain = np.zeros((rows.size, cols.size))
    gain[p_idx, r_idx] = score[ok]
    chosen_r, chosen_c = linear_sum_assignment(gain, maximize=True)
    keep = {(int(rows[a]), int(cols[b])) for a, b in zip(chosen_r, chosen_c) if gain[a, b] > 0}
    return np.array([(int(p), int(r)) in keep for p, r in zip(pairs_p, pairs_r)], dtype=bool) & ok


def _statistics(labels: np.ndarray, n: int, offset: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Voxel counts (n + 1,) and voxel centroids (n + 1, ndim) in full-array indices of components
    0..n (row 0 is the background), in one pass (``cc3d.statistics``)."""
    found = cc3d.statistics(labels)
    counts = np.zeros(n + 1, dtype=np.int64)
    centres = np.zeros((n + 1, labels.ndim))
    size = min(n + 1, len(found["voxel_counts"]))
    counts[:size] = found["voxel_counts"][:size]
    centres[:size] = np.asarray(found["centroids"], dtype=np.float64)[:size] + np.asarray(offset)
    return counts, centres


def _row(
    name: str,
    status: str,
    ref_vox: int,
    pred_vox: int,
    dice: float,
    score: float,
    n_matched: int,
    voxel_ml: float,
    centroid: np.ndarray,
) -> dict[str, Any]:
    volume = (ref_vox if ref_vox else pred_vox) * voxel_ml * 1000.0  # mm^3
    centre = [round(float(c), 2) for c in centroid] + [float("nan")] * (3 - centroid.size)
    return {
        "lesion": name,
        "status": status,
        "ref_volume_ml": ref_vox * voxel_ml,
        "pred_volume_ml": pred_vox * voxel_ml,
        "dice": dice,
        "score": score,
        "n_matched": n_matched,
        "diameter_mm": float((6.0 * volume / np.pi) ** (1.0 / 3.0)),
        "centroid_i": centre[0],
        "centroid_j": centre[1],
        "centroid_k": centre[2],
    }


def lesion_metrics(
    pred_mask: npt.ArrayLike,
    ref_mask: npt.ArrayLike,
    spacing: Sequence[float],
    settings: LesionSettings | None = None,
    *,
    offset: Sequence[int] | None = None,
) -> LesionResult:
    """Lesion-wise detection of one label: components of both masks, matched by overlap.

    Args:
        pred_mask, ref_mask: boolean (or 0/1) masks of one label, same shape, (I, J, K) or 2D.
        spacing: voxel size in mm per axis (volumes in mL, diameters in mm).
        settings: connectivity and matching convention; default :class:`LesionSettings()`.
        offset: index of ``pred_mask[0, 0, 0]`` in the full array when the masks are a crop;
            centroids are reported in full-array indices.

    Returns:
        :class:`LesionResult`. Empty masks are allowed: no lesions -> counts 0, rates nan.

    Raises:
        ValueError: shapes differ, bad spacing, or a connectivity that does not fit the masks.
    """
    settings = settings or LesionSettings()
    pred, ref = as_mask_pair(pred_mask, ref_mask)
    voxel_ml = voxel_volume_ml(check_spacing(spacing, pred.ndim))
    offset = tuple(offset) if offset is not None else (0,) * pred.ndim
    pred_cc, n_pred = _components(pred, settings.connectivity)
    ref_cc, n_ref = _components(ref, settings.connectivity)
    size_p, pred_centres = _statistics(pred_cc, n_pred, offset)
    size_r, ref_centres = _statistics(ref_cc, n_ref, offset)
    both = (pred_cc > 0) & (ref_cc > 0)
    keys, inter = np.unique(
        pred_cc[both].astype(np.int64) * (n_ref + 1) + ref_cc[both], return_counts=True
    )
    pairs_p, pairs_r = keys // (n_ref + 1), keys % (n_ref + 1)
    score = _scores(inter.astype(np.float64), size_p[pairs_p], size_r[pairs_r], settings.criterion)
    matched = _match(pairs_p, pairs_r, score, settings)

    rows: list[dict[str, Any]] = []
    for r in range(1, n_ref + 1):
        mine = matched & (pairs_r == r)
        pred_vox = int(size_p[pairs_p[mine]].sum())
        dice = 2.0 * float(inter[mine].sum()) / (size_r[r] + pred_vox)
        best = float(score[pairs_r == r].max()) if (pairs_r == r).any() else 0.0
        status = "detected" if mine.any() else "missed"
        rows.append(
            _row(
                f"ref-{r}",
                status,
                int(size_r[r]),
                pred_vox,
                dice,
                best,
                int(mine.sum()),
                voxel_ml,
                ref_centres[r],
            )
        )
    true_pred = np.zeros(n_pred + 1, dtype=bool)
    true_pred[pairs_p[matched]] = True
    for p in np.flatnonzero(~true_pred[1:]) + 1:
        best = float(score[pairs_p == p].max()) if (pairs_p == p).any() else 0.0
        rows.append(
            _row(f"pred-{p}", "false", 0, int(size_p[p]), 0.0, best, 0, voxel_ml, pred_centres[p])
        )
    n_detected = int(np.unique(pairs_r[matched]).size)
    return LesionResult(n_ref, n_pred, n_detected, int(true_pred.sum()), rows)
