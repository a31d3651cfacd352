"""The body envelope of the phantom: skin, fat, abdominal wall, table, lung bases and heart.

Patient frame, world RAS+ millimetres: x to the patient's right, y anterior, z superior; the body
axis is x = y = 0 and z = 0 is the level of the pancreatic neck (about L1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fields import FourierNoise
from .paint import Canvas, Stroke, assign
from .shapes import Ellipsoid
from .tissues import T

__all__ = ["Body", "sample_body", "body_strokes", "Thorax", "sample_thorax", "thorax_strokes"]

_OUTSIDE = frozenset({T.AIR})
_CAVITY = frozenset({T.VFAT})


@dataclass
class Body:
    """Elliptical body cross-section (a superellipse, flatter at the back) varying along z.

    Attributes:
        a, b_ant, b_post: half width, anterior and posterior half depth at z = 0 (mm).
        fat, muscle: subcutaneous fat and abdominal-wall muscle thickness scales (mm).
    """

    a: float
    b_ant: float
    b_post: float
    n_ant: float
    n_post: float
    wave: tuple[float, float, float]  # relative amplitude, wavelength (mm), phase (rad)
    fat: float
    muscle: float
    noise: FourierNoise
    table_y: float  # y of the table top (mm); the back is flattened onto it
    spine_depth: float  # vertebral-body centre in front of the back fat (mm)

    def scale(self, z: np.ndarray) -> np.ndarray:
        amp, length, phase = self.wave
        hips = 0.05 * np.clip((-z - 90.0) / 120.0, 0.0, 1.0)
        return 1.0 + amp * np.sin(2.0 * np.pi * z / length + phase) + hips

    def radius(self, c: np.ndarray, s: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Skin radius (mm) along the in-plane direction (c, s) = (cos, sin) at height z."""
        post = s < 0
        b = np.where(post, self.b_post, self.b_ant)
        n = np.where(post, self.n_post, self.n_ant)
        return self.scale(z) / ((np.abs(c) / self.a) ** n + (np.abs(s) / b) ** n) ** (1.0 / n)

    def layers(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
        """Fields (negative inside): "skin" (body surface), "wall" (fat/muscle), "cavity".

        "mid" is the signed depth (mm) relative to the middle of the wall muscle (ribs lie there)."""
        rho = np.sqrt(x * x + y * y) + 1e-6
        c, s = x / rho, y / rho
        c = np.where(rho < 1e-3, 1.0, c)
        depth = self.radius(c, s, z) - rho
        ant, post = np.maximum(s, 0.0), np.maximum(-s, 0.0)
        wobble = 1.0 + 0.18 * self.noise(x, y, z)
        fat = self.fat * (1.0 + 0.35 * ant + 0.3 * c * c - 0.3 * post) * wobble
        linea = 1.0 - 0.75 * np.exp(-((x / 9.0) ** 2)) * (s > 0.5)
        muscle = self.muscle * (1.0 + 0.5 * c * c + 0.3 * post) * linea
        skin = np.maximum(-depth, self.table_y + 0.5 - y)
        return {"skin": skin, "wall": fat - depth, "cavity": fat + muscle - depth,
                "mid": fat + 0.5 * muscle - depth}

    def cavity_back(self, x: float, z: np.ndarray) -> np.ndarray:
        """y (mm) where the abdominal cavity begins behind, at lateral offset ``x``, per height z."""
        z = np.atleast_1d(np.asarray(z, dtype=np.float64))
        ys = np.linspace(-1.3 * self.b_post, 0.0, 261)
        cav = self.layers(np.full((ys.size, 1), float(x)), ys[:, None], z[None, :])["cavity"]
        first = np.argmax(cav < 0, axis=0)
        return ys[first]

    def cavity_half_width(self) -> float:
        return self.a - 1.3 * self.fat - 1.5 * self.muscle

    def cavity_front(self) -> float:
        return self.b_ant - 1.35 * self.fat - self.muscle

    def back(self) -> float:
        """y (mm) of the posterior skin at the midline: the table top."""
        return self.table_y


def sample_body(rng: np.random.Generator) -> Body:
    """Body size from the inside out: the spine sits ``spine_depth`` in front of the back wall and
    the anterior cavity wall 90-125 mm in front of the vertebral body, then fat and muscle."""
    fat = float(rng.uniform(8.0, 32.0))
    muscle = float(rng.uniform(7.0, 12.0))
    a = float(rng.uniform(115.0, 160.0)) + 0.8 * fat
    b_post = a * float(rng.uniform(0.45, 0.55))
    table_y = -b_post * float(rng.uniform(0.9, 0.97))
    spine_depth = float(rng.uniform(68.0, 82.0))
    spine_y = table_y + 0.7 * fat + spine_depth
    b_ant = spine_y + float(rng.uniform(90.0, 125.0)) + 1.35 * fat + muscle
    return Body(
        a=a,
        b_ant=b_ant,
        b_post=b_post,
        n_ant=float(rng.uniform(2.0, 2.4)),
        n_post=float(rng.uniform(2.6, 3.4)),
        wave=(float(rng.uniform(0.0, 0.05)), float(rng.uniform(250, 500)), float(rng.uniform(0, 6.3))),
        fat=fat,
        muscle=muscle,
        noise=FourierNoise(rng, 90.0, 8),
        table_y=table_y,
        spine_depth=spine_depth,
    )


class TablePainter:
    """The patient table under the back: a curved sandwich plate (shells and foam), the same on
    every slice, painted in 2D and repeated along z over air only."""

    def __init__(self, body: Body, rng: np.random.Generator) -> None:
        self.top = body.table_y
        self.thick = float(rng.uniform(10.0, 22.0))
        self.half_width = float(rng.uniform(200.0, 250.0))
        self.bend = float(rng.uniform(1.0 / 4000.0, 1.0 / 2000.0))
        self.shell = float(rng.uniform(1.5, 2.5))

    def __call__(self, canvas: Canvas) -> None:
        x = canvas.grid.axis(0)[:, None]
        y = canvas.grid.axis(1)[None, :]
        below = (self.top + self.bend * x * x) - y  # depth below the table top (mm)
        inside = (below > 0) & (below < self.thick) & (np.abs(x) < self.half_width)
        core = inside & (below > self.shell) & (below < self.thick - self.shell)
        core &= np.abs(x) < self.half_width - self.shell
        plate = np.where(core, T.TABLE_FOAM, np.where(inside, T.TABLE, T.AIR)).astype(np.uint8)
        rows = np.nonzero(plate.any(axis=0))[0]
        if rows.size == 0:
            return
        j0, j1 = int(rows[0]), int(rows[-1]) + 1
        view = canvas.cls[:, j0:j1, :]
        patch = np.broadcast_to(plate[:, j0:j1, None], view.shape)
        assign(view, (view == T.AIR) & (patch != T.AIR), patch)


def body_strokes(body: Body, z_lo: float, z_hi: float, rng: np.random.Generator) -> list:
    """Patient table, then skin / subcutaneous fat / wall muscle / visceral fat."""
    half = max(body.a, body.b_ant) * 1.15 + 40.0
    lo, hi = np.array([-half, -half, z_lo]), np.array([half, half, z_hi])
    layers = Stroke(
        "body", (lo, hi), (4.0, 4.0, 8.0),
        [(T.SKIN, (("skin", 0.0),)), (T.FAT, (("skin", -2.0),)), (T.MUSCLE, (("wall", 0.0),)),
         (T.VFAT, (("cavity", 0.0),))],
        _OUTSIDE, fields=body.layers, store="wall_mid", store_field="mid", nested=True,
    )
    return [TablePainter(body, rng), layers]


@dataclass
class Thorax:
    """Diaphragm domes (paraboloids) with lung above them, and the heart on the central tendon."""

    right: tuple[float, float, float]  # dome peak x, y, z (mm)
    left: tuple[float, float, float]
    curvature: float  # radius of curvature of the domes (mm)
    heart: Ellipsoid
    mediastinum: tuple[float, float, float, float]  # centre x, y and half axes (mm): no lung there

    def diaphragm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height (mm) of the diaphragm surface above (x, y)."""
        out = None
        for px, py, pz in (self.right, self.left):
            dome = pz - ((x - px) ** 2 + 1.6 * (y - py) ** 2) / (2.0 * self.curvature)
            out = dome if out is None else np.maximum(out, dome)
        return out


def sample_thorax(rng: np.random.Generator, body: Body, spine_y: float, dome_z: float,
                  aorta_x: float) -> Thorax:
    w = body.cavity_half_width()
    right = (0.45 * w, spine_y + 45.0, dome_z)
    left = (-0.45 * w, spine_y + 40.0, dome_z - float(rng.uniform(8.0, 25.0)))
    heart = Ellipsoid(
        (-20.0 + rng.uniform(-10, 10), spine_y + 75.0, dome_z + 45.0),
        (rng.uniform(60, 75), rng.uniform(45, 55), 55.0),
    )
    mediastinum = (aorta_x + 8.0, spine_y + 18.0, float(rng.uniform(32.0, 42.0)), 34.0)
    return Thorax(right, left, float(rng.uniform(110.0, 150.0)), heart, mediastinum)


def thorax_strokes(thorax: Thorax, body: Body, z_lo: float, z_hi: float) -> list[Stroke]:
    """Lung bases above the diaphragm (a muscle sheet), and the heart above the central tendon."""
    top = max(thorax.right[2], thorax.left[2])
    if z_hi < top - 140.0:
        return []
    w = body.cavity_half_width() * 1.1 + 10.0
    yb, yf = body.back() + body.fat * 0.5, body.cavity_front() + 10.0
    xs, ys = np.meshgrid(np.linspace(-w, w, 41), np.linspace(yb, yf, 41))
    inside = (xs / w) ** 2 + ((ys - 0.5 * (yb + yf)) / (0.5 * (yf - yb))) ** 2 <= 1.0
    floor = float(thorax.diaphragm(xs[inside], ys[inside]).min()) - 8.0
    box = (np.array([-w, yb, max(z_lo, floor)]), np.array([w, yf, z_hi]))

    def lung(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
        below = thorax.diaphragm(x, y) - z
        mx, my, ax, ay = thorax.mediastinum
        mediastinum = 1.0 - np.sqrt(((x - mx) / ax) ** 2 + ((y - my) / ay) ** 2) + 0.0 * z
        return {"sheet": below - 5.0, "lung": np.maximum(below, mediastinum * 20.0), "fat": below,
                "heart": thorax.heart(x, y, z)}

    return [Stroke("thorax", box, (3.0, 3.0, 2.0),
                   [(T.MUSCLE, (("sheet", 0.0),)), (T.FAT, (("fat", 0.0),)), (T.LUNG, (("lung", 0.0),)),
                    (T.FAT, (("fat", 0.0), ("heart", 6.0))),
                    (T.HEART, (("fat", 0.0), ("heart", 0.0))),
                    (T.BLOOD, (("fat", 0.0), ("heart", -9.0)))],
                   _CAVITY, fields=lung)]
