"""Hard-negative mining inside a training run: mined once, saved in the checkpoint, reloaded (not
mined again) by --resume."""

from __future__ import annotations

import json

import torch

from ctseg.cli import main

from .conftest import TINY

ARGS = ["--preset", "cpu", "--seed", "2", *TINY, "--set", "train.hard_negative_fraction=0.5", "--set", "train.hard_negative_after=0"]


def test_mining_is_saved_and_survives_resume(tiny_data, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", str(tiny_data), "-o", str(run), "--epochs", "1", *ARGS]) == 0
    out = capsys.readouterr()
    assert "hard negatives of" in out.out + out.err
    state = torch.load(run / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    split_train = len(json.loads((run / "split.json").read_text())["train"])
    assert isinstance(state["hard"], list) and len(state["hard"]) == split_train
    assert all(v.ndim == 2 and v.shape[1] == 3 for h in state["hard"] for v in h.values())
    assert main(["train", str(tiny_data), "-o", str(run), "--resume", "--epochs", "2"]) == 0
    out = capsys.readouterr()
    assert "hard negatives of" not in out.out + out.err  # loaded from the checkpoint, not mined again
    resumed = torch.load(run / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert resumed["epoch"] == 2
    for before, after in zip(state["hard"], resumed["hard"]):
        assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
