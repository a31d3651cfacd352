"""Training data: patch (3D) and slice (2D) sampling and augmentation."""

from __future__ import annotations

from .augment import PatchParams, apply_flips, apply_intensity, apply_lesion_contrast, make_params
from .sampling import PatchSampler, choose_center, extract_patch
from .slices import SliceSampler, choose_slice, foreground_slices, slice_patch

__all__ = [
    "PatchParams", "make_params", "apply_flips", "apply_intensity", "apply_lesion_contrast", "PatchSampler", "choose_center", "extract_patch",
    "SliceSampler", "choose_slice", "foreground_slices", "slice_patch",
]  # fmt: skip
