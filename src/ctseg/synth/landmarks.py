"""Per-case anatomical landmarks that place the organs relative to each other (patient frame, mm)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body import Body
from .shapes import rotation
from .skeleton import Spine

__all__ = ["Landmarks", "sample_landmarks"]


@dataclass
class Landmarks:
    """Where the big pieces sit; organ modules build around these.

    Attributes:
        width: half width (mm) of the abdominal cavity at z = 0.
        front: y (mm) of the anterior cavity wall at z = 0.
        aorta: (x, y at z = 0, radius); the aorta follows the spine's lordosis.
        ivc: (x, y at z = 0, radius).
        pancreas: (6, 3) centreline control points uncinate, head, neck, body, tail, tail tip.
        pancreas_r: (6,) radii at those points (mm).
        dome: height (mm) of the right diaphragm dome.
        scale: overall organ scale of the case.
    """

    body: Body
    spine: Spine
    width: float
    front: float
    aorta: tuple[float, float, float]
    ivc: tuple[float, float, float]
    pancreas: np.ndarray
    pancreas_r: np.ndarray
    dome: float
    scale: float

    def aorta_y(self, z: np.ndarray | float) -> np.ndarray | float:
        return self.aorta[1] + (self.spine.y(z) - self.spine.y0)


def _pancreas(rng: np.random.Generator, spine: Spine, aorta: tuple[float, float, float],
              width: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Control points of the pancreatic centreline: head right of midline, tail up to the spleen."""
    u = rng.uniform
    ax, ay, ar = aorta
    yv = spine.y0
    head = np.array([u(24, 40), ay + u(4, 14), u(-32, -18)])
    unc = head + np.array([-u(6, 12), -u(8, 14), -u(14, 22)])
    neck = np.array([u(4, 14), ay + ar + u(18, 28), head[2] + u(10, 18)])
    body = np.array([ax - u(10, 25), ay + ar + u(14, 26), neck[2] + u(4, 14)])
    tail = np.array([-u(0.4, 0.5) * width, yv + u(12, 30), body[2] + u(8, 20)])
    tip = np.array([-u(0.58, 0.7) * width, yv + u(-8, 10), tail[2] + u(4, 18)])
    ctrl = np.stack([unc, head, neck, body, tail, tip])
    ctrl[1:-1] += rng.normal(0.0, 3.0, size=(4, 3))
    # whole-gland variation: scale about the head and a small rotation
    rot = rotation(*rng.normal(0.0, 4.0, size=3))
    ctrl = head + (ctrl - head) @ rot.T * scale
    radii = np.array([u(9, 12), u(12, 15.5), u(9, 11.5), u(8, 10.5), u(6.5, 9), u(5.5, 7.5)]) * scale
    return ctrl, radii


def sample_landmarks(rng: np.random.Generator, body: Body, spine: Spine) -> Landmarks:
    scale = float(rng.uniform(0.85, 1.15))
    width = body.cavity_half_width()
    front = body.cavity_front()
    r_ao = float(rng.uniform(9.0, 12.5))
    aorta = (-float(rng.uniform(6.0, 16.0)), spine.y0 + spine.ry + r_ao + float(rng.uniform(1.0, 5.0)),
             r_ao)
    ivc = (float(rng.uniform(18.0, 28.0)), spine.y0 + 0.4 * spine.ry + float(rng.uniform(8.0, 14.0)),
           float(rng.uniform(9.0, 12.0)))
    ctrl, radii = _pancreas(rng, spine, aorta, width, scale)
    dome = float(rng.uniform(105.0, 135.0))
    return Landmarks(body, spine, width, front, aorta, ivc, ctrl, radii, dome, scale)
