"""Fingerprint, plan and preprocessing of CT cases (and the inverse back to the input grid)."""

from __future__ import annotations

from .fingerprint import compute_fingerprint, read_case
from .pipeline import (
    CaseGeometry,
    load_preprocessed,
    preprocess_dataset,
    preprocess_image,
    preprocess_label,
    restore_labels,
    roi_box,
)
from .plan import LOCATOR_DIR, Plan, make_plan
from .volume_grid import VolumeGrid, preprocess_region, tiles_on_body, volume_grid

__all__ = [
    "compute_fingerprint",
    "read_case",
    "Plan",
    "make_plan",
    "CaseGeometry",
    "preprocess_image",
    "preprocess_label",
    "restore_labels",
    "preprocess_dataset",
    "load_preprocessed",
    "roi_box",
    "LOCATOR_DIR",
    "VolumeGrid",
    "volume_grid",
    "preprocess_region",
    "tiles_on_body",
]
