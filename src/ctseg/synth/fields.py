"""Scalar fields on the phantom grid: coarse evaluation, separable upsampling, smooth noise, tubes.

Every structure of the phantom is an implicit field ``f(x, y, z)`` in world millimetres (negative
inside). Fields are evaluated on a coarse regular grid over the structure's bounding box and
upsampled to the fine voxel grid with separable linear interpolation (three small matrix products),
so that the cost on the fine grid is a few float32 operations per voxel.

Axis order everywhere is the canonical RAS voxel order (i -> +x right, j -> +y anterior,
k -> +z superior); coordinates are in mm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Grid", "Box", "FourierNoise", "CoarseAxes", "evaluate", "lattice_noise", "tube_field"]

Box = tuple[np.ndarray, np.ndarray]  # (lo, hi) world mm, each shape (3,)
#: A field function receives broadcastable coordinate arrays x (n,1,1), y (1,m,1), z (1,1,l) in mm.
FieldFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Grid:
    """The canonical voxel grid: voxel (i, j, k) has its centre at ``origin + (i, j, k) * spacing``."""

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]

    def axis(self, a: int) -> np.ndarray:
        """World coordinates (mm) of the voxel centres along axis ``a``, float64."""
        return self.origin[a] + self.spacing[a] * np.arange(self.shape[a], dtype=np.float64)

    def slices(self, box: Box) -> tuple[slice, slice, slice] | None:
        """Index slices of the voxels whose centres lie inside ``box``; None when it misses the grid."""
        out = []
        for a in range(3):
            lo = int(np.ceil((box[0][a] - self.origin[a]) / self.spacing[a] - 1e-9))
            hi = int(np.floor((box[1][a] - self.origin[a]) / self.spacing[a] + 1e-9)) + 1
            lo, hi = max(lo, 0), min(hi, self.shape[a])
            if hi <= lo:
                return None
            out.append(slice(lo, hi))
        return out[0], out[1], out[2]

    def box(self) -> Box:
        """The world box spanned by the voxel centres."""
        lo = np.asarray(self.origin, dtype=np.float64)
        return lo, lo + np.asarray(self.spacing) * (np.asarray(self.shape) - 1)


@dataclass(frozen=True)
class CoarseAxes:
    """Coarse sample positions per axis and the (fine x coarse) interpolation matrices (None = same)."""

    coords: tuple[np.ndarray, np.ndarray, np.ndarray]
    weights: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]

    def mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, y, z = self.coords
        return x[:, None, None], y[None, :, None], z[None, None, :]

    def upsample(self, field: np.ndarray) -> np.ndarray:
        """Interpolate a coarse field (cx, cy, cz) onto the fine box, float32 (fx, fy, fz)."""
        out = np.asarray(field, dtype=np.float32)
        wx, wy, wz = self.weights
        if wx is not None:
            out = np.tensordot(wx, out, axes=(1, 0))
        if wy is not None:
            out = np.matmul(wy, out)
        if wz is not None:
            fx, fy, cz = out.shape
            out = (out.reshape(fx * fy, cz) @ wz.T).reshape(fx, fy, wz.shape[0])
        return np.ascontiguousarray(out, dtype=np.float32)


def _interp_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Dense linear-interpolation weights (len(dst), len(src)) for a regular ascending ``src``."""
    weights = np.zeros((dst.size, src.size), dtype=np.float32)
    if src.size == 1:
        weights[:, 0] = 1.0
        return weights
    t = np.clip((dst - src[0]) / (src[1] - src[0]), 0.0, src.size - 1.0)
    i0 = np.minimum(np.floor(t).astype(np.int64), src.size - 2)
    frac = (t - i0).astype(np.float32)
    rows = np.arange(dst.size)
    weights[rows, i0] = 1.0 - frac
    weights[rows, i0 + 1] += frac
    return weights


def coarse_axes(fine: Sequence[np.ndarray], step: float | Sequence[float], *, exact: bool) -> CoarseAxes:
    """Plan coarse sampling of a fine box (one 1D coordinate array per axis).

    With ``exact=True`` an axis whose fine spacing is already at least ``step`` is sampled at the fine
    points themselves (no interpolation). With ``exact=False`` the coarse grid is always the regular
    lattice ``step * n`` (world-anchored), so that fields that need a regular grid (distance
    transforms) do not depend on the fine grid.
    """
    steps = np.broadcast_to(np.asarray(step, dtype=np.float64), (3,))
    coords, weights = [], []
    for axis, h in zip(fine, steps):
        fine_h = axis[1] - axis[0] if axis.size > 1 else np.inf
        if exact and fine_h >= h * 0.999:
            coords.append(axis.astype(np.float64))
            weights.append(None)
            continue
        lo = np.floor(axis[0] / h) * h
        hi = np.ceil(axis[-1] / h) * h
        src = lo + h * np.arange(int(round((hi - lo) / h)) + 1)
        coords.append(src)
        weights.append(_interp_matrix(src, axis))
    return CoarseAxes((coords[0], coords[1], coords[2]), (weights[0], weights[1], weights[2]))


