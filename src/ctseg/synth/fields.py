"""Scalar fields on the phantom grid: coarse evaluation, separable upsampling, smooth noise, tubes.

Every structure of the phantom is an implicit field ``f(x, y, z)`` in world millimetres (negative
inside). Fields are evaluated on a coarse regular grid over the structure's bounding box and
upsampled to the fine voxel grid with separable linear interpolation (three small matrix products),
so that the cost on the fine grid is a few float32 operations per voxel.

Axis order everywhere is the canonical RAS voxel order (i -> +x right, j -> +y anterior,
k -> +z superior); coordinates are in mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Grid", "Box", "FourierNoise", "CoarseAxes", "lattice_noise", "tube_distance", "coarse_axes"]

Box = tuple[np.ndarray, np.ndarray]  # (lo, hi) world mm, each shape (3,)


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
    """Coarse sample positions per axis and how to interpolate them onto the fine box.

    ``weights[a]`` is the dense (fine x coarse) linear-interpolation matrix of axis ``a`` and
    ``taps[a]`` the same as (left index, fraction) per fine sample; None means the coarse samples are
    the fine ones.
    """

    coords: tuple[np.ndarray, np.ndarray, np.ndarray]
    weights: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]
    taps: tuple[tuple[np.ndarray, np.ndarray] | None, ...]

    def mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, y, z = self.coords
        return x[:, None, None], y[None, :, None], z[None, None, :]

    def upsample(self, field: np.ndarray) -> np.ndarray:
        """Interpolate a coarse field (cx, cy, cz) onto the fine box, float32 (fx, fy, fz).

        z by a small matrix product and y by two gathers, both on the coarse-in-x array, then x
        plane by plane (two contiguous planes per output plane): ~3 passes over the fine box.
        """
        out = np.asarray(field, dtype=np.float32)
        wz = self.weights[2]
        if wz is not None:
            out = np.tensordot(out, wz, axes=(2, 1))  # (cx, cy, fz)
        if self.taps[1] is not None:
            index, frac = self.taps[1]
            f = frac[None, :, None]
            out = np.take(out, index, axis=1) * (1.0 - f) + np.take(out, index + 1, axis=1) * f
        out = np.ascontiguousarray(out, dtype=np.float32)
        if self.taps[0] is None:
            return out
        index, frac = self.taps[0]
        fine = np.empty((index.size, *out.shape[1:]), dtype=np.float32)
        for i, (k, f) in enumerate(zip(index.tolist(), frac.tolist())):
            if f <= 1e-7:
                fine[i] = out[k]
            else:
                np.multiply(out[k], np.float32(1.0 - f), out=fine[i])
                fine[i] += np.float32(f) * out[k + 1]
        return fine


def _interp_matrix(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation from a regular ascending ``src`` to ``dst`` (clamped at the ends).

    Returns the dense weights (len(dst), len(src)), and per ``dst`` sample the left index and the
    fraction towards the next one.
    """
    weights = np.zeros((dst.size, src.size), dtype=np.float32)
    if src.size == 1:
        weights[:, 0] = 1.0
        return weights, np.zeros(dst.size, dtype=np.int64), np.zeros(dst.size, dtype=np.float32)
    t = np.clip((dst - src[0]) / (src[1] - src[0]), 0.0, src.size - 1.0)
    i0 = np.minimum(np.floor(t).astype(np.int64), src.size - 2)
    frac = (t - i0).astype(np.float32)
    rows = np.arange(dst.size)
    weights[rows, i0] = 1.0 - frac
    weights[rows, i0 + 1] += frac
    return weights, i0, frac


