"""Contrast-filled vessels: aorta with iliac, coeliac and mesenteric branches; IVC; portal system.

Patient frame (see :mod:`ctseg.synth.body`), mm. All vessels are tubes around smooth centrelines.
"""

from __future__ import annotations

import numpy as np

from .landmarks import Landmarks
from .paint import Stroke, tube_stroke
from .tissues import T

__all__ = ["vessel_strokes"]

_INTO = frozenset({T.VFAT, T.BOWEL_WALL, T.BOWEL_FLUID, T.GAS, T.STOOL, T.STOMACH_WALL,
                   T.STOMACH_CONTENT, T.LIVER, T.PANCREAS, T.PANC_FAT, T.PANC_DUCT, T.KID_SINUS,
                   T.KID_PELVIS, T.SPLEEN, T.MUSCLE, T.LIVER_PORTAL, T.HEP_VEIN})


def _tube(name: str, ctrl: list | np.ndarray, radius: list | np.ndarray, cls: int) -> Stroke:
    return tube_stroke(name, np.asarray(ctrl, dtype=float), np.asarray(radius, dtype=float),
                       [(cls, (("d", 0.0),))], _INTO, step=1.5)


def _aorta(rng: np.random.Generator, lm: Landmarks, z_lo: float, z_hi: float) -> list[Stroke]:
    u = rng.uniform
    ax, _, ar = lm.aorta
    z_bif = u(-150.0, -105.0)
    zs = np.linspace(max(z_hi, z_bif) + 20.0, z_bif, 8)
    drift = rng.normal(0.0, 2.0, size=zs.size).cumsum() * 0.5
    ctrl = np.stack([ax + drift - 0.03 * (zs - zs[0]), [lm.aorta_y(z) for z in zs], zs], axis=1)
    rad = ar * (1.0 - 0.0012 * (zs[0] - zs))
    strokes = [_tube("aorta", ctrl, rad, T.AORTA)]
    if z_lo < z_bif:
        start = ctrl[-1]
        for side in (1.0, -1.0):
            legs = [start + [side * 4.0, -2.0, -8.0], start + [side * 25.0, -8.0, -50.0],
                    start + [side * 45.0, -15.0, -100.0]]
            strokes.append(_tube("iliac", [start, *legs], [ar * 0.75, ar * 0.6, ar * 0.55, ar * 0.5],
                                 T.AORTA))
    return strokes


def _branches(rng: np.random.Generator, lm: Landmarks, duo: np.ndarray) -> tuple[list[Stroke], np.ndarray]:
    """Coeliac trunk with hepatic and splenic arteries, and the SMA running anterior to D3."""
    u = rng.uniform
    ax, _, ar = lm.aorta
    neck, body, tail, tip = lm.pancreas[2:]
    z_sma = neck[2] + u(3.0, 12.0)
    y0 = lm.aorta_y(z_sma) + ar
    d3 = duo[5]
    sma = np.array([
        [ax + 1.0, y0 - 3.0, z_sma],
        [ax + 2.0, y0 + u(8, 12), z_sma - 10.0],
        [ax + u(2, 6), max(y0 + u(12, 18), d3[1] + 18.0), d3[2]],
        [ax + u(5, 15), y0 + u(25, 40), d3[2] - u(40, 70)],
    ])
    z_c = z_sma + u(12.0, 22.0)
    yc = lm.aorta_y(z_c) + ar
    trunk = np.array([[ax, yc - 3.0, z_c], [ax + 1.0, yc + u(12, 18), z_c + u(0, 6)]])
    splenic = [trunk[-1], body + [0.0, u(-2, 6), lm.pancreas_r[3] + u(3, 8)],
               tail + [0.0, 0.0, lm.pancreas_r[4] + u(3, 8)], tip + [-u(10, 20), u(-5, 5), u(5, 15)]]
    hepatic = [trunk[-1], trunk[-1] + [u(25, 35), u(-2, 6), u(5, 12)],
               [0.25 * lm.width, lm.spine.y0 + 45.0, lm.dome - 85.0]]
    r = u(2.5, 3.5)
    strokes = [_tube("sma", sma, [r + 0.5, r, r, r * 0.8], T.ARTERY),
               _tube("coeliac", trunk, [r + 1.0, r + 0.5], T.ARTERY),
               _tube("splenic_artery", splenic, [r, r * 0.9, r * 0.8, r * 0.7], T.ARTERY),
               _tube("hepatic_artery", hepatic, [r * 0.9, r * 0.8, r * 0.7], T.ARTERY)]
    return strokes, sma


