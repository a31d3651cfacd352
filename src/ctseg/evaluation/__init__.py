"""Evaluation of predicted label maps against references: per-case metrics table and summary."""

from __future__ import annotations

from .evaluate import (
    CSV_COLUMNS,
    LESION_CSV_COLUMNS,
    EvaluationResult,
    case_id,
    evaluate,
    format_table,
    load_label_names,
    pair_cases,
    summarise,
)
from .lesion_summary import find_lesion_labels, summarise_lesions

__all__ = [
    "CSV_COLUMNS",
    "LESION_CSV_COLUMNS",
    "EvaluationResult",
    "case_id",
    "evaluate",
    "format_table",
    "load_label_names",
    "pair_cases",
    "summarise",
    "find_lesion_labels",
    "summarise_lesions",
]
