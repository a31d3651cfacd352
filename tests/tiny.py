"""Tiny training settings and a tiny synthetic run shared by the integration and reliability tests."""

from __future__ import annotations

from pathlib import Path

from ctseg.cli import main


def tiny_settings(*, voxels: int = 60000, patch_voxels: int = 8192, features: int = 16, stages: int = 3, iterations: int = 3, val_patches: int = 2) -> list[str]:
    """``--set`` arguments for a plan and network small enough that an iteration takes milliseconds."""
    return [
        "--set", f"plan.max_median_voxels={voxels}",
        "--set", f"plan.max_patch_voxels={patch_voxels}",
        "--set", "plan.base_features=4",
        "--set", f"plan.max_features={features}",
        "--set", f"plan.max_stages={stages}",
        "--set", f"train.iterations_per_epoch={iterations}",
        "--set", f"train.val_patches_per_case={val_patches}",
    ]  # fmt: skip


#: the usual tiny settings; TINIER for 32-64 voxel matrices
TINY = tiny_settings()
TINIER = tiny_settings(voxels=30000, patch_voxels=4096, features=8, stages=2, iterations=2, val_patches=1)


def synth_and_train(root: Path, *, task: str, cases: int, test_cases: int, seed: int, matrix: int, settings: list[str] = TINY) -> dict[str, Path]:
    """``ctseg synth`` a tiny dataset under ``root`` and train one epoch of the ``cpu`` preset on it."""
    data, run = root / "data", root / "run"
    assert main(["synth", str(data), "--task", task, "--cases", str(cases), "--test-cases", str(test_cases), "--seed", str(seed), "--matrix", str(matrix)]) == 0
    assert main(["train", str(data), "-o", str(run), "--preset", "cpu", "--epochs", "1", *settings]) == 0
    return {"root": root, "data": data, "run": run}
