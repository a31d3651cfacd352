"""Spine, ribs and the muscles around them (psoas, quadratus lumborum, erector spinae).

Patient frame (see :mod:`ctseg.synth.body`): x right, y anterior, z superior, mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body import Body
from .fields import FourierNoise
from .paint import Canvas, Stroke
from .tissues import T

__all__ = ["Spine", "sample_spine", "spine_strokes", "muscle_strokes", "Rib", "sample_ribs",
           "paint_ribs", "vertical_stroke"]

_SOFT = frozenset({T.VFAT, T.FAT, T.MUSCLE, T.BOWEL_WALL, T.BOWEL_FLUID, T.GAS, T.STOOL, T.LUNG})
_BONE_INTO = _SOFT | {T.KID_CORTEX, T.KID_SINUS, T.LIVER, T.SPLEEN, T.AORTA, T.IVC, T.ARTERY}


@dataclass
class Spine:
    """Lumbar/thoracic spine: elliptic vertebral bodies repeating along z, discs, posterior arch.

    ``y(z)`` is the vertebral-body centre (mm); lordosis moves it forward caudally.
    """

    y0: float
    lordosis: float
    rx: float
    ry: float
    period: float
    disc: float
    phase: float
    canal: float

    def y(self, z: np.ndarray | float) -> np.ndarray | float:
        return self.y0 - self.lordosis * z

    def canal_y(self, z: np.ndarray | float) -> np.ndarray | float:
        return self.y(z) - self.ry - self.canal - 1.5

    def fields(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
        yv = self.y(z)
        grow = 1.0 - 0.0012 * z
        rx, ry = self.rx * grow, self.ry * grow
        u = np.mod(z - self.phase, self.period)
        q = np.sqrt((x / rx) ** 2 + ((y - yv) / ry) ** 2)
        ends = np.minimum(u - self.disc, self.period - u)
        body = np.maximum((q - 1.0) * ry, -ends)
        disc = np.maximum((q - 1.04) * ry, ends)
        cy = yv - ry - self.canal - 1.5
        rc = np.sqrt(x * x + (y - cy) ** 2)
        gap = np.abs(u - 0.5 * self.disc)  # intervertebral foramina: short gaps at disc level
        arch = np.maximum(np.maximum(np.abs(rc - self.canal - 3.0) - 3.0, 2.0 - gap), y - (yv - 0.4 * ry))
        length = 22.0 + 0.3 * self.rx
        sp_gap = np.abs(np.mod(u - 0.5 * self.disc - 4.0, self.period) - 0.5 * self.period)
        taper = np.clip((cy - self.canal - y) / length, 0.0, 1.0)
        spinous = np.maximum(np.maximum(np.abs(x) - 4.0 + 1.5 * taper, y - cy + self.canal),
                             np.maximum(cy - self.canal - length - y, sp_gap - 0.5 * self.period + 5.0))
        mid = self.disc + 0.5 * (self.period - self.disc)
        # transverse processes: from the pedicles laterally and a little backwards, tapering
        reach = np.clip((np.abs(x) - 0.5 * rx) / (0.5 * rx + 16.0), 0.0, 1.0)
        trans = np.maximum(np.maximum(np.abs(y - cy - 3.0 + 6.0 * reach) - 3.5 + 1.8 * reach,
                                      np.abs(x) - rx - 16.0),
                           np.abs(u - mid) - 4.0 + 2.0 * reach)
        post = np.minimum(np.minimum(arch, spinous), trans)
        return {"body": body, "disc": disc, "post": post, "canal": rc - self.canal}


def sample_spine(rng: np.random.Generator, body: Body) -> Spine:
    ry = float(rng.uniform(14.0, 18.0))
    back = body.back() + 0.7 * body.fat
    return Spine(
        y0=back + body.spine_depth,
        lordosis=float(rng.uniform(0.02, 0.12)),
        rx=float(rng.uniform(19.0, 24.0)),
        ry=ry,
        period=float(rng.uniform(33.0, 38.0)),
        disc=float(rng.uniform(7.0, 10.0)),
        phase=float(rng.uniform(0.0, 40.0)),
        canal=float(rng.uniform(7.5, 10.0)),
    )


def spine_strokes(spine: Spine, z_lo: float, z_hi: float) -> list[Stroke]:
    ys = [spine.y(z_lo), spine.y(z_hi)]
    lo = np.array([-60.0, min(ys) - spine.ry - 2 * spine.canal - 50.0, z_lo])
    hi = np.array([60.0, max(ys) + spine.ry + 4.0, z_hi])
    return [Stroke(
        "spine", (lo, hi), (1.25, 1.25, 1.0),
        [(T.DISC, (("disc", 0.0),)), (T.CORTEX, (("body", 0.0),)), (T.BONE, (("body", -1.8),)),
         (T.CORTEX, (("post", 0.0),)), (T.BONE, (("post", -2.0),)), (T.CANAL, (("canal", 0.0),))],
        _BONE_INTO, fields=spine.fields,
    )]


def vertical_stroke(name: str, zs: np.ndarray, cx: np.ndarray, cy: np.ndarray, ax: np.ndarray,
                    ay: np.ndarray, into: frozenset[int], cls: int, noise: FourierNoise | None = None,
                    amp: float = 0.0) -> Stroke:
    """An elliptic cross-section whose centre (cx, cy) and semi-axes (ax, ay) vary along z.

    ``zs`` must be ascending; values are interpolated linearly in z and held beyond the ends. A
    semi-axis below 0.5 mm means the structure is absent at that height.
    """
    zs, cx, cy = np.asarray(zs, float), np.asarray(cx, float), np.asarray(cy, float)
    ax, ay = np.asarray(ax, float), np.asarray(ay, float)

    def fields(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
        a = np.maximum(np.interp(z, zs, ax), 1e-3)
        b = np.maximum(np.interp(z, zs, ay), 1e-3)
        q = np.sqrt(((x - np.interp(z, zs, cx)) / a) ** 2 + ((y - np.interp(z, zs, cy)) / b) ** 2)
        f = (q - 1.0) * np.minimum(a, b) + np.where(np.minimum(a, b) < 0.5, 1e3, 0.0)
        if noise is not None:
            f = f + amp * noise(x, y, z)
        return {"d": f}

    big = float(max(ax.max(), ay.max())) + amp + 3.0
    lo = np.array([cx.min() - big, cy.min() - big, zs.min()])
    hi = np.array([cx.max() + big, cy.max() + big, zs.max()])
    return Stroke(name, (lo, hi), (2.0, 2.0, 4.0), [(cls, (("d", 0.0),))], into, fields=fields)


def muscle_strokes(rng: np.random.Generator, spine: Spine, body: Body, z_lo: float, z_hi: float
                   ) -> list[Stroke]:
    """Erector spinae (filling the space between the back wall and the laminae), psoas and
    quadratus lumborum on both sides."""
    strokes = []
    zs = np.linspace(min(z_lo, -200.0) - 10.0, max(z_hi, 100.0) + 10.0, 24)
    size = float(rng.uniform(0.8, 1.2))
    ys = np.asarray(spine.y(zs))
    cy = np.asarray(spine.canal_y(zs))
    below = np.clip(-zs, 0.0, None)
    noise = FourierNoise(rng, 50.0, 8)
    for side in (1.0, -1.0):
        one = np.ones_like(zs)
        wall = body.cavity_back(side * 26.0, zs)
        ay = np.maximum(0.5 * (cy - wall) + 3.0, 12.0)
        strokes.append(vertical_stroke(
            "erector", zs, side * (spine.rx * 0.3 + 26.0) * one, 0.5 * (cy + wall) - 1.0,
            24.0 * size * one, ay, _SOFT, T.MUSCLE, noise, 2.0))
        r = size * np.clip(0.22 * (35.0 - zs), 0.0, 25.0)
        strokes.append(vertical_stroke(
            "psoas", zs, side * (spine.rx + 0.75 * r + 0.1 * below), ys + 0.1 * below - 2.0,
            r, r * 0.9, _SOFT, T.MUSCLE, noise, 1.5))
        ql = size * np.where((zs < 30.0) & (zs > -150.0), 1.0, 0.0)
        strokes.append(vertical_stroke(
            "quadratus", zs, side * (spine.rx + 40.0 + 0.12 * below), ys - 14.0,
            14.0 * ql, 7.0 * ql, _SOFT, T.MUSCLE, noise, 1.5))
    return strokes


@dataclass
class Rib:
    """One rib as a path on the body wall, parametrised by the in-plane angle.

    The angle ``phi`` is ``atan2(y, |x|)`` in degrees (-90 = posterior midline, 0 = lateral,
    90 = anterior midline); ``z(phi)`` is the rib's centre height. Bone from ``start`` to ``bone_end``,
    costal cartilage on to ``end``.
    """

    side: float  # +1 right, -1 left
    z0: float  # height at the posterior start (mm)
    drop: float  # how far the rib descends by the end of the bone (mm)
    start: float
    bone_end: float
    end: float
    w: float  # radial half thickness (mm)
    h: float  # half height (mm)

    def z(self, phi: np.ndarray) -> np.ndarray:
        span = max(self.bone_end - self.start, 1.0)
        frac = np.clip((phi - self.start) / span, 0.0, 1.0)
        rise = 0.9 * np.clip(phi - self.bone_end, 0.0, None)
        return self.z0 - self.drop * frac**1.3 + rise

    def slope(self, phi: np.ndarray, radius: float = 150.0) -> np.ndarray:
        """dz/ds along the wall (s = arc length, mm)."""
        eps = 0.5
        return (self.z(phi + eps) - self.z(phi - eps)) / (2 * eps) / (np.deg2rad(1.0) * radius)


def sample_ribs(rng: np.random.Generator, spine: Spine) -> list[Rib]:
    """Ribs 12 to 7 on both sides; rib 12 starts near the top of L1 (z about +30..+50 mm)."""
    z12 = float(rng.uniform(25.0, 50.0))
    gap = float(rng.uniform(26.0, 32.0))
    spec = [(20.0, -20.0, -20.0), (55.0, 20.0, 20.0), (95.0, 45.0, 68.0), (105.0, 50.0, 80.0),
            (110.0, 56.0, 86.0), (110.0, 60.0, 89.0)]
    ribs = []
    for side in (1.0, -1.0):
        shift = float(rng.uniform(-4.0, 4.0))
        for n, (drop, bone_end, end) in enumerate(spec):
            ribs.append(Rib(side, z12 + n * gap + shift, drop * rng.uniform(0.85, 1.15),
                            -52.0 + rng.uniform(-4, 4), bone_end, end, float(rng.uniform(3.0, 4.0)),
                            float(rng.uniform(5.0, 7.0))))
    return ribs


_RIB_INTO = np.zeros(256, dtype=bool)
_RIB_INTO[[T.MUSCLE, T.FAT, T.VFAT]] = True


def paint_ribs(canvas: Canvas, ribs: list[Rib]) -> None:
    """Paint ribs (cortex, marrow, costal cartilage) into the wall muscle around "wall_mid"."""
    if "wall_mid" not in canvas.stored or not ribs:
        return
    sl, mid = canvas.stored["wall_mid"]
    wmax = max(r.w for r in ribs)
    zmin = min(float(r.z(np.array([r.bone_end]))[0]) for r in ribs) - 10.0
    zmax = max(r.z0 for r in ribs) + 10.0
    zaxis = canvas.grid.axis(2)[sl[2]]
    kz = np.nonzero((zaxis > zmin) & (zaxis < zmax))[0]
    if kz.size == 0:
        return
    k0, k1 = int(kz[0]), int(kz[-1]) + 1
    ii, jj, kk = np.nonzero(np.abs(mid[:, :, k0:k1]) < wmax)
    kk += k0
    x = canvas.grid.axis(0)[sl[0]][ii]
    y = canvas.grid.axis(1)[sl[1]][jj]
    z = zaxis[kk]
    depth = mid[ii, jj, kk]
    phi = np.rad2deg(np.arctan2(y, np.abs(x)))
    view = canvas.cls[sl]
    for rib in ribs:
        sel = np.nonzero((np.sign(x) == rib.side) & (phi >= rib.start) & (phi <= rib.end))[0]
        if sel.size == 0:
            continue
        p = phi[sel]
        along = (z[sel] - rib.z(p)) / np.sqrt(1.0 + rib.slope(p) ** 2)
        q = (depth[sel] / rib.w) ** 2 + (along / rib.h) ** 2
        hit = q < 1.0
        idx = (ii[sel][hit], jj[sel][hit], kk[sel][hit])
        ok = _RIB_INTO[view[idx]]
        idx = tuple(a[ok] for a in idx)
        qh, ph = q[hit][ok], p[hit][ok]
        cls = np.where(ph > rib.bone_end, T.CARTILAGE, np.where(qh > 0.45, T.CORTEX, T.MARROW))
        view[idx] = cls.astype(np.uint8)
