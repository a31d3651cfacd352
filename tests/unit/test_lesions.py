"""ctseg.metrics.lesions: constructed cases with known lesion counts (split, merged, touching, empty)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctseg.metrics import case_metrics
from ctseg.metrics.lesions import LESION_COLUMNS, LesionSettings, lesion_metrics

SHAPE = (30, 30, 12)
SPACING = (0.8, 0.8, 2.5)
VOXEL_ML = 0.8 * 0.8 * 2.5 / 1000


def box(lo, hi, shape=SHAPE):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return mask


def by_name(result):
    return {row["lesion"]: row for row in result.lesions}


def test_found_missed_and_false_lesions():
    ref = box((2, 2, 2), (6, 6, 5)) | box((20, 20, 6), (24, 24, 9))
    pred = box((2, 2, 2), (6, 6, 5)) | box((12, 2, 2), (14, 4, 4))  # first found, second missed
    result = lesion_metrics(pred, ref, SPACING)
    assert (result.n_ref, result.n_pred, result.n_detected, result.n_missed) == (2, 2, 1, 1)
    assert (result.n_pred_matched, result.n_false) == (1, 1)
    assert result.recall == 0.5 and result.precision == 0.5 and result.f1 == 0.5
    rows = by_name(result)
    assert list(rows) == ["ref-1", "ref-2", "pred-2"]
    assert rows["ref-1"]["status"] == "detected" and rows["ref-1"]["dice"] == 1.0
    assert rows["ref-1"]["ref_volume_ml"] == pytest.approx(48 * VOXEL_ML)
    assert rows["ref-1"]["score"] == 1.0 and rows["ref-1"]["n_matched"] == 1
    assert rows["ref-2"]["status"] == "missed" and rows["ref-2"]["dice"] == 0.0
    assert rows["ref-2"]["pred_volume_ml"] == 0.0 and rows["ref-2"]["score"] == 0.0
    assert rows["pred-2"]["status"] == "false" and rows["pred-2"]["ref_volume_ml"] == 0.0
    assert rows["pred-2"]["pred_volume_ml"] == pytest.approx(8 * VOXEL_ML)
    # centroid (voxel indices) and equivalent-sphere diameter in mm
    assert (
        rows["ref-2"]["centroid_i"],
        rows["ref-2"]["centroid_j"],
        rows["ref-2"]["centroid_k"],
    ) == (
        21.5,
        21.5,
        7.0,
    )
    volume_mm3 = 48 * 0.8 * 0.8 * 2.5
    assert rows["ref-2"]["diameter_mm"] == pytest.approx((6 * volume_mm3 / math.pi) ** (1 / 3))
    assert all(set(row) == set(LESION_COLUMNS) for row in result.lesions)
    assert result.counts()["lesions_missed"] == 1 and result.counts()["lesions_false"] == 1


def test_split_lesion():
    ref = box((4, 4, 2), (16, 8, 6))  # 12 long along i
    pred = box((4, 4, 2), (9, 8, 6)) | box((10, 4, 2), (16, 8, 6))  # two halves, 1-voxel gap
    many = lesion_metrics(pred, ref, SPACING)
    assert (many.n_ref, many.n_pred, many.n_detected, many.n_pred_matched) == (1, 2, 1, 2)
    assert many.recall == 1.0 and many.precision == 1.0 and many.f1 == 1.0
    row = by_name(many)["ref-1"]
    assert row["n_matched"] == 2 and row["dice"] == pytest.approx(2 * 11 / 23)
    assert row["score"] == pytest.approx(6 / 12)  # IoU of the larger half
    one = lesion_metrics(pred, ref, SPACING, LesionSettings(one_to_one=True))
    assert (one.n_detected, one.n_pred_matched, one.n_false) == (1, 1, 1)
    assert one.precision == 0.5 and one.f1 == pytest.approx(2 / 3)
    assert by_name(one)["ref-1"]["dice"] == pytest.approx(2 * 6 / 18)
    assert by_name(one)["pred-1"]["status"] == "false"  # the smaller half (5 slices) is left over


def test_merged_lesions():
    ref = box((4, 4, 2), (8, 8, 6)) | box((10, 4, 2), (14, 8, 6))
    pred = box((4, 4, 2), (14, 8, 6))  # one prediction covering both and the gap
    many = lesion_metrics(pred, ref, SPACING)
    assert (many.n_ref, many.n_pred, many.n_detected, many.n_pred_matched) == (2, 1, 2, 1)
    assert many.recall == 1.0 and many.precision == 1.0
    rows = by_name(many)
    assert rows["ref-1"]["dice"] == pytest.approx(2 * 4 / (4 + 10))  # whole merged lesion counts
    assert rows["ref-1"]["score"] == pytest.approx(0.4)
    one = lesion_metrics(pred, ref, SPACING, LesionSettings(one_to_one=True))
    assert (one.n_detected, one.n_missed, one.n_false) == (1, 1, 0)
    strict = lesion_metrics(pred, ref, SPACING, LesionSettings(threshold=0.5))
    assert strict.n_detected == 0 and strict.n_false == 1 and strict.f1 == 0.0


def test_touching_lesions_and_connectivity():
    ref = box((4, 4, 4), (6, 6, 6)) | box((6, 6, 6), (8, 8, 8))  # touch at one corner only
    ref |= box((10, 4, 4), (12, 6, 6)) | box((12, 4, 4), (14, 6, 6))  # touch by a face
    assert lesion_metrics(ref, ref, SPACING).n_ref == 2  # 26-connectivity (default)
    assert lesion_metrics(ref, ref, SPACING, LesionSettings(connectivity=18)).n_ref == 3
    assert lesion_metrics(ref, ref, SPACING, LesionSettings(connectivity=6)).n_ref == 3
    edge = box((4, 4, 4), (6, 6, 6)) | box((6, 6, 4), (8, 8, 6))  # share an edge
    assert lesion_metrics(edge, edge, SPACING, LesionSettings(connectivity=18)).n_ref == 1
    assert lesion_metrics(edge, edge, SPACING, LesionSettings(connectivity=6)).n_ref == 2
    flat = lesion_metrics(edge[:, :, 4], edge[:, :, 4], SPACING[:2])  # 2D: 26 is read as 8
    assert flat.n_ref == 1 and math.isnan(flat.lesions[0]["centroid_k"])
    assert (
        lesion_metrics(
            edge[:, :, 4], edge[:, :, 4], SPACING[:2], LesionSettings(connectivity=4)
        ).n_ref
        == 2
    )


def test_criteria_and_small_overlap():
    ref = box((2, 2, 2), (12, 12, 8))  # 600 voxels
    pred = box((11, 11, 7), (14, 14, 10))  # 27 voxels, 1 shared
    assert lesion_metrics(pred, ref, SPACING).n_detected == 0  # IoU = 1/626
    assert lesion_metrics(pred, ref, SPACING, LesionSettings(threshold=0.0)).n_detected == 1
    overlap = LesionSettings(criterion="overlap", threshold=0.03)  # 1/27 of the smaller lesion
    assert lesion_metrics(pred, ref, SPACING, overlap).n_detected == 1
    dice = LesionSettings(criterion="dice", threshold=0.01)  # 2/627 < 0.01
    assert lesion_metrics(pred, ref, SPACING, dice).n_detected == 0


def test_empty_cases():
    empty = np.zeros(SHAPE, dtype=bool)
    lesion = box((2, 2, 2), (5, 5, 5))
    none = lesion_metrics(empty, empty, SPACING)
    assert (none.n_ref, none.n_pred, none.lesions) == (0, 0, [])
    assert math.isnan(none.recall) and math.isnan(none.precision) and math.isnan(none.f1)
    only_pred = lesion_metrics(lesion, empty, SPACING)
    assert only_pred.precision == 0.0 and math.isnan(only_pred.recall) and only_pred.f1 == 0.0
    assert only_pred.n_false == 1 and only_pred.lesions[0]["status"] == "false"
    only_ref = lesion_metrics(empty, lesion, SPACING)
    assert only_ref.recall == 0.0 and math.isnan(only_ref.precision) and only_ref.f1 == 0.0
    assert only_ref.n_missed == 1


def test_settings_validation():
    with pytest.raises(ValueError, match="connectivity"):
        LesionSettings(connectivity=5)
    with pytest.raises(ValueError, match="criterion"):
        LesionSettings(criterion="hausdorff")
    with pytest.raises(ValueError, match="threshold"):
        LesionSettings(threshold=1.0)
    with pytest.raises(ValueError, match="does not apply"):
        lesion_metrics(
            box((0, 0, 0), (2, 2, 2)),
            box((0, 0, 0), (2, 2, 2)),
            SPACING,
            LesionSettings(connectivity=4),
        )
    assert (
        "iou > 0.1" in LesionSettings().describe()
        and "26-connectivity" in LesionSettings().describe()
    )


def test_case_metrics_lesion_rows_use_full_array_indices():
    ref = np.zeros(SHAPE, dtype=np.uint8)
    pred = np.zeros(SHAPE, dtype=np.uint8)
    ref[2:20, 2:20, 1:10] = 1
    pred[2:20, 2:20, 1:10] = 1
    ref[10:14, 12:16, 4:6] = 2
    pred[10:14, 12:16, 4:6] = 2
    pred[3:5, 3:5, 2:4] = 2  # a false tumour
    rows = case_metrics(pred, ref, SPACING, {1: "liver", 2: "tumour"}, lesion_labels=[2])
    liver, tumour = rows
    assert "lesion_table" not in liver and "lesions_ref" not in liver
    assert tumour["lesions_ref"] == 1 and tumour["lesions_false"] == 1
    assert tumour["lesion_precision"] == 0.5 and tumour["lesion_recall"] == 1.0
    found = {row["lesion"]: row for row in tumour["lesion_table"]}
    assert (
        found["ref-1"]["centroid_i"],
        found["ref-1"]["centroid_j"],
        found["ref-1"]["centroid_k"],
    ) == (
        11.5,
        13.5,
        4.5,
    )
    assert [row["status"] for row in tumour["lesion_table"]] == ["detected", "false"]
