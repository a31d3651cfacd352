"""Shared tiny fixtures of the reliability suite: one synthetic dataset, tiny training settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctseg.cli import main
from tests.tiny import tiny_settings

#: A network and plan small enough that an iteration takes milliseconds.
TINY = [*tiny_settings(voxels=30000, patch_voxels=4096, features=8, stages=2, iterations=4, val_patches=1), "--set", "train.tensorboard=false"]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A 3-case synthetic pancreas dataset (64^2 in-plane) with 2 test images."""
    data = tmp_path_factory.mktemp("reliability") / "data"
    assert (
        main(
            [
                "synth",
                str(data),
                "--task",
                "pancreas",
                "--cases",
                "3",
                "--test-cases",
                "2",
                "--seed",
                "5",
                "--matrix",
                "64",
            ]
        )
        == 0
    )
    return data


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    """A deterministic one-epoch run folder on ``tiny_data``."""
    run = tmp_path_factory.mktemp("reliability_run") / "run"
    train_deterministic(tiny_data, run, seed=1)
    return run


def train_deterministic(data: Path, run: Path, *, seed: int) -> None:
    """One deterministic epoch of the tiny ``cpu`` configuration on ``data`` into ``run``."""
    args = ["train", str(data), "-o", str(run), "--preset", "cpu", "--epochs", "1", "--seed", str(seed), "--deterministic", *TINY]
    assert main(args) == 0
