"""Evaluation of predicted label maps against references: per-case metrics table and summary."""

from __future__ import annotations

from .evaluate import (
    CSV_COLUMNS,
    EvaluationResult,
    case_id,
    evaluate,
    format_table,
    load_label_names,
    pair_cases,
    summarise,
)

__all__ = [
    "CSV_COLUMNS",
    "EvaluationResult",
    "case_id",
    "evaluate",
    "format_table",
    "load_label_names",
    "pair_cases",
    "summarise",
]
