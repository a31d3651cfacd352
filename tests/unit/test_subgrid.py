"""Regions under half a voxel of the network's grid are dropped from a restored label map; a
region of a few of the network's voxels survives restoring, a lone one shrinks below it."""

from __future__ import annotations

import numpy as np

from ctseg.inference.postprocess import remove_subgrid_regions
from ctseg.preprocessing.resample import argmax_resampled


def test_speck_takes_its_shell_label() -> None:
    labels = np.zeros((12, 12, 12), dtype=np.uint8)
    labels[2:10, 2:10, 2:10] = 1
    labels[3, 4, 4] = 2  # one voxel of tumour inside the organ
    labels[2, 2, 2] = 2  # one on the organ's corner: its shell is mostly background
    labels[6:8, 6:8, 6:8] = 2  # eight voxels: kept with max_voxels 3
    labels[0, 11, 11] = 1  # a lone organ voxel in the background
    out = remove_subgrid_regions(labels, 3)
    assert out[3, 4, 4] == 1
    assert out[2, 2, 2] == 0
    assert out[0, 11, 11] == 0
    assert (out[6:8, 6:8, 6:8] == 2).all()
    assert out.sum() == labels.sum() - 2 * 2 + 1 - 1  # 3,4,4: 2 -> 1; 2,2,2: 2 -> 0; 0,11,11: 1 -> 0
    assert labels[3, 4, 4] == 2  # the input is left as it was


def test_nothing_to_drop_returns_input() -> None:
    labels = np.zeros((6, 6, 6), dtype=np.uint8)
    assert remove_subgrid_regions(labels, 4) is labels
    labels[1:5, 1:5, 1:5] = 1
    assert remove_subgrid_regions(labels, 4) is labels
    assert remove_subgrid_regions(labels, 0) is labels


def test_restored_block_survives_lone_voxel_does_not() -> None:
    # a 2 mm grid restored to a 0.5 mm grid (64 fine voxels per coarse one), the lesion at 0.8
    # against the organ's 0.2: a 2x2x2 block of the network's voxels stays, while a lone voxel's
    # interpolated lesion probability wins only about a tenth of its volume and is dropped
    coarse, fine = np.diag([2.0, 2.0, 2.0, 1.0]), np.diag([0.5, 0.5, 0.5, 1.0])
    limit = int(0.5 * 8.0 / 0.125)
    for block, survives in (((slice(3, 5),) * 3, True), ((4, 4, 4), False)):
        probs = np.zeros((3, 8, 8, 8), dtype=np.float32)
        probs[1] = 1.0
        probs[1][block], probs[2][block] = 0.2, 0.8
        restored = argmax_resampled(probs, coarse, fine, (32, 32, 32))
        assert (restored == 2).any()
        kept = remove_subgrid_regions(restored, limit)
        assert bool((kept == 2).sum() == (restored == 2).sum()) is survives
        assert bool((kept == 2).sum() == 0) is not survives
