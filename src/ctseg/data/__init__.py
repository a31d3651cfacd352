"""Training data: patch sampling and augmentation."""

from __future__ import annotations

from .augment import PatchParams, apply_flips, apply_intensity, make_params
from .sampling import PatchSampler, choose_center, extract_patch

__all__ = ["PatchParams", "make_params", "apply_flips", "apply_intensity", "PatchSampler", "choose_center", "extract_patch"]
