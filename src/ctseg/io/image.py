"""Images that carry their geometry.

An :class:`Image` is a 3D array in NIfTI voxel order (i, j, k) plus a 4x4 affine mapping voxel
indices to world coordinates in RAS+ millimetres. A :class:`LabelMap` is an Image of integer
labels: resampling uses nearest/per-label interpolation and intensity transforms skip it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
import numpy as np

from ..errors import InputError

__all__ = ["Image", "LabelMap", "spacing_from_affine", "orientation_codes"]


def spacing_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along (i, j, k): the norms of the affine's first three columns."""
    norms = np.sqrt((np.asarray(affine, dtype=np.float64)[:3, :3] ** 2).sum(axis=0))
    return (float(norms[0]), float(norms[1]), float(norms[2]))


def orientation_codes(affine: np.ndarray) -> str:
    """Closest axis codes, e.g. ``"RAS"`` or ``"LPS"`` (direction each array axis increases to)."""
    return "".join(nib.aff2axcodes(np.asarray(affine, dtype=np.float64)))


@dataclass
class Image:
    """A 3D volume and its voxel-to-world affine (RAS+ mm).

    Attributes:
        array: data of shape (I, J, K); HU for CT.
        affine: 4x4 float64 matrix, ``world = affine @ [i, j, k, 1]``.
        meta: free-form information kept with the image (source path, header fields).
    """

    array: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.array.ndim != 3:
            source = self.meta.get("path", "image")
            raise InputError(
                f"{source}: expected a 3D volume, found {self.array.ndim} dimensions "
                f"(shape {tuple(self.array.shape)}); give one 3D image per file"
            )
        if self.affine.shape != (4, 4) or not np.all(np.isfinite(self.affine)):
            raise InputError(f"{self.meta.get('path', 'image')}: the affine must be a finite 4x4 matrix")
        if abs(np.linalg.det(self.affine[:3, :3])) < 1e-12:
            raise InputError(
                f"{self.meta.get('path', 'image')}: the affine is singular (a voxel size is zero); "
                "fix the header's pixdim/sform"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        return spacing_from_affine(self.affine)

    @property
    def orientation(self) -> str:
        return orientation_codes(self.affine)

    def with_array(self, array: np.ndarray, affine: np.ndarray | None = None) -> Image:
        """A new image of the same class with other data (and optionally another affine)."""
        return type(self)(array, self.affine if affine is None else affine, dict(self.meta))

    def voxel_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """Map (N, 3) voxel indices to (N, 3) world coordinates in mm."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_voxel(self, xyz: np.ndarray) -> np.ndarray:
        """Map (N, 3) world coordinates in mm to (N, 3) continuous voxel indices."""
        inv = np.linalg.inv(self.affine)
        xyz = np.atleast_2d(np.asarray(xyz, dtype=np.float64))
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def same_grid(self, other: Image, atol_mm: float = 1e-3) -> bool:
        """True when both images have the same shape and (within ``atol_mm``) the same affine."""
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=atol_mm))


class LabelMap(Image):
    """An :class:`Image` of integer labels (0 = background)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not np.issubdtype(self.array.dtype, np.integer):
            arr = self.array
            if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
                raise InputError(
                    f"{self.meta.get('path', 'label map')}: label values must be whole numbers; "
                    "found fractional or NaN values (is this an image rather than a label map?)"
                )
            self.array = arr.astype(np.int16)
