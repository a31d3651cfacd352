"""Progressive patches: smaller training patches for the first part of a run, then the plan's."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ctseg.config import TrainSettings, load_config
from ctseg.data import PatchSampler
from ctseg.errors import InputError
from ctseg.models import UNet
from ctseg.synth import make_dataset
from ctseg.training import train
from ctseg.training.trainer import _check_settings, _divisor, _small_patch


def _case() -> dict:
    img = np.random.default_rng(0).normal(size=(1, 40, 40, 20)).astype(np.float32)
    seg = np.zeros((1, 40, 40, 20), np.uint8)
    seg[0, 10:30, 10:30, 5:15] = 1
    seg[0, 12:15, 12:15, 6:9] = 2
    return {"image": img, "seg": seg, "locations": {c: np.argwhere(seg[0] == c) for c in (1, 2)}, "pad_value": -5.0}


def test_the_sampler_draws_the_patch_it_is_given_and_its_own_otherwise() -> None:
    sampler = PatchSampler([_case()], (16, 16, 8), batch_size=2, foreground_fraction=0.5, augment=None)
    rng = np.random.default_rng(0)
    images, labels = sampler.sample(rng, (8, 8, 4))
    assert images.shape == (2, 1, 8, 8, 4) and labels.shape == (2, 8, 8, 4)
    images, labels = sampler.sample(rng)
    assert images.shape == (2, 1, 16, 16, 8) and labels.shape == (2, 16, 16, 8)


def _run(patch=(40, 48, 48), dims=3) -> SimpleNamespace:
    return SimpleNamespace(plan=SimpleNamespace(spatial_dims=dims, patch_size=list(patch)))


def _settings(scale, until=0.5) -> TrainSettings:
    return TrainSettings(small_patch_scale=scale, small_patch_until=until)


def test_the_small_patch_is_the_plans_scaled_down_to_multiples_of_the_networks_divisor() -> None:
    eight = (8, 8, 8)
    assert _small_patch(_run(), _settings(0.67), eight) == (24, 32, 32)  # 26.8, 32.2, 32.2 -> multiples of 8
    assert _small_patch(_run(patch=(16, 48, 48)), _settings(0.4), eight) == (8, 16, 16)  # 6.4 -> at least one divisor
    assert _small_patch(_run(), _settings(1.0), eight) is None  # off
    assert _small_patch(_run(), _settings(0.67, until=0.0), eight) is None  # off
    assert _small_patch(_run(patch=(64, 64), dims=2), _settings(0.5), (8, 8)) is None  # 3D plans only
    # an in-plane-only first stride (anisotropic plan): the slice axis rounds to a multiple of 4
    assert _small_patch(_run(patch=(20, 48, 48)), _settings(0.67), (4, 8, 8)) == (12, 32, 32)
    assert _small_patch(_run(), _settings(0.67), (16, 16, 16)) == (16, 32, 32)  # a deeper network
    with pytest.raises(InputError, match="single voxel at the network's coarsest level"):
        _small_patch(_run(), _settings(0.1), eight)


def test_the_divisor_is_the_networks_own_where_it_gives_one() -> None:
    net = UNet(3, 1, 3, features=[4, 8, 16])  # three stages: 4 per axis, whatever a plan says
    assert _divisor(net, [[1, 1, 1], [2, 2, 2]]) == tuple(net.required_divisor()) == (4, 4, 4)
    plain = torch.nn.Conv3d(1, 3, 3)  # no account of its own: the plan's strides
    assert _divisor(plain, [[1, 1, 1], [1, 2, 2], [2, 2, 2]]) == (2, 4, 4)
    assert _divisor(plain, []) == (1, 1, 1)


@pytest.mark.parametrize(("field", "value"), [("small_patch_scale", 1.5), ("small_patch_scale", 0.0), ("small_patch_until", -0.1), ("small_patch_until", 1.2)])
def test_out_of_range_settings_are_refused_before_anything_is_prepared(field, value) -> None:
    with pytest.raises(InputError, match=f"train.{field}"):
        _check_settings(TrainSettings(**{field: value}))


def test_a_run_trains_on_the_small_patch_first_then_on_the_plans(tmp_path, monkeypatch) -> None:
    data = make_dataset(tmp_path / "data", task="liver", cases=3, test_cases=1, seed=3, matrix=64, progress=False)
    shapes: list[tuple[int, ...]] = []
    original = PatchSampler.sample

    def recording(self, rng, patch_size=None):
        images, labels = original(self, rng, patch_size)
        shapes.append(images.shape[2:])
        return images, labels

    monkeypatch.setattr(PatchSampler, "sample", recording)
    config = load_config("cpu", overrides=[{
        "plan": {"target_spacing": [6.0, 6.0, 6.0], "patch_size": [16, 16, 16], "base_features": 4, "max_features": 16, "max_stages": 3},
        "train": {"epochs": 2, "iterations_per_epoch": 3, "val_patches_per_case": 1, "small_patch_scale": 0.5, "small_patch_until": 0.5, "hard_negative_fraction": 0.0},
    }])  # fmt: skip
    result = train(data, tmp_path / "run", config, progress=False)
    assert result.iterations == 6
    # steps 0-2 begin before half of the 6 iterations, steps 3-5 at or after it
    assert shapes == [(8, 8, 8)] * 3 + [(16, 16, 16)] * 3
