"""ctseg.evaluation: the new columns, IQR statistics, lesion table and lesion summary, and the CLI."""

from __future__ import annotations

import csv
import json
import math

import nibabel as nib
import numpy as np
import pytest

from ctseg.cli import main
from ctseg.errors import InputError
from ctseg.evaluation import (
    CSV_COLUMNS,
    LESION_CSV_COLUMNS,
    evaluate,
    find_lesion_labels,
    format_table,
)
from ctseg.metrics import LesionSettings

SPACING = (0.5, 0.5, 2.0)
SHAPE = (24, 24, 10)
LABELS = {0: "background", 1: "organ", 2: "tumour"}


def save(path, array):
    affine = np.diag([*SPACING, 1.0])
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=np.int16), affine), str(path))


def organ(shift):
    ref = np.zeros(SHAPE, dtype=np.int16)
    pred = np.zeros(SHAPE, dtype=np.int16)
    ref[2:8, 10:16, 1:7] = 1
    pred[2 + shift : 8 + shift, 10:16, 1:7] = 1
    return pred, ref


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """case_a: two tumours, one found, one missed, one false; case_b: one tumour predicted in two
    halves; case_c: no tumour anywhere. Organ Dice 5/6, 1 and 2/3."""
    root = tmp_path_factory.mktemp("lesions")
    pred_dir, ref_dir = root / "pred", root / "ref"
    pred_dir.mkdir()
    ref_dir.mkdir()
    pred, ref = organ(1)
    ref[2:6, 2:6, 2:5] = 2
    pred[2:6, 2:6, 2:5] = 2
    ref[14:18, 14:18, 5:8] = 2
    pred[10:12, 2:4, 8:10] = 2
    save(pred_dir / "case_a.nii.gz", pred)
    save(ref_dir / "case_a.nii.gz", ref)
    pred, ref = organ(0)
    ref[14:20, 2:6, 2:6] = 2  # 96 voxels
    pred[14:16, 2:6, 2:6] = 2  # 32 voxels
    pred[17:20, 2:6, 2:6] = 2  # 48 voxels, a one-slice gap between the halves
    save(pred_dir / "case_b.nii.gz", pred)
    save(ref_dir / "case_b.nii.gz", ref)
    pred, ref = organ(2)
    save(pred_dir / "case_c.nii.gz", pred)
    save(ref_dir / "case_c.nii.gz", ref)
    return pred_dir, ref_dir


def test_lesion_table_and_summary(folders, tmp_path):
    pred_dir, ref_dir = folders
    result = evaluate(pred_dir, ref_dir, tmp_path / "out", labels=LABELS, progress=False)
    assert result.lesions_path == tmp_path / "out" / "lesions.csv"
    statuses = [(r["case"], r["lesion"], r["status"]) for r in result.lesion_rows]
    assert statuses == [
        ("case_a", "ref-1", "detected"),
        ("case_a", "ref-2", "missed"),
        ("case_a", "pred-2", "false"),
        ("case_b", "ref-1", "detected"),
    ]
    assert result.lesion_rows[3]["dice"] == pytest.approx(2 * 80 / (96 + 80))
    assert result.lesion_rows[3]["n_matched"] == 2
    with open(result.lesions_path, newline="") as handle:
        reader = csv.DictReader(handle)
        table = list(reader)
    assert tuple(reader.fieldnames) == LESION_CSV_COLUMNS and len(table) == 4
    assert (
        table[1]["status"] == "missed" and table[1]["name"] == "tumour" and table[1]["label"] == "2"
    )
    assert float(table[0]["ref_volume_ml"]) == pytest.approx(48 * 0.5 / 1000)

    lesions = result.summary["lesions"]
    assert "iou > 0.1" in lesions["convention"] and lesions["settings"]["connectivity"] == 26
    tumour = lesions["labels"]["tumour"]
    assert (tumour["lesions_ref"], tumour["lesions_detected"], tumour["lesions_missed"]) == (
        3,
        2,
        1,
    )
    assert (tumour["lesions_pred"], tumour["lesions_false"]) == (4, 1)
    assert tumour["recall"] == pytest.approx(2 / 3) and tumour["precision"] == pytest.approx(3 / 4)
    assert tumour["f1"] == pytest.approx(12 / 17)
    assert tumour["per_case_f1"]["mean"] == pytest.approx(0.75)
    assert tumour["per_case_f1"]["n"] == 2 and tumour["per_case_f1"]["n_nan"] == 1
    assert tumour["lesion_dice"]["median"] == pytest.approx(160 / 176)
    assert tumour["detected_lesion_dice"]["n"] == 2
    assert tumour["per_case"]["case_c"]["lesions_ref"] == 0
    assert list(lesions["labels"]) == ["tumour"]  # the organ is no lesion label

    on_disk = json.loads(result.summary_path.read_text())
    assert on_disk["lesions"]["labels"]["tumour"]["per_case"]["case_c"]["lesion_recall"] is None
    text = format_table(result.summary)
    assert "2/3 detected" in text and "1 missed" in text and "1 false of 4 predicted" in text


