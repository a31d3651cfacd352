from __future__ import annotations

import numpy as np
import pytest

from ctseg.config import AugmentSettings
from ctseg.data import PatchSampler, make_params
from ctseg.data.paste import MIN_INSIDE, Lesion, lesion_bank, paste_lesion


def _ball(shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float) -> np.ndarray:
    grid = np.indices(shape, dtype=np.float32)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2  # type: ignore[return-value]


def _case() -> dict:
    """An organ (label 1, 100 +- 1) holding a 10-voxel-wide lesion at 60 and a 3-voxel speck at 40."""
    rng = np.random.default_rng(0)
    image = rng.normal(0.0, 1.0, size=(1, 40, 40, 30)).astype(np.float32)
    seg = np.zeros((1, 40, 40, 30), np.uint8)
    seg[0, 5:35, 5:35, 5:25] = 1
    image[0][seg[0] == 1] += 100.0
    big = _ball((40, 40, 30), (15, 15, 12), 5)
    speck = np.zeros_like(big)
    speck[28, 28, 18:21] = True
    for mask, value in ((big, 60.0), (speck, 40.0)):
        seg[0][mask] = 2
        image[0][mask] += value - 100.0
    return {"image": image, "seg": seg, "locations": {c: np.argwhere(seg[0] == c) for c in (1, 2)}, "pad_value": 0.0}


def test_the_bank_holds_each_lesion_relative_to_its_organ() -> None:
    bank = lesion_bank([_case()], (2, 1))  # the 3-voxel speck is under the 8-voxel minimum
    assert len(bank) == 1
    entry = bank[0]
    assert entry.mask.sum() == _ball((40, 40, 30), (15, 15, 12), 5).sum()
    assert entry.delta.shape == (1, *entry.mask.shape)
    assert entry.delta[0][entry.mask].mean() == pytest.approx(-40.0, abs=0.3)
    assert len(lesion_bank([_case()], (2, 1), min_voxels=3)) == 2
    empty = _case()
    empty["seg"][empty["seg"] == 2] = 1
    assert lesion_bank([empty], (2, 1)) == []


def _organ_patch() -> tuple[np.ndarray, np.ndarray]:
    """A 32^3 patch: organ (label 1) at 50 +- 1 in its middle 24^3, background at -100 around it."""
    image = np.full((1, 32, 32, 32), -100.0, np.float32)
    label = np.zeros((32, 32, 32), np.uint8)
    label[4:28, 4:28, 4:28] = 1
    image[0][label == 1] = 50.0 + np.random.default_rng(1).normal(0.0, 1.0, size=int((label == 1).sum()))
    return image, label


def _dark_ball(radius: float = 4.0) -> Lesion:
    mask = _ball((11, 11, 11), (5, 5, 5), radius)
    return Lesion(np.where(mask, -30.0, 0.0).astype(np.float32)[None], mask)


def test_a_pasted_lesion_lies_on_the_organ_at_its_contrast_and_is_labelled() -> None:
    image, label = _organ_patch()
    entry = _dark_ball()
    out, new = paste_lesion(image, label, [entry], np.random.default_rng(3), (1.0, 1.0), (2, 1))
    pasted = new == 2
    assert pasted.sum() >= MIN_INSIDE * entry.mask.sum()
    assert np.all(label[pasted] == 1)  # only organ voxels become lesion
    assert np.all(new[~pasted] == label[~pasted])
    core = pasted & (np.abs(np.gradient(pasted.astype(np.float32))).sum(0) == 0)  # away from the edge
    assert out[0][core].mean() == pytest.approx(np.median(image[0][label == 1]) - 30.0, abs=1.5)
    from scipy import ndimage

    far = ~ndimage.binary_dilation(pasted, np.ones((3, 3, 3), bool), iterations=2)
    np.testing.assert_array_equal(out[0][far], image[0][far])  # untouched beyond the blurred edge
    assert out is not image and new is not label  # the inputs are not modified


def test_a_mirrored_copy_is_as_much_brighter_as_the_lesion_was_darker() -> None:
    image, label = _organ_patch()
    out, new = paste_lesion(image, label, [_dark_ball()], np.random.default_rng(3), (1.0, 1.0), (2, 1), mirror=1.0)
    pasted = new == 2
    core = pasted & (np.abs(np.gradient(pasted.astype(np.float32))).sum(0) == 0)
    assert out[0][core].mean() == pytest.approx(np.median(image[0][label == 1]) + 30.0, abs=1.5)


