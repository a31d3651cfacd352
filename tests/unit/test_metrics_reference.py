"""ctseg.metrics against the reference implementations: MONAI (same convention, agree to 1e-6) and
DeepMind's surface-distance (a different surface convention: agree under the stated conversion).

See README "Metrics" for the conventions. Both packages are in the ``test`` extra; the tests skip
when one is missing.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage

from ctseg.metrics import dice, surface_distances

ANISO = [(0.7, 0.7, 3.0), (3.0, 0.5, 1.2), (1.0, 1.0, 1.0), (0.8, 2.5, 5.0)]
TOL_MM = 2.0


def blob(rng, shape, threshold=0.55, sigma=1.5):
    noise = ndimage.gaussian_filter(rng.random(shape), sigma)
    return (noise - noise.min()) / (np.ptp(noise) + 1e-12) > threshold


def random_pairs():
    """(name, pred, ref, spacing): random blobs, thin structures, masks on the array border."""
    rng = np.random.default_rng(7)
    cases = []
    for i in range(6):
        shape = tuple(int(n) for n in rng.integers(10, 28, size=3))
        cases.append((f"blob{i}", blob(rng, shape), blob(rng, shape), ANISO[i % len(ANISO)]))
    shape = (24, 20, 14)
    plate_ref = np.zeros(shape, dtype=bool)
    plate_ref[4:20, 3:17, 6] = True  # one voxel thick: every voxel is surface
    plate_pred = np.zeros(shape, dtype=bool)
    plate_pred[5:21, 3:15, 7] = True
    cases.append(("plate", plate_pred, plate_ref, (0.7, 0.7, 3.0)))
    line_ref = np.zeros(shape, dtype=bool)
    line_ref[2:22, 10, 7] = True
    line_pred = np.zeros(shape, dtype=bool)
    line_pred[4:22, 11, 7] = True
    line_pred[2:5, 12, 8] = True
    cases.append(("line", line_pred, line_ref, (0.6, 1.1, 2.0)))
    dot = np.zeros(shape, dtype=bool)
    dot[12, 10, 7] = True
    cases.append(("dot", dot, plate_ref, (1.5, 0.9, 2.5)))
    border_ref = blob(rng, (16, 16, 10), 0.4)  # touches the array border
    border_pred = blob(rng, (16, 16, 10), 0.4)
    cases.append(("border", border_pred, border_ref, (0.9, 0.9, 2.0)))
    return [c for c in cases if c[1].any() and c[2].any()]


CASES = random_pairs()
IDS = [c[0] for c in CASES]


@pytest.fixture(scope="module")
def monai_metrics():
    pytest.importorskip("monai", reason="monai is in the test extra: pip install -e '.[test]'")
    from monai import metrics

    return metrics


@pytest.mark.parametrize(("name", "pred", "ref", "spacing"), CASES, ids=IDS)
def test_agrees_with_monai(monai_metrics, name, pred, ref, spacing):
    import torch

    p = torch.from_numpy(pred)[None, None].float()
    r = torch.from_numpy(ref)[None, None].float()
    kw = {"include_background": True, "spacing": list(spacing)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "dice": monai_metrics.compute_dice(p, r, include_background=True).item(),
            "hd": monai_metrics.compute_hausdorff_distance(p, r, **kw).item(),
            "hd95": monai_metrics.compute_hausdorff_distance(p, r, percentile=95, **kw).item(),
            "asd": monai_metrics.compute_average_surface_distance(
                p, r, symmetric=True, **kw
            ).item(),
            "nsd": monai_metrics.compute_surface_dice(p, r, [TOL_MM], **kw).item(),
        }
    sd = surface_distances(pred, ref, spacing)
    ours = {
        "dice": dice(pred, ref),
        "hd": sd.hd,
        "hd95": sd.hd95,
        "asd": sd.asd,
        "nsd": sd.nsd(TOL_MM),
    }
    for key, value in expected.items():
        # MONAI returns float32: agreement to 1e-6 relative (about 1e-6 mm at these sizes)
        tolerance = 1e-5 if key == "hd95" else 1e-6
        assert ours[key] == pytest.approx(value, rel=tolerance, abs=1e-6), key
    # HD95 conversion: MONAI interpolates the percentile of float32 distances (torch.quantile),
    # whose rank position rounds in float32 (up to ~5e-6 mm off); on ctseg's distances cast to
    # float32 the same call gives MONAI's value, and in float64 exactly ctseg's.
    directed = [torch.from_numpy(d) for d in (sd.pred_to_ref, sd.ref_to_pred)]
    in_float32 = max(torch.quantile(d.float(), 0.95).item() for d in directed)
    assert in_float32 == pytest.approx(expected["hd95"], rel=1e-6, abs=1e-6)
    assert max(torch.quantile(d, 0.95).item() for d in directed) == pytest.approx(
        sd.hd95, abs=1e-12
    )


def test_agrees_with_monai_in_2d(monai_metrics):
    import torch

    rng = np.random.default_rng(3)
    pred, ref = blob(rng, (40, 30)), blob(rng, (40, 30))
    spacing = (0.6, 2.2)
    p, r = (torch.from_numpy(m)[None, None].float() for m in (pred, ref))
    hd95 = monai_metrics.compute_hausdorff_distance(
        p, r, percentile=95, spacing=list(spacing), include_background=True
    )
    assert surface_distances(pred, ref, spacing).hd95 == pytest.approx(hd95.item(), rel=1e-6)


# ----------------------------------------------------------------------------- DeepMind


@pytest.fixture(scope="module")
def deepmind():
    return pytest.importorskip(
        "surface_distance", reason="surface-distance is in the test extra: pip install -e '.[test]'"
    )


def unit_area_dict(sd):
    """ctseg's distances in DeepMind's format, every surface element of area 1."""
    gt_to_pred, pred_to_gt = np.sort(sd.ref_to_pred), np.sort(sd.pred_to_ref)
    return {
        "distances_gt_to_pred": gt_to_pred,
        "distances_pred_to_gt": pred_to_gt,
        "surfel_areas_gt": np.ones_like(gt_to_pred),
        "surfel_areas_pred": np.ones_like(pred_to_gt),
    }


@pytest.mark.parametrize(("name", "pred", "ref", "spacing"), CASES, ids=IDS)
def test_deepmind_dice_and_aggregation_conversion(deepmind, name, pred, ref, spacing):
    """Dice agrees exactly. DeepMind's HD95, ASD and NSD applied to ctseg's surface distances with
    unit surfel areas give ctseg's values under the stated conversions: its robust Hausdorff is
    the nearest-rank percentile (numpy ``inverted_cdf``), its ASD is two directed means (ctseg
    pools them, i.e. weights each by its surface voxel count), its surface Dice is ctseg's NSD."""
    assert dice(pred, ref) == pytest.approx(deepmind.compute_dice_coefficient(ref, pred), abs=1e-12)
    sd = surface_distances(pred, ref, spacing)
    as_dm = unit_area_dict(sd)
    assert deepmind.compute_surface_dice_at_tolerance(as_dm, TOL_MM) == pytest.approx(
        sd.nsd(TOL_MM), abs=1e-12
    )
    gt_to_pred, pred_to_gt = deepmind.compute_average_surface_distance(as_dm)
    n_ref, n_pred = sd.ref_to_pred.size, sd.pred_to_ref.size
    pooled = (gt_to_pred * n_ref + pred_to_gt * n_pred) / (n_ref + n_pred)
    assert pooled == pytest.approx(sd.asd, abs=1e-9)
    for percent in (95, 100):
        assert deepmind.compute_robust_hausdorff(as_dm, percent) == pytest.approx(
            sd.hd_percentile(percent, method="inverted_cdf"), abs=1e-12
        )
    assert sd.hd_percentile(100, method="inverted_cdf") == sd.hd