def test_metrics_csv_columns_and_iqr(folders, tmp_path):
    pred_dir, ref_dir = folders
    result = evaluate(
        pred_dir, ref_dir, tmp_path / "out", labels=LABELS, nsd_tolerance_mm=0.4, progress=False
    )
    with open(result.csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        table = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    for column in (
        "precision",
        "recall",
        "hd",
        "nsd",
        "volume_error_ml",
        "volume_error_pct",
        "lesions_missed",
    ):
        assert column in CSV_COLUMNS
    organ_a, tumour_a = table[0], table[1]
    assert organ_a["lesions_ref"] == "" and tumour_a["lesions_ref"] == "2"
    assert tumour_a["lesions_missed"] == "1" and tumour_a["lesions_false"] == "1"
    assert float(organ_a["precision"]) == pytest.approx(5 / 6) and float(
        organ_a["hd"]
    ) == pytest.approx(0.5)
    assert float(organ_a["nsd"]) < 1.0  # a 0.5 mm shift is beyond the 0.4 mm tolerance
    tumour_c = table[5]
    assert (
        tumour_c["ref_empty"] == "True"
        and tumour_c["dice"] == "nan"
        and tumour_c["volume_error_ml"] == "0.0"
    )

    dice = result.summary["labels"]["organ"]["dice"]
    assert dice["q1"] == pytest.approx(0.75) and dice["q3"] == pytest.approx(11 / 12)
    assert dice["iqr"] == pytest.approx(1 / 6) and dice["median"] == pytest.approx(5 / 6)
    assert "0.4 mm" in result.summary["conventions"]["nsd"]
    tumour = result.summary["labels"]["tumour"]
    assert tumour["dice"]["n_nan"] == 1 and tumour["global_dice"] == pytest.approx(
        2 * (48 + 80) / ((48 + 8) + (48 + 48) + 80 + 96)
    )
    assert "IQR" in format_table(result.summary) and "nsd" in format_table(result.summary)


def test_lesion_options(folders, tmp_path):
    pred_dir, ref_dir = folders
    one = evaluate(
        pred_dir,
        ref_dir,
        tmp_path / "a",
        labels=LABELS,
        progress=False,
        lesion_settings=LesionSettings(one_to_one=True),
    )
    assert one.summary["lesions"]["labels"]["tumour"]["lesions_false"] == 2
    none = evaluate(
        pred_dir, ref_dir, tmp_path / "b", labels=LABELS, lesion_labels=[], progress=False
    )
    assert none.lesions_path is None and "lesions" not in none.summary and none.lesion_rows == []
    assert not (tmp_path / "b" / "lesions.csv").exists()
    organ_only = evaluate(
        pred_dir, ref_dir, tmp_path / "c", labels=LABELS, lesion_labels=[1], progress=False
    )
    assert list(organ_only.summary["lesions"]["labels"]) == ["organ"]
    with pytest.raises(InputError, match="lesion_labels"):
        evaluate(
            pred_dir, ref_dir, tmp_path / "d", labels=LABELS, lesion_labels=[0], progress=False
        )
    with pytest.raises(InputError, match="nsd_tolerance_mm"):
        evaluate(
            pred_dir, ref_dir, tmp_path / "d", labels=LABELS, nsd_tolerance_mm=-1, progress=False
        )
    assert find_lesion_labels(
        {0: "background", 1: "liver", 2: "Tumor", 3: "liver cancer", 4: "Lesions"}
    ) == [2, 3, 4]


def test_cli_evaluate(folders, tmp_path, capsys):
    pred_dir, ref_dir = folders
    dataset = tmp_path / "ds"
    dataset.mkdir()
    (dataset / "dataset.json").write_text(
        json.dumps({"labels": {"0": "background", "1": "liver", "2": "tumour"}})
    )
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            str(pred_dir),
            str(ref_dir),
            "-o",
            str(out),
            "--dataset",
            str(dataset),
            "--lesion-threshold",
            "0.6",
            "--nsd-tolerance",
            "1",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "liver" in printed and "lesions:" in printed and "IQR" in printed
    summary = json.loads((out / "summary.json").read_text())
    tumour = summary["lesions"]["labels"]["tumour"]
    assert tumour["lesions_detected"] == 1  # the halves (IoU 1/3, 1/2) no longer match at 0.6
    assert summary["lesions"]["settings"]["threshold"] == 0.6
    assert math.isclose(summary["labels"]["liver"]["nsd"]["min"], 1.0)  # 1 mm shift within 1 mm
    assert (
        main(["evaluate", str(pred_dir), str(ref_dir), "-o", str(out), "--lesion-threshold", "1.5"])
        == 2
    )
    assert "threshold" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                str(pred_dir),
                str(ref_dir),
                "-o",
                str(tmp_path / "o2"),
                "--lesion-labels",
                "none",
            ]
        )
        == 0
    )
    assert not (tmp_path / "o2" / "lesions.csv").exists()
    with pytest.raises(SystemExit):
        main(["evaluate", str(pred_dir), str(ref_dir), "-o", str(out), "--lesion-labels", "x"])