def coarse_axes(fine: Sequence[np.ndarray], step: float | Sequence[float], *, exact: bool) -> CoarseAxes:
    """Plan coarse sampling of a fine box (one 1D coordinate array per axis).

    With ``exact=True`` an axis whose fine spacing is already at least ``step`` is sampled at the fine
    points themselves (no interpolation). With ``exact=False`` the coarse grid is always the regular
    lattice ``step * n`` (world-anchored), so that fields that need a regular grid (distance
    transforms) do not depend on the fine grid.
    """
    steps = np.broadcast_to(np.asarray(step, dtype=np.float64), (3,))
    coords, weights, taps = [], [], []
    for axis, h in zip(fine, steps):
        fine_h = axis[1] - axis[0] if axis.size > 1 else np.inf
        if exact and fine_h >= h * 0.999:
            coords.append(axis.astype(np.float64))
            weights.append(None)
            taps.append(None)
            continue
        lo = np.floor(axis[0] / h) * h
        hi = np.ceil(axis[-1] / h) * h
        src = lo + h * np.arange(int(round((hi - lo) / h)) + 1)
        w, i0, frac = _interp_matrix(src, axis)
        coords.append(src)
        weights.append(w)
        taps.append((i0, frac))
    return CoarseAxes((coords[0], coords[1], coords[2]), (weights[0], weights[1], weights[2]),
                      tuple(taps))


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
        x, y, z = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(z, dtype=np.float64)
        if _is_mesh(x, y, z):
            return self._mesh(x.ravel(), y.ravel(), z.ravel())
        out = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), dtype=np.float64)
        for (kx, ky, kz), ph in zip(self.k, self.phase):
            out += np.cos(kx * x + ky * y + kz * z + ph)
        return out * self.scale

    def _mesh(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Separable evaluation on a mesh: cos(a+b+c+p) = Re(e^ia e^ib e^ic e^ip), one matrix product."""
        ex = np.exp(1j * np.outer(x, self.k[:, 0])) * np.exp(1j * self.phase)  # (n, W)
        ey = np.exp(1j * np.outer(y, self.k[:, 1]))  # (m, W)
        ez = np.exp(1j * np.outer(z, self.k[:, 2]))  # (l, W)
        xy = (ex[:, None, :] * ey[None, :, :]).astype(np.complex64)
        out = (xy.reshape(-1, xy.shape[-1]) @ ez.T.astype(np.complex64)).real
        return out.reshape(x.size, y.size, z.size) * np.float32(self.scale)


def _is_mesh(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> bool:
    """True for coordinate arrays shaped (n, 1, 1), (1, m, 1), (1, 1, l)."""
    return (x.ndim == y.ndim == z.ndim == 3 and x.shape[1:] == (1, 1) and y.shape[0] == y.shape[2] == 1
            and z.shape[:2] == (1, 1))


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


def tube_distance(plan: CoarseAxes, points: np.ndarray, radius: np.ndarray,
                  extra: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Signed distance (mm, negative inside) to a tube of varying radius, on a regular coarse lattice.

    The centreline samples are rasterised on the lattice ``plan`` (which must be regular on every
    axis, see :func:`coarse_axes` with ``exact=False``); a Euclidean distance transform finds each
    lattice point's nearest sample, and the exact distance to that sample minus its radius is returned.

    Args:
        points: (N, 3) centreline samples in world mm, spaced well below the lattice step.
        radius: (N,) tube radius (mm) at each sample.
        extra: per-sample attributes (N,) carried to each lattice point by its nearest sample.

    Returns:
        (field, extras) on the coarse lattice, float32.
    """
    origin = np.array([c[0] for c in plan.coords])
    step = np.array([c[1] - c[0] if c.size > 1 else 1.0 for c in plan.coords])
    shape = tuple(c.size for c in plan.coords)
    idx = np.rint((points - origin) / step).astype(np.int64)
    keep = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
    if not keep.any():
        big = np.full(shape, 1e4, dtype=np.float32)
        return big, [np.zeros(shape, dtype=np.float32) for _ in extra]
    owner = np.full(shape, -1, dtype=np.int64)
    owner[tuple(idx[keep].T)] = np.nonzero(keep)[0]
    nearest = ndimage.distance_transform_edt(owner < 0, sampling=step, return_distances=False,
                                             return_indices=True)
    sample = owner[tuple(nearest)]
    x, y, z = plan.mesh()
    p = points[sample]
    dist = np.sqrt((x - p[..., 0]) ** 2 + (y - p[..., 1]) ** 2 + (z - p[..., 2]) ** 2)
    field = (dist - np.asarray(radius)[sample]).astype(np.float32)
    return field, [np.asarray(e, dtype=np.float32)[sample] for e in extra]
