"""ctseg.metrics: known answers, edge cases and independent cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from ctseg.metrics import (
    SurfaceDistances,
    case_metrics,
    confusion,
    dice,
    jaccard,
    mask_metrics,
    surface_distances,
    surface_voxels,
    volume_ml,
    voxel_volume_ml,
)

ANISO = (0.7, 0.7, 3.0)


def cube(shape, start, size):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + size) for s in start)] = True
    return mask


def sphere(shape, centre_vox, radius_mm, spacing):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    dist2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre_vox, spacing, strict=True))
    return dist2 <= radius_mm**2


def random_blob(rng, shape, threshold=0.6, sigma=1.5):
    noise = ndimage.gaussian_filter(rng.random(shape), sigma)
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-12)
    return noise > threshold


def independent_surface(mask):
    """Surface with scipy's binary erosion (6-connectivity, outside = background)."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def brute_force(pred, ref, spacing):
    """Directed distances by k-d tree over surface voxel-centre coordinates in mm."""
    a = np.argwhere(independent_surface(pred)) * np.asarray(spacing)
    b = np.argwhere(independent_surface(ref)) * np.asarray(spacing)
    return cKDTree(b).query(a)[0], cKDTree(a).query(b)[0]


def full_volume(pred, ref, spacing):
    """Directed distances with the distance transform over the whole array (no bounding box)."""
    sp, sr = independent_surface(pred), independent_surface(ref)
    return (
        ndimage.distance_transform_edt(~sr, sampling=spacing)[sp],
        ndimage.distance_transform_edt(~sp, sampling=spacing)[sr],
    )


# ----------------------------------------------------------------------------- overlap


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_offset_cubes_dice_jaccard(k):
    a = 6
    ref = cube((20, 20, 20), (4, 4, 4), a)
    pred = cube((20, 20, 20), (4 + k, 4, 4), a)
    assert confusion(pred, ref) == (a * a * (a - k), a * a * k, a * a * k)
    assert dice(pred, ref) == pytest.approx((a - k) / a)
    assert jaccard(pred, ref) == pytest.approx((a - k) / (a + k))
    sd = surface_distances(pred, ref, ANISO)
    assert sd.hd == pytest.approx(k * ANISO[0])


def test_overlap_edge_cases_and_volumes():
    empty = np.zeros((4, 4, 4), dtype=bool)
    full = cube((4, 4, 4), (1, 1, 1), 2)
    assert math.isnan(dice(empty, empty)) and math.isnan(jaccard(empty, empty))
    assert dice(full, empty) == 0.0 and jaccard(empty, full) == 0.0
    assert voxel_volume_ml((1.0, 2.0, 5.0)) == pytest.approx(0.01)
    assert volume_ml(full, (1.0, 2.0, 5.0)) == pytest.approx(0.08)
    assert volume_ml(8, (10.0, 10.0, 10.0)) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="same shape"):
        dice(full, np.zeros((4, 4, 5), dtype=bool))


# ----------------------------------------------------------------------------- surfaces


def test_surface_voxels():
    assert surface_voxels(cube((5, 5, 5), (1, 1, 1), 3)).sum() == 26  # all but the centre
    assert surface_voxels(cube((3, 3, 3), (0, 0, 0), 3)).sum() == 26  # border counts as outside
    single = cube((3, 3, 3), (1, 1, 1), 1)
    assert np.array_equal(surface_voxels(single), single)
    rng = np.random.default_rng(0)
    blob = random_blob(rng, (10, 11, 9), threshold=0.4)
    assert np.array_equal(surface_voxels(blob), independent_surface(blob))


def test_shifted_sphere_hd_equals_shift_anisotropic():
    shape = (40, 40, 16)
    ref = sphere(shape, (20, 20, 7), 9.0, ANISO)
    pred = sphere(shape, (20, 20, 9), 9.0, ANISO)  # two slices along z = 6 mm
    sd = surface_distances(pred, ref, ANISO)
    assert sd.hd == pytest.approx(6.0)
    assert 0.0 < sd.hd95 <= 6.0 and 0.0 < sd.asd < 6.0