@pytest.mark.parametrize(("name", "pred", "ref", "spacing"), CASES, ids=IDS)
def test_deepmind_surface_points_within_half_a_voxel(deepmind, name, pred, ref, spacing):
    """DeepMind's surface points are voxel corners (mixed 2x2x2 neighbourhood); each lies within
    half a voxel diagonal of a ctseg surface voxel centre and vice versa, so the two Hausdorff
    distances differ by at most one voxel diagonal."""
    dm = deepmind.compute_surface_distances(ref, pred, spacing)
    hd_dm = max(dm["distances_gt_to_pred"].max(), dm["distances_pred_to_gt"].max())
    diagonal = float(np.linalg.norm(spacing))
    assert abs(hd_dm - surface_distances(pred, ref, spacing).hd) <= diagonal + 1e-9


@pytest.mark.parametrize("shift", [1, 2, 4])
def test_deepmind_translated_box_hausdorff_is_the_shift(deepmind, shift):
    spacing = (0.7, 0.9, 2.5)
    ref = np.zeros((24, 20, 16), dtype=bool)
    ref[4:12, 5:13, 3:9] = True
    pred = np.roll(ref, shift, axis=2)
    dm = deepmind.compute_surface_distances(ref, pred, spacing)
    assert deepmind.compute_robust_hausdorff(dm, 100) == pytest.approx(shift * 2.5)
    assert surface_distances(pred, ref, spacing).hd == pytest.approx(shift * 2.5)
