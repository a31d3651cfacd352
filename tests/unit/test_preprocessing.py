from __future__ import annotations

import numpy as np
import pytest

from ctseg.config import PlanSettings
from ctseg.preprocessing.crop import body_bbox
from ctseg.preprocessing.intensity import normalize
from ctseg.preprocessing.plan import make_plan
from ctseg.preprocessing.resample import (
    argmax_resampled,
    grid_for_spacing,
    resample_array,
    resample_labels,
)


def test_grid_for_spacing_keeps_physical_extent() -> None:
    affine = np.diag([0.75, 0.75, 2.5, 1.0])
    new_affine, new_shape = grid_for_spacing(affine, (512, 512, 80), (1.5, 1.5, 5.0))
    assert new_shape == (256, 256, 40)
    # outer voxel faces coincide: first centre moves by half the size difference
    np.testing.assert_allclose(new_affine[:3, 3], [0.375, 0.375, 1.25])
    np.testing.assert_allclose(np.diag(new_affine)[:3], [1.5, 1.5, 5.0])


def test_resample_identity_and_known_values() -> None:
    data = np.random.default_rng(0).normal(size=(8, 9, 10)).astype(np.float32)
    same = resample_array(data, np.eye(4), np.eye(4), data.shape, order=3)
    np.testing.assert_allclose(same, data, atol=1e-5)
    ramp = np.broadcast_to(np.arange(10, dtype=np.float32), (4, 4, 10)).copy()
    dst = np.eye(4)
    dst[2, 2], dst[2, 3] = 0.5, 0.0  # twice as many slices, same origin
    up = resample_array(ramp, np.eye(4), dst, (4, 4, 19), order=1)
    np.testing.assert_allclose(up[0, 0, :5], [0, 0.5, 1, 1.5, 2], atol=1e-6)


def test_per_label_resampling_keeps_tumour_inside_organ() -> None:
    labels = np.zeros((40, 40, 40), np.uint8)
    labels[6:34, 6:34, 6:34] = 1  # 28 mm cube: faces fall between the 2 mm voxel centres
    labels[16:22, 16:22, 16:22] = 2  # 6 mm cube
    affine, shape = grid_for_spacing(np.eye(4), labels.shape, (2.0, 2.0, 2.0))
    out = resample_labels(labels, np.eye(4), affine, shape)
    assert set(np.unique(out)) == {0, 1, 2}
    assert (out == 2).sum() == 3**3 and (out > 0).sum() == 14**3  # volumes kept exactly


def test_argmax_resampled_outside_is_background() -> None:
    probs = np.zeros((3, 4, 4, 4), np.float32)
    probs[2] = 1.0
    out = argmax_resampled(probs, np.eye(4), np.eye(4), (6, 6, 6))
    assert (out[:4, :4, :4] == 2).all() and (out[5, 5, 5] == 0)


def test_body_bbox_ignores_small_bright_specks() -> None:
    ct = np.full((30, 30, 10), -1000.0)
    ct[5:25, 8:22, :] = 40.0
    ct[0, 0, 0] = 500.0  # detached speck
    box = body_bbox(ct, margin=0)
    assert box == (slice(5, 25), slice(8, 22), slice(0, 10))


def test_body_bbox_keeps_the_largest_component_wherever_it_lies() -> None:
    ct = np.full((40, 30, 10), -1000.0)
    ct[0:6, :, :] = 100.0  # a table slab: labelled first, 1800 voxels
    ct[12:38, 5:25, 1:9] = 40.0  # the body: 4160 voxels
    assert body_bbox(ct, margin=0) == (slice(12, 38), slice(5, 25), slice(1, 9))
    assert body_bbox(ct, margin=3) == (slice(9, 40), slice(2, 28), slice(0, 10))  # clipped to the volume


def test_body_bbox_of_air_is_the_whole_volume() -> None:
    ct = np.full((8, 9, 10), -1000.0)
    assert body_bbox(ct) == (slice(0, 8), slice(0, 9), slice(0, 10))


