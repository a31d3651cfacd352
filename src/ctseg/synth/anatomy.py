"""One case's anatomy: every random choice, made once, as a list of strokes in painting order.

``sample_anatomy(rng, task)`` does not know the voxel grid: the same seed gives the same anatomy in
millimetres at any matrix size or slice spacing. Painting order matters (later strokes paint over the
classes they are allowed to): body, thorax, gut, solid organs, pancreas, kidneys, vessels, muscles,
bones, tumours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .body import body_strokes, sample_body, sample_thorax, thorax_strokes
from .gut import bowel_strokes, colon_strokes, duodenum_ctrl, duodenum_strokes, stomach_strokes
from .landmarks import Landmarks, sample_landmarks
from .organs import (
    gallbladder_strokes,
    kidney_strokes,
    liver_strokes,
    pancreas_strokes,
    spleen_strokes,
)
from .paint import Canvas, Stroke
from .skeleton import muscle_strokes, paint_ribs, sample_ribs, sample_spine, spine_strokes
from .tumours import Tumour, TumourPainter, sample_tumours
from .vessels import vessel_strokes

__all__ = ["Anatomy", "sample_anatomy"]

Item = Stroke | Callable[[Canvas], None]


@dataclass
class Anatomy:
    """A case in the patient frame (mm): what to paint, and the scanned region.

    Attributes:
        items: strokes and painter callables in painting order.
        z_range: (z_lo, z_hi) cranio-caudal coverage in mm; contains the target organ with margin.
        fov: in-plane field of view (mm, square).
        centre: (x, y) of the field-of-view centre (mm).
        target_z: (z0, z1) extent of the target organ (mm).
        tumours: the tumours of the target organ.
    """

    items: list[Item]
    z_range: tuple[float, float]
    fov: float
    centre: tuple[float, float]
    target_z: tuple[float, float]
    tumours: list[Tumour]
    landmarks: Landmarks


def _extent_of_field(field: Callable, box: tuple, step: float = 4.0) -> tuple[float, float]:
    axes = [np.arange(box[0][a], box[1][a] + step, step) for a in range(3)]
    d = field(axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :])
    zs = axes[2][np.nonzero((d < 0).any(axis=(0, 1)))[0]]
    return float(zs.min() - step), float(zs.max() + step)


def _coverage(rng: np.random.Generator, target: tuple[float, float]) -> tuple[float, float]:
    extent = target[1] - target[0]
    length = max(float(rng.uniform(150.0, 260.0)), extent + 24.0)
    below = float(rng.uniform(12.0, length - extent - 12.0))
    return target[0] - below, target[0] - below + length


def _fov(rng: np.random.Generator, lm: Landmarks) -> tuple[float, tuple[float, float]]:
    """Square field of view around the body (300-460 mm) and its centre, table towards the bottom."""
    body = lm.body
    mid_y = 0.5 * (body.b_ant * 1.05 + body.table_y)
    half = max(body.a * 1.12, 0.5 * (body.b_ant * 1.05 - body.table_y) + 30.0) + 12.0
    fov = float(np.clip(2.0 * half * rng.uniform(1.0, 1.18), 300.0, 460.0))
    slack = max(fov / 2.0 - half, 0.0)
    centre = (float(rng.uniform(-1, 1) * min(slack, 15.0)),
              mid_y - 15.0 + float(rng.uniform(-1, 1) * min(slack, 20.0)))
    return fov, centre


def sample_anatomy(rng: np.random.Generator, task: str) -> Anatomy:
    """Draw one case's anatomy for ``task`` ("pancreas" or "liver")."""
    body = sample_body(rng)
    spine = sample_spine(rng, body)
    lm = sample_landmarks(rng, body, spine)
    thorax = sample_thorax(rng, body, spine.y0, lm.dome, lm.aorta[0])
    ribs = sample_ribs(rng, spine)
    liver, liver_shape = liver_strokes(rng, lm)
    tumours = sample_tumours(rng, task, lm, liver_shape)
    head_tumour = task == "pancreas" and any(t.site == "head" for t in tumours)
    duct = rng.uniform(2.0, 3.5) if head_tumour and rng.uniform() < 0.6 else rng.uniform(0.8, 1.6)
    pancreas = pancreas_strokes(rng, lm, float(rng.uniform(0.0, 0.22)), float(duct))
    if task == "liver":
        target = _extent_of_field(liver_shape[0], liver_shape[1])
    else:
        target = (float(pancreas.box[0][2]), float(pancreas.box[1][2]))
    z_lo, z_hi = _coverage(rng, target)
    fov, centre = _fov(rng, lm)

    r_duo = float(rng.uniform(10.0, 14.0))
    duo = duodenum_ctrl(rng, lm, r_duo)
    items: list[Item] = []
    items += body_strokes(body, z_lo - 5.0, z_hi + 5.0, rng)
    items += thorax_strokes(thorax, body, z_lo - 5.0, z_hi + 5.0)
    items += colon_strokes(rng, lm, z_lo, float(liver[0].box[0][2]) + 30.0)
    items += bowel_strokes(rng, lm, z_lo, duo[-1])
    items += stomach_strokes(rng, lm, thorax.left[2])
    items += duodenum_strokes(rng, duo, r_duo)
    items += liver
    items += gallbladder_strokes(rng, lm)
    items += spleen_strokes(rng, lm)
    items.append(pancreas)
    items += kidney_strokes(rng, lm)
    items += vessel_strokes(rng, lm, duo, z_lo, z_hi)
    items += muscle_strokes(rng, spine, body, z_lo, z_hi)
    items += spine_strokes(spine, z_lo - 5.0, z_hi + 5.0)
    items.append(lambda canvas: paint_ribs(canvas, ribs))
    items += [TumourPainter(t, i, task) for i, t in enumerate(tumours)]
    return Anatomy(items, (z_lo, z_hi), fov, centre, target, tumours, lm)
