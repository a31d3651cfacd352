"""Hollow organs: stomach, duodenal C-loop, small-bowel loops and colon (tubes with wall and contents).

Contents are fluid with gas in the non-dependent (anterior, +y) part for a supine patient, collapsed
loops are solid wall, and the colon holds mottled stool with gas bubbles.
"""

from __future__ import annotations

import numpy as np

from .fields import FourierNoise
from .landmarks import Landmarks
from .paint import Stroke, tube_stroke
from .shapes import random_walk
from .tissues import T

__all__ = ["stomach_strokes", "duodenum_ctrl", "duodenum_strokes", "bowel_strokes", "colon_strokes"]

_BOWEL = frozenset({T.VFAT, T.BOWEL_WALL, T.BOWEL_FLUID, T.GAS, T.STOOL})


def _hollow(name: str, ctrl: np.ndarray, radius: np.ndarray, wall: float, gas_level: float,
            into: frozenset[int], wall_cls: int = T.BOWEL_WALL, fill_cls: int = T.BOWEL_FLUID,
            step: float = 2.0, bubbles: FourierNoise | None = None, bubble_thr: float = 1.2) -> Stroke:
    """A tube with a wall, fluid (or stool) contents, and gas above the plane y = gas_level."""
    rules = [(wall_cls, (("d", 0.0),)), (fill_cls, (("d", -wall),)),
             (T.GAS, (("d", -wall), ("g", 0.0)))]
    stroke = tube_stroke(name, ctrl, radius, rules, into, step=step)

    def post(x: np.ndarray, y: np.ndarray, z: np.ndarray, f: dict) -> dict[str, np.ndarray]:
        g = gas_level - y + 0.0 * f["d"]
        if bubbles is not None:
            g = np.minimum(g, 10.0 * (bubble_thr - bubbles(x, y, z)) / 3.0)
        return {"g": g}

    stroke.post = post
    return stroke


def stomach_strokes(rng: np.random.Generator, lm: Landmarks, left_dome: float) -> list[Stroke]:
    u = rng.uniform
    w, f, yv = lm.width, lm.front, lm.spine.y0
    k = u(0.85, 1.3)
    rad = np.array([38.0, 34.0, 28.0, 18.0, 11.0]) * k
    body_y = min(lm.pancreas[3, 1] + lm.pancreas_r[3] + rad[1] * 0.8 + 5.0, f - rad[1] + 4.0)
    neck = lm.pancreas[2]
    ctrl = np.array([
        [-0.5 * w + u(-10, 10), yv + 30.0 + u(-5, 10), left_dome - rad[0] + 2.0],
        [-0.55 * w + u(-10, 10), body_y, left_dome - 55.0 - u(0, 20)],
        [-0.3 * w + u(-10, 10), min(body_y + 5.0, f - rad[2]), neck[2] + u(10, 25)],
        [0.02 * w + u(-10, 10), f - rad[3] - u(3, 12), neck[2] + u(5, 20)],
        [0.2 * w + u(-5, 5), f - u(35, 50), neck[2] + u(5, 15)],
    ])
    top = float((ctrl[:, 1] + rad).max())
    level = top - u(0.0, 0.6) * 2.0 * rad[2]
    return [_hollow("stomach", ctrl, rad, u(3.0, 5.5), level, _BOWEL, T.STOMACH_WALL,
                    T.STOMACH_CONTENT)]


def duodenum_ctrl(rng: np.random.Generator, lm: Landmarks, radius: float) -> np.ndarray:
    """The C-loop around the pancreatic head: D1 from the pylorus, D2 down, D3 across, D4 up."""
    u = rng.uniform
    unc, head, neck, body = lm.pancreas[:4]
    rh = lm.pancreas_r[1]
    ax, ar = lm.aorta[0], lm.aorta[2]
    ay = lm.aorta_y(unc[2])
    low = unc[2] - lm.pancreas_r[0] - radius * 0.7
    return np.array([
        [0.2 * lm.width, lm.front - u(35, 50), neck[2] + u(5, 15)],
        [head[0] + rh + radius * 0.6, head[1] + u(12, 22), head[2] + u(20, 30)],
        [head[0] + rh + radius - 1.0, head[1] + u(-2, 6), head[2] + u(2, 10)],
        [head[0] + rh + radius - 3.0, head[1] - u(0, 8), low + u(8, 14)],
        [head[0] - u(0, 10), ay + ar + radius + u(0, 4), low],
        [ax + u(0, 8), ay + ar + radius + u(2, 6), low - u(0, 6)],
        [ax - ar - radius - u(1, 4), ay + u(0, 10), low + u(15, 25)],
        [ax - 30.0 - u(0, 10), ay + u(15, 30), body[2] - u(5, 20)],
    ])


