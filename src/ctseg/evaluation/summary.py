"""Summaries of per-case metric rows: statistics per label and a printable table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..metrics import DEFAULT_NSD_TOLERANCE_MM, ROW_METRICS

__all__ = ["summarise", "format_table", "stats", "TABLE_METRICS"]

#: Metrics shown by :func:`format_table` (all of ``ROW_METRICS`` are in summary.json).
TABLE_METRICS = ("dice", "hd95", "asd", "nsd", "volume_error_pct")
_UNITS = {"hd": " mm", "hd95": " mm", "asd": " mm", "volume_error_pct": " %"}
_SHORT = {"volume_error_pct": "vol err"}


def stats(values: Sequence[float]) -> dict[str, Any]:
    """Statistics of the finite values: ``{mean, median, std, q1, q3, iqr, min, max, n, n_nan,
    n_inf, n_undefined}``.

    ``std`` has ddof=0; ``q1``/``q3`` are the 25th/75th percentiles (linear) and ``iqr = q3 - q1``.
    ``n`` counts finite values, ``n_nan`` undefined ones (nan, e.g. both masks empty), ``n_inf``
    infinite ones (e.g. a surface distance with one mask empty), ``n_undefined = n_nan + n_inf``.
    The statistics are ``None`` when no value is finite.
    """
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    keys = ("mean", "median", "std", "q1", "q3", "iqr", "min", "max")
    out: dict[str, Any] = dict.fromkeys(keys)
    if finite.size:
        q1, q3 = np.percentile(finite, [25.0, 75.0])
        out = {
            "mean": float(finite.mean()),
            "median": float(np.median(finite)),
            "std": float(finite.std()),
            "q1": float(q1),
            "q3": float(q3),
            "iqr": float(q3 - q1),
            "min": float(finite.min()),
            "max": float(finite.max()),
        }
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(np.isinf(arr).sum())
    return {
        **out,
        "n": int(finite.size),
        "n_nan": n_nan,
        "n_inf": n_inf,
        "n_undefined": n_nan + n_inf,
    }


def summarise(
    rows: Sequence[Mapping[str, Any]], *, nsd_tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM
) -> dict[str, Any]:
    """Per label name: statistics of each metric over cases, and a pooled (global) Dice.

    Returns ``{"n_cases", "cases", "conventions", "labels": {name: {"label", <metric>: stats,
    "global_dice"}}}`` with one :func:`stats` entry per metric of ``ctseg.metrics.ROW_METRICS``
    (over the finite values only; nan and inf are counted apart). ``global_dice`` =
    2 sum(TP) / (sum(pred) + sum(ref)) over all cases in voxel counts (the LiTS "Dice global"),
    ``None`` when the label is absent everywhere; the LiTS "Dice per case" is ``dice.mean``.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row["name"]), []).append(row)
    labels: dict[str, Any] = {}
    for name, group in groups.items():
        entry: dict[str, Any] = {"label": group[0]["label"]}
        for metric in ROW_METRICS:
            entry[metric] = stats([r[metric] for r in group if metric in r])
        tp = sum(int(r["tp"]) for r in group)
        denom = sum(2 * int(r["tp"]) + int(r["fp"]) + int(r["fn"]) for r in group)
        entry["global_dice"] = 2.0 * tp / denom if denom else None
        labels[name] = entry
    cases = list(dict.fromkeys(str(r["case"]) for r in rows))
    return {
        "n_cases": len(cases),
        "cases": cases,
        "conventions": conventions(nsd_tolerance_mm),
        "labels": labels,
    }


def conventions(nsd_tolerance_mm: float) -> dict[str, str]:
    """The metric conventions written into summary.json."""
    return {
        "units": "dice, jaccard, precision, recall, nsd in [0, 1]; hd, hd95, asd in mm; volumes "
        "and volume_error_ml in mL; volume_error_pct in % of the reference volume",
        "surface": "surface voxels = mask voxels with a face neighbour outside the mask; "
        "Euclidean distances between voxel centres in mm (MONAI's convention)",
        "hd95": "max of the two directed 95th percentiles (linear interpolation) of surface "
        "distances (MONAI compute_hausdorff_distance(percentile=95))",
        "asd": "mean of both directed surface-distance sets pooled (MONAI symmetric=True)",
        "nsd": f"normalised surface Dice at {nsd_tolerance_mm:g} mm: fraction of both surfaces' "
        "voxels within the tolerance of the other surface",
        "volume_error": "pred - ref (mL); pct = 100 (pred - ref) / ref",
        "undefined": "both masks empty: nan (volume_error_ml 0); reference empty: recall nan, "
        "surface distances and volume_error_pct inf; prediction empty: precision nan, surface "
        "distances inf; nan and inf are left out of the statistics and counted (n_nan, n_inf)",
        "global_dice": "2 sum(TP) / (sum(pred) + sum(ref)) over all cases (LiTS Dice global); "
        "dice.mean is the LiTS Dice per case (both-empty cases left out)",
    }


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(summary: Mapping[str, Any]) -> str:
    """A fixed-width text table of a summary: one line per label x metric of
    :data:`TABLE_METRICS` (mean ± std, median, IQR, n finite, n undefined), each label's global
    Dice, then the lesion detection of tumour labels when the summary has a ``lesions`` part."""
    header = (
        f"{'label':<20} {'metric':<11} {'mean ± std':>22} {'median':>9} {'IQR':>9} {'n':>4} "
        f"{'undefined':>9}"
    )
    lines = [header, "-" * len(header)]
    for name, entry in summary["labels"].items():
        shown = [m for m in TABLE_METRICS if m in entry]
        for i, metric in enumerate(shown):
            st = entry[metric]
            digits = 4 if metric in ("dice", "jaccard", "nsd") else 2
            mean_std = "-"
            if st["n"]:
                mean_std = (
                    f"{st['mean']:.{digits}f} ± {st['std']:.{digits}f}{_UNITS.get(metric, '')}"
                )
            lines.append(
                f"{name if i == 0 else '':<20} {_SHORT.get(metric, metric):<11} {mean_std:>22} "
                f"{_number(st['median'], digits):>9} {_number(st.get('iqr'), digits):>9} "
                f"{st['n']:>4} {st['n_undefined']:>9}"
            )
        gd = entry.get("global_dice")
        lines.append(f"{'':<20} {'global dice':<11} {('-' if gd is None else f'{gd:.4f}'):>22}")
    lesions = summary.get("lesions") or {}
    if lesions.get("labels"):
        lines += ["", f"lesions: {lesions.get('convention', '')}"]
        for name, entry in lesions["labels"].items():
            lines.append(
                f"{name:<20} {entry['lesions_detected']}/{entry['lesions_ref']} detected "
                f"(recall {_number(entry['recall'], 3)}), {entry['lesions_missed']} missed, "
                f"{entry['lesions_false']} false of {entry['lesions_pred']} predicted "
                f"(precision {_number(entry['precision'], 3)}), F1 {_number(entry['f1'], 3)}"
            )
    return "\n".join(lines)