def test_normalize_clips_and_standardises() -> None:
    out = normalize(np.array([-2000.0, 0.0, 5000.0]), {"clip_low": -100.0, "clip_high": 300.0, "mean": 100.0, "std": 50.0})
    np.testing.assert_allclose(out, [-4.0, -2.0, 4.0])


def _fingerprint(spacings, extent):
    return {
        "labels": {"0": "background", "1": "organ"},
        "median_spacing": list(np.median(spacings, axis=0)),
        "spacing_p10": list(np.percentile(spacings, 10, axis=0)),
        "median_extent_mm": extent,
        "intensity": {"mean": 50.0, "std": 20.0, "p00_5": -50.0, "p99_5": 200.0, "min": -100.0, "max": 300.0},
    }


def test_plan_anisotropic_and_budget() -> None:
    fp = _fingerprint([[0.8, 0.8, 5.0], [0.7, 0.7, 5.0], [0.75, 0.75, 2.5]], [300.0, 250.0, 200.0])
    plan = make_plan(fp, PlanSettings())
    assert plan.spacing[0] < 1.0 and plan.spacing[2] >= 2.5
    div = np.prod(np.array(plan.network["strides"]), axis=0)
    assert all(p % d == 0 for p, d in zip(plan.patch_size, div))
    assert np.prod(plan.patch_size) <= 128**3
    # a coarse axis is not pooled in the first stage and gets 1-wide kernels
    assert plan.network["strides"][1][2] == 1 and plan.network["kernel_sizes"][0][2] == 1
    small = make_plan(fp, PlanSettings(max_median_voxels=1e6, max_patch_voxels=48**3, max_features=64))
    assert np.prod(np.array(fp["median_extent_mm"]) / np.array(small.spacing)) <= 1e6
    assert max(small.network["features"]) <= 64 and np.prod(small.patch_size) <= 48**3
    assert small.normalization["mode"] == "foreground" and small.normalization["clip_high"] == 200.0


