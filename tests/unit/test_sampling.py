from __future__ import annotations

import numpy as np

from ctseg.config import AugmentSettings
from ctseg.data import (
    PatchParams,
    PatchSampler,
    apply_flips,
    apply_intensity,
    choose_center,
    extract_patch,
    make_params,
)
from ctseg.data.sampling import add_components


def _case():
    img = np.random.default_rng(0).normal(size=(1, 40, 40, 20)).astype(np.float32)
    seg = np.zeros((1, 40, 40, 20), np.uint8)
    seg[0, 5:8, 30:33, 2:4] = 2  # a small tumour in a corner
    seg[0, 10:30, 10:30, 5:15] = 1
    locations = {c: np.argwhere(seg[0] == c) for c in (1, 2)}
    return {"image": img, "seg": seg, "locations": locations, "pad_value": -5.0}


def test_patches_have_the_right_shape_and_padding() -> None:
    case = _case()
    img, lab = extract_patch(case["image"], case["seg"], np.array([0, 0, 0]), (16, 16, 8), PatchParams(), -5.0)
    assert img.shape == (1, 16, 16, 8) and lab.shape == (16, 16, 8)
    assert (img[0, :8, :8, :4] == -5.0).all() and (lab[:8, :8, :4] == 0).all()
    np.testing.assert_array_equal(img[0, 8:, 8:, 4:], case["image"][0, :8, :8, :4])


def test_class_balanced_sampling_finds_the_small_tumour() -> None:
    case = _case()
    sampler = PatchSampler([case], (8, 8, 4), batch_size=2, foreground_fraction=1.0, augment=None)
    rng = np.random.default_rng(1)
    hits = sum((sampler.sample(rng)[1] == 2).any() for _ in range(40))
    assert hits >= 15  # tumour is 0.03% of voxels; class balancing picks it in ~half the batches


def _two_tumours():
    """An organ, a 500-voxel tumour, a 27-voxel tumour and a 2-voxel speck of tumour."""
    seg = np.zeros((1, 40, 40, 20), np.uint8)
    seg[0, 2:38, 2:38, 2:18] = 1
    seg[0, 5:15, 5:15, 5:10] = 2
    seg[0, 30:33, 30:33, 12:15] = 2
    seg[0, 25, 5, 3:5] = 2
    locations = {c: np.argwhere(seg[0] == c) for c in (1, 2)}
    return {"image": np.zeros(seg.shape, np.float32), "seg": seg, "locations": locations, "pad_value": 0.0}


def test_component_sampling_draws_the_small_tumour_as_often_as_the_large_one() -> None:
    case = add_components(_two_tumours())
    assert set(case["components"]) == {2}  # the organ is one piece; the speck is no group
    assert sorted(len(g) for g in case["components"][2]) == [27, 500]

    def small_share(c: dict) -> float:
        rng = np.random.default_rng(0)
        centres = [choose_center(c, (1, 1, 1), rng, True) for _ in range(2000)]  # no jitter
        tumour = [x for x in centres if c["seg"][0][tuple(x)] == 2]
        return sum(1 for x in tumour if x[0] >= 30) / len(tumour)

    assert 0.4 < small_share(case) < 0.6
    assert small_share(_two_tumours()) < 0.1  # by voxel: 27 of 529


def test_component_sampling_changes_nothing_for_single_component_classes() -> None:
    plain, grouped = _case(), add_components(_case())
    assert grouped["components"] == {}
    a = PatchSampler([plain], (8, 8, 4), 2, 1.0, None).sample(np.random.default_rng(4))
    b = PatchSampler([grouped], (8, 8, 4), 2, 1.0, None, by_component=True).sample(np.random.default_rng(4))
    np.testing.assert_array_equal(a[1], b[1])


def test_sampler_is_deterministic_and_labels_follow_images() -> None:
    case = _case()
    sampler = PatchSampler([case], (16, 16, 8), 2, 0.5, AugmentSettings(rotate_prob=1.0, scale_prob=1.0))
    a = sampler.sample(np.random.default_rng(3))
    b = sampler.sample(np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert set(np.unique(a[1])) <= {0, 1, 2}


def test_flips_and_intensity_are_replayable() -> None:
    rng = np.random.default_rng(0)
    params = make_params(rng, AugmentSettings(flip_prob=1.0, noise_prob=1.0, brightness_prob=1.0))
    assert params.flips == (0, 1, 2)
    img = np.random.default_rng(1).normal(size=(1, 4, 5, 6)).astype(np.float32)
    lab = (img[0] > 0).astype(np.uint8)
    fi, fl = apply_flips(img, lab, params)
    np.testing.assert_array_equal(fl, (fi[0] > 0).astype(np.uint8))
    np.testing.assert_array_equal(apply_intensity(img, params), apply_intensity(img, params))
    assert not np.allclose(apply_intensity(img, params), img)
