"""The 2D plan and its preprocessing: slices keep their native spacing and position, the in-plane
resize (to a spacing or a fixed matrix) inverts back onto the input's exact grid, in world
coordinates, for LPS, reversed-slice, oblique and anisotropic inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tests.conftest import make_affine, phantom, rotation_z

from ctseg.config import PlanSettings
from ctseg.errors import InputError
from ctseg.io import Image, LabelMap
from ctseg.preprocessing import Plan, make_plan, preprocess_image, preprocess_label, restore_labels

FINGERPRINT = {
    "labels": {"0": "background", "1": "organ", "2": "tumour"},
    "median_spacing": [0.8, 0.8, 2.5],
    "spacing_p10": [0.7, 0.7, 1.0],
    "median_extent_mm": [320.0, 240.0, 300.0],
    "median_foreground_extent_mm": [100.0, 80.0, 90.0],
    "intensity": {"mean": 60.0, "std": 30.0, "min": -100.0, "max": 300.0, "p00_5": -50.0, "p99_5": 200.0},
}

NORM = {"mode": "window", "clip_low": -300.0, "clip_high": 300.0, "mean": 0.0, "std": 300.0}
PLAN_2D = Plan(spacing=(2.0, 2.0, 0.0), patch_size=(64, 64), median_shape=(1, 1, 1), normalization=NORM, crop_threshold_hu=-500.0, labels={0: "background", 1: "organ"}, network={}, spatial_dims=2)
PLAN_SLICE = dataclasses.replace(PLAN_2D, slice_size=(96, 96), patch_size=(96, 96))

CASES = {  # as tests/unit/test_geometry.py
    "RAS": dict(spacing=(1.5, 1.5, 2.5), flips=(False, False, False)),
    "LPS": dict(spacing=(1.5, 1.5, 2.5), flips=(True, True, False)),
    "reversed-slices": dict(spacing=(1.5, 1.5, 2.5), flips=(False, False, True)),
    "all-flipped-anisotropic": dict(spacing=(0.8, 1.1, 5.0), flips=(True, False, True)),
    "oblique-20deg": dict(spacing=(1.4, 1.4, 3.0), flips=(True, True, False), rotation=rotation_z(20.0)),
}


def _volume(name: str) -> tuple[Image, np.ndarray]:
    case = CASES[name]
    shape = (int(160 / case["spacing"][0]), int(150 / case["spacing"][1]), int(60 / case["spacing"][2]))
    affine = make_affine(case["spacing"], flips=case["flips"], rotation=case.get("rotation"), shape=shape, origin=(3.0, -2.0, 1.0))
    hu, truth = phantom(shape, affine)
    return Image(hu.astype(np.float32), affine), truth


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _centroid_mm(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return affine[:3, :3] @ np.argwhere(mask).mean(0) + affine[:3, 3]


def test_2d_plan_keeps_the_slice_spacing_and_has_a_2d_network() -> None:
    plan = make_plan(FINGERPRINT, PlanSettings(spatial_dims=2, max_stages=5))
    assert plan.spatial_dims == 2 and len(plan.patch_size) == 2
    assert plan.spacing == (0.8, 0.8, 2.5)  # in-plane from the fingerprint, slices native
    assert plan.patch_size == (400, 288)  # median in-plane shape 400 x 300, rounded down to the divisor 16
    assert plan.network["strides"] == [[1, 1], [2, 2], [2, 2], [2, 2], [2, 2]]
    assert all(len(k) == 2 for k in plan.network["kernel_sizes"])
    assert Plan.from_dict(plan.to_dict()) == plan


def test_slice_size_fits_the_median_body_box_with_square_pixels() -> None:
    plan = make_plan(FINGERPRINT, PlanSettings(spatial_dims=2, slice_size=(256, 256)))
    assert plan.patch_size == (256, 256) and plan.slice_size == (256, 256)
    assert plan.spacing == (1.25, 1.25, 2.5)  # 320 mm / 256
    # per case: the crop's own extent fits the matrix; k keeps the crop's own spacing
    affine = make_affine((0.7, 0.9, 3.0))
    spacing = plan.case_spacing(affine, (500, 200, 40))
    assert spacing == pytest.approx((500 * 0.7 / 256, 500 * 0.7 / 256, 3.0))


def test_an_old_plan_without_spatial_dims_reads_as_3d() -> None:
    data = make_plan(FINGERPRINT, PlanSettings()).to_dict()
    del data["spatial_dims"], data["slice_size"]
    plan = Plan.from_dict(data)
    assert plan.spatial_dims == 3 and plan.slice_size is None and len(plan.patch_size) == 3


@pytest.mark.parametrize(
    ("settings", "roi", "words"),
    [
        (PlanSettings(slice_size=(256, 256)), False, "spatial_dims=2"),
        (PlanSettings(spatial_dims=2, patch_size=(64, 64, 32)), False, "two in-plane sizes"),
        (PlanSettings(spatial_dims=2, slice_size=(4, 4)), False, "at least 8"),
        (PlanSettings(spatial_dims=4), False, "2 (a network on axial slices) or 3"),
        (PlanSettings(spatial_dims=2), True, "cascade"),
    ],
)
def test_bad_2d_settings_are_refused_with_the_fix(settings: PlanSettings, roi: bool, words: str) -> None:
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        make_plan(FINGERPRINT, settings, roi=roi)


@pytest.mark.parametrize("plan", [PLAN_2D, PLAN_SLICE], ids=["spacing", "slice_size"])
@pytest.mark.parametrize("name", list(CASES))
def test_2d_preprocessing_inverts_onto_the_input_grid(name: str, plan: Plan) -> None:
    image, truth = _volume(name)
    array, geometry = preprocess_image(image, plan)
    crop_k = geometry.crop[2][1] - geometry.crop[2][0]
    assert geometry.resampled_shape[2] == crop_k  # one network slice per input slice
    assert geometry.resampled_spacing[2] == pytest.approx(CASES[name]["spacing"][2])
    if plan.slice_size is not None:
        assert max(geometry.resampled_shape[:2]) == 96 and geometry.resampled_spacing[0] == pytest.approx(geometry.resampled_spacing[1], rel=0.02)
    organ = (array > 50.0 / 300.0).astype(np.float32)
    labels = restore_labels(np.stack([1.0 - organ, organ]), geometry)
    assert labels.shape == image.shape and labels.dtype == np.uint8
    assert _dice(labels, truth) > 0.95, name
    offset = np.linalg.norm(_centroid_mm(labels, image.affine) - _centroid_mm(truth, image.affine))
    assert offset < 0.25 * max(CASES[name]["spacing"]), f"{name}: centroid off by {offset:.2f} mm"


@pytest.mark.parametrize("name", ["LPS", "all-flipped-anisotropic", "oblique-20deg"])
def test_a_perfect_prediction_comes_back_after_the_slice_resize(name: str) -> None:
    """Labels pushed onto the 2D grid, taken as a certain prediction and restored: the same labels
    (a 192 matrix is at least as fine as every input here, so nothing is lost on the way)."""
    image, truth = _volume(name)
    right_half = np.indices(truth.shape)[0] > truth.shape[0] // 2
    labels = truth + (truth & right_half).astype(np.uint8)  # organ 1, a second label over half of it
    _, geometry = preprocess_image(image, dataclasses.replace(PLAN_SLICE, slice_size=(192, 192), patch_size=(192, 192)))
    assert max(geometry.resampled_shape[:2]) == 192
    seg = preprocess_label(LabelMap(labels, image.affine), geometry)
    probs = np.stack([(seg == c).astype(np.float32) for c in range(3)])
    restored = restore_labels(probs, geometry)
    for c in (1, 2):
        assert _dice(restored == c, labels == c) >= 0.99, f"{name}: label {c}"
