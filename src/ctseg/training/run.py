"""Preparing a run folder: dataset -> fingerprint -> plan -> preprocessed cache -> split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._fileio import read_json, write_json, write_text
from ..config import Config
from ..io.datasets import load_dataset
from ..preprocessing import Plan, compute_fingerprint, make_plan, preprocess_dataset

__all__ = ["RunFolder", "prepare_run"]


@dataclass(frozen=True)
class RunFolder:
    path: Path
    config: Config
    plan: Plan
    train_ids: list[str]
    val_ids: list[str]

    @property
    def preprocessed(self) -> Path:
        return self.path / "preprocessed"


def _split(ids: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    if len(ids) < 2 or fraction <= 0:
        return list(ids), list(ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val = min(len(ids) - 1, max(1, int(round(fraction * len(ids)))))
    val = sorted(ids[i] for i in order[:n_val])
    return [i for i in ids if i not in val], val


def prepare_run(dataset_dir: str | Path, run_dir: str | Path, config: Config, *, progress: bool = True, workers: int = 1) -> RunFolder:
    """Create (or reuse, when resuming) a run folder holding everything needed to train and predict.

    Each stage's output is written once and reused: ``fingerprint.json``, ``plan.json``,
    ``preprocessed/``, ``split.json``; ``config.yaml`` holds the resolved settings.
    """
    run = Path(run_dir)
    dataset = load_dataset(dataset_dir)
    fp_path = run / "fingerprint.json"
    if fp_path.is_file():
        fingerprint = read_json(fp_path)
    else:  # reads and checks every case: a bad dataset stops here, before anything is written
        fingerprint = compute_fingerprint(dataset, crop_threshold_hu=config.plan.crop_threshold_hu, seed=config.train.seed, workers=workers, progress=progress)
        write_json(fp_path, fingerprint)
    write_text(run / "config.yaml", config.to_yaml())
    plan_path = run / "plan.json"
    if plan_path.is_file():
        plan = Plan.from_dict(read_json(plan_path))
    else:
        plan = make_plan(fingerprint, config.plan)
        write_json(plan_path, plan.to_dict())
    write_json(run / "dataset.json", {"name": dataset.name, "labels": {str(k): v for k, v in dataset.labels.items()}, "source": str(Path(dataset_dir).resolve())})
    ids = preprocess_dataset(dataset, plan, run / "preprocessed", workers=workers, progress=progress)
    split_path = run / "split.json"
    if split_path.is_file():
        split = read_json(split_path)
    else:
        train_ids, val_ids = _split(ids, config.train.val_fraction, config.train.seed)
        split = {"train": train_ids, "val": val_ids}
        write_json(split_path, split)
    write_json(run / "versions.json", _versions())
    return RunFolder(run, config, plan, split["train"], split["val"])


def _versions() -> dict[str, Any]:
    import platform

    import torch

    return {"ctseg": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}
