"""Solid organs: liver (with its vessels), gallbladder, spleen, kidneys, pancreas (with its duct).

Patient frame (see :mod:`ctseg.synth.body`), mm. Each ``*_strokes`` function draws its random
parameters from ``rng`` and returns strokes in painting order.
"""

from __future__ import annotations

import numpy as np

from .fields import FourierNoise
from .landmarks import Landmarks
from .paint import Stroke, tube_stroke
from .shapes import Ellipsoid, rotation, smooth_max, smooth_min
from .tissues import T

__all__ = ["VISCERA", "liver_strokes", "spleen_strokes", "kidney_strokes", "pancreas_strokes",
           "gallbladder_strokes"]

#: soft contents of the abdominal cavity that solid organs may push aside
VISCERA = frozenset({T.VFAT, T.BOWEL_WALL, T.BOWEL_FLUID, T.GAS, T.STOOL, T.STOMACH_WALL,
                     T.STOMACH_CONTENT})


def _liver_field(lm: Landmarks, rng: np.random.Generator):
    """The liver as a smooth union of a right and a left lobe, kept off the spine and aorta."""
    u = rng.uniform
    w, f, yv, s = lm.width, lm.front, lm.spine.y0, lm.scale
    back = yv - u(25.0, 40.0)
    right = Ellipsoid(
        (0.42 * w + u(-8, 8), 0.5 * (back + f) + u(-5, 5), lm.dome - 95.0 * s + u(-10, 5)),
        (0.66 * w * s, 0.5 * (f - back) + 14.0, 100.0 * s),
        rotation(u(-6, 6), u(-20, -8), u(-8, 8)),
    )
    left = Ellipsoid(
        (-0.15 * w + u(-10, 10), yv + 0.68 * (f - yv), lm.dome - 50.0 * s + u(-10, 5)),
        (0.48 * w * s * u(0.8, 1.2), 0.3 * (f - yv) * u(0.8, 1.1), 42.0 * s),
        rotation(u(-10, 10), u(5, 20), u(-10, 10)),
    )
    noise = FourierNoise(rng, 70.0, 10)
    amp = u(3.0, 7.0)
    spine = lm.spine
    ax = lm.aorta[0]

    # the inferior surface rises from the lateral tip of the right lobe towards the midline
    low_lat, low_mid = lm.dome - u(175.0, 200.0) * s, lm.dome - u(105.0, 130.0) * s
    slope = (low_mid - low_lat) / (0.9 * w)

    def field(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        liver = smooth_min(right(x, y, z), left(x, y, z), 25.0) + amp * noise(x, y, z)
        liver = smooth_max(liver, low_mid - slope * x - z, 15.0)
        # keep-out: a rounded region around the spine and the aorta
        q = np.sqrt(((x - ax - 8.0) / (spine.rx + 32.0)) ** 2
                    + ((y - spine.y(z) + 12.0) / (spine.ry + 40.0)) ** 2)
        liver = smooth_max(liver, (1.0 - q) * 30.0, 8.0)
        return np.maximum(liver, z - lm.dome - 5.0)

    box = (np.array([-w, back - 20.0, lm.dome - 230.0 * s]), np.array([w + 20.0, f + 20.0, lm.dome + 10.0]))
    return field, box


def liver_strokes(rng: np.random.Generator, lm: Landmarks) -> tuple[list[Stroke], tuple]:
    """The liver and its intrahepatic veins; also returns the liver field and box (extent)."""
    field, box = _liver_field(lm, rng)
    liver = Stroke("liver", box, (3.0, 3.0, 3.0), [(T.LIVER, (("d", 0.0),))], VISCERA,
                   fields=lambda x, y, z: {"d": field(x, y, z)}, store="liver")
    strokes = [liver]
    u = rng.uniform
    w, f, yv = lm.width, lm.front, lm.spine.y0
    top = np.array([lm.ivc[0] - 5.0, yv + 38.0, lm.dome - 25.0])
    ends = [(0.85 * w, yv + u(0, 25), lm.dome - u(60, 90)), (0.35 * w, f - u(15, 30), lm.dome - u(60, 80)),
            (-0.35 * w, f - u(20, 35), lm.dome - u(30, 50))]
    inside = frozenset({T.LIVER})
    for n, end in enumerate(ends):
        ctrl = np.stack([top, 0.5 * (top + np.array(end)) + rng.normal(0, 6, 3), np.array(end)])
        strokes.append(tube_stroke(f"hepatic_vein{n}", ctrl, [u(5, 7), 4.0, 1.5],
                                   [(T.HEP_VEIN, (("d", 0.0),))], inside, step=1.5))
    hilum = np.array([0.25 * w, yv + 45.0, lm.dome - u(75, 90)])
    ends = [(0.75 * w, yv + u(10, 40), lm.dome - u(90, 120)), (0.6 * w, f - u(30, 50), lm.dome - u(40, 70)),
            (-0.3 * w, f - u(25, 40), lm.dome - u(50, 70))]
    for n, end in enumerate(ends):
        ctrl = np.stack([hilum, 0.5 * (hilum + np.array(end)) + rng.normal(0, 6, 3), np.array(end)])
        strokes.append(tube_stroke(f"portal_branch{n}", ctrl, [u(5, 6.5), 3.5, 1.5],
                                   [(T.LIVER_PORTAL, (("d", 0.0),))], inside, step=1.5))
    return strokes, (field, box)


def gallbladder_strokes(rng: np.random.Generator, lm: Landmarks) -> list[Stroke]:
    if rng.uniform() < 0.15:
        return []
    u = rng.uniform
    w, f = lm.width, lm.front
    gb = Ellipsoid((0.28 * w + u(-10, 10), f - u(30, 45), lm.dome - u(110, 140)),
                   (u(10, 16), u(10, 16), u(25, 40)), rotation(u(-50, -25), u(-15, 15), 0.0))
    return [Stroke("gallbladder", gb.box(2.0), 1.5,
                   [(T.BOWEL_WALL, (("d", 0.0),)), (T.GALLBLADDER, (("d", -1.8),))],
                   VISCERA | {T.LIVER}, fields=lambda x, y, z: {"d": gb(x, y, z)})]


def spleen_strokes(rng: np.random.Generator, lm: Landmarks) -> list[Stroke]:
    u = rng.uniform
    s = lm.scale * u(0.9, 1.2)
    tip = lm.pancreas[-1]
    ang = u(-160.0, -140.0)
    normal = np.array([np.cos(np.deg2rad(ang)), np.sin(np.deg2rad(ang)), 0.0])
    centre = np.array([-(lm.width - 28.0 * s), tip[1] - 8.0, tip[2] + u(15, 35)])
    rot = rotation(u(-15, 15), u(-10, 10), ang)
    spleen = Ellipsoid(centre, (24.0 * s, 48.0 * s, 58.0 * s), rot)
    hilum = Ellipsoid(centre - normal * 38.0 * s, (24.0 * s, 30.0 * s, 40.0 * s), rot)
    noise = FourierNoise(rng, 40.0, 8)

    def fields(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
        return {"d": np.maximum(spleen(x, y, z), -hilum(x, y, z)) + 2.5 * noise(x, y, z)}

    return [Stroke("spleen", spleen.box(6.0), 2.0, [(T.SPLEEN, (("d", 0.0),))], VISCERA,
                   fields=fields)]


def kidney_strokes(rng: np.random.Generator, lm: Landmarks) -> list[Stroke]:
    """Both kidneys: cortex, medullary pyramids, sinus fat and pelvis; the right one lower."""
    u = rng.uniform
    z_right = u(-55.0, -25.0)
    strokes = []
    for side, zc in ((1.0, z_right), (-1.0, z_right + u(5.0, 25.0))):
        s = lm.scale * u(0.9, 1.1)
        centre = np.array([side * (lm.spine.rx + u(42, 55)), lm.spine.y(zc) - u(0, 10), zc])
        rot = rotation(u(-8, 8), side * u(8, 18), side * u(25, 45) + 180.0 * (side < 0))
        semi = np.array([27.0, 22.0, 55.0]) * s
        kidney = Ellipsoid(centre, semi, rot)
        sinus = Ellipsoid(centre + rot @ np.array([-0.55 * semi[0], 0, 0]), semi * [0.55, 0.42, 0.5], rot)
        pelvis = Ellipsoid(centre + rot @ np.array([-0.75 * semi[0], 0, 0]), semi * [0.35, 0.22, 0.22], rot)
        noise = FourierNoise(rng, 22.0, 10)
        fat = float(u(2.0, 7.0))  # perirenal fat

        def fields(x: np.ndarray, y: np.ndarray, z: np.ndarray, kidney=kidney, sinus=sinus,
                   pelvis=pelvis, noise=noise) -> dict[str, np.ndarray]:
            outer = kidney(x, y, z)
            return {"k": outer, "m": outer + 7.0 + 3.5 * noise(x, y, z), "s": sinus(x, y, z),
                    "p": pelvis(x, y, z)}

        strokes.append(Stroke(
            "kidney", kidney.box(8.0), 1.5,
            [(T.VFAT, (("k", fat),)), (T.KID_CORTEX, (("k", 0.0),)), (T.KID_MEDULLA, (("m", 0.0),)), (T.KID_SINUS, (("s", 0.0),)),
             (T.KID_PELVIS, (("p", 0.0),))],
            VISCERA | {T.LIVER, T.SPLEEN}, fields=fields))
    return strokes


def pancreas_strokes(rng: np.random.Generator, lm: Landmarks, fat_fraction: float,
                     duct_radius: float) -> Stroke:
    """The pancreas: a lobulated tube with fatty interdigitation and its main duct (head to tail).

    Fields: "dn" the lobulated surface, "lob" fat lobules (more towards the margin), "dc" the duct.
    """
    noise = FourierNoise(rng, 22.0, 14)
    lob = FourierNoise(rng, 7.0, 16)
    thr = 1.6 - 2.6 * fat_fraction
    duct = np.array([0.0, 1.0, 1.0, 0.9, 0.7, 0.3]) * duct_radius
    gland = tube_stroke(
        "pancreas", lm.pancreas, lm.pancreas_r,
        [(T.PANCREAS, (("dn", 0.0),)), (T.PANC_FAT, (("dn", 0.0), ("lob", 0.0))),
         (T.PANC_DUCT, (("dn", 0.0), ("dc", 0.0)))],
        VISCERA | {T.LIVER}, step=1.5, noise=noise, amp=0.22, store="pancreas",
        extra={"duct": duct})
    surface = gland.post

    def post(x: np.ndarray, y: np.ndarray, z: np.ndarray, f: dict) -> dict[str, np.ndarray]:
        out = surface(x, y, z, f) if surface is not None else {"dn": f["d"]}
        margin = np.clip((out["dn"] + 3.0) / 3.0, 0.0, 1.0)
        out["lob"] = thr - lob(x, y, z) - 1.2 * margin
        out["dc"] = f["d"] + f["r"] - f["duct"]
        return out

    gland.post = post
    return gland
