"""DICOM CT series: reading real series against their NIfTI counterparts, writing and re-reading
in every orientation, compressed transfer syntaxes, and the refusals (tilt, gaps, mixed series).

Tolerances: voxels must be identical; affines agree to 1e-4 mm with NIfTI files whose qform is
stored in float32 (IBSI) and exactly (0.0) otherwise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from tests.conftest import make_affine, rotation_z, shared_file

from ctseg.errors import InputError
from ctseg.io import Image, read_image, read_nifti
from ctseg.io.dicom import list_dicom_series, read_dicom_series
from ctseg.io.dicom_write import DicomIdentity, write_dicom_series
from ctseg.io.orientation import reorient

TS_DICOM = "totalsegmentator/example_ct_dicom"
IBSI = "ibsi-sts019/ibsi_validation"


def _rotation_x(degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    return np.array([[1.0, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])


def _series(folder: Path, shape=(8, 7, 6), affine=None, seed=0, **identity) -> Path:
    """A small valid CT series written by ctseg (HU -1000..1000)."""
    data = np.random.default_rng(seed).integers(-1000, 1000, shape).astype(np.int16)
    write_dicom_series(Image(data, make_affine((0.8, 0.9, 2.5)) if affine is None else affine), folder, identity=DicomIdentity(**identity))
    return folder


def _edit(folder: Path, index: int, **fields) -> None:
    path = sorted(folder.iterdir())[index]
    ds = pydicom.dcmread(path)
    for name, value in fields.items():
        setattr(ds, name, value)
    ds.save_as(path)


def _sitk_array(folder: Path) -> tuple[np.ndarray, sitk.Image]:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0), image


# --- real data ----------------------------------------------------------------------------------


def test_totalsegmentator_jpeg2000_series_matches_simpleitk_and_its_nifti_grid() -> None:
    folder = shared_file(TS_DICOM)
    image = read_dicom_series(folder)
    assert image.shape == (512, 512, 20) and image.array.dtype == np.int16
    assert (int(image.array.min()), int(image.array.max())) == (-1024, 1839)  # intercept -1024 applied
    # files sort in descending z by name: the reader must sort by position, not name
    names = sorted(Path(f).name for f in image.meta["dicom"]["files"])
    assert Path(image.meta["dicom"]["files"][0]).name == names[-1]
    # voxels: identical to SimpleITK/GDCM's independent JPEG 2000 decoder
    reference, _ = _sitk_array(folder)
    np.testing.assert_array_equal(image.array, reference)
    # world geometry: the same grid as TotalSegmentator's NIfTI made from this series (stored LAS)
    seg = read_nifti(shared_file("totalsegmentator/example_seg_dicom.nii.gz"), label=True)
    as_seg = reorient(image, seg.orientation)
    assert as_seg.shape == seg.shape
    np.testing.assert_allclose(as_seg.affine, seg.affine, atol=1e-4)
    # the slice spacing comes from the positions (2 mm), not the SliceThickness tag (3 mm)
    assert image.spacing == pytest.approx((0.9765625, 0.9765625, 2.0))
    assert image.meta["dicom"]["series_uid"] == ""  # de-identified: grouped by geometry


def test_ibsi_series_reads_to_the_nifti_voxels_and_world_coordinates() -> None:
    image = read_dicom_series(shared_file(f"{IBSI}/dicom/STS_019/CT/image"))
    nifti = read_nifti(shared_file(f"{IBSI}/nifti/STS_019/CT_image.nii.gz"))
    assert image.shape == nifti.shape == (136, 134, 47)
    np.testing.assert_array_equal(image.array, nifti.array)
    np.testing.assert_allclose(image.affine, nifti.affine, atol=1e-4)  # float32 qform in the NIfTI
    corners = np.array([[0, 0, 0], [135, 133, 46], [135, 0, 46]])
    np.testing.assert_allclose(image.voxel_to_world(corners), nifti.voxel_to_world(corners), atol=1e-3)


def test_folder_with_image_and_structure_set_lists_one_series() -> None:
    found = list_dicom_series(shared_file(f"{IBSI}/dicom/STS_019/CT"))  # image/ + mask/RS.dcm
    assert [(s.modality, s.slices, s.rows, s.columns) for s in found] == [("CT", 47, 134, 136)]
    assert found[0].uid.startswith("1.3.6.1.4.1.14519")


def test_read_image_reads_a_dicom_folder() -> None:
    image = read_image(shared_file("dcmqi/ct-3slice"), dtype=np.float32)
    assert image.shape == (512, 512, 3) and image.array.dtype == np.float32
    assert image.affine[2, 3] == pytest.approx(-128.69)  # first slice = lowest z (files are descending)


# --- write -> read round trips -------------------------------------------------------------------

ORIENTATIONS = {
    "RAS": make_affine((0.7, 0.8, 2.5), origin=(10.0, -5.0, 3.0)),
    "LPS": make_affine((0.7, 0.8, 2.5), flips=(True, True, False), origin=(-3.0, 4.0, -100.0)),
    "LAS-flipped": make_affine((1.0, 1.0, 3.0), flips=(True, False, False)),
    "RAI-flipped-k": make_affine((1.0, 2.0, 3.0), flips=(False, False, True)),
    "oblique": make_affine((0.6, 0.9, 4.0), rotation=rotation_z(17.0) @ _rotation_x(20.0), origin=(3.0, 4.0, 5.0)),
    "anisotropic": make_affine((0.5, 1.5, 7.0), flips=(True, True, False)),
}


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_nifti_to_dicom_to_nifti_is_identical(tmp_path, name) -> None:
    affine = ORIENTATIONS[name]
    data = np.random.default_rng(1).integers(-1024, 3000, (9, 7, 5)).astype(np.int16)
    src = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), src)
    write_dicom_series(read_nifti(src), tmp_path / "dcm")
    back = read_dicom_series(tmp_path / "dcm")
    # a left-handed grid (flipped k) comes back with k reversed; same voxels at the same places
    assert np.linalg.det(back.affine[:3, :3]) > 0  # always stacked along row x column
    back = reorient(back, Image(data, affine).orientation)
    np.testing.assert_array_equal(back.array, data)
    np.testing.assert_allclose(back.affine, affine, atol=1e-6)
    # and through NIfTI again
    from ctseg.io import write_nifti

    write_nifti(back, tmp_path / "out.nii.gz")
    out = nib.load(tmp_path / "out.nii.gz")
    np.testing.assert_array_equal(np.asarray(out.dataobj), data)
    np.testing.assert_allclose(out.affine, affine, atol=1e-5)


def test_written_series_is_read_alike_by_simpleitk(tmp_path) -> None:
    affine = ORIENTATIONS["oblique"]
    data = np.random.default_rng(2).integers(-1000, 1000, (6, 5, 4)).astype(np.int16)
    write_dicom_series(Image(data, affine), tmp_path / "s")
    ours = read_dicom_series(tmp_path / "s")
    theirs, itk = _sitk_array(tmp_path / "s")
    np.testing.assert_array_equal(theirs, ours.array)
    np.testing.assert_allclose(np.array(itk.GetOrigin()) * [-1, -1, 1], ours.affine[:3, 3], atol=1e-6)
    ds = pydicom.dcmread(sorted((tmp_path / "s").iterdir())[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and ds.Modality == "CT" and ds.PixelRepresentation == 1


def test_float_hu_are_quantised_within_half_a_step(tmp_path) -> None:
    data = np.random.default_rng(3).normal(0, 300, (5, 5, 4)).astype(np.float32)
    write_dicom_series(Image(data, np.eye(4)), tmp_path / "f")
    back = read_dicom_series(tmp_path / "f")
    slope = float(pydicom.dcmread(sorted((tmp_path / "f").iterdir())[0]).RescaleSlope)
    assert back.array.dtype == np.float32
    assert np.abs(back.array - data).max() <= slope / 2 + 1e-3


def test_uids_are_new_and_identity_is_written(tmp_path) -> None:
    _series(tmp_path / "a", patient_id="P1", patient_name="Doe^Jane", series_description="test")
    _series(tmp_path / "b")
    a = [pydicom.dcmread(p) for p in sorted((tmp_path / "a").iterdir())]
    b = pydicom.dcmread(sorted((tmp_path / "b").iterdir())[0])
    assert len({d.SOPInstanceUID for d in a}) == len(a) and len({d.SeriesInstanceUID for d in a}) == 1
    assert a[0].SeriesInstanceUID != b.SeriesInstanceUID and a[0].StudyInstanceUID != b.StudyInstanceUID
    assert (a[0].PatientID, str(a[0].PatientName), a[0].SeriesDescription) == ("P1", "Doe^Jane", "test")
    assert [int(d.InstanceNumber) for d in a] == list(range(1, len(a) + 1))


def test_write_is_atomic_and_refuses_a_non_empty_folder(tmp_path) -> None:
    _series(tmp_path / "s")
    with pytest.raises(InputError, match="not empty"):
        _series(tmp_path / "s")
    bad = Image(np.full((4, 4, 3), np.nan, np.float32), np.eye(4))
    with pytest.raises(InputError, match="NaN"):
        write_dicom_series(bad, tmp_path / "nan")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no partial or temporary folder
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    with pytest.raises(InputError, match="orthogonal"):
        write_dicom_series(Image(np.zeros((3, 3, 3), np.int16), sheared), tmp_path / "shear")


@pytest.mark.parametrize("syntax", ["JPEGLSLossless", "JPEG2000Lossless", "RLELossless"])
def test_compressed_transfer_syntaxes_decode_to_the_same_hu(tmp_path, syntax) -> None:
    folder = _series(tmp_path / "s", shape=(64, 48, 3))  # JPEG 2000 needs >= 32 pixels a side
    plain = read_dicom_series(folder)
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        ds.compress(getattr(pydicom.uid, syntax))
        ds.save_as(path)
    assert pydicom.dcmread(next(folder.iterdir())).file_meta.TransferSyntaxUID == getattr(pydicom.uid, syntax)
    np.testing.assert_array_equal(read_dicom_series(folder).array, plain.array)


def test_rescale_slope_and_intercept_give_hu(tmp_path) -> None:
    folder = _series(tmp_path / "s", shape=(4, 4, 3))
    before = read_dicom_series(folder).array
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-1024"
        ds.save_as(path)
    after = read_dicom_series(folder)
    assert after.array.dtype == np.float32
    np.testing.assert_allclose(after.array, before * 0.5 - 1024)


# --- refusals ------------------------------------------------------------------------------------


def test_gantry_tilt_is_refused(tmp_path) -> None:
    folder = _series(tmp_path / "s")
    for k, path in enumerate(sorted(folder.iterdir())):
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + 0.6 * k, z]  # about 13 degrees at 2.5 mm slices
        ds.GantryDetectorTilt = "13.5"
        ds.save_as(path)
    with pytest.raises(InputError, match=r"gantry tilt.*13\.5"):
        read_dicom_series(folder)


def test_missing_slice_is_refused(tmp_path) -> None:
    folder = _series(tmp_path / "s")
    sorted(folder.iterdir())[2].unlink()
    with pytest.raises(InputError, match=r"missing slices \(1 between"):
        read_dicom_series(folder)


def test_uneven_spacing_is_refused(tmp_path) -> None:
    folder = _series(tmp_path / "s")
    ds = pydicom.dcmread(sorted(folder.iterdir())[3])
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    _edit(folder, 3, ImagePositionPatient=[x, y, z + 0.8])
    with pytest.raises(InputError, match="uneven slice spacing"):
        read_dicom_series(folder)


def test_duplicate_positions_are_refused(tmp_path) -> None:
    folder = _series(tmp_path / "s")
    ds = pydicom.dcmread(sorted(folder.iterdir())[1])
    _edit(folder, 2, ImagePositionPatient=list(ds.ImagePositionPatient))
    with pytest.raises(InputError, match="same position"):
        read_dicom_series(folder)


def test_non_ct_modality_is_refused(tmp_path) -> None:
    folder = _series(tmp_path / "s")
    for i in range(len(list(folder.iterdir()))):
        _edit(folder, i, Modality="MR")
    with pytest.raises(InputError, match="modality MR, not CT"):
        read_dicom_series(folder)


def test_folder_without_images_is_refused(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("no dicom here")
    with pytest.raises(InputError, match="no DICOM image slices"):
        read_dicom_series(tmp_path)
    folder = tmp_path / "rt"
    folder.mkdir()
    shutil.copy(shared_file(f"{IBSI}/dicom/STS_019/CT/mask/RS.dcm"), folder / "RS.dcm")
    with pytest.raises(InputError, match="only non-image objects: 1 RTSTRUCT"):
        read_dicom_series(folder)


def test_mixed_series_are_listed_and_chosen_by_uid_or_index(tmp_path) -> None:
    mixed = tmp_path / "mixed"
    _series(tmp_path / "a", shape=(8, 7, 6), series_number=2, series_description="arterial")
    _series(tmp_path / "b", shape=(8, 7, 4), series_number=3, series_description="venous", seed=5)
    mixed.mkdir()
    for name in ("a", "b"):
        for path in (tmp_path / name).iterdir():
            shutil.copy(path, mixed / f"{name}_{path.name}")
    found = list_dicom_series(mixed)
    assert [(s.index, s.description, s.slices) for s in found] == [(0, "arterial", 6), (1, "venous", 4)]
    with pytest.raises(InputError) as err:
        read_dicom_series(mixed)
    message = str(err.value)
    assert str(mixed) in message and "'arterial'" in message and "6 slice" in message and "--series" in message
    assert found[1].uid in message
    assert read_dicom_series(mixed, series=1).shape == (8, 7, 4)
    assert read_dicom_series(mixed, series="0").shape == (8, 7, 6)
    assert read_dicom_series(mixed, series=found[1].uid).shape == (8, 7, 4)
    with pytest.raises(InputError, match="out of range"):
        read_dicom_series(mixed, series=5)
    with pytest.raises(InputError, match="matches no series"):
        read_dicom_series(mixed, series="1.2.3.4")


def test_empty_uids_are_grouped_by_geometry(tmp_path) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _series(tmp_path / "a", shape=(8, 7, 5))
    _series(tmp_path / "b", shape=(6, 6, 3), seed=4)
    for name in ("a", "b"):
        for path in (tmp_path / name).iterdir():
            ds = pydicom.dcmread(path)
            ds.SeriesInstanceUID = ""
            ds.SeriesNumber = None
            ds.save_as(mixed / f"{name}_{path.name}")
    found = list_dicom_series(mixed)
    assert sorted((s.slices, s.rows, s.columns) for s in found) == [(3, 6, 6), (5, 7, 8)]
    assert all(s.uid == "" for s in found)
