"""Exact resume: a training process SIGKILLed mid-epoch and resumed with ``--resume`` ends with
the same weights, bit for bit, as an uninterrupted deterministic run with the same seed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch

from ctseg.cli import main

from .conftest import TINY
from .test_determinism import assert_same_weights

ARGS = [
    "--preset",
    "cpu",
    "--epochs",
    "3",
    "--seed",
    "4",
    "--deterministic",
    *TINY,
    "--set",
    "train.iterations_per_epoch=8",
    "--set",
    "train.checkpoint_minutes=0",
    # weights averaged from epoch 1 on: the average in the checkpoint carries across the kill
    "--set",
    "train.average_from=0.3",
]


def _mid_epoch_checkpoint(path) -> dict | None:
    """The checkpoint's counters when it was written inside epoch >= 2 (after epoch 1), else None."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - cannot happen with atomic writes; poll again
        return None
    if state["epoch"] >= 1 and state["epoch_step"] > 0:
        return {
            "epoch": state["epoch"],
            "epoch_step": state["epoch_step"],
            "iteration": state["iteration"],
        }
    return None


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tiny_data, tmp_path) -> None:
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctseg.cli", "train", str(tiny_data), "-o", str(killed), *ARGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen, deadline = None, time.monotonic() + 120
    try:
        while seen is None and proc.poll() is None and time.monotonic() < deadline:
            seen = _mid_epoch_checkpoint(killed / "checkpoint_last.pt")
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert seen is not None, "never saw a mid-epoch checkpoint before the training process ended"
    assert not (killed / "model_final.pt").exists()
    state = torch.load(killed / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert state["iteration"] < 24  # really interrupted

    assert main(["train", str(tiny_data), "-o", str(killed), "--resume"]) == 0
    reference = tmp_path / "reference"
    assert main(["train", str(tiny_data), "-o", str(reference), *ARGS]) == 0
    assert_same_weights(reference / "model_final.pt", killed / "model_final.pt")
    final = torch.load(killed / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert (final["epoch"], final["iteration"], final["epoch_step"]) == (3, 24, 0)
    lines = (killed / "train_log.txt").read_text().splitlines()
    assert [ln.split()[1] for ln in lines[-2:]] == ["2", "3"]
