"""Segmentation metrics in physical units (mm, mL), plain numpy/scipy.

* :mod:`.overlap`: confusion counts, Dice, Jaccard, volumes.
* :mod:`.surface`: surface distances computed once per pair -> HD, HD95, ASD, NSD.
* :mod:`.lesions`: connected components of a tumour label matched between prediction and
  reference -> lesion recall, precision, F1, per-lesion Dice and volumes.
* :func:`case_metrics`: one row of metrics per label (and per region, a union of labels) of a case.

Edge cases everywhere (the ``ref_empty`` / ``pred_empty`` flags of a row say which applies):

=====================  ===========  =============  ==============
metric                 both empty   ref empty      pred empty
=====================  ===========  =============  ==============
dice, jaccard          nan          0              0
precision              nan          0              nan
recall                 nan          nan            0
hd, hd95, asd          nan          inf            inf
nsd                    nan          0              0
volume_error_ml        0            pred volume    -ref volume
volume_error_pct       nan          inf            -100
=====================  ===========  =============  ==============
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from .lesions import LesionSettings, lesion_metrics
from .overlap import (
    confusion,
    dice,
    dice_from_counts,
    jaccard,
    jaccard_from_counts,
    precision_from_counts,
    recall_from_counts,
    volume_error_pct,
    volume_ml,
    voxel_volume_ml,
)
from .surface import SurfaceDistances, check_spacing, surface_distances, surface_voxels

__all__ = [
    "confusion",
    "dice",
    "jaccard",
    "dice_from_counts",
    "jaccard_from_counts",
    "precision_from_counts",
    "recall_from_counts",
    "volume_error_pct",
    "volume_ml",
    "voxel_volume_ml",
    "SurfaceDistances",
    "surface_distances",
    "surface_voxels",
    "mask_metrics",
    "case_metrics",
    "LesionSettings",
    "lesion_metrics",
    "ROW_METRICS",
    "DEFAULT_NSD_TOLERANCE_MM",
]

#: Metric keys of a row that summaries aggregate: Dice, Jaccard, precision, recall, NSD in
#: [0, 1]; HD, HD95, ASD in mm; volumes and volume error in mL; relative volume error in %.
ROW_METRICS = (
    "dice",
    "jaccard",
    "precision",
    "recall",
    "hd",
    "hd95",
    "asd",
    "nsd",
    "ref_volume_ml",
    "pred_volume_ml",
    "volume_error_ml",
    "volume_error_pct",
)

#: Default tolerance of the normalised surface Dice, in mm.
DEFAULT_NSD_TOLERANCE_MM = 2.0

_Box = tuple[slice, ...]


def mask_metrics(
    pred_mask: npt.ArrayLike,
    ref_mask: npt.ArrayLike,
    spacing: Sequence[float],
    *,
    nsd_tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
) -> dict[str, Any]:
    """All per-structure metrics of one binary mask pair; surface distances computed once.

    Args:
        pred_mask, ref_mask: boolean (or 0/1) arrays of one shape, usually (I, J, K).
        spacing: voxel size in mm along each axis.
        nsd_tolerance_mm: tolerance of the normalised surface Dice, in mm.

    Returns a dict with ``dice``, ``jaccard``, ``precision``, ``recall``, ``nsd`` (in [0, 1]),
    ``hd``, ``hd95``, ``asd`` (mm), ``ref_volume_ml``, ``pred_volume_ml``, ``volume_error_ml``
    (pred - ref, mL), ``volume_error_pct`` (100 (pred - ref) / ref), ``ref_empty``,
    ``pred_empty`` (bool flags) and the voxel counts ``tp``, ``fp``, ``fn`` (ints, for pooled
    statistics such as a global Dice). Edge cases as in the package docstring.
    """
    tp, fp, fn = confusion(pred_mask, ref_mask)
    distances = surface_distances(pred_mask, ref_mask, spacing)
    ref_ml, pred_ml = volume_ml(tp + fn, spacing), volume_ml(tp + fp, spacing)
    return {
        "dice": dice_from_counts(tp, fp, fn),
        "jaccard": jaccard_from_counts(tp, fp, fn),
        "precision": precision_from_counts(tp, fp, fn),
        "recall": recall_from_counts(tp, fp, fn),
        "hd": distances.hd,
        "hd95": distances.hd95,
        "asd": distances.asd,
        "nsd": distances.nsd(nsd_tolerance_mm),
        "ref_volume_ml": ref_ml,
        "pred_volume_ml": pred_ml,
        "volume_error_ml": pred_ml - ref_ml,
        "volume_error_pct": volume_error_pct(pred_ml, ref_ml),
        "ref_empty": tp + fn == 0,
        "pred_empty": tp + fp == 0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def _label_array(arr: npt.ArrayLike, what: str) -> np.ndarray:
    out = np.asarray(arr)
    if out.dtype == bool:
        return out.view(np.uint8)
    if not np.issubdtype(out.dtype, np.integer):
        raise ValueError(f"{what} must be an integer label array, found dtype {out.dtype}")
    return out


def _label_value(value: Any, what: str) -> int:
    try:
        label = operator.index(value)
    except TypeError:
        raise ValueError(f"{what}: label values must be integers, found {value!r}") from None
    if label < 0:
        raise ValueError(f"{what}: label values must be >= 0, found {label}")
    return label


def _parse_labels(
    labels: Mapping[int, str], regions: Mapping[str, Sequence[int]] | None
) -> tuple[dict[int, str], dict[str, list[int]]]:
    """Validated ``{label: name}`` (background 0 dropped) and ``{region: [labels]}``."""
    names = {}
    for key, name in labels.items():
        label = _label_value(key, "labels")
        if label != 0:
            names[label] = str(name)
    members: dict[str, list[int]] = {}
    for region, values in (regions or {}).items():
        if isinstance(values, (int, np.integer)):
            values = [values]
        members[str(region)] = sorted(
            {_label_value(v, f"regions[{region!r}]") for v in values} - {0}
        )
        if not members[str(region)]:
            raise ValueError(f"regions[{region!r}] must list at least one non-zero label")
    all_names = list(names.values()) + list(members)
    duplicates = sorted({n for n in all_names if all_names.count(n) > 1})
    if duplicates:
        raise ValueError(f"label and region names must be unique, repeated: {duplicates}")
    return dict(sorted(names.items())), members


def _hull(boxes: Sequence[_Box | None], shape: tuple[int, ...], pad: int = 1) -> _Box | None:
    """Smallest box holding all given boxes, grown by ``pad`` voxels and clipped to ``shape``."""
    present = [b for b in boxes if b is not None]
    if not present:
        return None
    return tuple(
        slice(
            max(min(b[a].start for b in present) - pad, 0),
            min(max(b[a].stop for b in present) + pad, n),
        )
        for a, n in enumerate(shape)
    )


def _positive_box(arr: np.ndarray) -> _Box | None:
    """Bounding box of the voxels > 0, by max-projections that crop as they go (a few ms on a
    512 x 512 x 300 volume, ten times faster than a full ``find_objects`` pass)."""
    if arr.size == 0:
        return None
    box: list[slice] = []
    view = arr
    for axis in range(arr.ndim):
        others = tuple(a for a in range(arr.ndim) if a != axis)
        hits = np.flatnonzero(view.max(axis=others) > 0)
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
        view = view[(slice(None),) * axis + (box[-1],)]
    return tuple(box)


def _label_boxes(arr: np.ndarray, max_label: int) -> list[_Box | None]:
    """``find_objects`` boxes of labels 1..max_label (None where absent), in full-array indices,
    searched only inside the box of the positive voxels."""
    box = _positive_box(arr) if max_label else None
    if box is None:
        return [None] * max_label
    found = ndimage.find_objects(arr[box], max_label=max_label)
    return [
        None if b is None else tuple(slice(s.start + o.start, s.stop + o.start) for s, o in zip(b, box))
        for b in found
    ]


def case_metrics(
    pred: npt.ArrayLike,
    ref: npt.ArrayLike,
    spacing: Sequence[float],
    labels: Mapping[int, str],
    regions: Mapping[str, Sequence[int]] | None = None,
    *,
    nsd_tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
    lesion_labels: Sequence[int] = (),
    lesion_settings: LesionSettings | None = None,
) -> list[dict[str, Any]]:
    """Metrics of one case, one row per label (background 0 skipped), then one per region.

    Args:
        pred: predicted integer label array, shape (I, J, K).
        ref: reference integer label array, same shape.
        spacing: voxel size in mm along (I, J, K).
        labels: ``{label value: name}``; a value absent from both arrays gives a both-empty row.
        regions: optional ``{region name: [label values]}``; each region is scored as the union of
            its labels (e.g. ``{"pancreas+tumour": [1, 2]}``); its ``label`` field is its name.
        nsd_tolerance_mm: tolerance of the normalised surface Dice, in mm.
        lesion_labels: label values (tumours) that also get lesion-wise detection
            (:func:`ctseg.metrics.lesions.lesion_metrics`).
        lesion_settings: connectivity and matching of lesions; default ``LesionSettings()``.

    Returns:
        Rows ``{"label", "name"}`` + the keys of :func:`mask_metrics` (``dice``, ``jaccard``,
        ``precision``, ``recall``, ``hd``, ``hd95``, ``asd``, ``nsd``, volumes, volume errors,
        ``ref_empty``, ``pred_empty``, voxel counts ``tp/fp/fn``). Rows of lesion labels also hold
        the counts of :meth:`LesionResult.counts` (``lesions_ref``, ``lesions_detected``,
        ``lesions_missed``, ``lesions_false``, ``lesion_recall``, ...) and ``lesion_table``, the
        list of per-lesion dicts. Edge cases in the package docstring.

    Only the bounding box of each structure (found for all labels in one pass with
    ``scipy.ndimage.find_objects``) is touched, so large volumes with small structures are fast.

    Raises:
        ValueError: shapes differ, ``spacing`` does not have one positive value per axis, arrays
            are not integer, or label/region definitions are invalid.
    """
    pred_arr = _label_array(pred, "pred")
    ref_arr = _label_array(ref, "ref")
    if pred_arr.shape != ref_arr.shape:
        raise ValueError(
            f"pred and ref must have the same shape, found {pred_arr.shape} and {ref_arr.shape}; "
            "resample the prediction onto the reference grid first"
        )
    sampling = check_spacing(spacing, ref_arr.ndim)
    names, members = _parse_labels(labels, regions)
    max_label = max([*names, *(v for m in members.values() for v in m)], default=0)
    pred_boxes = _label_boxes(pred_arr, max_label)
    ref_boxes = _label_boxes(ref_arr, max_label)
    tiny = np.zeros((1,) * ref_arr.ndim, dtype=bool)
    lesion_set = {_label_value(v, "lesion_labels") for v in lesion_labels}

    def score(values: list[int], lesions: bool = False) -> dict[str, Any]:
        box = _hull(
            [pred_boxes[v - 1] for v in values] + [ref_boxes[v - 1] for v in values], ref_arr.shape
        )
        offset = [0] * ref_arr.ndim
        if box is None:
            pred_mask = ref_mask = tiny
        elif len(values) == 1:
            pred_mask, ref_mask = pred_arr[box] == values[0], ref_arr[box] == values[0]
            offset = [b.start for b in box]
        else:
            pred_mask, ref_mask = np.isin(pred_arr[box], values), np.isin(ref_arr[box], values)
        row = mask_metrics(pred_mask, ref_mask, sampling, nsd_tolerance_mm=nsd_tolerance_mm)
        if lesions:
            found = lesion_metrics(pred_mask, ref_mask, sampling, lesion_settings, offset=offset)
            row.update(found.counts(), lesion_table=found.lesions)
        return row

    rows: list[dict[str, Any]] = []
    for label, name in names.items():
        rows.append({"label": label, "name": name, **score([label], label in lesion_set)})
    for region, values in members.items():
        rows.append({"label": region, "name": region, **score(values)})
    return rows
