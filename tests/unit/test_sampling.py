from __future__ import annotations

import numpy as np

from ctseg.config import AugmentSettings
from ctseg.data import (
    PatchParams,
    PatchSampler,
    apply_flips,
    apply_intensity,
    apply_lesion_contrast,
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


def _lesion_patch() -> tuple[np.ndarray, np.ndarray]:
    """An organ at 0.5 with a hypodense lesion at 0.1 (contrast -0.4), both with the same noise."""
    label = np.zeros((24, 24, 12), np.uint8)
    label[2:22, 2:22, 1:11] = 1
    label[8:16, 8:16, 3:9] = 2
    noise = np.random.default_rng(0).normal(0.0, 0.05, label.shape).astype(np.float32)
    image = (np.where(label == 2, 0.1, np.where(label == 1, 0.5, -1.0)) + noise)[None].astype(np.float32)
    return image, label


def test_lesion_contrast_is_mirrored_about_the_organ_with_the_texture_kept() -> None:
    image, label = _lesion_patch()
    out = apply_lesion_contrast(image, label, PatchParams(lesion_contrast=1.0))
    delta = image[0][label == 2].mean() - image[0][label == 1].mean()  # about -0.4
    core = (slice(10, 14), slice(10, 14), slice(5, 7))  # two voxels or more from the edge
    np.testing.assert_allclose(out[0][core] - image[0][core], -2.0 * delta, atol=1e-4)  # same noise, moved
    assert out[0][label == 2].mean() - out[0][label == 1].mean() > 0.3  # now hyperdense
    far = np.zeros_like(label, bool)
    far[2:5, 2:5, 1:11] = True  # organ away from the lesion
    np.testing.assert_array_equal(out[0][far], image[0][far])
    # half as strong: the new contrast is half the old one's size, on the other side
    half = apply_lesion_contrast(image, label, PatchParams(lesion_contrast=0.5))
    np.testing.assert_allclose(half[0][core] - image[0][core], -1.5 * delta, atol=1e-4)


def test_lesion_contrast_off_absent_or_other_labels() -> None:
    image, label = _lesion_patch()
    assert apply_lesion_contrast(image, label, PatchParams()) is image  # off
    no_lesion = np.where(label == 2, 1, label).astype(np.uint8)
    assert apply_lesion_contrast(image, no_lesion, PatchParams(lesion_contrast=1.0)) is image
    # (lesion, host) from the settings: with labels (1, 0) the organ is mirrored about the background
    params = make_params(np.random.default_rng(0), AugmentSettings(lesion_contrast_prob=1.0, lesion_contrast_scale=(0.8, 0.9), lesion_labels=(1, 0)))
    assert 0.8 <= params.lesion_contrast <= 0.9 and params.lesion_labels == (1, 0)
    assert make_params(np.random.default_rng(0), AugmentSettings()).lesion_contrast == 0.0


def test_sampler_applies_the_lesion_contrast() -> None:
    image, label = _lesion_patch()
    case = {"image": image, "seg": label[None], "locations": {c: np.argwhere(label == c) for c in (1, 2)}, "pad_value": -1.0}
    plain = dict(flip_prob=0.0, rotate_prob=0.0, scale_prob=0.0, brightness_prob=0.0, shift_prob=0.0, contrast_prob=0.0, gamma_prob=0.0, noise_prob=0.0)
    settings = AugmentSettings(**plain, lesion_contrast_prob=1.0)
    images, labels = PatchSampler([case], (24, 24, 12), 1, 1.0, settings).sample(np.random.default_rng(0))
    lesion, organ = images[0, 0][labels[0] == 2], images[0, 0][labels[0] == 1]
    assert lesion.mean() > organ.mean() + 0.2
    images, labels = PatchSampler([case], (24, 24, 12), 1, 1.0, AugmentSettings(**plain)).sample(np.random.default_rng(0))
    assert images[0, 0][labels[0] == 2].mean() < images[0, 0][labels[0] == 1].mean() - 0.3


def test_lesion_contrast_off_leaves_the_random_stream_as_it_was() -> None:
    # turned off it draws nothing, so every other augmentation (and every earlier run's patches)
    # keeps its random numbers; turned on it draws its chance (and, when it fires, its scale)
    class Counting:
        def __init__(self) -> None:
            self.rng, self.calls = np.random.default_rng(5), 0

        def __getattr__(self, name: str):
            def call(*args, **kwargs):
                self.calls += 1
                return getattr(self.rng, name)(*args, **kwargs)

            return call

    off, rare, always = Counting(), Counting(), Counting()
    make_params(off, AugmentSettings())
    make_params(rare, AugmentSettings(lesion_contrast_prob=1e-12))
    make_params(always, AugmentSettings(lesion_contrast_prob=1.0))
    assert rare.calls == off.calls + 1 and always.calls == off.calls + 2
