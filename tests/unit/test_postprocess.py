"""Post-processing on class probabilities: largest region, small regions per label in mm^3."""

from __future__ import annotations

import numpy as np

from ctseg.inference.postprocess import (
    apply_postprocessing,
    keep_largest_foreground,
    remove_small_components,
)


def _probs(labels: np.ndarray, num_classes: int = 3) -> np.ndarray:
    """One-hot-ish probabilities whose argmax is ``labels`` and whose runner-up is label 1."""
    probs = np.full((num_classes, *labels.shape), 0.05, np.float32)
    probs[1] = 0.3
    for c in range(num_classes):
        probs[c][labels == c] = 0.9
    return probs


def _scene() -> np.ndarray:
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:14, 2:14, 2:14] = 1  # organ
    labels[4:8, 4:8, 4:8] = 2  # tumour, 64 voxels
    labels[10, 10, 10] = 2  # one-voxel tumour island inside the organ
    labels[17:19, 17:19, 17:19] = 1  # a separate 8-voxel organ fragment
    return labels


def test_small_regions_of_a_label_go_to_the_next_most_probable_class() -> None:
    labels = _scene()
    out = remove_small_components(_probs(labels), 2, min_voxels=10).argmax(0)
    assert out[10, 10, 10] == 1 and (out[4:8, 4:8, 4:8] == 2).all()
    np.testing.assert_array_equal(out[labels != 2], labels[labels != 2])
    # a threshold above the big tumour removes it too; 1 voxel or less removes nothing
    assert not (remove_small_components(_probs(labels), 2, min_voxels=65).argmax(0) == 2).any()
    np.testing.assert_array_equal(remove_small_components(_probs(labels), 2, min_voxels=1).argmax(0), labels)


def test_volumes_are_in_mm3_through_the_spacing() -> None:
    labels = _scene()
    probs = _probs(labels)
    # 64 voxels of 2 x 2 x 2 mm = 512 mm^3: kept under a 500 mm^3 rule, removed under 600
    kept = apply_postprocessing(probs, (2.0, 2.0, 2.0), min_component_mm3={2: 500.0}).argmax(0)
    assert (kept == 2).sum() == 64
    gone = apply_postprocessing(probs, (2.0, 2.0, 2.0), min_component_mm3={2: 600.0}).argmax(0)
    assert (gone == 2).sum() == 0


def test_keep_largest_drops_the_detached_fragment_first() -> None:
    labels = _scene()
    out = apply_postprocessing(_probs(labels), (1.0, 1.0, 1.0), keep_largest=True).argmax(0)
    assert (out[17:19, 17:19, 17:19] == 0).all() and (out[2:14, 2:14, 2:14] > 0).all()
    np.testing.assert_array_equal(keep_largest_foreground(_probs(labels)).argmax(0), out)
