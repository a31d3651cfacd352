"""DICOM through the command line: ``ctseg convert`` both ways, and ``ctseg predict`` on a DICOM
series folder writing NIfTI, DICOM-SEG and RTSTRUCT that line up with the NIfTI prediction of the
same CT (a tiny run trained on synthetic CT, as in test_pipeline.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from tests.conftest import shared_file
from tests.tiny import TINIER, synth_and_train

from ctseg.cli import main
from ctseg.io import read_dicom_seg, read_dicom_series, read_nifti, read_rtstruct
from ctseg.io.orientation import reorient

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    tiny = synth_and_train(tmp_path_factory.mktemp("dicom_e2e"), task="liver", cases=2, test_cases=1, seed=5, matrix=32, settings=TINIER)
    root, data, run = tiny["root"], tiny["data"], tiny["run"]
    # the test case cropped to 24 slices and stored LAS (left-handed: the DICOM series stacks it
    # the other way round, so every comparison below crosses a k reversal)
    src = nib.load(sorted((data / "imagesTs").glob("*.nii.gz"))[0])
    affine = src.affine.copy()
    affine[:3, 3] += affine[:3, 0] * (src.shape[0] - 1)
    affine[:3, 0] *= -1
    image = root / "case_ct.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(np.asarray(src.dataobj)[::-1, :, :24]), affine), image)
    series = root / "series" / "case_ct"
    assert main(["convert", str(image), str(series)]) == 0
    return {"root": root, "run": run, "image": image, "series": series}


def test_convert_nifti_to_dicom_and_back_is_identical(tiny, tmp_path) -> None:
    back = tmp_path / "back.nii.gz"
    assert main(["convert", str(tiny["series"]), str(back)]) == 0
    source, result = read_nifti(tiny["image"]), read_nifti(back)
    result = reorient(result, source.orientation)  # a left-handed source comes back with k reversed
    np.testing.assert_array_equal(result.array, source.array)
    np.testing.assert_allclose(result.affine, source.affine, atol=1e-5)
    # existing outputs are refused (exit 2, one-line error) unless --overwrite
    assert main(["convert", str(tiny["series"]), str(back)]) == 2
    assert main(["convert", str(tiny["series"]), str(back), "--overwrite"]) == 0


def test_convert_real_dicom_series_to_nifti(tmp_path) -> None:
    out = tmp_path / "ibsi.nii.gz"
    assert main(["convert", str(shared_file("ibsi-sts019/ibsi_validation/dicom/STS_019/CT/image")), str(out)]) == 0
    reference = nib.load(shared_file("ibsi-sts019/ibsi_validation/nifti/STS_019/CT_image.nii.gz"))
    result = nib.load(out)
    np.testing.assert_array_equal(np.asarray(result.dataobj), np.asarray(reference.dataobj))
    np.testing.assert_allclose(result.affine, reference.affine, atol=1e-4)


def test_predict_dicom_series_in_every_format_lines_up_with_the_nifti_prediction(tiny, tmp_path) -> None:
    run, series = ["-m", str(tiny["run"]), "--step", "1"], tiny["series"]
    assert main(["predict", "-i", str(tiny["image"]), "-o", str(tmp_path / "ref.nii.gz"), *run]) == 0
    assert main(["predict", "-i", str(series), "-o", str(tmp_path / "nii"), *run]) == 0
    assert main(["predict", "-i", str(series), "-o", str(tmp_path / "seg"), *run, "--format", "dicom-seg"]) == 0
    assert main(["predict", "-i", str(series), "-o", str(tmp_path / "rt.dcm"), *run, "--format", "rtstruct"]) == 0
    ct = read_dicom_series(series)
    assert ct.orientation != read_nifti(tiny["image"]).orientation  # LAS stored as LAI
    expected = reorient(read_nifti(tmp_path / "ref.nii.gz", label=True), ct.orientation)
    np.testing.assert_allclose(expected.affine, ct.affine, atol=1e-4)
    assert expected.array.any()  # the tiny model predicts foreground: the comparisons are not vacuous

    nifti = read_nifti(tmp_path / "nii" / "case_ct.nii.gz", label=True)  # named after the folder
    np.testing.assert_array_equal(nifti.array, expected.array)
    np.testing.assert_allclose(nifti.affine, ct.affine, atol=1e-6)

    seg = read_dicom_seg(tmp_path / "seg" / "case_ct.dcm", reference=series)
    names = seg.meta["label_names"]
    decoded = np.zeros_like(expected.array)
    by_name = {"liver": 1, "tumour": 2}
    for number, name in names.items():
        decoded[seg.array == number] = by_name[name]
    np.testing.assert_array_equal(decoded, expected.array)

    rois = read_rtstruct(tmp_path / "rt.dcm", series)
    for name, value in by_name.items():
        mask = rois[name].array if name in rois else np.zeros(ct.shape, np.uint8)
        np.testing.assert_array_equal(mask, expected.array == value)


def test_dicom_formats_need_a_dicom_input_and_leave_no_output(tiny, tmp_path) -> None:
    out = tmp_path / "seg"
    assert main(["predict", "-i", str(tiny["image"]), "-o", str(out), "-m", str(tiny["run"]), "--format", "dicom-seg"]) == 2
    assert not out.exists()


def test_predict_chooses_one_series_of_a_mixed_folder(tiny, tmp_path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny["series"], mixed)
    for path in shared_file("dcmqi/ct-3slice").iterdir():
        shutil.copy(path, mixed / f"other_{path.name}")
    out = tmp_path / "pred.nii.gz"
    run = ["-m", str(tiny["run"]), "--step", "1"]
    assert main(["predict", "-i", str(mixed), "-o", str(out), *run]) == 2  # lists the series
    uid = read_dicom_series(tiny["series"]).meta["dicom"]["series_uid"]
    assert main(["predict", "-i", str(mixed), "-o", str(out), *run, "--series", uid]) == 0
    assert nib.load(out).shape == read_dicom_series(tiny["series"]).shape
