"""Tumours of the target organ: irregular ellipsoids with their own contrast and an optional core.

A tumour paints only over its organ's classes (label 1 becomes label 2 there); a pancreatic tumour may
also bulge a little beyond the gland, over soft tissue next to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .fields import FourierNoise
from .landmarks import Landmarks
from .paint import Canvas, Stroke
from .shapes import Ellipsoid, rotation
from .tissues import T, organ_classes

__all__ = ["Tumour", "sample_tumours", "TumourPainter"]

_SOFT = frozenset({T.VFAT, T.BOWEL_WALL, T.BOWEL_FLUID, T.STOMACH_WALL, T.STOMACH_CONTENT})


@dataclass
class Tumour:
    """One tumour: shape, contrast to the organ (HU) and an optional darker core."""

    shape: Ellipsoid
    noise: FourierNoise
    roughness: float  # surface perturbation (mm)
    delta: float  # HU relative to the organ's mean
    core: float  # core depth (mm) below the surface; 0 = no core
    core_delta: float  # extra HU in the core (negative = necrotic)
    site: str  # "head" | "body" | "tail" | "liver"

    def field(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
        return {"d": self.shape(x, y, z) + self.roughness * self.noise(x, y, z)}


def _contrast(rng: np.random.Generator, task: str) -> float:
    p = rng.uniform()
    hyper = 0.15 if task == "liver" else 0.07
    if p < hyper:
        return float(rng.uniform(18.0, 45.0))
    if p < hyper + 0.15:
        return -float(rng.uniform(15.0, 22.0))
    return -float(rng.uniform(20.0, 60.0))


def _pancreas_centre(rng: np.random.Generator, lm: Landmarks) -> tuple[np.ndarray, float, str]:
    site = rng.choice(["head", "body", "tail"], p=[0.6, 0.25, 0.15])
    seg = {"head": (0, 2), "body": (2, 4), "tail": (4, 5)}[site]
    t = rng.uniform(seg[0], seg[1])
    i = min(int(t), len(lm.pancreas) - 2)
    f = t - i
    centre = (1 - f) * lm.pancreas[i] + f * lm.pancreas[i + 1]
    r = (1 - f) * lm.pancreas_r[i] + f * lm.pancreas_r[i + 1]
    return centre + rng.normal(0.0, 0.3 * r, size=3), float(r), str(site)


def _liver_centre(rng: np.random.Generator, field: Callable, box: tuple, radius: float
                  ) -> np.ndarray | None:
    pts = rng.uniform(box[0], box[1], size=(4000, 3))
    d = field(pts[:, 0], pts[:, 1], pts[:, 2])
    ok = np.nonzero(d < -0.6 * radius)[0]
    if ok.size == 0:
        ok = np.nonzero(d < 0)[0]
    if ok.size == 0:
        return None
    return pts[ok[int(rng.integers(ok.size))]]


def sample_tumours(rng: np.random.Generator, task: str, lm: Landmarks, liver: tuple[Callable, tuple]
                   ) -> list[Tumour]:
    """0 (about 25 %), 1 (50 %) or 2 (25 %) tumours in the target organ."""
    count = int(rng.choice([0, 1, 2], p=[0.25, 0.5, 0.25]))
    out = []
    for _ in range(count):
        if task == "liver":
            diameter = float(np.exp(rng.uniform(np.log(10.0), np.log(60.0))))
            centre = _liver_centre(rng, liver[0], liver[1], diameter / 2)
            site = "liver"
            if centre is None:
                continue
        else:
            diameter = float(rng.uniform(12.0, 40.0))
            centre, _, site = _pancreas_centre(rng, lm)
        r = diameter / 2.0
        semi = r * rng.uniform(0.75, 1.25, size=3)
        semi *= r / np.cbrt(np.prod(semi))
        shape = Ellipsoid(centre, semi, rotation(*rng.uniform(-90.0, 90.0, size=3)))
        core = r * rng.uniform(0.35, 0.6) if (diameter > 22.0 and rng.uniform() < 0.45) else 0.0
        out.append(Tumour(shape, FourierNoise(rng, max(r, 6.0), 10), r * rng.uniform(0.08, 0.2),
                          _contrast(rng, task), core, -float(rng.uniform(10.0, 35.0)), site))
    return out


class TumourPainter:
    """Paints tumour ``index`` (0 or 1, i.e. classes TUMOUR_A/B) over the organ of ``task``."""

    def __init__(self, tumour: Tumour, index: int, task: str) -> None:
        self.tumour = tumour
        self.cls = (T.TUMOUR_A, T.TUMOUR_B)[index]
        self.core_cls = (T.TUMOUR_A_CORE, T.TUMOUR_B_CORE)[index]
        self.task = task
        rough = tumour.roughness + 2.0
        self.stroke = Stroke("tumour", tumour.shape.box(rough), 1.0, [], frozenset(), fields=tumour.field)

    def __call__(self, canvas: Canvas) -> None:
        sl = canvas.grid.slices(self.stroke.box)
        if sl is None:
            return
        d = canvas.fields_of(self.stroke, sl, ["d"])["d"]
        view = canvas.cls[sl]
        organ = np.zeros(256, dtype=bool)
        organ[list(organ_classes(self.task)) + [T.TUMOUR_A, T.TUMOUR_B, T.TUMOUR_A_CORE,
                                                T.TUMOUR_B_CORE]] = True
        allowed = organ[view]
        if self.task == "pancreas":
            soft = np.zeros(256, dtype=bool)
            soft[list(_SOFT)] = True
            bulge = 0.3 * float(self.tumour.shape.semi.mean())
            allowed |= soft[view] & (canvas.stored_field("pancreas", sl) < bulge)
        mask = allowed & (d < 0)
        view[mask] = self.cls
        if self.tumour.core > 0:
            view[mask & (d < -self.tumour.core)] = self.core_cls
