"""Options of an evaluation run: NSD tolerance and lesion analysis, validated at the boundary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..metrics import LesionSettings
from .lesion_summary import find_lesion_labels

__all__ = ["scoring_options"]


def scoring_options(
    names: dict[int, str] | None,
    nsd_tolerance_mm: float,
    lesion_labels: Sequence[int] | None,
    lesion_settings: LesionSettings | None,
) -> dict[str, Any]:
    """Validated keyword arguments of :func:`ctseg.metrics.case_metrics` for the NSD tolerance and
    the lesion analysis: ``{"nsd_tolerance_mm", "lesion_labels", "lesion_settings"}``.

    ``lesion_labels=None`` picks the labels whose name says they are lesions
    (:func:`find_lesion_labels`).

    Raises:
        InputError: a tolerance that is not a finite number >= 0, or lesion labels that are not
            positive integers.
    """
    try:
        tolerance = float(nsd_tolerance_mm)
    except (TypeError, ValueError):
        tolerance = float("nan")
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise InputError(
            f"nsd_tolerance_mm must be a finite number of mm >= 0, found {nsd_tolerance_mm!r}"
        )
    if lesion_labels is None:
        values = find_lesion_labels(names or {})
    else:
        values = sorted({v for v in lesion_labels if isinstance(v, (int, np.integer)) and v > 0})
        if len(values) != len(set(lesion_labels)):
            raise InputError(
                f"lesion_labels must be positive integer label values, found {list(lesion_labels)}"
            )
    return {
        "nsd_tolerance_mm": tolerance,
        "lesion_labels": [int(v) for v in values],
        "lesion_settings": lesion_settings or LesionSettings(),
    }
