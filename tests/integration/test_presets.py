"""Every preset trains a few iterations on tiny synthetic data and its run predicts on the input grid.

Sizes (patch, spacing, widths) are overridden to tiny values; everything else (network family,
loss, optimiser, schedule, normalisation, augmentation) is the preset's own.
"""

from __future__ import annotations

import json
import shutil

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
    "pancreas-2d": ["--set", "plan.slice_size=[32,32]", "--set", "plan.base_features=4", "--set", "plan.max_features=16", "--set", "plan.max_stages=3"],
    "lits-2d": ["--set", "plan.slice_size=[32,32]", "--set", "model.kwargs={features: [4, 8, 16, 32, 64]}"],
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
    assert plan.get("spatial_dims", 3) == expected.plan.spatial_dims and len(plan["patch_size"]) == expected.plan.spatial_dims


_NARROW = {"simple_unet": "[4, 8, 16]", "fcn": "[4, 8, 16, 32]", "vnet": "[4, 8, 16, 32]"}  # deep enough, narrow


@pytest.fixture(scope="module")
def pancreas_2d_prepared(data, tmp_path_factory):
    """A pancreas-2d run folder up to its preprocessed cache (the plan does not depend on the network)."""
    from ctseg.training.run import prepare_run

    folder = tmp_path_factory.mktemp("pancreas-2d") / "prepared"
    prepare_run(data, folder, load_config("pancreas-2d", overrides=[{"plan": {"slice_size": [32, 32]}}]), progress=False)
    (folder / "config.yaml").unlink()
    return folder


@pytest.mark.parametrize("model", sorted(_NARROW))
def test_pancreas_2d_runs_with_another_network(model, data, pancreas_2d_prepared, tmp_path) -> None:
    """The pancreas-2d preset with its network swapped (as ``--set model.name=...`` does)."""
    run, pred = tmp_path / "run", tmp_path / "pred"
    shutil.copytree(pancreas_2d_prepared, run)
    args = ["train", str(data), "-o", str(run), "--preset", "pancreas-2d", "--epochs", "1", "--set", "train.iterations_per_epoch=2", "--set", "train.val_patches_per_case=1",
            "--set", "train.batch_size=2", "--set", "plan.slice_size=[32,32]", "--set", f"model.name={model}", "--set", f"model.kwargs={{features: {_NARROW[model]}}}"]  # fmt: skip
    assert main(args) == 0
    spec = json.loads((run / "model_final.json").read_text())
    assert spec["name"] == model and spec["kwargs"]["spatial_dims"] == 2 and spec["kwargs"]["dropout"] == 0.2
    src = sorted((data / "imagesTs").glob("*.nii.gz"))[0]
    assert main(["predict", "-i", str(src), "-o", str(pred), "-m", str(run)]) == 0
    assert nib.load(pred / src.name).shape == nib.load(src).shape
