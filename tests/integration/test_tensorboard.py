"""TensorBoard events written during a tiny training run: scalar tags, values and the overlay image."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctseg.config import load_config
from ctseg.synth import make_dataset
from ctseg.training import train
from ctseg.training.logging import overlay_rgb

TINY = {
    "plan": {"max_median_voxels": 60000, "max_patch_voxels": 8192, "base_features": 4, "max_features": 16, "max_stages": 3},
    "train": {"epochs": 2, "iterations_per_epoch": 2, "val_patches_per_case": 2, "tensorboard_image_epochs": 2},
}


def _events(log_dir):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_training_writes_scalars_and_overlay_images(tmp_path) -> None:
    data = make_dataset(tmp_path / "data", task="liver", cases=2, test_cases=0, seed=5, matrix=48, progress=False)
    run = tmp_path / "run"
    train(data, run, load_config("cpu", overrides=[TINY]), progress=False, workers=1)
    acc = _events(run / "tensorboard")
    scalars = set(acc.Tags()["scalars"])
    expected = {"loss/train", "loss/validation", "val_dice/liver", "val_dice/tumour", "val_dice/mean", "val_dice/ema", "lr", "throughput/patches_per_s"}
    assert expected <= scalars, sorted(scalars)
    history = json.loads((run / "history.json").read_text())
    train_loss = acc.Scalars("loss/train")
    assert [e.step for e in train_loss] == [1, 2]
    np.testing.assert_allclose([e.value for e in train_loss], [h["train_loss"] for h in history], rtol=1e-6)
    np.testing.assert_allclose([e.value for e in acc.Scalars("lr")], [h["lr"] for h in history], rtol=1e-6)
    assert all(e.value > 0 for e in acc.Scalars("throughput/patches_per_s"))
    # the image after epoch 1 and then every 2 epochs: steps 1 and 2
    images = acc.Images("validation/overlay")
    assert [e.step for e in images] == [1, 2]
    assert images[0].width >= 256 and images[0].height >= 64 and images[0].encoded_image_string[:4] == b"\x89PNG"


def test_tensorboard_can_be_switched_off(tmp_path) -> None:
    from types import SimpleNamespace

    from ctseg.config import Config
    from ctseg.training.logging import open_tensorboard

    off = Config().merged({"train": {"tensorboard": False}})
    assert Config().train.tensorboard is True
    assert open_tensorboard(SimpleNamespace(config=off, path=tmp_path)) is None  # type: ignore[arg-type]
    assert not (tmp_path / "tensorboard").exists()


def test_overlay_rgb_paints_outlines_in_the_label_colour() -> None:
    hu = np.full((9, 9), 40.0)  # the window centre: mid grey
    labels = np.zeros((9, 9), np.uint8)
    labels[2:7, 2:7] = 1
    labels[4, 4] = 2
    colours = np.array([[0, 255, 0], [255, 255, 0]], np.uint8)
    rgb = overlay_rgb(hu, labels, colours)
    assert rgb[2, 4].tolist() == [0, 255, 0] and rgb[6, 6].tolist() == [0, 255, 0]  # organ border
    assert rgb[3, 3].tolist() == [128, 128, 128]  # inside the organ: the CT grey
    assert rgb[4, 4].tolist() == [255, 255, 0]  # a one-pixel lesion is all outline
    assert rgb[0, 0].tolist() == [128, 128, 128]
