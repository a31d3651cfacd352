"""Shared type aliases. Axis order of every volume is the NIfTI voxel order (i, j, k)."""

from __future__ import annotations

from os import PathLike
from typing import Union

import numpy as np
import numpy.typing as npt

__all__ = ["PathLike_", "Spacing", "Shape3D", "Affine", "FloatArray", "LabelArray"]

PathLike_ = Union[str, "PathLike[str]"]
#: Voxel size in millimetres along the array axes (i, j, k).
Spacing = tuple[float, float, float]
#: Array shape along (i, j, k).
Shape3D = tuple[int, int, int]
#: 4x4 voxel-to-world matrix, world in RAS+ millimetres (the NIfTI convention).
Affine = npt.NDArray[np.float64]
FloatArray = npt.NDArray[np.floating]
LabelArray = npt.NDArray[np.integer]
