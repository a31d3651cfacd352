"""Cohort prediction that finishes: skip valid outputs, go on past a bad case, log, exit non-zero;
output names that cannot leave their folder."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from ctseg.cli import main
from ctseg.io.outputs import output_is_valid, safe_name


def _cohort(tiny_data, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(tiny_data / "imagesTs", folder)
    good = sorted(folder.glob("*.nii.gz"))
    bad = folder / "broken_case.nii.gz"
    bad.write_bytes(gzip.compress(b"not a nifti header at all" * 20))
    return folder, good, bad


def test_a_bad_case_is_logged_and_the_others_are_predicted(tiny_data, tiny_run, tmp_path, capsys) -> None:
    folder, good, bad = _cohort(tiny_data, tmp_path)
    out = tmp_path / "out"
    assert main(["predict", "-i", str(folder), "-o", str(out), "-m", str(tiny_run)]) == 1
    assert "1 of 3 cases failed (broken_case)" in capsys.readouterr().err
    log = json.loads((out / "predict_log.json").read_text())
    assert sorted(r["case"] for r in log["done"]) == sorted(p.name[:-7] for p in good)
    assert [r["case"] for r in log["failed"]] == ["broken_case"] and "broken_case" in log["failed"][0]["error"]
    assert log["skipped"] == [] and all(r["seconds"] > 0 for r in log["done"])
    assert log["network"]["device"] == "cpu" and log["network"]["precision"] in ("float32", "bfloat16")
    assert not (out / "broken_case.nii.gz").exists()
    for p in good:
        assert output_is_valid(out / p.name, "nifti")


def test_finished_cases_are_skipped_and_a_truncated_output_is_redone(tiny_data, tiny_run, tmp_path) -> None:
    folder, good, bad = _cohort(tiny_data, tmp_path)
    bad.unlink()
    out = tmp_path / "out"
    assert main(["predict", "-i", str(folder), "-o", str(out), "-m", str(tiny_run)]) == 0
    first, second = (out / p.name for p in good)
    keep = first.stat().st_mtime_ns
    second.write_bytes(second.read_bytes()[:60])  # a half-written output from a killed run
    assert not output_is_valid(second, "nifti")
    assert main(["predict", "-i", str(folder), "-o", str(out), "-m", str(tiny_run)]) == 0
    log = json.loads((out / "predict_log.json").read_text())
    assert [r["case"] for r in log["skipped"]] == [good[0].name[:-7]] and [r["case"] for r in log["done"]] == [good[1].name[:-7]]
    assert first.stat().st_mtime_ns == keep and output_is_valid(second, "nifti")
    assert main(["predict", "-i", str(folder), "-o", str(out), "-m", str(tiny_run), "--overwrite"]) == 0
    assert len(json.loads((out / "predict_log.json").read_text())["done"]) == 2


def test_a_single_bad_file_still_fails_at_once(tiny_run, tmp_path, capsys) -> None:
    bad = tmp_path / "x.nii.gz"
    bad.write_bytes(b"garbage")
    assert main(["predict", "-i", str(bad), "-o", str(tmp_path / "o.nii.gz"), "-m", str(tiny_run)]) == 2
    assert "x.nii.gz" in capsys.readouterr().err and not (tmp_path / "o.nii.gz").exists()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("case_001", "case_001"), ("../../etc/passwd", "_.._etc_passwd"), ("/abs/path", "_abs_path"), ("..", "case"),
     (".hidden", "hidden"), ("a b\\c:d", "a_b_c_d"), ("CT^Patient 1", "CT_Patient_1"), ("", "case"), ("tümör", "t_m_r")],
)  # fmt: skip
def test_safe_names_stay_in_their_folder(raw, expected, tmp_path) -> None:
    name = safe_name(raw)
    assert name == expected
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()