def evaluate(grid: Grid, sl: tuple[slice, slice, slice], fn: FieldFn, step: float | Sequence[float]
             ) -> np.ndarray:
    """Evaluate ``fn`` on the fine voxels ``sl`` of ``grid`` via a coarse grid of ``step`` mm."""
    fine = [grid.axis(a)[sl[a]] for a in range(3)]
    plan = coarse_axes(fine, step, exact=True)
    return plan.upsample(fn(*plan.mesh()))


class FourierNoise:
    """A smooth random field of unit variance: a sum of random plane waves, defined everywhere.

    ``wavelength`` (mm) sets the feature size. The field depends only on the generator state, not on
    any grid, so shapes perturbed by it are the same at every resolution.
    """

    def __init__(self, rng: np.random.Generator, wavelength: float, waves: int = 12) -> None:
        direction = rng.normal(size=(waves, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        lengths = wavelength * rng.uniform(0.7, 1.4, size=waves)
        self.k = direction * (2.0 * np.pi / lengths)[:, None]
        self.phase = rng.uniform(0.0, 2.0 * np.pi, size=waves)
        self.scale = np.sqrt(2.0 / waves)

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        out = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), dtype=np.float64)
        for (kx, ky, kz), ph in zip(self.k, self.phase):
            out += np.cos(kx * x + ky * y + kz * z + ph)
        return out * self.scale


def lattice_noise(rng: np.random.Generator, grid: Grid, sl: tuple[slice, slice, slice], cell: float
                  ) -> np.ndarray:
    """Smooth unit-variance noise on the fine voxels ``sl`` with features of about ``cell`` mm.

    Gaussian-smoothed white noise on a lattice of ``cell / 2`` mm, linearly upsampled (float32).
    """
    fine = [grid.axis(a)[sl[a]] for a in range(3)]
    plan = coarse_axes(fine, cell / 2.0, exact=True)
    shape = tuple(c.size for c in plan.coords)
    sigma = [max(cell / 2.0 / max(c[1] - c[0], 1e-6), 0.5) if c.size > 1 else 0 for c in plan.coords]
    raw = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap")
    raw /= max(float(raw.std()), 1e-6)
    return plan.upsample(raw)


def tube_field(grid: Grid, sl: tuple[slice, slice, slice], points: np.ndarray, radius: np.ndarray,
               step: float, extra: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Signed distance (mm, negative inside) to a tube of varying radius around a centreline.

    Args:
        points: (N, 3) centreline samples in world mm, spaced well below ``step``.
        radius: (N,) tube radius (mm) at each sample.
        step: the coarse lattice (mm) on which the distance transform runs.
        extra: per-sample attributes (N,) carried to the voxels by their nearest sample; returned
            upsampled (linearly) beside the field.

    Returns:
        (field, extras) on the fine voxels ``sl``, float32.
    """
    fine = [grid.axis(a)[sl[a]] for a in range(3)]
    plan = coarse_axes(fine, step, exact=False)
    origin = np.array([c[0] for c in plan.coords])
    shape = tuple(c.size for c in plan.coords)
    idx = np.rint((points - origin) / step).astype(np.int64)
    keep = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
    owner = np.full(shape, -1, dtype=np.int64)
    owner[tuple(idx[keep].T)] = np.nonzero(keep)[0]
    if not keep.any():
        big = np.full(tuple(f.size for f in fine), 1e4, dtype=np.float32)
        return big, [np.zeros_like(big) for _ in extra]
    nearest = ndimage.distance_transform_edt(owner < 0, return_distances=False, return_indices=True)
    sample = owner[tuple(nearest)]
    x, y, z = plan.mesh()
    p = points[sample]
    dist = np.sqrt((x - p[..., 0]) ** 2 + (y - p[..., 1]) ** 2 + (z - p[..., 2]) ** 2)
    field = plan.upsample(dist - radius[sample])
    return field, [plan.upsample(np.asarray(e)[sample]) for e in extra]
