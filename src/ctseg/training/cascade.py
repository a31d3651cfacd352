"""Cascade by region: a coarse locator run, then the fine stage on the organ's box.

The locator is an ordinary run folder kept inside the fine run (``RUN/locator``), so that
``ctseg predict -m RUN`` needs nothing else. It trains on the whole body at a coarse spacing; the
fine stage trains on each case's labelled box grown by ``plan.roi_margin_mm`` and, at prediction,
on the box of the locator's output.
"""

from __future__ import annotations

import math
from pathlib import Path

from .._fileio import read_json, write_json
from ..config import Config

__all__ = ["locator_config", "fine_config", "share_fingerprint"]


def _split_budget(config: Config, share: float) -> dict:
    t = config.train
    train: dict = {"epochs": max(1, math.ceil(t.epochs * share))}
    if t.time_budget_minutes:
        train["time_budget_minutes"] = t.time_budget_minutes * share
    return train


def locator_config(config: Config) -> Config:
    """The locator's settings: the fine stage's, on the whole body at the locator's coarser budget,
    with its share of the time budget and epochs, keeping only the largest organ region."""
    c = config.cascade
    return config.merged({
        "plan": {"max_median_voxels": c.locator_max_median_voxels, "target_spacing": None},
        "train": _split_budget(config, c.locator_time_fraction),
        "predict": {"keep_largest_component": True, "tta": False},
        "cascade": {"enabled": False},
    })


def fine_config(config: Config) -> Config:
    """The fine stage's settings: the rest of the time budget and epochs."""
    return config.merged({"train": _split_budget(config, 1.0 - config.cascade.locator_time_fraction)})


def share_fingerprint(locator_dir: Path, run_dir: Path) -> None:
    """Reuse the locator's dataset fingerprint and verification (same dataset) instead of reading every case again."""
    for name in ("fingerprint.json", "excluded_cases.json"):  # and the dataset's verification
        src, dst = Path(locator_dir) / name, Path(run_dir) / name
        if src.is_file() and not dst.is_file():
            write_json(dst, read_json(src))
