"""Polarity TTA: a lesion brighter than its organ, found as a darker one, with known answers.

The "network" is a rule that sees only dark lesions: inside the organ's box a voxel under 5.8 units
is lesion (2) and the rest organ (1); outside it a voxel between 0 and 5.8 is lesion (it
hallucinates dark things there) and the rest background. One unit is 10 HU; the organ is 6.0
(60 HU); spacing 2 mm, so 1 mL is 125 voxels.
"""

from __future__ import annotations

import numpy as np
import pytest

from ctseg.inference.polarity import (
    PolarityRule,
    add_mirrored_lesions,
    elongation,
    mirror_above_median,
)

ORGAN_BOX = (slice(4, 36), slice(4, 36), slice(4, 36))
SPACING = (2.0, 2.0, 2.0)


def _ball(shape: tuple[int, ...], centre: tuple[int, ...], radius: float) -> np.ndarray:
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2


def _only_dark_lesions(volume: np.ndarray) -> np.ndarray:
    in_box = np.zeros(volume.shape, dtype=bool)
    in_box[ORGAN_BOX] = True
    labels = np.where(in_box, np.where(volume < 5.8, 2, 1), np.where((volume > 0) & (volume < 5.8), 2, 0))
    return np.stack([labels == c for c in range(3)]).astype(np.float32)


def _phantom() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    shape = (48, 40, 40)
    volume = np.full(shape, -10.0, dtype=np.float32)  # -100 HU around the organ
    volume[ORGAN_BOX] = 6.0
    parts = {
        "dark": _ball(shape, (10, 12, 12), 3),  # 30 HU: the network finds it itself
        "bright": _ball(shape, (24, 24, 24), 4),  # 130 HU, 2.1 mL: missed, found once mirrored
        "small": _ball(shape, (12, 28, 28), 2),  # 130 HU, 0.26 mL: under the 1 mL floor
        "faint": _ball(shape, (28, 10, 28), 4),  # 65 HU: under the 10 HU contrast floor
        "outside": _ball(shape, (42, 20, 20), 3),  # 110 HU off the organ: mirrored it is "lesion" there
    }
    # a vessel's 130 HU partial-volume rim in the band: 1.4 mL, 40 mm long and 6 mm wide
    parts["tube"] = np.zeros(shape, dtype=bool)
    parts["tube"][30:33, 14:34, 16:19] = True
    volume[parts["dark"]] = 3.0
    volume[parts["bright"] | parts["small"] | parts["tube"]] = 13.0
    volume[parts["outside"]] = 11.0
    volume[parts["faint"]] = 6.5
    volume[20:22, 6:34, 10:12] = 20.0  # a 200 HU vessel: above the band, never mirrored
    return volume, parts


def test_mirror_moves_only_the_band_above_the_median() -> None:
    v = np.array([-10.0, 5.0, 6.0, 7.5, 10.9, 11.0, 20.0], dtype=np.float32)
    np.testing.assert_allclose(mirror_above_median(v, 6.0, 5.0), [-10.0, 5.0, 6.0, 4.5, 1.1, 11.0, 20.0], atol=1e-6)


def test_bright_lesion_in_the_organ_is_added_and_nothing_else() -> None:
    volume, parts = _phantom()
    probs = _only_dark_lesions(volume)
    assert not (probs.argmax(0) == 2)[parts["bright"]].any()  # the first pass misses it
    rule = PolarityRule(lesion=2, host=1, hu_per_unit=10.0, band_hu=80.0)
    out = add_mirrored_lesions(volume, probs, _only_dark_lesions, rule, SPACING)
    labels = out.argmax(0)
    assert (labels[parts["bright"]] == 2).all()
    assert (labels[parts["dark"]] == 2).all()  # the first pass's lesion stays
    for name in ("small", "faint", "tube"):
        assert (labels[parts[name]] == 1).all(), name
    assert (labels[parts["outside"]] == 0).all()  # a lesion in the mirrored pass, but off the organ
    changed = np.any(out != probs, axis=0)
    np.testing.assert_array_equal(changed, parts["bright"])  # only the added region differs


def test_floors_and_a_missing_organ_leave_the_probabilities_alone() -> None:
    volume, parts = _phantom()
    probs = _only_dark_lesions(volume)
    small_floor = PolarityRule(lesion=2, host=1, hu_per_unit=10.0, band_hu=80.0, min_volume_mm3=8.0 * parts["small"].sum())
    labels = add_mirrored_lesions(volume, probs, _only_dark_lesions, small_floor, SPACING).argmax(0)
    assert (labels[parts["small"]] == 2).all() and (labels[parts["faint"]] == 1).all()
    no_shape_limit = PolarityRule(lesion=2, host=1, hu_per_unit=10.0, band_hu=80.0, max_elongation=0.0)
    labels = add_mirrored_lesions(volume, probs, _only_dark_lesions, no_shape_limit, SPACING).argmax(0)
    assert (labels[parts["tube"]] == 2).all() and (labels[parts["bright"]] == 2).all()
    high_floor = PolarityRule(lesion=2, host=1, hu_per_unit=10.0, band_hu=80.0, min_contrast_hu=80.0)
    assert add_mirrored_lesions(volume, probs, _only_dark_lesions, high_floor, SPACING) is probs
    no_organ = np.zeros_like(probs)
    no_organ[0] = 1.0
    calls = []
    assert add_mirrored_lesions(volume, no_organ, lambda v: calls.append(v) or probs, PolarityRule(2, 1, 10.0), SPACING) is no_organ
    assert not calls  # no second pass without an organ


def test_elongation_is_length_over_width_in_mm() -> None:
    ball = _ball((30, 30, 30), (15, 15, 15), 8)
    assert elongation(ball, (1.0, 1.0, 1.0)) == pytest.approx(1.0, abs=0.01)
    # the same voxels on a grid twice as coarse along x are a ball stretched to twice its length
    assert elongation(ball, (2.0, 1.0, 1.0)) == pytest.approx(2.0, abs=0.05)
    rod = np.zeros((60, 9, 9), dtype=bool)
    rod[:, 2:7, 2:7] = True  # 60 x 5 x 5 mm: a square rod, sd along sqrt(300), across sqrt(25 / 12)
    assert elongation(rod, (1.0, 1.0, 1.0)) == pytest.approx(np.sqrt(300.0 / (25.0 / 12.0)), rel=1e-6)
    disc = np.zeros((12, 12, 1), dtype=bool)
    disc[2:10, 2:10, 0] = True  # one 8 mm slice of an 8 x 8 mm square: a cube, not infinitely flat
    assert elongation(disc, (1.0, 1.0, 8.0)) == pytest.approx(1.0, abs=1e-6)
    assert elongation(np.zeros((3, 3, 3), dtype=bool), (1.0, 1.0, 1.0)) == float("inf")
