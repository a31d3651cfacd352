from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
from tests.conftest import make_affine, rotation_z

from ctseg.errors import DatasetError, InputError
from ctseg.io import Image, LabelMap, read_nifti, write_nifti
from ctseg.io.datasets import case_id_from_path, load_dataset
from ctseg.io.orientation import Reorientation, reorient


def test_nifti_round_trip_keeps_geometry_exactly(tmp_path) -> None:
    affine = make_affine((0.7, 0.8, 2.5), flips=(True, True, False), rotation=rotation_z(12.0), origin=(10.0, -5.0, 3.0))
    data = np.random.default_rng(0).integers(-1000, 1000, (12, 10, 6)).astype(np.int16)
    src = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), src)
    image = read_nifti(src)
    out = write_nifti(LabelMap((data > 0).astype(np.uint8), image.affine), tmp_path / "seg.nii.gz", like=image)
    back = nib.load(out)
    assert back.shape == data.shape and back.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(back.affine, nib.load(src).affine)
    np.testing.assert_array_equal(back.header.get_sform(), nib.load(src).header.get_sform())
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_qform_only_input_keeps_qform(tmp_path) -> None:
    img = nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), make_affine((1.0, 2.0, 3.0), flips=(True, False, False)))
    img.set_sform(None, code=0)
    img.set_qform(img.affine, code=1)
    nib.save(img, tmp_path / "q.nii")
    image = read_nifti(tmp_path / "q.nii")
    write_nifti(image.with_array(np.ones((4, 5, 6), np.uint8)), tmp_path / "o.nii.gz", like=image)
    out = nib.load(tmp_path / "o.nii.gz")
    np.testing.assert_allclose(out.affine, img.affine, atol=1e-6)
    assert int(out.header["sform_code"]) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a nifti at all" * 10, "cannot read as NIfTI"), (None, "file not found")],
)
def test_bad_files_raise_input_error(tmp_path, content, message) -> None:
    path = tmp_path / "bad.nii.gz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_nifti(path)


def test_truncated_gzip_and_wrong_dimensions(tmp_path) -> None:
    good = tmp_path / "good.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20, 20), np.float32), np.eye(4)), good)
    raw = good.read_bytes()
    truncated = tmp_path / "trunc.nii.gz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="trunc.nii.gz"):
        read_nifti(truncated)
    nib.save(nib.Nifti1Image(np.zeros((5, 5), np.float32), np.eye(4)), tmp_path / "flat.nii.gz")
    with pytest.raises(InputError, match="expected a 3D volume"):
        read_nifti(tmp_path / "flat.nii.gz")
    nan = np.zeros((3, 3, 3), np.float32)
    nan[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(InputError, match="NaN"):
        read_nifti(tmp_path / "nan.nii.gz")
    assert gzip.decompress(raw)  # the original stays readable


def test_label_map_refuses_fractional_values() -> None:
    with pytest.raises(InputError, match="whole numbers"):
        LabelMap(np.full((2, 2, 2), 0.5, np.float32), np.eye(4))


def test_reorientation_round_trip_and_world_invariance() -> None:
    affine = make_affine((0.7, 0.9, 3.0), flips=(True, True, True), shape=(7, 5, 3))
    data = np.arange(7 * 5 * 3).reshape(7, 5, 3)
    image = Image(data, affine)
    ras = reorient(image)
    assert ras.orientation == "RAS" and image.orientation == "LPI"
    transform = Reorientation(affine, data.shape)
    np.testing.assert_array_equal(transform.invert(transform.apply(data)), data)
    # the same value sits at the same world point in both
    ijk = np.array([[2, 1, 0]])
    world = image.voxel_to_world(ijk)
    back = np.round(ras.world_to_voxel(world)).astype(int)[0]
    assert ras.array[tuple(back)] == data[2, 1, 0]


def _write_msd(root, n=2, with_json=True):
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    items = []
    for i in range(n):
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), root / "imagesTr" / f"x_{i:03d}.nii.gz")
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), root / "labelsTr" / f"x_{i:03d}.nii.gz")
        items.append({"image": f"./imagesTr/x_{i:03d}.nii.gz", "label": f"./labelsTr/x_{i:03d}.nii.gz"})
    if with_json:
        import json

        (root / "dataset.json").write_text(json.dumps({"name": "x", "labels": {"0": "background", "1": "organ"}, "training": items, "test": []}))


def test_msd_dataset_loading_and_errors(tmp_path) -> None:
    _write_msd(tmp_path / "ok")
    ds = load_dataset(tmp_path / "ok")
    assert [c.case_id for c in ds.training] == ["x_000", "x_001"] and ds.labels == {0: "background", 1: "organ"}
    with pytest.raises(InputError, match="not found"):
        load_dataset(tmp_path / "missing")
    _write_msd(tmp_path / "nojson", with_json=False)
    with pytest.raises(DatasetError, match="no dataset.json"):
        load_dataset(tmp_path / "nojson")
    (tmp_path / "ok" / "labelsTr" / "x_001.nii.gz").unlink()
    with pytest.raises(DatasetError, match="x_001"):
        load_dataset(tmp_path / "ok")


def test_case_ids() -> None:
    assert case_id_from_path("a/pancreas_001.nii.gz") == "pancreas_001"
    assert case_id_from_path("liver_7_0000.nii") == "liver_7"