def duodenum_strokes(rng: np.random.Generator, ctrl: np.ndarray, radius: float) -> list[Stroke]:
    rad = np.full(len(ctrl), radius)
    rad[0] = radius * 0.8
    level = float(ctrl[:, 1].max()) + radius - rng.uniform(0.0, 1.6) * radius
    return [_hollow("duodenum", ctrl, rad, rng.uniform(2.0, 3.5), level, _BOWEL)]


def bowel_strokes(rng: np.random.Generator, lm: Landmarks, z_lo: float, duo_end: np.ndarray
                  ) -> list[Stroke]:
    """Small-bowel loops below the mesocolon: jejunum (left, higher), ileum (right, lower)."""
    w, f, yv = lm.width, lm.front, lm.spine.y0
    top_left = lm.pancreas[4, 2] + 15.0
    top_right = lm.pancreas[1, 2] - 20.0
    strokes = []
    n = int(rng.integers(10, 17))
    for i in range(n):
        jejunum = i < n // 2
        top = top_left if jejunum else top_right
        lo = np.array([-w + 22.0, yv + 25.0, max(z_lo - 30.0, top - 220.0)])
        hi = np.array([w - 22.0, f - 14.0, top])
        if jejunum:
            hi[0] = 25.0
        else:
            lo[0] = -25.0
        if lo[2] >= hi[2] - 10.0:
            continue
        hi = np.maximum(hi, lo + 10.0)
        start = duo_end if i == 0 else rng.uniform(lo, hi)
        ctrl = random_walk(rng, start, rng.normal(size=3), rng.uniform(100, 220), lo, hi, step=9.0,
                           turn=0.6)
        if len(ctrl) < 3:
            continue
        kind = rng.uniform()
        r = rng.uniform(9.0, 13.0) if kind > 0.25 else rng.uniform(5.0, 7.5)
        gas = kind > 0.8
        level = float(ctrl[:, 1].max()) + r - (rng.uniform(0.3, 1.2) * r if gas else -50.0)
        strokes.append(_hollow(f"bowel{i}", ctrl, np.full(len(ctrl), r), rng.uniform(1.8, 3.0),
                               level, _BOWEL))
    return strokes


def colon_strokes(rng: np.random.Generator, lm: Landmarks, z_lo: float, liver_tip: float
                  ) -> list[Stroke]:
    """Ascending, transverse and descending colon (three strokes to keep boxes small)."""
    u = rng.uniform
    w, f, yv = lm.width, lm.front, lm.spine.y0
    bottom = min(z_lo, -150.0) - 30.0
    sag = u(-90.0, -40.0)
    flex_r = np.array([w - u(35, 50), yv + u(35, 50), liver_tip + u(0, 15)])
    flex_l = np.array([-(w - u(25, 35)), yv + u(20, 40), u(15, 50)])
    parts = [
        [[w - u(25, 35), yv + u(10, 30), bottom], [w - u(25, 35), yv + u(15, 30), 0.5 * (bottom + flex_r[2])],
         flex_r],
        [flex_r, [0.3 * w, f - u(25, 35), sag], [-0.3 * w, f - u(25, 35), sag + u(-10, 20)], flex_l],
        [flex_l, [-(w - u(20, 30)), yv + u(0, 20), 0.5 * (flex_l[2] + bottom)],
         [-(w - u(20, 30)), yv + u(0, 20), bottom]],
    ]
    radii = [u(20, 28), u(18, 26), u(14, 20)]
    strokes = []
    for n, (ctrl, r) in enumerate(zip(parts, radii)):
        ctrl = np.asarray(ctrl, dtype=float)
        ctrl[1:-1] += rng.normal(0.0, 6.0, size=(len(ctrl) - 2, 3))
        bubbles = FourierNoise(rng, 9.0, 12)
        level = float(ctrl[:, 1].max()) + r - u(0.2, 0.9) * r
        strokes.append(_hollow(f"colon{n}", ctrl, np.full(len(ctrl), r), u(1.5, 2.5), level, _BOWEL,
                               fill_cls=T.STOOL, step=2.5, bubbles=bubbles,
                               bubble_thr=u(0.9, 1.5)))
    return strokes
