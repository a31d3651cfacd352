"""The cascade by region: organ box + margin on any orientation, the fine plan, the split budget."""

from __future__ import annotations

import numpy as np
import pytest

from ctseg.config import Config
from ctseg.preprocessing import make_plan, roi_box
from ctseg.preprocessing.crop import mask_bbox
from ctseg.training.cascade import fine_config, locator_config


def test_mask_bbox_grows_by_margin_in_mm_and_stays_inside() -> None:
    mask = np.zeros((20, 20, 10), bool)
    mask[5:8, 10:12, 4:6] = True
    box = mask_bbox(mask, (1.0, 2.0, 5.0), margin_mm=4.0)
    # 4 mm = 4 voxels on axis 0, 2 on axis 1, ceil(0.8) = 1 on axis 2
    assert box == (slice(1, 12), slice(8, 14), slice(3, 7))
    assert mask_bbox(mask, (1.0, 1.0, 1.0), margin_mm=100.0) == (slice(0, 20), slice(0, 20), slice(0, 10))
    assert mask_bbox(np.zeros((4, 4, 4), bool), (1, 1, 1), 3.0) is None


def test_roi_box_is_the_same_canonical_box_whatever_the_stored_orientation() -> None:
    mask = np.zeros((12, 10, 8), bool)
    mask[2:5, 6:9, 1:3] = True
    ras = np.diag([1.5, 1.5, 3.0, 1.0])
    expected = roi_box(mask, ras, 3.0)
    assert expected == (slice(0, 7), slice(4, 10), slice(0, 4))
    # the same voxels stored LPS (x and y reversed) and with the slice order reversed
    lps = ras.copy()
    lps[0, 0], lps[1, 1] = -1.5, -1.5
    lps[:3, 3] = [1.5 * 11, 1.5 * 9, 0.0]
    assert roi_box(mask[::-1, ::-1], lps, 3.0) == expected
    rev = ras.copy()
    rev[2, 2] = -3.0
    rev[2, 3] = 3.0 * 7
    assert roi_box(mask[:, :, ::-1], rev, 3.0) == expected


def _fingerprint() -> dict:
    return {
        "labels": {"0": "background", "1": "liver", "2": "tumour"},
        "median_spacing": [0.8, 0.8, 2.5],
        "spacing_p10": [0.7, 0.7, 2.0],
        "median_extent_mm": [400.0, 250.0, 300.0],
        "median_foreground_extent_mm": [200.0, 160.0, 180.0],
        "intensity": {"mean": 60.0, "std": 20.0, "min": -100.0, "max": 200.0, "p00_5": -5.0, "p99_5": 120.0},
    }


def test_fine_plan_follows_the_organ_box_not_the_body() -> None:
    settings = Config().plan.__class__(max_median_voxels=1_000_000, roi_margin_mm=20.0)
    body = make_plan(_fingerprint(), settings)
    fine = make_plan(_fingerprint(), settings, roi=True)
    assert body.crop == "body" and fine.crop == "roi" and fine.roi_margin_mm == 20.0
    # same voxel budget over a smaller extent (240 x 200 x 220 mm): a finer spacing
    assert max(fine.spacing) < min(body.spacing)
    extent = np.array(fine.median_shape) * np.array(fine.spacing)
    np.testing.assert_allclose(extent, [240.0, 200.0, 220.0], atol=max(fine.spacing))
    # plan.json written by an older ctseg (no crop fields) still loads as a body plan
    data = body.to_dict()
    del data["crop"], data["roi_margin_mm"]
    assert type(body).from_dict(data).crop == "body"


def test_budget_is_split_between_locator_and_fine_stage() -> None:
    cfg = Config().merged({"cascade": {"enabled": True, "locator_time_fraction": 0.25}, "train": {"epochs": 40, "time_budget_minutes": 8.0}})
    loc, fine = locator_config(cfg), fine_config(cfg)
    assert loc.train.time_budget_minutes == pytest.approx(2.0) and fine.train.time_budget_minutes == pytest.approx(6.0)
    assert loc.train.epochs == 10 and fine.train.epochs == 30
    assert not loc.cascade.enabled and loc.predict.keep_largest_component
    assert loc.plan.max_median_voxels == cfg.cascade.locator_max_median_voxels
