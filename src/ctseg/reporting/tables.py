"""Reading an evaluation folder (``metrics.csv``, ``summary.json``, lesion tables) for a report.

Whatever columns ``ctseg evaluate`` wrote are used: every column whose values are all numbers
(``nan`` and ``inf`` included) is a metric, except voxel counts and yes/no flags.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import read_json
from ..errors import InputError

__all__ = ["EvaluationTable", "read_evaluation", "metric_stats", "read_csv_rows", "lower_is_better"]

_KEYS = ("case", "label", "name")
_NOT_METRICS = {"tp", "fp", "fn", "tn"}
_BOOLEAN = {"true", "false", "yes", "no"}
_LOWER_IS_BETTER = ("hd", "asd", "assd", "missed", "false")


@dataclass
class EvaluationTable:
    """The per-case metrics of an evaluation folder.

    Attributes:
        path: the evaluation folder.
        cases: case ids in file order.
        names: label (and region) names in file order.
        label_values: ``{value: name}`` of the integer labels (regions left out).
        metrics: metric column names in file order.
        values: ``{name: {case: {metric: float}}}`` (nan where a row or value is missing).
        summary: the content of ``summary.json`` ({} when absent).
        lesion_tables: ``{file name: rows}`` of any ``*lesion*.csv`` in the folder.
    """

    path: Path
    cases: list[str]
    names: list[str]
    label_values: dict[int, str]
    metrics: list[str]
    values: dict[str, dict[str, dict[str, float]]]
    summary: dict[str, Any] = field(default_factory=dict)
    lesion_tables: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def column(self, name: str, metric: str) -> np.ndarray:
        """Values of one metric of one label over all cases, in case order (float64)."""
        return np.array([self.values[name].get(c, {}).get(metric, math.nan) for c in self.cases], dtype=np.float64)


def _number(text: str) -> float | None:
    text = text.strip()
    if text.lower() in _BOOLEAN:
        return None
    if text == "" or text.lower() in ("none", "null"):
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts of strings.

    Raises:
        InputError: the file cannot be read or has no header.
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = reader.fieldnames
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the CSV file ({exc})") from None
    if not header:
        raise InputError(f"{path}: empty CSV file; run `ctseg evaluate` again to rewrite it")
    return rows


def read_evaluation(eval_dir: str | Path) -> EvaluationTable:
    """Read ``metrics.csv`` (required), ``summary.json`` and ``*lesion*.csv`` (optional).

    Raises:
        InputError: the folder or its metrics.csv is missing, or the CSV lacks case/name columns.
    """
    folder = Path(eval_dir)
    csv_path = folder / "metrics.csv"
    if not csv_path.is_file():
        raise InputError(f"{folder}: no metrics.csv; give the output folder of `ctseg evaluate PRED GT -o FOLDER`")
    rows = read_csv_rows(csv_path)
    columns = list(rows[0].keys()) if rows else []
    if not rows or not {"case", "name"} <= set(columns):
        raise InputError(f"{csv_path}: expected rows with 'case' and 'name' columns (as `ctseg evaluate` writes)")
    metrics = [c for c in columns if c not in _KEYS and c not in _NOT_METRICS and all(_number(r[c] or "") is not None for r in rows)]
    cases = list(dict.fromkeys(r["case"] for r in rows))
    names = list(dict.fromkeys(r["name"] for r in rows))
    values: dict[str, dict[str, dict[str, float]]] = {n: {} for n in names}
    label_values: dict[int, str] = {}
    for r in rows:
        values[r["name"]][r["case"]] = {m: _number(r[m] or "") or 0.0 for m in metrics}
        label = (r.get("label") or "").strip()
        if label.lstrip("-").isdigit() and int(label) > 0:
            label_values[int(label)] = r["name"]
    summary_path = folder / "summary.json"
    summary = read_json(summary_path) if summary_path.is_file() else {}
    lesions = {p.name: read_csv_rows(p) for p in sorted(folder.glob("*lesion*.csv"))}
    return EvaluationTable(folder, cases, names, dict(sorted(label_values.items())), metrics, values, summary if isinstance(summary, dict) else {}, lesions)


def lower_is_better(metric: str) -> bool:
    """True for distances and counts of mistakes (HD, HD95, ASD, missed and false lesions)."""
    return any(word in metric.lower() for word in _LOWER_IS_BETTER)


def metric_stats(values: Sequence[float]) -> dict[str, float | int | None]:
    """mean, std (ddof 0), median, q1, q3, min, max over the finite values; ``n`` finite and
    ``n_undefined`` (nan or inf) counts; statistics are None when no value is finite."""
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    out: dict[str, float | int | None] = {"n": int(finite.size), "n_undefined": int(arr.size - finite.size)}
    keys = ("mean", "std", "median", "q1", "q3", "min", "max")
    if not finite.size:
        return {**dict.fromkeys(keys), **out}
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    stats = (finite.mean(), finite.std(), median, q1, q3, finite.min(), finite.max())
    return {**{k: float(v) for k, v in zip(keys, stats)}, **out}
