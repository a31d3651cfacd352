"""Shape primitives in world millimetres: ellipsoids, smooth unions, centrelines, random walks.

Field functions follow one convention: negative inside, roughly millimetres near the surface, and
they accept broadcastable coordinate arrays (see :mod:`ctseg.synth.fields`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator

__all__ = [
    "rotation",
    "Ellipsoid",
    "smooth_min",
    "smooth_max",
    "spline_curve",
    "random_walk",
    "curve_box",
]


def rotation(rx_deg: float = 0.0, ry_deg: float = 0.0, rz_deg: float = 0.0) -> np.ndarray:
    """3x3 rotation matrix ``Rz @ Ry @ Rx`` from angles in degrees about the x, y, z axes."""
    ax, ay, az = np.deg2rad([rx_deg, ry_deg, rz_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


class Ellipsoid:
    """An ellipsoid with centre (mm), semi-axes (mm) and rotation (local -> world)."""

    def __init__(self, centre: Sequence[float], semi: Sequence[float], rot: np.ndarray | None = None
                 ) -> None:
        self.centre = np.asarray(centre, dtype=np.float64)
        self.semi = np.asarray(semi, dtype=np.float64)
        self.rot = np.eye(3) if rot is None else np.asarray(rot, dtype=np.float64)

    def local(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
        """Coordinates in the ellipsoid frame, divided by the semi-axes."""
        d = (x - self.centre[0], y - self.centre[1], z - self.centre[2])
        r = self.rot
        return tuple((d[0] * r[0, i] + d[1] * r[1, i] + d[2] * r[2, i]) / self.semi[i] for i in range(3))

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm): (normalised radius - 1) * smallest semi-axis."""
        u, v, w = self.local(x, y, z)
        return (np.sqrt(u * u + v * v + w * w) - 1.0) * float(self.semi.min())

    def box(self, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """World bounding box (lo, hi) of the ellipsoid grown by ``margin`` mm."""
        half = np.sqrt(((self.rot * self.semi[None, :]) ** 2).sum(axis=1)) + margin
        return self.centre - half, self.centre + half


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth union of two fields (polynomial smooth minimum, blend width ``k`` mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def smooth_max(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth intersection of two fields."""
    return -smooth_min(-a, -b, k)


def spline_curve(ctrl: np.ndarray, radius: Sequence[float] | np.ndarray, step: float = 0.5
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A smooth centreline through control points, sampled every ``step`` mm.

    Args:
        ctrl: (n, 3) control points (mm), n >= 2.
        radius: (n,) radius at each control point, interpolated monotonically (PCHIP) along the curve.

    Returns:
        points (m, 3) and radius (m,).
    """
    ctrl = np.asarray(ctrl, dtype=np.float64)
    rad = np.asarray(radius, dtype=np.float64)
    seg = np.linalg.norm(np.diff(ctrl, axis=0), axis=1)
    t = np.concatenate([[0.0], np.cumsum(np.maximum(seg, 1e-3))])
    dense = np.linspace(0.0, t[-1], max(int(t[-1] / (step * 0.5)), 2) * 2 + 1)
    if len(ctrl) == 2:
        pts = ctrl[0] + (ctrl[1] - ctrl[0]) * (dense / t[-1])[:, None]
    else:
        pts = CubicSpline(t, ctrl, bc_type="natural")(dense)
    # resample at uniform arc length
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    s = np.linspace(0.0, arc[-1], max(int(arc[-1] / step), 1) + 1)
    pts = np.stack([np.interp(s, arc, pts[:, a]) for a in range(3)], axis=1)
    t_of_s = np.interp(s, arc, dense)
    r = PchipInterpolator(t, rad)(t_of_s) if len(ctrl) > 2 else np.interp(t_of_s, t, rad)
    return pts, np.asarray(r, dtype=np.float64)


def random_walk(rng: np.random.Generator, start: np.ndarray, direction: np.ndarray, length: float,
                lo: np.ndarray, hi: np.ndarray, *, step: float = 6.0, turn: float = 0.45
                ) -> np.ndarray:
    """Control points of a smooth random path that stays inside the box (lo, hi).

    The heading changes by a random vector of size ``turn`` per step and reflects off the box faces.
    Returns (n, 3) points spaced ``step`` mm apart.
    """
    pos = np.asarray(start, dtype=np.float64).copy()
    head = np.asarray(direction, dtype=np.float64) / max(float(np.linalg.norm(direction)), 1e-9)
    pts = [pos.copy()]
    for _ in range(max(int(length / step), 1)):
        head = head + turn * rng.normal(size=3)
        head /= max(float(np.linalg.norm(head)), 1e-9)
        nxt = pos + step * head
        out_lo, out_hi = nxt < lo, nxt > hi
        if out_lo.any() or out_hi.any():
            head = np.where(out_lo, np.abs(head), np.where(out_hi, -np.abs(head), head))
            nxt = np.clip(pos + step * head, lo, hi)
        pos = nxt
        pts.append(pos.copy())
    return np.asarray(pts)


def curve_box(points: np.ndarray, radius: np.ndarray, margin: float = 2.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (lo, hi) of a tube around ``points`` with per-point ``radius``."""
    r = np.asarray(radius)[:, None] + margin
    return (points - r).min(axis=0), (points + r).max(axis=0)