def test_identical_masks():
    mask = sphere((20, 20, 10), (10, 10, 5), 5.0, ANISO)
    sd = surface_distances(mask, mask, ANISO)
    assert dice(mask, mask) == 1.0
    assert sd.hd == 0.0 and sd.hd95 == 0.0 and sd.asd == 0.0 and sd.nsd(0.0) == 1.0


def test_surface_edge_cases():
    empty = np.zeros((6, 6, 6), dtype=bool)
    mask = cube((6, 6, 6), (1, 1, 1), 3)
    both = surface_distances(empty, empty, ANISO)
    assert both.pred_empty and both.ref_empty
    assert all(math.isnan(v) for v in (both.hd, both.hd95, both.asd, both.nsd(1.0)))
    for pred, ref in ((mask, empty), (empty, mask)):
        sd = surface_distances(pred, ref, ANISO)
        assert sd.hd == math.inf and sd.hd95 == math.inf and sd.asd == math.inf
        assert sd.nsd(100.0) == 0.0
    assert surface_distances(mask, empty, ANISO).pred_to_ref.size == 26
    assert surface_distances(empty, mask, ANISO).pred_to_ref.size == 0


def test_hd95_convention_max_of_directed_percentiles():
    sd = SurfaceDistances(np.arange(101, dtype=float), np.array([0.0, 10.0]))
    assert sd.hd95 == pytest.approx(max(95.0, 9.5))
    assert sd.hd == 100.0
    assert sd.asd == pytest.approx((np.arange(101).sum() + 10.0) / 103)
    assert sd.nsd(10.0) == pytest.approx((11 + 2) / 103)
    assert sd.hd_percentile(100) == sd.hd
    with pytest.raises(ValueError, match="percentile"):
        sd.hd_percentile(101)
    with pytest.raises(ValueError, match="tolerance_mm"):
        sd.nsd(-1.0)


