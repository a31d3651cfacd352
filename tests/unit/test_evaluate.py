"""ctseg.evaluation: folders of small NIfTI files with known metrics."""

from __future__ import annotations

import csv
import json
import logging
import math

import nibabel as nib
import numpy as np
import pytest

from ctseg.errors import DatasetError, InputError
from ctseg.evaluation import (
    CSV_COLUMNS,
    case_id,
    evaluate,
    format_table,
    load_label_names,
    pair_cases,
)

SPACING = (0.5, 0.5, 2.0)
AFFINE = np.diag([*SPACING, 1.0])
AFFINE[:3, 3] = (-10.0, 20.0, 5.0)
SHAPE = (20, 20, 10)


def save(path, array, affine=AFFINE):
    img = nib.Nifti1Image(np.asarray(array, dtype=np.int16), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    nib.save(img, str(path))
    return path


def make_case(organ_shift=0, tumour_in_pred=True, tumour_in_ref=True):
    ref = np.zeros(SHAPE, dtype=np.int16)
    pred = np.zeros(SHAPE, dtype=np.int16)
    ref[2:8, 2:8, 2:8] = 1
    pred[2 + organ_shift : 8 + organ_shift, 2:8, 2:8] = 1
    if tumour_in_ref:
        ref[12:16, 12:16, 3:7] = 2
    if tumour_in_pred:
        pred[12:16, 12:16, 3:7] = 2
    return pred, ref


@pytest.fixture
def folders(tmp_path):
    """case_a: organ cube shifted 1 voxel (Dice 5/6), tumour exact; case_b: organ exact, tumour missed."""
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    pred_dir.mkdir()
    ref_dir.mkdir()
    for name, kwargs in (("case_a", {"organ_shift": 1}), ("case_b", {"tumour_in_pred": False})):
        pred, ref = make_case(**kwargs)
        save(pred_dir / f"{name}.nii.gz", pred)
        save(ref_dir / f"{name}.nii.gz", ref)
    return pred_dir, ref_dir


def test_evaluate_known_metrics(folders, tmp_path):
    pred_dir, ref_dir = folders
    result = evaluate(
        pred_dir,
        ref_dir,
        tmp_path / "out",
        labels={0: "bg", 1: "organ", 2: "tumour"},
        progress=False,
    )
    assert [(r["case"], r["name"]) for r in result.rows] == [
        ("case_a", "organ"),
        ("case_a", "tumour"),
        ("case_b", "organ"),
        ("case_b", "tumour"),
    ]
    a_organ, a_tumour, b_organ, b_tumour = result.rows
    assert a_organ["dice"] == pytest.approx(5 / 6) and a_organ["hd95"] == pytest.approx(0.5)
    assert a_tumour["dice"] == 1.0 and b_organ["asd"] == 0.0
    assert b_tumour["dice"] == 0.0 and b_tumour["hd95"] == math.inf and b_tumour["pred_empty"]

    organ, tumour = result.summary["labels"]["organ"], result.summary["labels"]["tumour"]
    assert organ["dice"]["mean"] == pytest.approx((5 / 6 + 1) / 2) and organ["dice"]["n"] == 2
    assert organ["dice"]["std"] == pytest.approx((1 - 5 / 6) / 2)
    assert tumour["dice"]["mean"] == pytest.approx(0.5) and tumour["dice"]["n_undefined"] == 0
    assert tumour["hd95"] == {
        "mean": 0.0,
        "median": 0.0,
        "std": 0.0,
        "q1": 0.0,
        "q3": 0.0,
        "iqr": 0.0,
        "min": 0.0,
        "max": 0.0,
        "n": 1,
        "n_nan": 0,
        "n_inf": 1,
        "n_undefined": 1,
    }
    assert tumour["global_dice"] == pytest.approx(2 * 64 / (64 + 128))
    assert organ["global_dice"] == pytest.approx(2 * (180 + 216) / (4 * 216))
    assert result.summary["n_cases"] == 2 and result.summary["cases"] == ["case_a", "case_b"]

    # files: strict JSON (no NaN/Infinity tokens), CSV with the documented columns and inf spelled out
    def no_constants(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    on_disk = json.loads(result.summary_path.read_text(), parse_constant=no_constants)
    assert on_disk["labels"]["tumour"]["global_dice"] == pytest.approx(2 / 3)
    with open(result.csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        table = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS and len(table) == 4
    assert table[3]["case"] == "case_b" and table[3]["label"] == "2" and table[3]["hd95"] == "inf"
    assert float(table[0]["dice"]) == pytest.approx(5 / 6)
    assert float(table[0]["ref_volume_ml"]) == pytest.approx(216 * 0.5 / 1000)
    assert sorted(p.name for p in result.csv_path.parent.iterdir()) == [
        "lesions.csv",  # "tumour" is a lesion label by its name
        "metrics.csv",
        "summary.json",
    ]

    text = format_table(result.summary)
    assert "organ" in text and "tumour" in text and "±" in text and "global dice" in text


def test_nan_written_for_both_empty_and_auto_names(tmp_path):
    pred_dir, ref_dir = tmp_path / "p", tmp_path / "r"
    pred_dir.mkdir()
    ref_dir.mkdir()
    pred, ref = make_case(tumour_in_pred=False, tumour_in_ref=False)
    save(pred_dir / "c1.nii", pred)
    save(ref_dir / "c1.nii.gz", ref)  # .nii and .nii.gz pair by case id
    pred, ref = make_case()
    save(pred_dir / "c2.nii.gz", pred)
    save(ref_dir / "c2.nii.gz", ref)
    result = evaluate(pred_dir, ref_dir, tmp_path / "out", progress=False)
    assert [(r["case"], r["name"]) for r in result.rows] == [
        ("c1", "label_1"),
        ("c1", "label_2"),
        ("c2", "label_1"),
        ("c2", "label_2"),
    ]
    assert math.isnan(result.rows[1]["dice"]) and result.rows[1]["ref_empty"]
    stats = result.summary["labels"]["label_2"]["dice"]
    assert stats["n"] == 1 and stats["n_undefined"] == 1
    lines = result.csv_path.read_text().splitlines()
    assert lines[2].startswith("c1,2,label_2,nan,nan,nan,nan,0.0,0.0")


def test_dataset_json_names_and_regions(folders, tmp_path):
    pred_dir, ref_dir = folders
    dataset = tmp_path / "Task07_Pancreas"
    dataset.mkdir()
    (dataset / "dataset.json").write_text(
        json.dumps({"labels": {"0": "background", "1": "pancreas", "2": "cancer"}})
    )
    assert load_label_names(dataset) == {0: "background", 1: "pancreas", 2: "cancer"}
    result = evaluate(
        pred_dir,
        ref_dir,
        tmp_path / "out",
        dataset=dataset,
        regions={"pancreas+cancer": [1, 2]},
        progress=False,
    )
    assert list(result.summary["labels"]) == ["pancreas", "cancer", "pancreas+cancer"]
    region_rows = [r for r in result.rows if r["label"] == "pancreas+cancer"]
    assert len(region_rows) == 2 and region_rows[1]["dice"] == pytest.approx(2 * 216 / (216 + 280))
    # explicit labels win over dataset.json
    result = evaluate(
        pred_dir, ref_dir, tmp_path / "out2", labels={1: "organ"}, dataset=dataset, progress=False
    )
    assert list(result.summary["labels"]) == ["organ"]


def test_load_label_names_variants_and_errors(tmp_path):
    (tmp_path / "v2.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1}}))
    assert load_label_names(tmp_path / "v2.json") == {0: "background", 1: "liver"}
    with pytest.raises(DatasetError, match="dataset.json not found"):
        load_label_names(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(DatasetError, match="labels"):
        load_label_names(tmp_path / "bad.json")


def test_mismatched_grid_names_both_files(folders, tmp_path):
    pred_dir, ref_dir = folders
    shifted = AFFINE.copy()
    shifted[:3, 3] += (0.0, 0.0, 2.0)
    save(pred_dir / "case_b.nii.gz", make_case()[0], affine=shifted)
    with pytest.raises(InputError) as info:
        evaluate(pred_dir, ref_dir, tmp_path / "out", progress=False)
    message = str(info.value)
    assert str(pred_dir / "case_b.nii.gz") in message and str(ref_dir / "case_b.nii.gz") in message
    assert "2.000 mm" in message and "resample the prediction onto the reference grid" in message
    save(pred_dir / "case_b.nii.gz", np.zeros((20, 20, 9)))
    with pytest.raises(InputError, match=r"\(20, 20, 9\) vs \(20, 20, 10\)"):
        evaluate(pred_dir, ref_dir, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_prediction_and_extra_prediction(folders, tmp_path, caplog):
    pred_dir, ref_dir = folders
    save(pred_dir / "stray.nii.gz", np.zeros(SHAPE))
    with caplog.at_level(logging.WARNING, logger="ctseg.evaluation"):
        pairs = pair_cases(pred_dir, ref_dir)
    assert [p[0] for p in pairs] == ["case_a", "case_b"]
    assert "stray" in caplog.text
    (pred_dir / "case_a.nii.gz").unlink()
    with pytest.raises(InputError, match="1 reference case.*no prediction.*case_a"):
        evaluate(pred_dir, ref_dir, tmp_path / "out", progress=False)
    with pytest.raises(InputError, match="holds no NIfTI"):
        pair_cases(pred_dir, tmp_path)
    with pytest.raises(InputError, match="not found"):
        pair_cases(tmp_path / "missing", ref_dir)


def test_single_files(folders, tmp_path):
    pred_dir, ref_dir = folders
    result = evaluate(
        pred_dir / "case_a.nii.gz",
        ref_dir / "case_a.nii.gz",
        tmp_path / "o1",
        labels={1: "organ"},
        progress=True,
    )
    assert len(result.rows) == 1 and result.rows[0]["dice"] == pytest.approx(5 / 6)
    result = evaluate(
        pred_dir / "case_b.nii.gz", ref_dir, tmp_path / "o2", labels={1: "organ"}, progress=False
    )
    assert [r["case"] for r in result.rows] == ["case_b"]
    assert case_id("x/liver_3.nii.gz") == "liver_3" and case_id("a.nii") == "a"
