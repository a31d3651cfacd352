"""Preparing a run folder: dataset -> fingerprint -> plan -> preprocessed cache -> split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._fileio import read_json, write_json, write_text
from .._resources import check_disk
from ..config import Config
from ..errors import DatasetError
from ..io.datasets import Dataset, load_dataset
from ..io.verify import verify_dataset
from ..preprocessing import Plan, compute_fingerprint, make_plan, preprocess_dataset
from .cascade import fine_config

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


def _split(ids: list[str], fraction: float, seed: int, strata: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(train, validation) case ids: ``round(fraction * n)`` validation cases (at least 1, and at
    least 1 training case), drawn at random with ``seed``; all cases in both when there are fewer
    than 2 or ``fraction`` is 0.

    With ``strata`` (case id -> a key, e.g. the labels it holds), the validation cases are shared
    out over the strata in proportion to their sizes (largest remainders first, ties to the
    larger stratum) and drawn at random inside each, so that a rarer kind of case (one without a
    tumour) lands in both parts when the numbers allow.
    """
    if len(ids) < 2 or fraction <= 0:
        return list(ids), list(ids)
    rng = np.random.default_rng(seed)
    n_val = min(len(ids) - 1, max(1, int(round(fraction * len(ids)))))
    if not strata:
        order = rng.permutation(len(ids))
        val = sorted(ids[i] for i in order[:n_val])
        return [i for i in ids if i not in val], val
    groups: dict[str, list[str]] = {}
    for case in ids:
        groups.setdefault(str(strata.get(case)), []).append(case)
    keys = sorted(groups)
    share = {k: n_val * len(groups[k]) / len(ids) for k in keys}
    count = {k: int(np.floor(share[k])) for k in keys}
    for k in sorted(keys, key=lambda k: (-(share[k] - count[k]), -len(groups[k]), k))[: n_val - sum(count.values())]:
        count[k] += 1
    val = sorted(c for k in keys for c in (groups[k][i] for i in rng.permutation(len(groups[k]))[: count[k]]))
    return [i for i in ids if i not in val], val


def prepare_run(dataset_dir: str | Path, run_dir: str | Path, config: Config, *, progress: bool = True, workers: int = 1, skip_bad: bool = False) -> RunFolder:
    """Create (or reuse, when resuming) a run folder holding everything needed to train and predict.

    Each stage's output is written once and reused: ``fingerprint.json``, ``plan.json``,
    ``preprocessed/``, ``split.json``; ``config.yaml`` holds the resolved settings.

    The dataset (any layout :func:`ctseg.io.load_dataset` reads) is verified first
    (:func:`ctseg.io.verify.verify_dataset`): a problem stops the run before anything is written,
    unless ``skip_bad`` leaves the listed cases out (they are recorded in ``excluded_cases.json``).
    """
    run = Path(run_dir)
    dataset, excluded = _verified_dataset(dataset_dir, run, skip_bad=skip_bad, progress=progress)
    fp_path = run / "fingerprint.json"
    if fp_path.is_file():
        fingerprint = read_json(fp_path)
    else:  # reads and checks every case: a bad dataset stops here, before anything is written
        fingerprint = compute_fingerprint(dataset, crop_threshold_hu=config.plan.crop_threshold_hu, seed=config.train.seed, workers=workers, progress=progress)
        write_json(fp_path, fingerprint)
        write_json(run / "excluded_cases.json", excluded)
    write_text(run / "config.yaml", config.to_yaml())
    plan_path = run / "plan.json"
    if plan_path.is_file():
        plan = Plan.from_dict(read_json(plan_path))
    else:
        plan = make_plan(fingerprint, config.plan, roi=config.cascade.enabled)
        write_json(plan_path, plan.to_dict())
    write_json(run / "dataset.json", {"name": dataset.name, "labels": {str(k): v for k, v in dataset.labels.items()}, "source": str(Path(dataset_dir).resolve())})
    if not (run / "preprocessed").is_dir():  # the cache: float32 image + uint8 labels per case
        _check_cache_disk(run, fingerprint, plan)
    ids = preprocess_dataset(dataset, plan, run / "preprocessed", workers=workers, progress=progress)
    split_path = run / "split.json"
    if split_path.is_file():
        split = read_json(split_path)
    else:
        strata = {c["case_id"]: tuple(c.get("labels_present", ())) for c in fingerprint.get("cases", [])} if config.train.stratify_split else None
        train_ids, val_ids = _split(ids, config.train.val_fraction, config.train.seed, strata)
        split = {"train": train_ids, "val": val_ids}
        write_json(split_path, split)
    write_json(run / "versions.json", _versions())
    # config.yaml keeps the settings as given; a cascade's fine stage trains on its share of them
    settings = fine_config(config) if config.cascade.enabled else config
    return RunFolder(run, settings, plan, split["train"], split["val"])


def _verified_dataset(dataset_dir: str | Path, run: Path, *, skip_bad: bool, progress: bool) -> tuple[Dataset, list[dict[str, str]]]:
    """The training cases that pass verification (checked once per run folder) and the rows of
    the cases left out."""
    excluded_path = run / "excluded_cases.json"
    if (run / "fingerprint.json").is_file() and excluded_path.is_file():  # resuming: verified already
        excluded = read_json(excluded_path)
        return load_dataset(dataset_dir, strict=False).without({e["case"] for e in excluded}), excluded
    report = verify_dataset(dataset_dir, include_test=False, progress=progress)
    if not report.ok and not skip_bad:
        raise DatasetError(f"the dataset has problems: fix them, or pass --skip-bad to leave the listed cases out\n{report.format_table()}")
    dataset = report.dataset.without(report.bad_case_ids)
    if not dataset.training:
        raise DatasetError(f"{report.format_table()}\nno training case is left without problems")
    if progress:
        print(report.dataset.describe())
        if not report.ok:
            print(f"--skip-bad: leaving out {len(report.bad_case_ids)} case(s): {', '.join(sorted(report.bad_case_ids))}")
    return dataset, [{"case": r.case, "file": r.file, "problem": r.problem} for r in report.rows]


def _check_cache_disk(run: Path, fingerprint: dict[str, Any], plan: Plan) -> None:
    """Refuse to start a preprocessing cache that the disk cannot hold (estimated from the
    fingerprint's cropped sizes resampled to the plan's spacing; 5 bytes per voxel)."""
    target = np.asarray(plan.spacing, dtype=np.float64)
    voxels = sum(float(np.prod(np.asarray(c["cropped_shape"]) * np.asarray(c["spacing"]) / target)) for c in fingerprint["cases"])
    check_disk(run, 5.0 * voxels, "the preprocessing cache", "free disk space, choose another -o folder, or a coarser plan (plan.target_spacing or plan.max_median_voxels)")


def _versions() -> dict[str, Any]:
    import platform

    import torch

    return {"ctseg": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}