def test_bbox_restriction_matches_full_volume():
    rng = np.random.default_rng(1)
    for _ in range(5):
        shape = (24, 20, 12)
        pred = np.zeros(shape, dtype=bool)
        ref = np.zeros(shape, dtype=bool)
        pred[3:15, 2:14, 1:9] = random_blob(rng, (12, 12, 8))
        ref[5:17, 4:16, 2:10] = random_blob(rng, (12, 12, 8))
        if not pred.any() or not ref.any():
            continue
        sd = surface_distances(pred, ref, ANISO)
        full_p2r, full_r2p = full_volume(pred, ref, ANISO)
        np.testing.assert_allclose(sd.pred_to_ref, full_p2r, atol=1e-12)
        np.testing.assert_allclose(sd.ref_to_pred, full_r2p, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_kdtree(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(6, 16, size=3))
    spacing = tuple(float(s) for s in rng.uniform(0.4, 3.5, size=3))
    pred, ref = random_blob(rng, shape, 0.5, 1.0), random_blob(rng, shape, 0.5, 1.0)
    if not pred.any() or not ref.any():
        pytest.skip("degenerate random draw")
    p2r, r2p = brute_force(pred, ref, spacing)
    sd = surface_distances(pred, ref, spacing)
    assert sd.hd95 == pytest.approx(max(np.percentile(p2r, 95), np.percentile(r2p, 95)), abs=1e-6)
    assert sd.asd == pytest.approx(np.concatenate([p2r, r2p]).mean(), abs=1e-6)
    assert sd.hd == pytest.approx(max(p2r.max(), r2p.max()), abs=1e-6)
    tol = float(np.median(p2r)) + 1e-4  # off any exact distance, where rounding could tie
    expected_nsd = ((p2r <= tol).sum() + (r2p <= tol).sum()) / (p2r.size + r2p.size)
    assert sd.nsd(tol) == pytest.approx(expected_nsd)


def test_surface_distances_validation():
    mask = cube((5, 5, 5), (1, 1, 1), 2)
    with pytest.raises(ValueError, match="one voxel size"):
        surface_distances(mask, mask, (1.0, 1.0))
    with pytest.raises(ValueError, match="positive"):
        surface_distances(mask, mask, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="same shape"):
        surface_distances(mask, mask[:4], (1.0, 1.0, 1.0))


# ----------------------------------------------------------------------------- case_metrics


def two_label_case():
    shape = (20, 20, 10)
    ref = np.zeros(shape, dtype=np.int16)
    pred = np.zeros(shape, dtype=np.int16)
    ref[2:8, 2:8, 2:8] = 1
    pred[3:9, 2:8, 2:8] = 1  # cube of 6 shifted by 1 along i
    ref[12:16, 12:16, 3:7] = 2
    pred[12:16, 12:16, 3:7] = 2  # identical
    return pred, ref


def test_case_metrics_rows_and_regions():
    pred, ref = two_label_case()
    spacing = (0.5, 0.5, 2.0)
    rows = case_metrics(
        pred,
        ref,
        spacing,
        {0: "background", 1: "organ", 2: "tumour", 3: "absent"},
        {"organ+tumour": [1, 2]},
    )
    assert [r["label"] for r in rows] == [1, 2, 3, "organ+tumour"]
    organ, tumour, absent, region = rows
    assert organ["name"] == "organ" and organ["dice"] == pytest.approx(5 / 6)
    assert organ["jaccard"] == pytest.approx(5 / 7)
    assert organ["ref_volume_ml"] == pytest.approx(216 * 0.5 / 1000)
    assert organ["hd95"] == pytest.approx(0.5) and not organ["ref_empty"]
    assert tumour["dice"] == 1.0 and tumour["hd95"] == 0.0 and tumour["asd"] == 0.0
    assert absent["ref_empty"] and absent["pred_empty"] and math.isnan(absent["dice"])
    assert math.isnan(absent["hd95"]) and absent["ref_volume_ml"] == 0.0
    union_dice = 2 * (180 + 64) / (216 + 64 + 216 + 64)
    assert region["name"] == "organ+tumour" and region["dice"] == pytest.approx(union_dice)
    expected = mask_metrics(np.isin(pred, [1, 2]), np.isin(ref, [1, 2]), spacing)
    assert region["hd95"] == pytest.approx(expected["hd95"]) and region["asd"] == pytest.approx(
        expected["asd"]
    )
    assert set(organ) >= {
        "label",
        "name",
        "dice",
        "jaccard",
        "hd95",
        "asd",
        "ref_volume_ml",
        "pred_volume_ml",
        "ref_empty",
        "pred_empty",
    }


def test_case_metrics_one_side_empty():
    pred, ref = two_label_case()
    pred[pred == 2] = 0
    row = case_metrics(pred, ref, (1.0, 1.0, 1.0), {2: "tumour"})[0]
    assert row["dice"] == 0.0 and row["hd95"] == math.inf and row["asd"] == math.inf
    assert row["pred_empty"] and not row["ref_empty"] and row["pred_volume_ml"] == 0.0


def test_case_metrics_matches_full_mask_computation():
    rng = np.random.default_rng(3)
    ref = (random_blob(rng, (16, 14, 10), 0.5) * 1 + random_blob(rng, (16, 14, 10), 0.7)).astype(
        np.uint8
    )
    pred = (random_blob(rng, (16, 14, 10), 0.5) * 1 + random_blob(rng, (16, 14, 10), 0.7)).astype(
        np.uint8
    )
    rows = case_metrics(pred, ref, ANISO, {1: "a", 2: "b"})
    for row in rows:
        expected = mask_metrics(pred == row["label"], ref == row["label"], ANISO)
        for key in ("dice", "jaccard", "hd95", "asd", "ref_volume_ml", "pred_volume_ml"):
            assert row[key] == pytest.approx(expected[key], nan_ok=True)


def test_case_metrics_validation():
    pred, ref = two_label_case()
    with pytest.raises(ValueError, match="same shape"):
        case_metrics(pred[:-1], ref, (1, 1, 1), {1: "a"})
    with pytest.raises(ValueError, match="one voxel size"):
        case_metrics(pred, ref, (1, 1), {1: "a"})
    with pytest.raises(ValueError, match="integer label array"):
        case_metrics(pred.astype(float), ref, (1, 1, 1), {1: "a"})
    with pytest.raises(ValueError, match="unique"):
        case_metrics(pred, ref, (1, 1, 1), {1: "a"}, {"a": [1, 2]})
    with pytest.raises(ValueError, match=">= 0"):
        case_metrics(pred, ref, (1, 1, 1), {-1: "a"})
