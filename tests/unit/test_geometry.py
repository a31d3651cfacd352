"""Preprocessing followed by its inverse lands on the input's grid, in world coordinates.

An 'oracle' thresholds the preprocessed (resampled, normalised) volume; its answer brought back
with restore_labels must match the organ sampled directly on the input grid, for LPS, flipped,
oblique and anisotropic inputs. A flip or half-voxel error moves the centroid and fails the test.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import make_affine, phantom, rotation_z

from ctseg.io import Image
from ctseg.preprocessing import Plan, preprocess_image, restore_labels

PLAN = Plan(
    spacing=(2.0, 2.0, 3.0),
    patch_size=(32, 32, 16),
    median_shape=(1, 1, 1),
    normalization={"mode": "window", "clip_low": -300.0, "clip_high": 300.0, "mean": 0.0, "std": 300.0},
    crop_threshold_hu=-500.0,
    labels={0: "background", 1: "organ"},
    network={},
)

CASES = {
    "RAS": dict(spacing=(1.5, 1.5, 2.5), flips=(False, False, False)),
    "LPS": dict(spacing=(1.5, 1.5, 2.5), flips=(True, True, False)),
    "reversed-slices": dict(spacing=(1.5, 1.5, 2.5), flips=(False, False, True)),
    "all-flipped-anisotropic": dict(spacing=(0.8, 1.1, 5.0), flips=(True, False, True)),
    "oblique-20deg": dict(spacing=(1.4, 1.4, 3.0), flips=(True, True, False), rotation=rotation_z(20.0)),
}


def _oracle(image: Image) -> np.ndarray:
    array, geometry = preprocess_image(image, PLAN)
    organ = (array > 50.0 / 300.0).astype(np.float32)  # HU > 50, midway between fat and organ
    probs = np.stack([1.0 - organ, organ])
    return restore_labels(probs, geometry)


def _centroid_mm(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    idx = np.argwhere(mask).mean(0)
    return affine[:3, :3] @ idx + affine[:3, 3]


@pytest.mark.parametrize("name", list(CASES))
def test_restored_labels_line_up_in_world(name: str) -> None:
    case = CASES[name]
    shape = (int(160 / case["spacing"][0]), int(150 / case["spacing"][1]), int(60 / case["spacing"][2]))
    affine = make_affine(case["spacing"], flips=case["flips"], rotation=case.get("rotation"), shape=shape, origin=(3.0, -2.0, 1.0))
    hu, truth = phantom(shape, affine)
    image = Image(hu.astype(np.float32), affine)
    labels = _oracle(image)
    assert labels.shape == shape and labels.dtype == np.uint8
    dice = 2 * np.logical_and(labels, truth).sum() / (labels.sum() + truth.sum())
    assert dice > 0.95, f"{name}: dice {dice:.3f}"
    offset = np.linalg.norm(_centroid_mm(labels, affine) - _centroid_mm(truth, affine))
    assert offset < 0.25 * max(case["spacing"]), f"{name}: centroid off by {offset:.2f} mm"


def test_orientation_variants_give_identical_world_masks() -> None:
    """The same world content stored RAS or LPS yields exactly the same voxels after un-flipping."""
    shape = (100, 90, 20)
    ras = make_affine((1.5, 1.5, 3.0), shape=shape)
    lps = make_affine((1.5, 1.5, 3.0), flips=(True, True, False), shape=shape)
    hu_ras, _ = phantom(shape, ras)
    hu_lps, _ = phantom(shape, lps)
    np.testing.assert_array_equal(hu_lps, hu_ras[::-1, ::-1, :])
    out_ras = _oracle(Image(hu_ras.astype(np.float32), ras))
    out_lps = _oracle(Image(hu_lps.astype(np.float32), lps))
    np.testing.assert_array_equal(out_lps[::-1, ::-1, :], out_ras)
