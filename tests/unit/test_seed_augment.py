"""Histogram equalisation and elastic deformation (used by the seed-system presets)."""

from __future__ import annotations

import numpy as np

from ctseg.config import AugmentSettings
from ctseg.data.augment import PatchParams, elastic_displacement, make_params
from ctseg.data.sampling import extract_patch
from ctseg.preprocessing.intensity import equalize_histogram, normalization_params, normalize


def test_equalisation_flattens_the_histogram_and_keeps_the_order() -> None:
    x = np.random.default_rng(0).normal(40.0, 25.0, (24, 24, 24)).astype(np.float32)
    y = equalize_histogram(np.clip(x, -135, 250), -135.0, 250.0)
    counts = np.histogram(y, bins=5, range=(-135, 250))[0]
    assert counts.min() > 0.8 * counts.max()  # a normal histogram is far from flat; this is flat
    order = np.argsort(x.ravel(), kind="stable")
    assert np.all(np.diff(y.ravel()[order]) >= -1e-4)  # monotonic
    assert y.min() >= -135.0 and y.max() <= 250.0
    np.testing.assert_array_equal(equalize_histogram(np.full((3, 3, 3), 7.0), 0.0, 10.0), np.full((3, 3, 3), 7.0))


def test_plan_switch_turns_equalisation_on_in_normalize() -> None:
    params = normalization_params({}, "window", (-135.0, 250.0), equalize=True)
    assert params["equalize"] is True
    x = np.random.default_rng(1).normal(40.0, 25.0, (16, 16, 16)).astype(np.float32)
    out = normalize(x, params)
    plain = normalize(x, normalization_params({}, "window", (-135.0, 250.0)))
    assert out.min() >= -1.0 - 1e-6 and out.max() <= 1.0 + 1e-6
    assert np.abs(out - plain).max() > 0.1 and np.histogram(out, bins=4)[0].std() < np.histogram(plain, bins=4)[0].std()


def test_elastic_field_is_smooth_bounded_and_seeded() -> None:
    field = elastic_displacement((20, 20, 16), alpha=4.0, sigma=5.0, seed=3)
    assert field.shape == (3, 20, 20, 16)
    assert np.sqrt((field**2).sum(0)).max() == np.float32(4.0) or np.isclose(np.sqrt((field**2).sum(0)).max(), 4.0, atol=1e-5)
    np.testing.assert_array_equal(field, elastic_displacement((20, 20, 16), 4.0, 5.0, 3))
    assert np.abs(np.diff(field, axis=1)).max() < 1.0  # smooth: neighbours move together


def test_deformed_patch_samples_the_image_at_the_displaced_positions() -> None:
    # image = its own x index: a sampled value is the x coordinate it was read from
    shape = (40, 40, 40)
    image = np.broadcast_to(np.arange(40, dtype=np.float32)[:, None, None], shape)[None].copy()
    seg = (image > 19.5).astype(np.uint8)
    params = PatchParams(elastic_alpha=3.0, elastic_sigma=4.0, elastic_seed=11)
    center, patch = np.array([20, 20, 20]), (16, 16, 16)
    img, lab = extract_patch(image, seg, center, patch, params, pad_value=0.0)
    field = elastic_displacement(patch, 3.0, 4.0, 11)
    expected_x = np.arange(16, dtype=np.float32)[:, None, None] + (20 - 7.5) + field[0]
    np.testing.assert_allclose(img[0], expected_x, atol=1e-4)
    assert set(np.unique(lab)) <= {0, 1}
    np.testing.assert_array_equal(lab, (np.rint(expected_x) > 19.5).astype(np.uint8))
    # without deformation the same call is a plain crop
    plain, _ = extract_patch(image, seg, center, patch, PatchParams(), pad_value=0.0)
    np.testing.assert_array_equal(plain[0], np.broadcast_to(np.arange(12, 28, dtype=np.float32)[:, None, None], patch))


def test_elastic_probability_is_sampled_from_the_settings() -> None:
    rng = np.random.default_rng(0)
    on = [make_params(rng, AugmentSettings(elastic_prob=1.0, elastic_alpha=(2.0, 5.0))) for _ in range(20)]
    assert all(2.0 <= p.elastic_alpha <= 5.0 and p.is_spatial for p in on)
    off = make_params(rng, AugmentSettings())
    assert off.elastic_alpha == 0.0


def test_window_zscore_clips_to_the_window_and_scales_by_the_foreground() -> None:
    import pytest

    fingerprint = {"intensity": {"mean": 60.0, "std": 20.0, "p00_5": -5.0, "p99_5": 120.0}}
    x = np.array([-1000.0, -135.0, -100.0, 0.0, 60.0, 80.0, 250.0, 3000.0], dtype=np.float32)
    params = normalization_params(fingerprint, "window_zscore", (-135.0, 250.0))
    np.testing.assert_allclose(normalize(x, params), (np.clip(x, -135.0, 250.0) - 60.0) / 20.0, rtol=1e-6)
    window = normalize(x, normalization_params(fingerprint, "window", (-135.0, 250.0)))
    zscore = normalize(x, params)
    # fat (-100) stays apart from the organ, as with the window; a 20 HU contrast is one unit, not 0.1
    assert zscore[2] < zscore[3] < zscore[4] and window[2] < window[3]
    assert zscore[5] - zscore[4] == pytest.approx(1.0) and window[5] - window[4] == pytest.approx(20.0 / 192.5, rel=1e-5)
    with pytest.raises(ValueError, match="window_zscore"):
        normalization_params(fingerprint, "percentile", (-135.0, 250.0))
