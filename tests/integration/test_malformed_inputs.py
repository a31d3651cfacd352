"""Bad input never crashes: malformed files go to ``read_image`` and ``ctseg predict``, malformed
dataset folders to ``ctseg verify`` and ``ctseg train``. Each gives one clear error line naming the
file, a non-zero exit, no traceback, and leaves no output file behind.

The trained run for ``predict`` is the tiny module-scoped run of test_pipeline (``tiny`` fixture).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from tests.data_builders import (
    AFFINE,
    ct_and_mask,
    make_lits,
    make_msd,
    make_nnunet,
    make_plain,
    save,
    write_dicom_series,
    write_raw_nifti,
)
from tests.integration.test_pipeline import tiny  # noqa: F401  (the module-scoped tiny trained run)

from ctseg.cli import main
from ctseg.errors import CtsegError
from ctseg.io import read_image

CT, MASK = ct_and_mask()


def _nifti_bytes(data=CT) -> bytes:
    import nibabel as nib

    return nib.Nifti1Image(data, AFFINE).to_bytes()


def _mha(tmp: Path, name: str, image: sitk.Image, edit: Callable[[bytes], bytes] | None = None) -> Path:
    sitk.ProcessObject_SetGlobalWarningDisplay(False)
    path = tmp / name
    sitk.WriteImage(image, str(path))
    if edit is not None:
        path.write_bytes(edit(path.read_bytes()))
    return path


def _written(name: str, content: bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        (tmp / name).write_bytes(content)
        return tmp / name

    return build


def _raw(name: str, data=CT, **fields) -> Callable[[Path], Path]:
    return lambda tmp: write_raw_nifti(tmp / name, np.asarray(data), **fields)


def _mixed_dicom(tmp: Path) -> Path:
    write_dicom_series(tmp / "mixed", n=3, series_uid="1.2.3.1")
    write_dicom_series(tmp / "mixed", n=2, series_uid="1.2.3.2", z0=100.0, size=6)
    return tmp / "mixed"


def _dicom_mr(tmp: Path) -> Path:
    write_dicom_series(tmp / "mr", n=3, modality="MR")
    return tmp / "mr"


def _junk_folder(tmp: Path) -> Path:
    (tmp / "junk").mkdir()
    (tmp / "junk" / "notes.txt").write_text("not an image")
    return tmp / "junk"


def _missing_raw(ext: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = _mha(tmp, f"detached.{ext}", sitk.Image([4, 4, 4], sitk.sitkInt16))
        for data in tmp.iterdir():
            if data.suffix in (".raw", ".zraw", ".gz") and data != path:
                data.unlink()
        return path

    return build


_NIFTI = _nifti_bytes()
_FLOAT = CT.astype(np.float32)

#: name -> builder of one malformed input (a file or a folder) in a given folder.
BAD_FILES: dict[str, Callable[[Path], Path]] = {
    "empty-nii-gz": _written("empty.nii.gz", b""),
    "empty-nii": _written("empty.nii", b""),
    "random-bytes-nii-gz": _written("random.nii.gz", os.urandom(2048)),
    "random-bytes-nii": _written("random.nii", os.urandom(2048)),
    "text-named-nii-gz": _written("text.nii.gz", b"hello, I am not an image\n" * 10),
    "gzip-of-garbage": _written("garbage.nii.gz", gzip.compress(os.urandom(4096))),
    "truncated-gzip-half": _written("half.nii.gz", gzip.compress(_NIFTI)[: len(gzip.compress(_NIFTI)) // 2]),
    "truncated-gzip-header-only": _written("head.nii.gz", gzip.compress(_NIFTI)[:60]),
    "truncated-nii": _written("cut.nii", _NIFTI[:600]),
    "2d": _raw("flat.nii", CT[:, :, 0]),
    "4d": _raw("series4d.nii.gz", np.stack([CT, CT, CT], -1)),
    "5d": _raw("vector5d.nii", np.zeros((4, 4, 4, 2, 3), np.float32)),
    "nan": _raw("nan.nii.gz", np.where(MASK > 0, np.nan, _FLOAT).astype(np.float32)),
    "inf": _raw("inf.nii", np.where(MASK > 0, np.inf, _FLOAT).astype(np.float32)),
    "minus-inf-float64": _raw("minf.nii", np.where(MASK > 0, -np.inf, _FLOAT)),
    "pixdim-zero": _raw("pixdim0.nii", sform_code=0, pixdim=[1, 0, 2, 3, 1, 1, 1, 1]),
    "pixdim-negative": _raw("pixdimneg.nii.gz", sform_code=0, pixdim=[1, -2, 2, 3, 1, 1, 1, 1]),
    "spacing-1e9": _raw("huge_spacing.nii", srow_x=[1e9, 0, 0, 0]),
    "spacing-in-metres": _raw("metres.nii", srow_x=[0.002, 0, 0, 0], srow_y=[0, 0.002, 0, 0], srow_z=[0, 0, 0.003, 0]),
    "singular-affine": _raw("singular.nii", srow_z=[0, 0, 0, 0]),
    "nan-in-affine": _raw("nanaffine.nii", srow_y=[0, np.nan, 0, 0]),
    "inf-origin": _raw("inforigin.nii.gz", srow_x=[1, 0, 0, np.inf]),
    "absurd-dims": _raw("dims.nii", dim=[3, 32000, 32000, 32000, 1, 1, 1, 1]),
    "unknown-extension": _written("scan.png", b"\x89PNG\r\n"),
    "single-dicom-file": _written("slice.dcm", b"\0" * 200),
    "missing-file": lambda tmp: tmp / "does_not_exist.nii.gz",
    "random-bytes-nrrd": _written("random.nrrd", os.urandom(1024)),
    "truncated-mha": lambda tmp: _mha(tmp, "cut.mha", sitk.Image([8, 8, 8], sitk.sitkInt16), lambda b: b[:-100]),
    "2d-mha": lambda tmp: _mha(tmp, "flat.mha", sitk.Image([8, 8], sitk.sitkInt16)),
    "rgb-nrrd": lambda tmp: _mha(tmp, "rgb.nrrd", sitk.Image([4, 4, 4], sitk.sitkVectorUInt8, 3)),
    "mhd-without-raw": _missing_raw("mhd"),
    "nhdr-without-data": _missing_raw("nhdr"),
    "mha-negative-spacing": lambda tmp: _mha(tmp, "neg.mha", sitk.Image([4, 4, 4], sitk.sitkInt16), lambda b: b.replace(b"ElementSpacing = 1 1 1", b"ElementSpacing = 1 -1 1")),
    "mha-zero-spacing": lambda tmp: _mha(tmp, "zero.mha", sitk.Image([4, 4, 4], sitk.sitkInt16), lambda b: b.replace(b"ElementSpacing = 1 1 1", b"ElementSpacing = 1 0 1")),
    "mha-singular-direction": lambda tmp: _mha(tmp, "sing.mha", sitk.Image([4, 4, 4], sitk.sitkInt16), lambda b: b.replace(b"TransformMatrix = 1 0 0 0 1 0 0 0 1", b"TransformMatrix = 1 0 0 1 0 0 0 0 1")),
    "dicom-mixed-series": _mixed_dicom,
    "dicom-not-ct": _dicom_mr,
    "folder-of-junk": _junk_folder,
}

_NEEDS_DICOM = {"dicom-mixed-series", "dicom-not-ct"}


def _build(name: str, tmp: Path) -> Path:
    if name in _NEEDS_DICOM:
        pytest.importorskip("pydicom")
    tmp.mkdir(parents=True, exist_ok=True)
    return BAD_FILES[name](tmp)


def _check_error_line(text: str, path: Path) -> None:
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("ctseg: error:")]
    assert len(errors) == 1, text
    assert path.name in errors[0], errors[0]


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_read_image_refuses_with_one_line_naming_the_file(name, tmp_path) -> None:
    path = _build(name, tmp_path)
    with pytest.raises(CtsegError) as info:
        read_image(path)
    message = str(info.value)
    assert "\n" not in message and path.name in message, message


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_predict_refuses_and_writes_nothing(name, tiny, tmp_path, capfd) -> None:  # noqa: F811
    path = _build(name, tmp_path / "in")
    out = tmp_path / "out"
    code = main(["predict", "-i", str(path), "-o", str(out / "seg.nii.gz"), "-m", str(tiny["run"])])
    assert code != 0
    _check_error_line(capfd.readouterr().err, path)
    assert not out.exists() or not any(out.rglob("*")), list(out.rglob("*"))


def test_control_a_good_nrrd_input_is_predicted_on_its_grid(tiny, tmp_path) -> None:  # noqa: F811
    """The same path accepts a good file: the refusals above are about the inputs, not predict."""
    sitk.ProcessObject_SetGlobalWarningDisplay(False)
    src = sorted((tiny["data"] / "imagesTs").glob("*.nii.gz"))[0]
    nrrd = tmp_path / "ct.nrrd"
    sitk.WriteImage(sitk.ReadImage(str(src)), str(nrrd))
    out = tmp_path / "seg.nii.gz"
    assert main(["predict", "-i", str(nrrd), "-o", str(out), "-m", str(tiny["run"])]) == 0
    seg, ref = read_image(out), read_image(nrrd)
    assert seg.shape == ref.shape
    np.testing.assert_allclose(seg.affine, ref.affine, atol=1e-4)


def test_predict_on_an_empty_folder(tiny, tmp_path, capfd) -> None:  # noqa: F811
    (tmp_path / "empty").mkdir()
    assert main(["predict", "-i", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), "-m", str(tiny["run"])]) != 0
    _check_error_line(capfd.readouterr().err, tmp_path / "empty")
    assert not (tmp_path / "out").exists()


# --- dataset folders: verify and train --------------------------------------------------------


def _msd(edit: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """An MSD folder of two good cases, then ``edit`` breaks it and returns the file to be named."""

    def build(root: Path) -> Path:
        make_msd(root, 2)
        return edit(root)

    return build


def _label(root: Path) -> Path:
    return root / "labelsTr" / "case_001.nii.gz"


def _image(root: Path) -> Path:
    return root / "imagesTr" / "case_001.nii.gz"


def _json(root: Path, meta) -> Path:
    (root / "dataset.json").write_text(json.dumps(meta) if not isinstance(meta, str) else meta)
    return root / "dataset.json"


def _edit_json(root: Path, **changes) -> Path:
    meta = json.loads((root / "dataset.json").read_text())
    meta.update(changes)
    return _json(root, {k: v for k, v in meta.items() if v is not None})


def _plain_with_dicom(root: Path) -> Path:
    pytest.importorskip("pydicom")
    write_dicom_series(root / "images" / "p1", n=3, series_uid="1.2.3.1")
    write_dicom_series(root / "images" / "p1", n=2, series_uid="1.2.3.2", z0=50.0)
    save(root / "labels" / "p1.nii.gz", np.zeros((8, 8, 3), np.uint8))
    return root / "images" / "p1"


def _lits_orphan(root: Path) -> Path:
    make_lits(root, (1, 2), batches=False)
    (root / "volume-2.nii").unlink()
    return root / "segmentation-2.nii"


def _nnunet(**changes) -> Callable[[Path], Path]:
    def build(root: Path) -> Path:
        make_nnunet(root)
        return _edit_json(root, **changes)

    return build


BAD_DATASETS: dict[str, Callable[[Path], Path]] = {
    "empty-folder": lambda root: root,
    "only-junk": lambda root: (root / "readme.txt").write_text("x") and root,
    "invalid-json": _msd(lambda root: _json(root, "{'labels': ")),
    "json-is-a-list": _msd(lambda root: _json(root, [1, 2])),
    "json-without-labels": _msd(lambda root: _edit_json(root, labels=None)),
    "labels-without-background": _msd(lambda root: _edit_json(root, labels={"1": "organ"})),
    "json-missing": _msd(lambda root: (root / "dataset.json").unlink() or root),
    "training-entry-without-label": _msd(lambda root: _edit_json(root, training=[{"image": "./imagesTr/case_000.nii.gz"}])),
    "missing-label-file": _msd(lambda root: _label(root).unlink() or _label(root)),
    "missing-image-file": _msd(lambda root: _image(root).unlink() or _image(root)),
    "label-float-0.5": _msd(lambda root: save(_label(root), MASK * 0.5)),
    "label-value-7": _msd(lambda root: save(_label(root), MASK * 7)),
    "label-grid-shape": _msd(lambda root: save(_label(root), MASK[:-2])),
    "label-grid-affine": _msd(lambda root: save(_label(root), MASK, AFFINE @ np.diag([1.0, 1.0, 1.2, 1.0]))),
    "duplicate-ids": _msd(lambda root: _edit_json(root, training=[{"image": "./imagesTr/case_000.nii.gz", "label": "./labelsTr/case_000.nii.gz"}] * 2) and _image(root).with_name("case_000.nii.gz")),
    "truncated-label": _msd(lambda root: _label(root).write_bytes(_label(root).read_bytes()[:100]) and _label(root)),
    "random-bytes-image": _msd(lambda root: _image(root).write_bytes(os.urandom(999)) and _image(root)),
    "nan-image": _msd(lambda root: save(_image(root), np.where(MASK > 0, np.nan, _FLOAT).astype(np.float32))),
    "4d-image": _msd(lambda root: save(_image(root), np.stack([CT, CT], -1))),
    "2d-image": _msd(lambda root: save(_image(root), CT[:, :, 0])),
    "raw-0-4095-image": _msd(lambda root: save(_image(root), (CT.astype(np.int32) + 1024).astype(np.uint16))),
    "pixdim-zero-image": _msd(lambda root: write_raw_nifti(_image(root), CT, sform_code=0, pixdim=[1, 0, 2, 3, 1, 1, 1, 1])),
    "nnunet-two-channels": _nnunet(channel_names={"0": "CT", "1": "PET"}),
    "nnunet-region-labels": _nnunet(labels={"background": 0, "liver": [1, 2]}),
    "nnunet-mri-channel": _nnunet(channel_names={"0": "T2"}),
    "lits-segmentation-without-volume": _lits_orphan,
    "plain-dicom-mixed-series": _plain_with_dicom,
    "plain-label-without-image": lambda root: make_plain(root, ("a",)) and save(root / "labels" / "zz.nii.gz", MASK),
}


@pytest.mark.parametrize("name", list(BAD_DATASETS))
def test_verify_and_train_refuse_bad_datasets(name, tmp_path, capfd) -> None:
    root = tmp_path / "data"
    root.mkdir()
    named = BAD_DATASETS[name](root)
    assert main(["verify", str(root)]) != 0
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text and named.name in text, text
    run = tmp_path / "run"
    assert main(["train", str(root), "-o", str(run), "--preset", "cpu"]) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err and err.startswith("ctseg: error:") and named.name in err, err
    assert not run.exists()


def test_there_are_at_least_fifty_malformed_inputs() -> None:
    assert len(BAD_FILES) + len(BAD_DATASETS) + 1 >= 50
