"""read_image / read_label: every format to the same voxels and RAS affine, and clear refusals."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from tests.conftest import make_affine, rotation_z, shared_file
from tests.data_builders import write_raw_nifti

from ctseg.errors import InputError
from ctseg.io import read_image, read_label, read_nifti
from ctseg.io.reader import read_header

ORIENTATIONS = {
    "RAS": (False, False, False),
    "LPS": (True, True, False),
    "LAI": (True, False, True),
}


@pytest.fixture(autouse=True)
def _quiet_itk():
    sitk.ProcessObject_SetGlobalWarningDisplay(False)  # MetaImage writer notes about NIfTI fields
    yield
    sitk.ProcessObject_SetGlobalWarningDisplay(True)


def _volume(dtype=np.int16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(-1000, 1000, (7, 5, 4)).astype(dtype)


@pytest.mark.parametrize("ext", ["nrrd", "nhdr", "mha", "mhd"])
@pytest.mark.parametrize("orient", list(ORIENTATIONS))
def test_itk_formats_match_nibabel_exactly(tmp_path, ext, orient) -> None:
    """NIfTI written by nibabel -> SimpleITK converts it -> our ITK path gives nibabel's voxels and affine."""
    affine = make_affine((0.7, 0.9, 2.5), flips=ORIENTATIONS[orient], rotation=rotation_z(17.0), origin=(3.0, -4.0, 5.0))
    data = _volume()
    src = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), src)
    other = tmp_path / f"ct.{ext}"
    sitk.WriteImage(sitk.ReadImage(str(src)), str(other))
    ref, got = read_nifti(src), read_image(other)
    np.testing.assert_array_equal(got.array, ref.array)
    np.testing.assert_allclose(got.affine, ref.affine, atol=1e-5)  # float32 sform in the NIfTI
    assert got.orientation == orient and got.meta["format"] == ext


def test_itk_written_nifti_and_nrrd_agree(tmp_path) -> None:
    """The other way: an ITK image with a known LPS direction, written as NIfTI and as NRRD."""
    array_kji = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    img = sitk.GetImageFromArray(array_kji)
    img.SetSpacing((0.5, 0.75, 2.0))
    img.SetOrigin((10.0, 20.0, 30.0))
    img.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))  # LPS
    sitk.WriteImage(img, str(tmp_path / "a.nii.gz"))
    sitk.WriteImage(img, str(tmp_path / "a.nrrd"))
    nii, nrrd = read_image(tmp_path / "a.nii.gz"), read_image(tmp_path / "a.nrrd")
    np.testing.assert_array_equal(nrrd.array, nii.array)
    np.testing.assert_allclose(nrrd.affine, nii.affine, atol=1e-5)
    # known answer: voxel (i, j, k) = (1, 2, 1) sits at LPS origin + D @ (spacing * ijk), RAS = (-x, -y, z)
    lps = np.array([10.0, 20.0, 30.0]) + np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]]) @ (np.array([0.5, 0.75, 2.0]) * [1, 2, 1])
    np.testing.assert_allclose(nrrd.voxel_to_world([[1, 2, 1]])[0], lps * [-1, -1, 1], atol=1e-9)
    assert nrrd.array[1, 2, 1] == array_kji[1, 2, 1]


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.int32, np.float32, np.float64])
def test_nifti_any_dtype_and_dtype_cast(tmp_path, dtype) -> None:
    data = np.abs(_volume()).astype(dtype)
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0])), tmp_path / "x.nii")
    image = read_image(tmp_path / "x.nii", dtype=np.float32)
    assert image.array.dtype == np.float32 and image.spacing == (1.0, 1.0, 2.0)
    np.testing.assert_array_equal(image.array, data.astype(np.float32))
    assert read_image(tmp_path / "x.nii").array.dtype == dtype