def test_argmax_box_restriction_is_exact() -> None:
    """Restricting to the foreground box gives the same labels as resampling everything."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 12, 10, 8)).astype(np.float32)
    logits[0, :, :, :] += 2.0
    logits[0, 3:7, 4:8, 2:5] -= 5.0  # a foreground blob
    probs = np.exp(logits) / np.exp(logits).sum(0)
    src = np.diag([2.0, 2.0, 3.0, 1.0])
    dst, shape = grid_for_spacing(src, (12, 10, 8), (0.7, 0.9, 1.3))
    full_best = np.full(shape, -np.inf, np.float32)
    full = np.zeros(shape, np.uint8)
    for c in range(3):
        res = resample_array(probs[c], src, dst, shape, order=1, antialias=False, mode="constant", cval=1.0 if c == 0 else 0.0)
        full[res > full_best] = c
        full_best = np.maximum(full_best, res)
    np.testing.assert_array_equal(argmax_resampled(probs, src, dst, shape), full)
    assert (full > 0).any()


@pytest.mark.parametrize(
    ("matrix", "order", "mode"),
    [
        (np.diag([3.2, 3.1, 1.0]), 3, "nearest"),  # in-plane downsampling: anti-aliasing + cubic
        (np.diag([0.8, 0.9, 0.6]), 3, "nearest"),  # upsampling, reaching past the source's edge
        (np.diag([2.0, 1.0, 1.5]), 1, "constant"),  # linear, outside = cval
        (None, 3, "constant"),  # an oblique mapping (general matrix)
    ],
)
def test_threaded_resampling_equals_one_scipy_call(monkeypatch, matrix, order, mode) -> None:
    from ctseg.preprocessing import resample

    monkeypatch.setattr(resample, "_THREADED_VOXELS", 0)  # small arrays take the threaded path too
    rng = np.random.default_rng(1)
    image = (rng.random((41, 37, 23)) * 200 - 50).astype(np.float32)
    src = np.eye(4)
    dst = np.eye(4)
    if matrix is None:
        angle = np.deg2rad(20.0)
        dst[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1.0]]
    else:
        dst[:3, :3] = matrix
    dst[:3, 3] = [-1.3, 0.7, -0.4]
    shape = (29, 33, 31)
    one = resample.resample_array(image, src, dst, shape, order=order, mode=mode, cval=-7.0, threads=1, separable=False)
    for threads in (2, 3):
        many = resample.resample_array(image, src, dst, shape, order=order, mode=mode, cval=-7.0, threads=threads, separable=False)
        np.testing.assert_allclose(many, one, rtol=0, atol=1e-4)  # < 1e-6 of the values' range
    assert one.dtype == many.dtype == np.float32 and one.shape == shape


def test_one_thread_is_the_plain_scipy_call() -> None:
    from scipy import ndimage

    image = np.random.default_rng(2).random((20, 18, 16)).astype(np.float32)
    dst = np.diag([1.5, 1.5, 1.0, 1.0])
    out = resample_array(image, np.eye(4), dst, (13, 12, 16), threads=1, separable=False)
    smooth = ndimage.gaussian_filter(image, sigma=[0.25, 0.25, 0.0], mode="nearest")
    expected = ndimage.affine_transform(smooth, [1.5, 1.5, 1.0], offset=0.0, output_shape=(13, 12, 16), order=3, mode="nearest", output=np.float32)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("scale", "order", "mode", "antialias"),
    [
        ((3.2, 3.1, 1.0), 3, "nearest", True),  # in-plane downsampling: anti-aliasing + cubic
        ((0.8, 0.9, 0.6), 3, "nearest", True),  # upsampling, reaching past the source's edge
        ((2.0, 1.0, 1.5), 1, "constant", False),  # linear, outside = the fill value
        ((0.7, 1.3, 2.0), 3, "constant", True),  # cubic, fill value, mixed up/down
        ((0.7, 1.3, 2.0), 0, "constant", False),  # nearest neighbour: exact
        ((1.0, 1.0, 1.0), 3, "nearest", False),  # a pure shift
        ((-1.4, 1.0, -0.8), 3, "nearest", True),  # flipped axes (a mirrored grid)
        ((-1.4, 1.0, -0.8), 1, "constant", False),
    ],
)
def test_separable_resampling_equals_one_scipy_call(scale, order, mode, antialias) -> None:
    """The per-axis matrix products give what one SciPy call gives, up to float32 rounding."""
    rng = np.random.default_rng(1)
    image = (rng.random((41, 37, 23)) * 200 - 50).astype(np.float32)
    dst = np.eye(4)
    dst[:3, :3] = np.diag(scale)
    dst[:3, 3] = [40.0 if scale[0] < 0 else -1.3, 0.7, 22.0 if scale[2] < 0 else -0.4]  # a flipped axis starts at the far end
    shape = (29, 33, 31)
    args = (image, np.eye(4), dst, shape)
    kwargs = {"order": order, "mode": mode, "cval": -7.0, "antialias": antialias}
    scipy_call = resample_array(*args, **kwargs, threads=1, separable=False)
    separable = resample_array(*args, **kwargs)
    assert separable.dtype == np.float32 and separable.shape == shape and separable.flags.c_contiguous
    np.testing.assert_allclose(separable, scipy_call, rtol=0, atol=2e-4)  # 1e-6 of the 200 HU range
    if order == 0:
        np.testing.assert_array_equal(separable, scipy_call)


def test_separable_resampling_skips_oblique_and_other_modes(monkeypatch) -> None:
    """Only diagonal mappings with the checked modes take the matrix products."""
    from ctseg.preprocessing import resample

    calls = []
    monkeypatch.setattr(resample, "_resample_separable", lambda *a: calls.append(a) or np.zeros(a[3], np.float32))
    image = np.ones((8, 8, 8), np.float32)
    oblique = np.eye(4)
    oblique[:2, :2] = [[0.8, -0.6], [0.6, 0.8]]
    resample.resample_array(image, np.eye(4), oblique, (8, 8, 8))
    resample.resample_array(image, np.eye(4), np.diag([2.0, 2.0, 2.0, 1.0]), (4, 4, 4), mode="reflect")
    assert not calls
    resample.resample_array(image, np.eye(4), np.diag([2.0, 2.0, 2.0, 1.0]), (4, 4, 4))
    assert len(calls) == 1
