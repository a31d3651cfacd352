"""Summaries of per-case metric rows: statistics per label and a printable table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..metrics import ROW_METRICS

__all__ = ["summarise", "format_table"]


def _stats(values: Sequence[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    out: dict[str, Any] = {"mean": None, "median": None, "std": None, "min": None, "max": None}
    if finite.size:
        out = {
            "mean": float(finite.mean()),
            "median": float(np.median(finite)),
            "std": float(finite.std()),
            "min": float(finite.min()),
            "max": float(finite.max()),
        }
    return {**out, "n": int(finite.size), "n_undefined": int(arr.size - finite.size)}


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per label name: statistics of each metric over cases, and a pooled (global) Dice.

    Returns ``{"n_cases", "cases", "conventions", "labels": {name: {"label", "dice", "jaccard",
    "hd95", "asd", "global_dice"}}}``. Each metric entry is ``{mean, median, std, min, max, n,
    n_undefined}`` over the finite values only (``std`` with ddof=0); ``n_undefined`` counts nan
    (both masks empty) and inf (exactly one empty); statistics are ``None`` when no value is
    finite. ``global_dice`` = 2 sum(TP) / (sum(pred) + sum(ref)) over all cases in voxel counts (the
    LiTS "Dice global"), ``None`` when the label is absent everywhere.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row["name"]), []).append(row)
    labels: dict[str, Any] = {}
    for name, group in groups.items():
        entry: dict[str, Any] = {"label": group[0]["label"]}
        for metric in ROW_METRICS:
            entry[metric] = _stats([r[metric] for r in group])
        tp = sum(int(r["tp"]) for r in group)
        denom = sum(2 * int(r["tp"]) + int(r["fp"]) + int(r["fn"]) for r in group)
        entry["global_dice"] = 2.0 * tp / denom if denom else None
        labels[name] = entry
    cases = list(dict.fromkeys(str(r["case"]) for r in rows))
    conventions = {
        "units": "dice, jaccard in [0, 1]; hd95, asd in mm; volumes in mL",
        "hd95": "max of the two directed 95th percentiles of surface distances (DeepMind "
        "compute_robust_hausdorff, MONAI compute_hausdorff_distance(percentile=95))",
        "asd": "mean of both directed surface-distance arrays concatenated",
        "undefined": "nan when both masks are empty, inf (surface metrics) when exactly one is",
    }
    return {"n_cases": len(cases), "cases": cases, "conventions": conventions, "labels": labels}


def format_table(summary: Mapping[str, Any]) -> str:
    """A fixed-width text table of a summary: one line per label x metric (mean ± std, median,
    n finite, n undefined), then each label's global Dice."""
    header = (
        f"{'label':<20} {'metric':<10} {'mean ± std':>22} {'median':>10} {'n':>5} {'undefined':>10}"
    )
    lines = [header, "-" * len(header)]
    for name, entry in summary["labels"].items():
        for i, metric in enumerate(ROW_METRICS):
            stats = entry[metric]
            digits = 4 if metric in ("dice", "jaccard") else 2
            unit = "" if metric in ("dice", "jaccard") else " mm"
            if stats["n"]:
                mean_std = f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}{unit}"
                median = f"{stats['median']:.{digits}f}"
            else:
                mean_std, median = "-", "-"
            label_col = name if i == 0 else ""
            lines.append(
                f"{label_col:<20} {metric:<10} {mean_std:>22} {median:>10} {stats['n']:>5} {stats['n_undefined']:>10}"
            )
        gd = entry.get("global_dice")
        lines.append(f"{'':<20} {'global dice':<10} {('-' if gd is None else f'{gd:.4f}'):>22}")
    return "\n".join(lines)
