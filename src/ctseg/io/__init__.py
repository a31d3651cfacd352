"""Reading and writing images, label maps and dataset layouts."""

from __future__ import annotations

from .image import Image, LabelMap, orientation_codes, spacing_from_affine
from .nifti import read_nifti, write_nifti

__all__ = ["Image", "LabelMap", "orientation_codes", "spacing_from_affine", "read_nifti", "write_nifti"]