@pytest.mark.parametrize("which", ["sform", "qform"])
def test_sform_only_or_qform_only(tmp_path, which) -> None:
    affine = make_affine((0.8, 0.8, 3.0), flips=(True, True, False), rotation=rotation_z(30.0), origin=(1.0, 2.0, 3.0))
    img = nib.Nifti1Image(_volume(), affine)
    if which == "sform":
        img.set_qform(None, code=0)
        img.set_sform(affine, code=2)
    else:
        img.set_sform(None, code=0)
        img.set_qform(affine, code=1)
    nib.save(img, tmp_path / "x.nii.gz")
    np.testing.assert_allclose(read_image(tmp_path / "x.nii.gz").affine, affine, atol=1e-5)


def test_label_reading(tmp_path) -> None:
    nib.save(nib.Nifti1Image(np.array([0.0, 1.0, 2.0] * 9, np.float32).reshape(3, 3, 3), np.eye(4)), tmp_path / "ok.nii")
    label = read_label(tmp_path / "ok.nii")
    assert label.array.dtype.kind == "i" and set(np.unique(label.array)) == {0, 1, 2}
    nib.save(nib.Nifti1Image(np.full((3, 3, 3), 0.5, np.float32), np.eye(4)), tmp_path / "frac.nii")
    with pytest.raises(InputError, match=r"frac.nii: .*whole numbers"):
        read_label(tmp_path / "frac.nii")
    nib.save(nib.Nifti1Image(np.full((3, 3, 3), -1, np.int16), np.eye(4)), tmp_path / "neg.nii")
    with pytest.raises(InputError, match="negative label"):
        read_label(tmp_path / "neg.nii")


