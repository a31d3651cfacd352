"""Hard-negative mining: side-by-side tiles give the network's labels everywhere, the mined voxels
are exactly the false foreground (per class), and the sampler centres its hard patches on them."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ctseg.data import PatchSampler
from ctseg.training.mining import false_foreground, label_volume, mine_cases


class Threshold(nn.Module):
    """Two-class 'network': class 1 where the input is above 0.5 (a 1x1x1 convolution)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 1)
        with torch.no_grad():
            self.conv.weight[:] = torch.tensor([0.0, 10.0]).view(2, 1, 1, 1, 1)
            self.conv.bias[:] = torch.tensor([0.0, -5.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_side_by_side_tiles_label_every_voxel_of_odd_and_short_axes() -> None:
    rng = np.random.default_rng(0)
    volume = rng.uniform(size=(1, 30, 17, 5)).astype(np.float32)  # 30 and 17 no multiple of 8; 5 < 8
    labels = label_volume(volume, Threshold(), (8, 8, 8), batch_size=3)
    assert labels.shape == (30, 17, 5) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, (volume[0] > 0.5).astype(np.uint8))


def test_false_foreground_is_background_called_foreground_and_capped() -> None:
    reference = np.zeros((10, 10, 10), np.uint8)
    reference[2:5, 2:5, 2:5] = 1
    predicted = np.zeros_like(reference)
    predicted[3:7, 3:7, 3:7] = 2  # overlaps the organ (not mined) and spills into background
    predicted[8, 8, 8] = 1  # one voxel of false organ
    mined = false_foreground(predicted, reference, np.random.default_rng(0))
    assert sorted(mined) == ["1", "2"] and mined["1"].tolist() == [[8, 8, 8]]
    expected = (predicted == 2) & (reference == 0)
    assert len(mined["2"]) == int(expected.sum()) == 64 - 8
    assert expected[tuple(mined["2"].T)].all()
    capped = false_foreground(predicted, reference, np.random.default_rng(0), limit=10)
    assert len(capped["2"]) == 10 and expected[tuple(capped["2"].T)].all() and len(capped["1"]) == 1


def _case() -> dict:
    image = np.zeros((1, 40, 40, 20), np.float32)
    seg = np.zeros((1, 40, 40, 20), np.uint8)
    seg[0, 2:10, 2:10, 2:8] = 1
    image[0, 30:33, 30:33, 14:17] = 1.0  # bright background: the threshold network calls it foreground
    return {"image": image, "seg": seg, "locations": {"1": np.argwhere(seg[0] == 1)}, "pad_value": 0.0}


def test_mined_voxels_draw_the_hard_patches() -> None:
    case = _case()
    counts = mine_cases([case], Threshold(), (8, 8, 8), np.random.default_rng(0))
    assert counts == [27] and list(case["hard"]) == ["1"] and (case["image"][0][tuple(case["hard"]["1"].T)] == 1.0).all()
    sampler = PatchSampler([case], (8, 8, 4), batch_size=2, foreground_fraction=0.0, augment=None, hard_fraction=1.0)
    rng = np.random.default_rng(1)
    assert all((sampler.sample(rng)[0] == 1.0).any(axis=(1, 2, 3, 4)).all() for _ in range(20))  # every patch holds the bright block
    plain = PatchSampler([case], (8, 8, 4), batch_size=2, foreground_fraction=0.0, augment=None)
    hits = sum(int((plain.sample(rng)[0] == 1.0).any()) for _ in range(20))
    assert hits < 10  # random patches rarely do


def test_a_sampler_with_nothing_mined_draws_the_patches_it_drew_before() -> None:
    case = _case()
    with_option = PatchSampler([case], (8, 8, 4), batch_size=2, foreground_fraction=0.5, augment=None, hard_fraction=0.3)
    without = PatchSampler([case], (8, 8, 4), batch_size=2, foreground_fraction=0.5, augment=None)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(10):
        (x1, y1), (x2, y2) = with_option.sample(a), without.sample(b)
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
