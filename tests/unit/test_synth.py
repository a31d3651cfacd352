"""Tests of the synthetic abdominal CT generator (tiny matrices, so the file runs in seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from ctseg.errors import InputError
from ctseg.io.nifti import read_nifti
from ctseg.synth import TASKS, case_seed, generate_case, make_dataset
from ctseg.synth.generator import _generate
from ctseg.synth.tissues import T

SMALL = 48


@pytest.fixture(scope="module")
def cases() -> dict[int, tuple]:
    """A few pancreas cases at a tiny matrix, shared by the cheap checks."""
    return {seed: generate_case("pancreas", seed, matrix=SMALL) for seed in range(8)}


def test_same_arguments_give_identical_output() -> None:
    a_img, a_lab = generate_case("liver", 5, matrix=SMALL)
    b_img, b_lab = generate_case("liver", 5, matrix=SMALL)
    assert np.array_equal(a_img.array, b_img.array)
    assert np.array_equal(a_lab.array, b_lab.array)
    assert np.array_equal(a_img.affine, b_img.affine)
    c_img, _ = generate_case("liver", 6, matrix=SMALL)
    assert c_img.shape != a_img.shape or not np.array_equal(c_img.array, a_img.array)


def test_dtypes_grid_and_geometry(cases: dict) -> None:
    for image, labels in cases.values():
        assert image.array.dtype == np.int16 and labels.array.dtype == np.uint8
        assert image.same_grid(labels) and np.array_equal(image.affine, labels.affine)
        sizes = sorted(image.shape)
        assert sizes.count(SMALL) >= 2  # the in-plane matrix
        spacing = sorted(image.spacing)
        inplane = [s for s in image.spacing if abs(s * SMALL - 300) < 170]
        assert len(inplane) >= 2 and all(300 <= s * SMALL <= 460 for s in inplane[:2])
        assert 1.5 <= spacing[0] <= 5.0  # slices: the smallest spacing at this tiny matrix
        assert image.orientation in {"RAS", "LPS", "LAS", "LPI", "RAI"}
    assert len({img.orientation for img, _ in cases.values()}) >= 2
    assert len({round(img.spacing[2], 2) for img, _ in cases.values()}) >= 2


def test_labels_organ_always_tumour_sometimes(cases: dict) -> None:
    with_tumour = 0
    for _, labels in cases.values():
        values = set(np.unique(labels.array).tolist())
        assert values <= {0, 1, 2}
        assert 1 in values
        with_tumour += 2 in values
    assert 0 < with_tumour < len(cases)


def test_liver_task_labels() -> None:
    image, labels = generate_case("liver", 2, matrix=SMALL)
    volume_ml = (labels.array >= 1).sum() * np.prod(labels.spacing) / 1000.0
    assert 700 < volume_ml < 3500  # an adult liver
    assert TASKS["liver"]["labels"]["1"] == "liver"


def _interior(cls: np.ndarray, value: int) -> np.ndarray:
    return ndimage.binary_erosion(cls == value, iterations=1)


def test_hu_of_tissue_classes() -> None:
    image, _, cls = _generate("pancreas", 3, 96, 5.0, "RAS")
    hu = image.array.astype(np.float64)
    corner = hu[:4, :4, :]
    assert abs(corner.mean() + 1000) < 15  # air
    expected = {T.FAT: (-125, -75), T.VFAT: (-125, -70), T.MUSCLE: (30, 70), T.LIVER: (30, 90),
                T.SPLEEN: (30, 90), T.AORTA: (140, 360), T.BONE: (150, 350), T.KID_CORTEX: (120, 260)}
    for tissue, (lo, hi) in expected.items():
        inner = _interior(cls, tissue)
        assert inner.sum() > 20, tissue
        assert lo <= hu[inner].mean() <= hi, (tissue, hu[inner].mean())
    assert hu[cls == T.CORTEX].max() > 300  # cortical bone
    body = cls != T.AIR
    assert hu[~body].max() < -700 or (cls == T.TABLE).any()


def _world_centroid(labels) -> np.ndarray:
    ijk = np.argwhere(labels.array >= 1).mean(axis=0)
    return labels.voxel_to_world(ijk)[0]


def test_orientation_keeps_world_coordinates() -> None:
    ref_img, ref = generate_case("pancreas", 4, matrix=SMALL, orientation="RAS")
    assert ref_img.orientation == "RAS"
    centre = _world_centroid(ref)
    for codes in ("LPS", "RAI", "LAS"):
        image, labels = generate_case("pancreas", 4, matrix=SMALL, orientation=codes)
        assert image.orientation == codes
        assert np.allclose(_world_centroid(labels), centre, atol=1e-6)
        assert sorted(image.shape) == sorted(ref_img.shape)
        assert np.array_equal(np.sort(image.array.ravel()), np.sort(ref_img.array.ravel()))
    with pytest.raises(InputError, match="axis codes"):
        generate_case("pancreas", 0, matrix=SMALL, orientation="RRS")


def _best_threshold_dice(hu: np.ndarray, target: np.ndarray) -> float:
    best = 0.0
    for lo in range(-60, 200, 10):
        for hi in range(lo + 10, 260, 10):
            pred = (hu >= lo) & (hu < hi)
            best = max(best, 2.0 * (pred & target).sum() / (pred.sum() + target.sum()))
    return best


@pytest.mark.parametrize("seed", [0, 1])
def test_pancreas_is_not_separable_by_threshold(seed: int) -> None:
    image, labels = generate_case("pancreas", seed, matrix=128, slice_spacing=3.0)
    hu = image.array
    body = ndimage.binary_fill_holes(hu > -400)
    assert _best_threshold_dice(hu[body], labels.array[body] >= 1) < 0.5


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="liver, pancreas"):
        generate_case("kidney", 0, matrix=SMALL)
    with pytest.raises(InputError, match="matrix"):
        generate_case("pancreas", 0, matrix=4)
    with pytest.raises(InputError, match="slice_spacing"):
        generate_case("pancreas", 0, matrix=SMALL, slice_spacing=0.0)


def test_make_dataset_layout(tmp_path) -> None:
    out = make_dataset(tmp_path / "ds", "pancreas", cases=2, test_cases=1, seed=7, matrix=32,
                       progress=False)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"0": "background", "1": "pancreas", "2": "tumour"}
    assert meta["modality"] == {"0": "CT"} and meta["tensorImageSize"] == "3D"
    assert meta["numTraining"] == 2 and meta["numTest"] == 1
    for key in ("name", "description", "reference", "licence"):
        assert meta[key]
    assert meta["training"][1] == {"image": "./imagesTr/pancreas_001.nii.gz",
                                   "label": "./labelsTr/pancreas_001.nii.gz"}
    assert meta["test"] == ["./imagesTs/pancreas_002.nii.gz"]
    assert "labelsTs" in meta["description"]
    image = read_nifti(out / "imagesTr" / "pancreas_000.nii.gz")
    labels = read_nifti(out / "labelsTr" / "pancreas_000.nii.gz", label=True)
    assert image.array.dtype == np.int16 and labels.array.dtype == np.uint8
    assert image.same_grid(labels)
    assert (out / "labelsTs" / "pancreas_002.nii.gz").is_file()
    expected, _ = generate_case("pancreas", case_seed(7, 0), matrix=32)
    assert np.array_equal(image.array, expected.array)
    # a smaller dataset with the same seed shares its first case; rerunning into ours is allowed
    again = make_dataset(tmp_path / "ds", "pancreas", cases=1, test_cases=0, seed=7, matrix=32,
                         progress=False)
    first = read_nifti(again / "imagesTr" / "pancreas_000.nii.gz")
    assert np.array_equal(first.array, image.array)


def test_make_dataset_refuses_foreign_folder(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="choose an empty folder"):
        make_dataset(tmp_path, "liver", cases=1, test_cases=0, matrix=32, progress=False)
    with pytest.raises(InputError, match="liver, pancreas"):
        make_dataset(tmp_path / "new", "lung", cases=1, progress=False)


def test_make_dataset_with_workers(tmp_path) -> None:
    out = make_dataset(tmp_path / "ds", "liver", cases=2, test_cases=0, seed=1, matrix=32, workers=2,
                       progress=False)
    serial = make_dataset(tmp_path / "serial", "liver", cases=2, test_cases=0, seed=1, matrix=32,
                          progress=False)
    for n in range(2):
        name = f"imagesTr/liver_{n:03d}.nii.gz"
        assert np.array_equal(read_nifti(out / name).array, read_nifti(serial / name).array)
