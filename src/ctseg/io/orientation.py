"""Axis reorientation (permutations and flips only; exact, no interpolation)."""

from __future__ import annotations

import numpy as np
from nibabel import orientations as ornt

from ._copy import c_contiguous
from .image import Image

__all__ = ["reorient", "Reorientation"]


class Reorientation:
    """The permutation/flip taking an array from one axis orientation to another.

    ``apply`` maps arrays of the source grid to the target grid and ``invert`` maps them back; both
    accept extra leading axes (channels) before the three spatial axes.
    """

    def __init__(self, affine: np.ndarray, shape: tuple[int, int, int], target: str = "RAS") -> None:
        self.source_affine = np.asarray(affine, dtype=np.float64)
        self.source_shape = tuple(int(s) for s in shape)
        start = ornt.io_orientation(self.source_affine)
        end = ornt.axcodes2ornt(tuple(target))
        self._forward = ornt.ornt_transform(start, end)
        self._backward = ornt.ornt_transform(end, start)
        to_target = ornt.inv_ornt_aff(self._forward, self.source_shape)
        self.target_affine = self.source_affine @ to_target
        perm = self._forward[:, 0].astype(int)
        target_shape = [0, 0, 0]
        for src_axis, dst_axis in enumerate(perm):
            target_shape[dst_axis] = self.source_shape[src_axis]
        self.target_shape = tuple(target_shape)

    @property
    def is_identity(self) -> bool:
        return bool(np.array_equal(self._forward, [[0, 1], [1, 1], [2, 1]]))

    def apply(self, array: np.ndarray) -> np.ndarray:
        return _apply(array, self._forward)

    def invert(self, array: np.ndarray) -> np.ndarray:
        return _apply(array, self._backward)

    def view(self, array: np.ndarray) -> np.ndarray:
        """Like :meth:`apply` for a 3D array, but a strided view (no copy): for reading a few slices."""
        return ornt.apply_orientation(array, self._forward)


def _apply(array: np.ndarray, transform: np.ndarray) -> np.ndarray:
    lead = array.ndim - 3
    if lead == 0:
        return c_contiguous(ornt.apply_orientation(array, transform))
    moved = np.moveaxis(array, tuple(range(lead)), tuple(range(-lead, 0)))
    out = ornt.apply_orientation(moved, transform)
    return np.ascontiguousarray(np.moveaxis(out, tuple(range(-lead, 0)), tuple(range(lead))))


def reorient(image: Image, target: str = "RAS") -> Image:
    """Return ``image`` with its axes permuted/flipped to the closest ``target`` orientation.

    The world position of every voxel is unchanged; an oblique affine keeps its rotation.
    """
    transform = Reorientation(image.affine, image.shape, target)
    if transform.is_identity:
        return image
    return image.with_array(transform.apply(image.array), transform.target_affine)


