"""Post-processing on class probabilities: largest region, regions exposed off the organ, regions
the network is unsure of, small regions per label in mm^3."""

from __future__ import annotations

import numpy as np

from ctseg.inference.postprocess import (
    apply_postprocessing,
    keep_largest_foreground,
    remove_exposed_components,
    remove_small_components,
    remove_uncertain_components,
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


def _exposed_scene() -> np.ndarray:
    """The organ box with a tumour inside and a 3 x 4 x 4 block of "tumour" on its +x face."""
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:14, 2:14, 2:14] = 1
    labels[4:8, 4:8, 4:8] = 2  # inside: its whole shell is organ
    labels[14:17, 5:9, 5:9] = 2  # outside, touching: shell [13:18, 4:10, 4:10] minus the block
    return labels


def test_a_region_mostly_off_the_organ_goes_by_its_shell_fraction() -> None:
    labels = _exposed_scene()
    probs = _probs(labels)
    probs[0][14:17, 5:9, 5:9] = 0.4  # off the organ the runner-up is background
    # the outside block's shell: 5 x 6 x 6 - 3 x 4 x 4 = 132 voxels, 36 of them (x = 13) organ
    contact = 36 / 132
    kept = remove_exposed_components(probs, 2, min_contact=contact - 0.01).argmax(0)
    np.testing.assert_array_equal(kept, labels)
    out = remove_exposed_components(probs, 2, min_contact=contact + 0.01).argmax(0)
    assert (out[14:17, 5:9, 5:9] == 0).all()
    assert (out[4:8, 4:8, 4:8] == 2).all()  # the enclosed tumour stays
    np.testing.assert_array_equal(out[labels != 2], labels[labels != 2])
    # off (0) and a label that is absent change nothing
    assert remove_exposed_components(probs, 2, min_contact=0.0) is probs
    assert remove_exposed_components(_probs(np.where(labels == 2, 1, labels).astype(np.uint8)), 2, 0.5).argmax(0).max() == 1


def test_a_region_with_no_shell_inside_the_array_and_the_rule_order() -> None:
    # a tumour filling the whole array has no shell: nothing to judge, it stays
    whole = np.full((4, 4, 4), 2, np.uint8)
    np.testing.assert_array_equal(remove_exposed_components(_probs(whole), 2, 0.9).argmax(0), whole)
    # apply_postprocessing runs the contact rule before the volume rule: the exposed block (48
    # voxels) is gone at 0.5 while the enclosed tumour (64 voxels) survives a 50-voxel minimum
    labels = _exposed_scene()
    out = apply_postprocessing(_probs(labels), (1.0, 1.0, 1.0), min_contact={2: 0.5}, min_component_mm3={2: 50.0}).argmax(0)
    assert (out == 2).sum() == 64 and (out[4:8, 4:8, 4:8] == 2).all()


def test_a_region_goes_by_the_mean_probability_of_its_label() -> None:
    labels = _scene()
    probs = _probs(labels)
    # the 64-voxel tumour: half its voxels at 0.9, half at 0.5 (runner-up organ 0.45): mean 0.7
    probs[2][4:6, 4:8, 4:8] = 0.5
    probs[1][4:6, 4:8, 4:8] = 0.45
    assert (probs.argmax(0) == labels).all()
    kept = remove_uncertain_components(probs, 2, min_confidence=0.69).argmax(0)
    np.testing.assert_array_equal(kept, labels)
    out = remove_uncertain_components(probs, 2, min_confidence=0.71).argmax(0)
    assert (out[4:8, 4:8, 4:8] == 1).all()  # handed to the runner-up, the organ
    assert out[10, 10, 10] == 2  # the sure one-voxel island (0.9) stays
    np.testing.assert_array_equal(out[labels != 2], labels[labels != 2])
    # off (0) and an absent label change nothing (the input itself comes back)
    assert remove_uncertain_components(probs, 2, min_confidence=0.0) is probs
    no_tumour = _probs(np.where(labels == 2, 1, labels).astype(np.uint8))
    assert remove_uncertain_components(no_tumour, 2, 0.9) is no_tumour


def test_confidence_rule_runs_after_contact_and_before_volume() -> None:
    labels = _scene()
    probs = _probs(labels)
    probs[2][10, 10, 10] = 0.5  # the island is unsure, the 64-voxel tumour sure
    out = apply_postprocessing(probs, (1.0, 1.0, 1.0), min_confidence={2: 0.6}, min_component_mm3={2: 65.0}).argmax(0)
    assert (out == 2).sum() == 0  # island by confidence, the tumour by volume
    out = apply_postprocessing(probs, (1.0, 1.0, 1.0), min_confidence={2: 0.6}).argmax(0)
    assert (out == 2).sum() == 64 and out[10, 10, 10] == 1
