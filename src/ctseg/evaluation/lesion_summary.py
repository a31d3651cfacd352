"""Lesion-wise detection over a dataset: which labels are lesions, the lesion table, the summary."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..metrics.lesions import LESION_COLUMNS, LesionSettings, f1_from_rates
from .summary import stats

__all__ = ["find_lesion_labels", "summarise_lesions", "LESION_CSV_COLUMNS", "CASE_LESION_COLUMNS"]

#: Columns of ``lesions.csv``: one row per reference lesion and per false predicted lesion.
LESION_CSV_COLUMNS = ("case", "label", "name", *LESION_COLUMNS)

#: Per-case lesion counts and rates added to the rows (and metrics.csv) of lesion labels.
CASE_LESION_COLUMNS = (
    "lesions_ref",
    "lesions_pred",
    "lesions_detected",
    "lesions_missed",
    "lesions_false",
    "lesion_recall",
    "lesion_precision",
    "lesion_f1",
)

_LESION_NAME = re.compile(r"tumou?r|cancer|lesion|metasta|carcinoma|neoplasm|nodule", re.IGNORECASE)


def find_lesion_labels(names: Mapping[int, str]) -> list[int]:
    """Label values whose name says they are lesions (tumour, tumor, cancer, lesion, metastasis,
    carcinoma, neoplasm, nodule; any case), sorted. Background 0 is never one."""
    return sorted(v for v, n in names.items() if v != 0 and _LESION_NAME.search(str(n)))


def _pooled(counts: Mapping[str, int]) -> dict[str, Any]:
    n_ref, n_pred = counts["lesions_ref"], counts["lesions_pred"]
    recall = counts["lesions_detected"] / n_ref if n_ref else None
    matched = n_pred - counts["lesions_false"]
    precision = matched / n_pred if n_pred else None
    f1 = f1_from_rates(recall or 0.0, precision or 0.0, n_ref, n_pred)
    return {"recall": recall, "precision": precision, "f1": None if f1 != f1 else f1}


def summarise_lesions(
    rows: Sequence[Mapping[str, Any]],
    lesion_rows: Sequence[Mapping[str, Any]],
    settings: LesionSettings,
) -> dict[str, Any]:
    """Lesion detection per lesion label over all cases.

    Args:
        rows: per case x label rows; those holding ``lesions_ref`` (lesion labels) are used.
        lesion_rows: rows of ``lesions.csv`` (``case``, ``name`` + :data:`LESION_COLUMNS`).
        settings: the matching convention, recorded in the summary.

    Returns:
        ``{"convention", "settings", "labels": {name: {...}}}``; per label: the pooled counts
        ``lesions_ref``, ``lesions_detected``, ``lesions_missed``, ``lesions_pred``,
        ``lesions_false`` over all cases; pooled ``recall``, ``precision``, ``f1`` (micro
        average; ``None`` where undefined); :func:`stats` of the per-case ``lesion_recall``,
        ``lesion_precision`` and ``lesion_f1``; ``lesion_dice`` (stats over all reference
        lesions, missed ones scoring 0) and ``detected_lesion_dice`` (detected ones only); and
        ``per_case`` counts.
    """
    out: dict[str, Any] = {}
    for row in rows:
        if "lesions_ref" not in row:
            continue
        name = str(row["name"])
        entry = out.setdefault(name, {"label": row["label"], "per_case": {}})
        entry["per_case"][str(row["case"])] = {k: row[k] for k in CASE_LESION_COLUMNS}
    for name, entry in out.items():
        per_case = list(entry["per_case"].values())
        totals = {
            k: int(sum(c[k] for c in per_case))
            for k in (
                "lesions_ref",
                "lesions_detected",
                "lesions_missed",
                "lesions_pred",
                "lesions_false",
            )
        }
        mine = [r for r in lesion_rows if str(r["name"]) == name]
        refs = [r for r in mine if r["status"] != "false"]
        entry.update(totals)
        entry.update(_pooled(totals))
        for key in ("lesion_recall", "lesion_precision", "lesion_f1"):
            entry[f"per_case_{key.split('_')[1]}"] = stats([c[key] for c in per_case])
        entry["lesion_dice"] = stats([r["dice"] for r in refs])
        entry["detected_lesion_dice"] = stats(
            [r["dice"] for r in refs if r["status"] == "detected"]
        )
        entry["per_case"] = entry.pop("per_case")  # keep the long part last
    return {
        "convention": settings.describe(),
        "settings": dataclasses.asdict(settings),
        "labels": out,
    }