@pytest.mark.parametrize(
    ("name", "data", "fields", "message"),
    [
        ("zero.nii", np.zeros((3, 3, 3), np.int16), {"sform_code": 0, "pixdim": [1, 0, 1, 1, 1, 1, 1, 1]}, "zero or negative"),
        ("neg.nii.gz", np.zeros((3, 3, 3), np.int16), {"sform_code": 0, "pixdim": [1, -2, 1, 1, 1, 1, 1, 1]}, "zero or negative"),
        ("huge.nii", np.zeros((3, 3, 3), np.int16), {"srow_x": [1e9, 0, 0, 0]}, "implausible voxel size"),
        ("metres.nii", np.zeros((3, 3, 3), np.int16), {"srow_x": [0.0008, 0, 0, 0]}, "implausible voxel size"),
        ("singular.nii", np.zeros((3, 3, 3), np.int16), {"srow_y": [0, 0, 0, 0]}, "singular"),
        ("nan_affine.nii", np.zeros((3, 3, 3), np.int16), {"srow_x": [np.nan, 0, 0, 0]}, "NaN or infinite values"),
        ("flat.nii", np.zeros((3, 3), np.float32), {}, "2D"),
        ("4d.nii", np.zeros((3, 3, 3, 2), np.float32), {}, "4D"),
        ("5d.nii", np.zeros((3, 3, 3, 2, 2), np.float32), {}, "5D"),
        ("nan.nii", np.full((3, 3, 3), np.nan, np.float32), {}, "NaN or infinite voxel"),
        ("inf.nii.gz", np.full((3, 3, 3), -np.inf, np.float32), {}, "NaN or infinite voxel"),
        ("dims.nii", np.zeros((3, 3, 3), np.int16), {"dim": [3, 30000, 30000, 30000, 1, 1, 1, 1]}, "header declares shape"),
    ],
)
def test_bad_headers_and_values_are_refused(tmp_path, name, data, fields, message) -> None:
    path = write_raw_nifti(tmp_path / name, data, **fields)
    with pytest.raises(InputError, match=message) as info:
        read_image(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_singleton_trailing_axes_are_squeezed(tmp_path) -> None:
    path = write_raw_nifti(tmp_path / "t1.nii", np.ones((3, 4, 5, 1, 1), np.float32))
    assert read_image(path).shape == (3, 4, 5)


def test_unknown_missing_and_truncated_files(tmp_path) -> None:
    (tmp_path / "scan.png").write_bytes(b"png")
    with pytest.raises(InputError, match="unknown image format '.png'"):
        read_image(tmp_path / "scan.png")
    (tmp_path / "x.dcm").write_bytes(b"x")
    with pytest.raises(InputError, match="single DICOM file"):
        read_image(tmp_path / "x.dcm")
    with pytest.raises(InputError, match="file not found"):
        read_image(tmp_path / "none.nii.gz")
    (tmp_path / "empty.nrrd").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_image(tmp_path / "empty.nrrd")
    good = write_raw_nifti(tmp_path / "good.nii", np.zeros((20, 20, 20), np.float32))
    (tmp_path / "cut.nii").write_bytes(good.read_bytes()[:5000])
    with pytest.raises(InputError, match="truncated"):
        read_image(tmp_path / "cut.nii")
    sitk.WriteImage(sitk.Image([6, 5, 4], sitk.sitkInt16), str(tmp_path / "ok.mha"))
    (tmp_path / "cut.mha").write_bytes((tmp_path / "ok.mha").read_bytes()[:-20])
    with pytest.raises(InputError, match="cut.mha: cannot read as MHA"):
        read_image(tmp_path / "cut.mha")


def test_itk_header_problems(tmp_path) -> None:
    sitk.WriteImage(sitk.Image([5, 6], sitk.sitkFloat32), str(tmp_path / "slice.mha"))
    with pytest.raises(InputError, match="2D"):
        read_image(tmp_path / "slice.mha")
    sitk.WriteImage(sitk.Image([4, 3, 2], sitk.sitkVectorFloat32, 3), str(tmp_path / "rgb.nrrd"))
    with pytest.raises(InputError, match="3 values per voxel"):
        read_image(tmp_path / "rgb.nrrd")
    raw = (tmp_path / "slice.mha").read_bytes()
    sitk.WriteImage(sitk.Image([4, 3, 2], sitk.sitkInt16), str(tmp_path / "neg.mha"))
    text = (tmp_path / "neg.mha").read_bytes().replace(b"ElementSpacing = 1 1 1", b"ElementSpacing = -1 1 1")
    (tmp_path / "neg.mha").write_bytes(text)
    with pytest.raises(InputError, match="zero or negative"):
        read_image(tmp_path / "neg.mha")
    assert raw  # the 2D file itself is intact


def test_header_only_read_is_cheap_and_matches(tmp_path) -> None:
    affine = make_affine((0.7, 0.9, 2.5), flips=(True, True, False))
    nib.save(nib.Nifti1Image(_volume(), affine), tmp_path / "x.nii.gz")
    header = read_header(tmp_path / "x.nii.gz")
    assert header.shape == (7, 5, 4) and header.dtype == np.int16
    np.testing.assert_allclose(header.affine, affine, atol=1e-6)


def test_real_ct_reads_the_same_through_nifti_and_nrrd(tmp_path) -> None:
    src = shared_file("totalsegmentator/example_ct_sm.nii.gz")
    sitk.WriteImage(sitk.ReadImage(str(src)), str(tmp_path / "ct.nrrd"))
    ref, got = read_image(src), read_image(tmp_path / "ct.nrrd")
    np.testing.assert_array_equal(got.array, ref.array)
    np.testing.assert_allclose(got.affine, ref.affine, atol=1e-4)


def test_dicom_folder_goes_to_the_dicom_reader(tmp_path) -> None:
    pytest.importorskip("pydicom")
    from tests.data_builders import write_dicom_series

    try:
        from ctseg.io.dicom import read_dicom_series  # noqa: F401
    except ImportError:
        pytest.skip("ctseg.io.dicom.read_dicom_series not available yet")
    write_dicom_series(tmp_path / "series", n=3)
    image = read_image(tmp_path / "series")
    assert image.shape == (8, 8, 3) and image.spacing == pytest.approx((1.0, 1.0, 2.0))
    np.testing.assert_array_equal(image.array[0, 0], [-24, -14, -4])  # stored 1000 + 10 k, intercept -1024
    other = write_raw_nifti(tmp_path / "x.nii", np.zeros((3, 3, 3), np.int16))
    with pytest.raises(InputError, match="folders only"):
        read_image(other, series="1")