def _veins(rng: np.random.Generator, lm: Landmarks, sma: np.ndarray, z_lo: float) -> list[Stroke]:
    """Portal vein, SMV (right of the SMA), splenic vein behind the pancreas, IVC and renal veins."""
    u = rng.uniform
    neck, body, tail, tip = lm.pancreas[2:]
    rn = lm.pancreas_r[2]
    conf = neck + [u(0, 6), -(rn + u(4, 7)), u(-4, 4)]
    rv = u(5.0, 6.5)
    smv = [conf, sma[2] + [u(9, 13), u(0, 4), 0.0], sma[3] + [u(10, 16), u(0, 6), 0.0],
           sma[3] + [u(12, 20), u(0, 8), -40.0]]
    portal = [conf, conf + [u(15, 25), u(0, 6), u(20, 30)], [0.25 * lm.width, lm.spine.y0 + 45.0,
                                                            lm.dome - u(80, 90)]]
    back = [p + [0.0, -(r + rv - 2.0), u(-2, 2)] for p, r in zip((body, tail, tip), lm.pancreas_r[3:])]
    splenic = [conf, *back, tip + [-u(15, 25), -u(5, 12), u(5, 15)]]
    strokes = [_tube("smv", smv, [rv, rv * 0.9, rv * 0.8, rv * 0.7], T.PORTAL),
               _tube("portal", portal, [rv * 1.25, rv * 1.2, rv * 1.1], T.PORTAL),
               _tube("splenic_vein", splenic, [rv * 0.9, rv * 0.8, rv * 0.75, rv * 0.7, rv * 0.7],
                     T.PORTAL)]
    ix, iy, ir = lm.ivc
    zs = np.array([min(z_lo, -160.0) - 20.0, -80.0, 0.0, 40.0, lm.dome - 40.0, lm.dome + 30.0])
    ys = np.array([lm.spine.y(z) + (iy - lm.spine.y0) for z in zs])
    ys[3:] += [8.0, 20.0, 30.0]
    ivc = np.stack([np.full(zs.size, ix) + [0, 0, 0, -2, -6, -10], ys, zs], axis=1)
    strokes.append(_tube("ivc", ivc[::-1], np.full(zs.size, ir), T.IVC))
    z_rv = sma[2, 2] - u(0.0, 8.0)
    ay = lm.aorta_y(z_rv)
    ax, _, ar = lm.aorta
    left_rv = [[-(lm.spine.rx + 40.0), lm.spine.y(z_rv) + 8.0, z_rv - 10.0],
               [ax - ar - 6.0, ay + ar * 0.3, z_rv], [ax, ay + ar + 3.5, z_rv], [ix, iy + 2.0, z_rv + 2.0]]
    right_rv = [[lm.spine.rx + 38.0, lm.spine.y(z_rv) + 8.0, z_rv - 20.0], [ix, iy, z_rv - 10.0]]
    strokes.append(_tube("left_renal_vein", left_rv, [5.0, 4.5, 3.5, 5.0], T.IVC))
    strokes.append(_tube("right_renal_vein", right_rv, [5.0, 5.0], T.IVC))
    return strokes


def _mesenteric(rng: np.random.Generator, sma: np.ndarray) -> list[Stroke]:
    """Small arteries and veins fanning out from the SMA into the mesenteric fat."""
    strokes = []
    for n in range(int(rng.integers(5, 10))):
        t = rng.uniform(0.0, 1.0)
        start = sma[2] + t * (sma[3] - sma[2]) + [rng.uniform(-3, 12), 0.0, 0.0]
        direction = np.array([rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0), rng.uniform(0.2, 1.0),
                              -rng.uniform(0.0, 0.8)])
        direction /= np.linalg.norm(direction)
        length = rng.uniform(35.0, 70.0)
        bend = rng.normal(0.0, 8.0, size=3)
        ctrl = [start, start + 0.5 * length * direction + bend, start + length * direction]
        r = rng.uniform(1.2, 2.4)
        strokes.append(tube_stroke(f"mesenteric{n}", np.asarray(ctrl), [r, r * 0.8, r * 0.6],
                                   [(T.ARTERY if n % 2 else T.PORTAL, (("d", 0.0),))],
                                   frozenset({T.VFAT}), step=1.5))
    return strokes


def vessel_strokes(rng: np.random.Generator, lm: Landmarks, duo: np.ndarray, z_lo: float,
                   z_hi: float) -> list[Stroke]:
    strokes = _aorta(rng, lm, z_lo, z_hi)
    arteries, sma = _branches(rng, lm, duo)
    return strokes + arteries + _veins(rng, lm, sma, z_lo) + _mesenteric(rng, sma)