def test_paste_is_deterministic_and_scales_the_copy() -> None:
    image, label = _organ_patch()
    entry = _dark_ball(radius=5.0)
    a = paste_lesion(image, label, [entry], np.random.default_rng(7), (0.5, 0.5), (2, 1))
    b = paste_lesion(image, label, [entry], np.random.default_rng(7), (0.5, 0.5), (2, 1))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    half = int((a[1] == 2).sum())
    assert 0.5 * entry.mask.sum() / 8 < half < 2.0 * entry.mask.sum() / 8  # a half-size copy: ~1/8 the voxels


def test_nothing_is_pasted_without_a_host_or_a_bank_or_a_place() -> None:
    image, label = _organ_patch()
    background = np.zeros_like(label)
    assert paste_lesion(image, background, [_dark_ball()], np.random.default_rng(0), (1, 1), (2, 1))[1] is background
    assert paste_lesion(image, label, [], np.random.default_rng(0), (1, 1), (2, 1))[1] is label
    thin = np.zeros_like(label)
    thin[4:28, 4:28, 15] = 1  # a one-voxel sheet of organ: no place holds 80 % of a ball
    assert paste_lesion(image, thin, [_dark_ball()], np.random.default_rng(0), (1, 1), (2, 1))[1] is thin


def test_the_sampler_pastes_lesions_from_its_own_cases() -> None:
    # a large organ with its one lesion in a corner: few random patches hold it unless one is pasted
    shape = (72, 72, 36)
    seg = np.zeros((1, *shape), np.uint8)
    seg[0, 4:68, 4:68, 4:32] = 1
    lesion = _ball(shape, (12, 12, 10), 4)
    seg[0][lesion] = 2
    image = np.where(seg == 1, 100.0, 0.0).astype(np.float32)
    image[0][lesion] = 60.0
    case = {"image": image, "seg": seg, "locations": {c: np.argwhere(seg[0] == c) for c in (1, 2)}, "pad_value": 0.0}
    plain = dict(flip_prob=0.0, rotate_prob=0.0, scale_prob=0.0, brightness_prob=0.0, shift_prob=0.0, contrast_prob=0.0, gamma_prob=0.0, noise_prob=0.0)
    on = PatchSampler([case], (16, 16, 12), 12, 0.0, AugmentSettings(**plain, lesion_paste_prob=1.0, lesion_paste_scale=(0.6, 0.9)))
    off = PatchSampler([case], (16, 16, 12), 12, 0.0, AugmentSettings(**plain))
    assert len(on.bank) == 1 and off.bank == []
    images, with_paste = on.sample(np.random.default_rng(0))
    without = off.sample(np.random.default_rng(0))[1]
    holds = lambda labels: sum(bool((patch == 2).any()) for patch in labels)  # noqa: E731
    assert holds(with_paste) >= 10 and holds(without) <= 3
    assert np.all(images[:, 0][with_paste == 2] < 90.0)  # pasted voxels are darker than the organ


def test_paste_off_leaves_the_random_stream_as_it_was() -> None:
    rng = np.random.default_rng(5)
    off = make_params(rng, AugmentSettings())
    after_off = rng.random()
    rng = np.random.default_rng(5)
    make_params(rng, AugmentSettings(lesion_paste_prob=0.0, lesion_contrast_prob=0.0))
    assert rng.random() == after_off and off.paste_seed == -1
    on = make_params(np.random.default_rng(5), AugmentSettings(lesion_paste_prob=1.0))
    assert on.paste_seed >= 0


def test_a_bad_scale_range_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="lesion_paste_scale .* 0 < low <= high"):
        PatchSampler([_case()], (16, 16, 12), 2, 0.5, AugmentSettings(lesion_paste_prob=0.5, lesion_paste_scale=(0.0, 1.0)))
    with pytest.raises(ValueError, match="lesion_paste_scale"):
        PatchSampler([_case()], (16, 16, 12), 2, 0.5, AugmentSettings(lesion_paste_prob=0.5, lesion_paste_scale=(1.0, 0.5)))
    PatchSampler([_case()], (16, 16, 12), 2, 0.5, AugmentSettings(lesion_paste_scale=(0.0, 1.0)))  # off: not checked
