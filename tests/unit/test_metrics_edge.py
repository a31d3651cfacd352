"""ctseg.metrics: the full metric set of a row, its documented edge cases, and how the work is done
(distances once per pair, only inside the bounding box of the union, both algorithms equal)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

import ctseg.metrics.surface as surface_module
from ctseg.metrics import (
    DEFAULT_NSD_TOLERANCE_MM,
    ROW_METRICS,
    case_metrics,
    mask_metrics,
    precision_from_counts,
    recall_from_counts,
    surface_distances,
    volume_error_pct,
)

SPACING = (0.7, 0.7, 3.0)
VOXEL_ML = 0.7 * 0.7 * 3.0 / 1000


def cube(shape, start, size):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + size) for s in start)] = True
    return mask


def test_known_values_for_shifted_cubes():
    ref = cube((20, 20, 20), (4, 4, 4), 6)
    pred = cube((20, 20, 20), (5, 4, 4), 6)  # shifted one voxel (0.7 mm) along i
    row = mask_metrics(pred, ref, SPACING)
    assert set(ROW_METRICS) <= set(row)
    assert row["precision"] == pytest.approx(5 / 6) and row["recall"] == pytest.approx(5 / 6)
    assert row["hd"] == pytest.approx(0.7) and row["hd95"] == pytest.approx(0.7)
    assert row["nsd"] == 1.0  # every surface voxel within 2 mm
    assert mask_metrics(pred, ref, SPACING, nsd_tolerance_mm=0.5)["nsd"] < 1.0
    assert row["volume_error_ml"] == 0.0 and row["volume_error_pct"] == 0.0
    bigger = cube((20, 20, 20), (4, 4, 4), 7)
    row = mask_metrics(bigger, ref, SPACING)
    assert row["precision"] == pytest.approx(216 / 343) and row["recall"] == 1.0
    assert row["volume_error_ml"] == pytest.approx((343 - 216) * VOXEL_ML)
    assert row["volume_error_pct"] == pytest.approx(100 * (343 - 216) / 216)
    assert DEFAULT_NSD_TOLERANCE_MM == 2.0


def test_documented_edge_cases():
    empty = np.zeros((8, 8, 8), dtype=bool)
    mask = cube((8, 8, 8), (2, 2, 2), 3)
    both = mask_metrics(empty, empty, SPACING)
    for key in (
        "dice",
        "jaccard",
        "precision",
        "recall",
        "hd",
        "hd95",
        "asd",
        "nsd",
        "volume_error_pct",
    ):
        assert math.isnan(both[key]), key
    assert both["volume_error_ml"] == 0.0 and both["ref_empty"] and both["pred_empty"]

    ref_empty = mask_metrics(mask, empty, SPACING)  # prediction only: a false positive structure
    assert ref_empty["ref_empty"] and not ref_empty["pred_empty"]
    assert (
        ref_empty["dice"] == 0.0 and ref_empty["jaccard"] == 0.0 and ref_empty["precision"] == 0.0
    )
    assert math.isnan(ref_empty["recall"])
    assert ref_empty["hd"] == ref_empty["hd95"] == ref_empty["asd"] == math.inf
    assert ref_empty["nsd"] == 0.0 and ref_empty["volume_error_pct"] == math.inf
    assert ref_empty["volume_error_ml"] == pytest.approx(27 * VOXEL_ML)

    pred_empty = mask_metrics(empty, mask, SPACING)  # structure missed
    assert pred_empty["pred_empty"] and not pred_empty["ref_empty"]
    assert pred_empty["dice"] == 0.0 and pred_empty["recall"] == 0.0
    assert math.isnan(pred_empty["precision"])
    assert pred_empty["hd"] == pred_empty["hd95"] == pred_empty["asd"] == math.inf
    assert pred_empty["nsd"] == 0.0 and pred_empty["volume_error_pct"] == -100.0
    assert pred_empty["volume_error_ml"] == pytest.approx(-27 * VOXEL_ML)


def test_count_helpers():
    assert precision_from_counts(3, 1, 5) == 0.75 and recall_from_counts(3, 1, 5) == 3 / 8
    assert math.isnan(precision_from_counts(0, 0, 4)) and recall_from_counts(0, 0, 4) == 0.0
    assert math.isnan(recall_from_counts(0, 4, 0)) and precision_from_counts(0, 4, 0) == 0.0
    assert volume_error_pct(12.0, 10.0) == pytest.approx(20.0)
    assert math.isnan(volume_error_pct(0.0, 0.0)) and volume_error_pct(1.0, 0.0) == math.inf


@pytest.mark.parametrize("seed", range(4))
def test_kdtree_and_edt_give_the_same_distances(seed):
    rng = np.random.default_rng(seed)
    shape = (18, 16, 10)
    pred = ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.5
    ref = ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.5
    spacing = tuple(float(s) for s in rng.uniform(0.5, 3.0, size=3))
    a = surface_distances(pred, ref, spacing, algorithm="kdtree")
    b = surface_distances(pred, ref, spacing, algorithm="edt")
    np.testing.assert_allclose(a.pred_to_ref, b.pred_to_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.ref_to_pred, b.ref_to_pred, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="algorithm"):
        surface_distances(pred, ref, spacing, algorithm="brute")


def test_distances_once_per_pair_inside_the_union_box(monkeypatch):
    """mask_metrics computes the surface distances once; only the (padded) box of the union of
    both masks is handed to the surface extraction and the nearest-neighbour search."""
    shapes, calls = [], []
    real_surface, real_pair = surface_module.surface_voxels, surface_module._directed_pair

    def record_surface(mask):
        shapes.append(mask.shape)
        return real_surface(mask)

    def record_pair(*args):
        calls.append(args[0].shape)
        return real_pair(*args)

    monkeypatch.setattr(surface_module, "surface_voxels", record_surface)
    monkeypatch.setattr(surface_module, "_directed_pair", record_pair)
    shape = (60, 50, 40)
    pred = cube(shape, (10, 20, 5), 6)
    ref = cube(shape, (14, 22, 8), 6)  # union spans i 10..19, j 20..27, k 5..13
    row = mask_metrics(pred, ref, SPACING)
    assert calls == [(12, 10, 11)] and shapes == [(12, 10, 11), (12, 10, 11)]
    assert row["hd"] > 0 and math.isfinite(row["nsd"])

    shapes.clear(), calls.clear()
    labels_pred = pred.astype(np.uint8) + 2 * cube(shape, (40, 5, 30), 4)
    labels_ref = ref.astype(np.uint8) + 2 * cube(shape, (41, 5, 30), 4)
    case_metrics(labels_pred, labels_ref, SPACING, {1: "organ", 2: "tumour"})
    assert calls == [(12, 10, 11), (7, 6, 6)]  # one call per label, each on its own box


def test_case_metrics_rows_carry_all_metrics_and_tolerance():
    pred = np.zeros((20, 20, 10), dtype=np.uint8)
    ref = np.zeros_like(pred)
    ref[2:8, 2:8, 2:8] = 1
    pred[3:9, 2:8, 2:8] = 1
    row = case_metrics(pred, ref, SPACING, {1: "organ"}, nsd_tolerance_mm=0.5)[0]
    assert set(ROW_METRICS) <= set(row)
    expected = mask_metrics(pred == 1, ref == 1, SPACING, nsd_tolerance_mm=0.5)
    for key in ROW_METRICS:
        assert row[key] == pytest.approx(expected[key], nan_ok=True), key
    assert row["nsd"] < 1.0


@pytest.mark.parametrize("seed", range(3))
def test_label_boxes_equal_find_objects(seed):
    from ctseg.metrics import _label_boxes

    rng = np.random.default_rng(seed)
    arr = np.zeros((30, 25, 20), dtype=np.int16)
    for value in (1, 2, 4):  # label 3 absent
        lo = rng.integers(0, 15, size=3)
        hi = lo + rng.integers(1, 10, size=3)
        arr[tuple(slice(a, b) for a, b in zip(lo, hi))] = value
    arr[0, 0, 0] = -5  # negative values are no label
    assert _label_boxes(arr, 4) == ndimage.find_objects(arr, max_label=4)
    assert _label_boxes(arr, 2) == ndimage.find_objects(arr, max_label=2)
    assert _label_boxes(np.zeros((4, 4, 4), np.uint8), 2) == [None, None]
    assert _label_boxes(arr, 0) == []
