"""Every preset trains a few iterations on tiny synthetic data and its run predicts on the input grid.

Sizes (patch, spacing, widths) are overridden to tiny values; everything else (network family,
loss, optimiser, schedule, normalisation, augmentation) is the preset's own.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from ctseg.cli import main
from ctseg.config import list_presets, load_config

_TINY = {
    "upc-pancreas-3d": ["--set", "plan.target_spacing=[6.0,6.0,6.0]", "--set", "plan.patch_size=[16,16,16]", "--set", "train.val_patch_size=[24,24,16]",
                        "--set", "model.kwargs={features: [4, 8, 16, 32]}", "--set", "train.augment.elastic_prob=1.0"],
    "resunet3d": ["--set", "plan.target_spacing=[6.0,6.0,6.0]", "--set", "plan.patch_size=[16,16,16]", "--set", "model.kwargs={features: [4, 8, 16, 32]}"],
    "default": ["--set", "plan.max_median_voxels=60000", "--set", "plan.max_patch_voxels=8192", "--set", "plan.base_features=4", "--set", "plan.max_features=16", "--set", "plan.max_stages=3"],
    "cpu": ["--set", "plan.max_median_voxels=60000", "--set", "plan.max_patch_voxels=8192", "--set", "plan.base_features=4", "--set", "plan.max_features=16", "--set", "plan.max_stages=3"],
}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("presets") / "data"
    assert main(["synth", str(root), "--task", "pancreas", "--cases", "3", "--test-cases", "1", "--seed", "8", "--matrix", "64"]) == 0
    return root


def test_every_preset_has_tiny_settings_here() -> None:
    assert set(list_presets()) == set(_TINY)


@pytest.mark.parametrize("preset", sorted(_TINY))
def test_preset_trains_and_predicts(preset, data, tmp_path) -> None:
    run, pred = tmp_path / "run", tmp_path / "pred"
    args = ["train", str(data), "-o", str(run), "--preset", preset, "--epochs", "1", "--set", "train.iterations_per_epoch=2", "--set", "train.val_patches_per_case=1", *_TINY[preset]]
    assert main(args) == 0
    config = (run / "config.yaml").read_text()
    expected = load_config(preset)
    assert f"name: {expected.model.name}" in config and f"loss: {expected.train.loss}" in config
    assert len(json.loads((run / "history.json").read_text())) == 1
    assert (run / "training_curves.png").is_file()
    plan = json.loads((run / "plan.json").read_text())
    assert plan["normalization"]["mode"] == expected.plan.normalization
    assert plan["normalization"].get("equalize", False) == expected.plan.histogram_equalization
    src = sorted((data / "imagesTs").glob("*.nii.gz"))[0]
    assert main(["predict", "-i", str(src), "-o", str(pred), "-m", str(run)]) == 0
    out, ref = nib.load(pred / src.name), nib.load(src)
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out.affine, ref.affine)
