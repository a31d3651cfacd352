"""Resource guards: prediction and preprocessing refuse, naming the setting to change, before they
would run out of memory or disk (the limits are faked; the estimates are the real ones)."""

from __future__ import annotations

import pytest

import ctseg._resources as resources
from ctseg.cli import main
from ctseg.errors import InputError

from .conftest import TINY


def test_prediction_refuses_when_memory_is_short(tiny_data, tiny_run, tmp_path, monkeypatch, capsys) -> None:
    src = sorted((tiny_data / "imagesTs").glob("*.nii.gz"))[0]
    out = tmp_path / "pred.nii.gz"
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: 64 * 1024)
    assert main(["predict", "-i", str(src), "-o", str(out), "-m", str(tiny_run)]) == 2
    err = capsys.readouterr().err
    assert "GiB of memory" in err and "plan.target_spacing" in err and src.name in err
    assert not out.exists()
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: 64 * 2**30)
    assert main(["predict", "-i", str(src), "-o", str(out), "-m", str(tiny_run)]) == 0


def test_training_refuses_a_cache_the_disk_cannot_hold(tiny_data, tmp_path, monkeypatch, capsys) -> None:
    run = tmp_path / "run"
    monkeypatch.setattr(resources, "free_disk_bytes", lambda folder: 1000)
    assert main(["train", str(tiny_data), "-o", str(run), "--preset", "cpu", "--epochs", "1", *TINY]) == 2
    err = capsys.readouterr().err
    assert "preprocessing cache" in err and "GiB of disk" in err and "another -o folder" in err
    assert not (run / "preprocessed").exists()


def test_checks_pass_with_room_and_measure_the_nearest_existing_folder(tmp_path) -> None:
    resources.check_memory(1.0, "x", "y")
    resources.check_disk(tmp_path / "not" / "yet" / "made", 1.0, "x", "y")
    assert resources.free_disk_bytes(tmp_path / "missing") == resources.free_disk_bytes(tmp_path)
    with pytest.raises(InputError, match="needs about"):
        resources.check_disk(tmp_path, 1e18, "a huge cache", "free some space")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("train.augment.lesion_paste_scale=[0, 1]", "train.augment.lesion_paste_scale [0, 1] must be two sizes 0 < low <= high"),
        ("train.lr=0", "train.lr must be > 0"),
    ],
)
def test_training_refuses_impossible_settings_before_touching_the_run_folder(tiny_data, tmp_path, capsys, setting, message) -> None:
    run = tmp_path / "run"
    assert main(["train", str(tiny_data), "-o", str(run), "--preset", "cpu", "--epochs", "1", *TINY, "--set", setting]) == 2
    assert message in capsys.readouterr().err
    assert not run.exists()  # nothing verified, fingerprinted or preprocessed first
