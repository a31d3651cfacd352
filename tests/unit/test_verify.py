"""verify_dataset / `ctseg verify`: one row per problem with known answers; training refuses or skips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.data_builders import (
    AFFINE,
    SHAPE,
    ct_and_mask,
    make_lits,
    make_msd,
    make_plain,
    save,
    write_dicom_series,
)

from ctseg.cli import main
from ctseg.errors import DatasetError
from ctseg.io.verify import grid_corner_offset_mm, verify_dataset


def _kinds(report) -> list[tuple[str, str]]:
    return [(r.case, r.kind) for r in report.rows]


def test_clean_dataset_has_no_rows(tmp_path) -> None:
    make_msd(tmp_path, 2)
    report = verify_dataset(tmp_path, progress=False)
    assert report.ok and report.rows == [] and report.n_cases == 3
    assert "no problems found in 3 case(s)" in report.format_table()


def _break(tmp_path, how: str) -> str:
    """Make case_001 of a 2-case MSD folder bad in one way; returns the expected kind."""
    pairs = make_msd(tmp_path, 2)
    image, label = pairs[1]
    ct, mask = ct_and_mask()
    if how == "truncated":
        label.write_bytes(label.read_bytes()[:120])
        return "unreadable"
    if how == "shape":
        save(label, mask[:, :, :5])
        return "shape"
    if how == "affine":
        shifted = AFFINE.copy()
        shifted[:3, 3] += [3.0, 4.0, 0.0]
        save(label, mask, shifted)
        return "affine"
    if how == "label7":
        save(label, mask * 7)
        return "label-values"
    if how == "fractional":
        save(label, mask * 0.5)
        return "label-values"
    if how == "nan":
        bad = ct.astype(np.float32)
        bad[0, 0, 0] = np.nan
        save(image, bad)
        return "nan"
    if how == "raw-0-4095":
        save(image, (ct.astype(np.int32) + 1024).astype(np.uint16))
        return "not-hu"
    if how == "normalised":
        save(image, (ct / 1000.0).astype(np.float32))
        return "not-hu"
    if how == "4d":
        save(image, np.stack([ct, ct], -1))
        return "dimensions"
    if how == "2d":
        save(image, ct[:, :, 0])
        return "dimensions"
    if how == "missing-label":
        label.unlink()
        return "missing-label"
    if how == "zero-spacing":
        from tests.data_builders import write_raw_nifti

        write_raw_nifti(image, ct, sform_code=0, pixdim=[1, 0, 2, 3, 1, 1, 1, 1])
        return "spacing"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["truncated", "shape", "affine", "label7", "fractional", "nan", "raw-0-4095", "normalised", "4d", "2d", "missing-label", "zero-spacing"])
def test_each_problem_gives_one_row(tmp_path, how) -> None:
    kind = _break(tmp_path, how)
    report = verify_dataset(tmp_path, progress=False)
    assert _kinds(report) == [("case_001", kind)], report.format_table()
    assert report.bad_case_ids == {"case_001"} and not report.ok
    row = report.rows[0]
    assert "case_001" in row.file and row.fix
    table = report.format_table()
    assert "1 problem(s) in 1 case(s)" in table and "case_001" in table


def test_grid_offsets_are_reported_in_mm(tmp_path) -> None:
    _break(tmp_path / "a", "affine")
    row = verify_dataset(tmp_path / "a", progress=False).rows[0]
    assert "5.00 mm" in row.problem  # origin moved by (3, 4, 0) mm
    _break(tmp_path / "s", "shape")
    row = verify_dataset(tmp_path / "s", progress=False).rows[0]
    assert "(12, 10, 5)" in row.problem and "3.00 mm" in row.problem  # one 3 mm slice short
    assert grid_corner_offset_mm(AFFINE, SHAPE, AFFINE, SHAPE) == 0.0


def test_label_values_not_in_dataset_json_are_named(tmp_path) -> None:
    _break(tmp_path, "label7")
    row = verify_dataset(tmp_path, progress=False).rows[0]
    assert "[7]" in row.problem and "dataset.json" in row.problem and "[0, 1]" in row.problem


def test_lits_default_labels_and_duplicates(tmp_path) -> None:
    pairs = make_lits(tmp_path, (1, 2), batches=False)
    save(pairs[0][1], ct_and_mask()[1] * 3)
    make_lits(tmp_path / "again", (2,), batches=False, gz=True)
    report = verify_dataset(tmp_path, progress=False)
    assert sorted(_kinds(report)) == [("volume-1", "label-values"), ("volume-2", "duplicate")]
    assert report.bad_case_ids == {"volume-1"}  # the first copy of a duplicate stays
    assert "default lits labels" in next(r.problem for r in report.rows if r.kind == "label-values")


def test_headers_only_skips_voxel_checks(tmp_path) -> None:
    _break(tmp_path, "nan")
    assert verify_dataset(tmp_path, headers_only=True, progress=False).ok
    _break(tmp_path / "b", "affine")
    assert _kinds(verify_dataset(tmp_path / "b", headers_only=True, progress=False)) == [("case_001", "affine")]


def test_dicom_series_of_another_modality(tmp_path) -> None:
    pytest.importorskip("pydicom")
    try:
        from ctseg.io.dicom import read_dicom_series  # noqa: F401
    except ImportError:
        pytest.skip("ctseg.io.dicom.read_dicom_series not available yet")
    write_dicom_series(tmp_path / "images" / "ct1", n=3, series_uid="1.2.3.1")
    write_dicom_series(tmp_path / "images" / "mr1", n=3, series_uid="1.2.3.2", modality="MR")
    for case in ("ct1", "mr1"):
        save(tmp_path / "labels" / f"{case}.nii.gz", np.zeros((8, 8, 3), np.uint8), np.diag([-1.0, -1.0, 2.0, 1.0]))
    report = verify_dataset(tmp_path, progress=False)
    assert ("mr1", "modality") in _kinds(report), report.format_table()
    assert "ct1" not in {r.case for r in report.rows if r.kind in ("modality", "unreadable")}


def test_progress_bar_for_big_datasets(tmp_path, capsys) -> None:
    make_plain(tmp_path, tuple(f"c{i:02d}" for i in range(10)))
    assert verify_dataset(tmp_path, progress=True).ok
    assert "verify" in capsys.readouterr().err


def test_cli_verify_exit_codes_and_json(tmp_path, capsys) -> None:
    make_msd(tmp_path / "good", 1)
    assert main(["verify", str(tmp_path / "good")]) == 0
    _break(tmp_path / "bad", "label7")
    out_json = tmp_path / "report.json"
    assert main(["verify", str(tmp_path / "bad"), "--json", str(out_json)]) == 1
    out = capsys.readouterr().out
    assert "label values [7]" in out and "case_001" in out
    saved = json.loads(out_json.read_text())
    assert saved["ok"] is False and saved["problems"][0]["kind"] == "label-values"
    assert main(["verify", str(tmp_path / "nowhere")]) == 2


def test_training_refuses_or_skips_bad_cases(tmp_path) -> None:
    from ctseg.config import Config
    from ctseg.training import prepare_run

    data = tmp_path / "data"
    make_msd(data, 3)
    save(data / "labelsTr" / "case_001.nii.gz", ct_and_mask()[1] * 7)
    with pytest.raises(DatasetError, match="--skip-bad") as info:
        prepare_run(data, tmp_path / "run", Config(), progress=False)
    assert "label values [7]" in str(info.value) and not (tmp_path / "run").exists()
    run = prepare_run(data, tmp_path / "run", Config(), progress=False, skip_bad=True)
    assert sorted(run.train_ids + run.val_ids) == ["case_000", "case_002"]
    excluded = json.loads((tmp_path / "run" / "excluded_cases.json").read_text())
    assert [e["case"] for e in excluded] == ["case_001"]
    again = prepare_run(data, tmp_path / "run", Config(), progress=False)  # resuming: no re-verification
    assert sorted(again.train_ids + again.val_ids) == ["case_000", "case_002"]
