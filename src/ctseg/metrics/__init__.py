"""Segmentation metrics in physical units (mm, mL), plain numpy/scipy.

* :mod:`.overlap`: confusion counts, Dice, Jaccard, volumes.
* :mod:`.surface`: surface distances computed once per pair -> HD, HD95, ASD, NSD.
* :func:`case_metrics`: one row of metrics per label (and per region, a union of labels) of a case.

Edge cases everywhere: both masks empty -> Dice, Jaccard, HD, HD95, ASD, NSD are ``nan``
(undefined); exactly one empty -> Dice = Jaccard = NSD = 0 and HD = HD95 = ASD = ``inf``.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from .overlap import (
    confusion,
    dice,
    dice_from_counts,
    jaccard,
    jaccard_from_counts,
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
    "volume_ml",
    "voxel_volume_ml",
    "SurfaceDistances",
    "surface_distances",
    "surface_voxels",
    "mask_metrics",
    "case_metrics",
    "ROW_METRICS",
]

#: Metric keys of a row that summaries aggregate (Dice, Jaccard in [0, 1]; HD95, ASD in mm).
ROW_METRICS = ("dice", "jaccard", "hd95", "asd")

_Box = tuple[slice, ...]


def mask_metrics(
    pred_mask: npt.ArrayLike, ref_mask: npt.ArrayLike, spacing: Sequence[float]
) -> dict[str, Any]:
    """All per-structure metrics of one binary mask pair.

    Returns a dict with ``dice``, ``jaccard`` (in [0, 1]), ``hd95``, ``asd`` (mm),
    ``ref_volume_ml``, ``pred_volume_ml`` (mL), ``ref_empty``, ``pred_empty`` (bool) and the voxel
    counts ``tp``, ``fp``, ``fn`` (ints, for pooled statistics such as a global Dice). Edge cases as
    in the package docstring.
    """
    tp, fp, fn = confusion(pred_mask, ref_mask)
    distances = surface_distances(pred_mask, ref_mask, spacing)
    return {
        "dice": dice_from_counts(tp, fp, fn),
        "jaccard": jaccard_from_counts(tp, fp, fn),
        "hd95": distances.hd95,
        "asd": distances.asd,
        "ref_volume_ml": volume_ml(tp + fn, spacing),
        "pred_volume_ml": volume_ml(tp + fp, spacing),
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


def case_metrics(
    pred: npt.ArrayLike,
    ref: npt.ArrayLike,
    spacing: Sequence[float],
    labels: Mapping[int, str],
    regions: Mapping[str, Sequence[int]] | None = None,
) -> list[dict[str, Any]]:
    """Metrics of one case, one row per label (background 0 skipped), then one per region.

    Args:
        pred: predicted integer label array, shape (I, J, K).
        ref: reference integer label array, same shape.
        spacing: voxel size in mm along (I, J, K).
        labels: ``{label value: name}``; a value absent from both arrays gives a both-empty row.
        regions: optional ``{region name: [label values]}``; each region is scored as the union of
            its labels (e.g. ``{"pancreas+tumour": [1, 2]}``); its ``label`` field is its name.

    Returns:
        Rows ``{"label", "name", "dice", "jaccard", "hd95", "asd", "ref_volume_ml",
        "pred_volume_ml", "ref_empty", "pred_empty", "tp", "fp", "fn"}`` (see :func:`mask_metrics`;
        ``tp/fp/fn`` are voxel counts). Edge cases: both empty -> nan; one empty -> Dice 0 and
        HD95/ASD inf.

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
    pred_boxes = ndimage.find_objects(pred_arr, max_label=max_label) if max_label else []
    ref_boxes = ndimage.find_objects(ref_arr, max_label=max_label) if max_label else []
    tiny = np.zeros((1,) * ref_arr.ndim, dtype=bool)

    def score(values: list[int]) -> dict[str, Any]:
        box = _hull(
            [pred_boxes[v - 1] for v in values] + [ref_boxes[v - 1] for v in values], ref_arr.shape
        )
        if box is None:
            return mask_metrics(tiny, tiny, sampling)
        if len(values) == 1:
            return mask_metrics(pred_arr[box] == values[0], ref_arr[box] == values[0], sampling)
        return mask_metrics(np.isin(pred_arr[box], values), np.isin(ref_arr[box], values), sampling)

    rows: list[dict[str, Any]] = []
    for label, name in names.items():
        rows.append({"label": label, "name": name, **score([label])})
    for region, values in members.items():
        rows.append({"label": region, "name": region, **score(values)})
    return rows
