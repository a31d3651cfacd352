"""Painting strokes into a volume of tissue classes (painter's algorithm, bounding boxes only).

A :class:`Stroke` is pure data: a world bounding box, named fields (analytic functions and/or a tube
distance), and rules that give a tissue class to the voxels where every named field is below a
threshold. Later strokes paint over earlier ones, but only over the classes listed in ``into``, so
that e.g. organs never paint over the abdominal wall or bone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .fields import Box, FourierNoise, Grid, coarse_axes, tube_distance
from .shapes import curve_box, spline_curve

__all__ = ["Stroke", "Canvas", "Rule", "tube_stroke", "gather", "assign"]

#: fn(x, y, z) -> {name: field}; x, y, z broadcastable coordinate arrays in mm.
FieldsFn = Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, np.ndarray]]
#: fn(x, y, z, fields) -> {name: field}: derived fields computed from the others (coarse lattice).
PostFn = Callable[[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]], dict[str, np.ndarray]]
#: (class id, ((field name, threshold), ...)): the class goes where every field < its threshold.
Rule = tuple[int, tuple[tuple[str, float], ...]]


@dataclass
class Stroke:
    """One structure to paint.

    Attributes:
        name: for debugging and for ``store``.
        box: world bounding box (lo, hi) in mm; nothing is painted outside it.
        step: coarse sampling step in mm (scalar or per axis).
        rules: applied in order; a later rule overwrites an earlier one inside the stroke.
        into: the classes this stroke may overwrite.
        fields: analytic fields.
        tube: (points (N, 3), radius (N,), {name: per-sample attribute (N,)}) gives field "d".
        post: derived fields from the analytic and tube fields (e.g. a noisy surface).
        nested: every rule has one condition and each rule's region lies inside the previous one
            (onion layers); painted in one pass.
        store: keep field ``store_field`` on the canvas under this name (tumours, ribs use it).
    """

    name: str
    box: Box
    step: float | tuple[float, float, float]
    rules: list[Rule]
    into: frozenset[int]
    fields: FieldsFn | None = None
    tube: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None = None
    post: PostFn | None = None
    store: str | None = None
    store_field: str = "d"
    nested: bool = False


_CHUNK = 4_000_000  # voxels per slab when painting large analytic strokes


def gather(lut: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``lut[index]`` for a uint8 ``index`` volume, in flat chunks (much faster on big volumes)."""
    flat = np.ascontiguousarray(index).reshape(-1)
    out = np.empty(flat.size, dtype=lut.dtype)
    step = 1 << 20
    for start in range(0, flat.size, step):
        out[start:start + step] = lut[flat[start:start + step]]
    return out.reshape(index.shape)


def assign(view: np.ndarray, mask: np.ndarray, value: int | np.ndarray) -> None:
    """``view[mask] = value`` for uint8 arrays, with wrap-around arithmetic (no fancy indexing)."""
    view += mask.view(np.uint8) * (np.asarray(value, dtype=np.uint8) - view)


def _apply(stroke: Stroke, view: np.ndarray, fine: dict[str, np.ndarray]) -> None:
    if len(stroke.into) == 1:
        allowed = view == next(iter(stroke.into))
    else:
        lut = np.zeros(256, dtype=bool)
        lut[list(stroke.into)] = True
        allowed = gather(lut, view)
    if stroke.nested:
        # rules are nested single conditions: accumulate class steps, assign once
        (c0, ((n0, t0),)), rest = stroke.rules[0], stroke.rules[1:]
        outer = fine[n0] < t0
        value = outer.view(np.uint8) * np.uint8(c0)
        prev = c0
        for cls_id, ((name, thr),) in rest:
            value += (fine[name] < thr).view(np.uint8) * np.uint8((cls_id - prev) % 256)
            prev = cls_id
        outer &= allowed
        assign(view, outer, value)
        return
    for cls_id, conds in stroke.rules:
        mask = fine[conds[0][0]] < conds[0][1]
        for name, thr in conds[1:]:
            mask &= fine[name] < thr
        mask &= allowed
        assign(view, mask, cls_id)


class Canvas:
    """The tissue-class volume (uint8, canonical RAS voxel order) being painted."""

    def __init__(self, grid: Grid, fill: int = 0) -> None:
        self.grid = grid
        self.cls = np.full(grid.shape, fill, dtype=np.uint8)
        self.stored: dict[str, tuple[tuple[slice, slice, slice], np.ndarray]] = {}

    def fields_of(self, stroke: Stroke, sl: tuple[slice, slice, slice], names: Iterable[str]
                  ) -> dict[str, np.ndarray]:
        """Fine-grid float32 fields of ``stroke`` on the voxels ``sl``."""
        fine = [self.grid.axis(a)[sl[a]] for a in range(3)]
        plan = coarse_axes(fine, stroke.step, exact=stroke.tube is None)
        shape = tuple(c.size for c in plan.coords)
        coarse: dict[str, np.ndarray] = {}
        if stroke.tube is not None:
            points, radius, extra = stroke.tube
            keys = list(extra)
            d, values = tube_distance(plan, points, radius, [extra[k] for k in keys])
            coarse["d"] = d
            coarse.update(zip(keys, values))
        if stroke.fields is not None:
            coarse.update(stroke.fields(*plan.mesh()))
        if stroke.post is not None:
            coarse.update(stroke.post(*plan.mesh(), coarse))
        wanted = set(names)
        return {k: plan.upsample(np.broadcast_to(v, shape)) for k, v in coarse.items() if k in wanted}

    def paint(self, stroke: Stroke) -> None:
        """Apply ``stroke`` in place (large analytic strokes in slabs along i, to save memory)."""
        sl = self.grid.slices(stroke.box)
        if sl is None:
            return
        names = {name for _, conds in stroke.rules for name, _ in conds}
        if stroke.store:
            names.add(stroke.store_field)
        shape = tuple(s.stop - s.start for s in sl)
        parts = [sl[0]]
        plane = shape[1] * shape[2]
        if stroke.tube is None and shape[0] * plane > _CHUNK:
            rows = max(_CHUNK // plane, 1)
            parts = [slice(i, min(i + rows, sl[0].stop)) for i in range(sl[0].start, sl[0].stop, rows)]
        kept = np.empty(shape, dtype=np.float32) if stroke.store else None
        for part in parts:
            sub = (part, sl[1], sl[2])
            fine = self.fields_of(stroke, sub, names)
            _apply(stroke, self.cls[sub], fine)
            if kept is not None:
                kept[part.start - sl[0].start:part.stop - sl[0].start] = fine[stroke.store_field]
        if kept is not None and stroke.store:
            self.stored[stroke.store] = (sl, kept)

    def stored_field(self, name: str, sl: tuple[slice, slice, slice]) -> np.ndarray:
        """A stored field on the voxels ``sl`` (+inf where the stored box does not reach)."""
        shape = tuple(s.stop - s.start for s in sl)
        out = np.full(shape, np.inf, dtype=np.float32)
        if name not in self.stored:
            return out
        src_sl, src = self.stored[name]
        dst, srcs = [], []
        for a in range(3):
            lo = max(sl[a].start, src_sl[a].start)
            hi = min(sl[a].stop, src_sl[a].stop)
            if hi <= lo:
                return out
            dst.append(slice(lo - sl[a].start, hi - sl[a].start))
            srcs.append(slice(lo - src_sl[a].start, hi - src_sl[a].start))
        out[tuple(dst)] = src[tuple(srcs)]
        return out


def tube_stroke(name: str, ctrl: np.ndarray, radius: np.ndarray | list[float], rules: list[Rule],
                into: frozenset[int], *, step: float = 2.0, noise: FourierNoise | None = None,
                amp: float = 0.0, extra: dict[str, np.ndarray] | None = None,
                store: str | None = None) -> Stroke:
    """A tube around a smooth curve through ``ctrl`` (n, 3) with radius interpolated along it.

    Fields: "d" (signed distance, mm) and "dn" = d + amp * radius * noise (a lobulated surface,
    ``amp`` relative to the local radius); ``extra`` holds per-control-point attributes,
    interpolated along the curve like the radius and carried to the voxels.
    """
    ctrl = np.asarray(ctrl, dtype=np.float64)
    pts, rad = spline_curve(ctrl, radius, step=0.5)
    attrs = {"r": rad}
    if extra:
        chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(ctrl, axis=0), axis=1))])
        s_ctrl = chord / max(chord[-1], 1e-9)
        s_pts = np.linspace(0.0, 1.0, len(pts))
        attrs.update({k: np.interp(s_pts, s_ctrl, np.asarray(v, dtype=float)) for k, v in extra.items()})
    post = None
    if noise is not None:
        def post(x: np.ndarray, y: np.ndarray, z: np.ndarray, f: dict[str, np.ndarray]
                 ) -> dict[str, np.ndarray]:
            # clipped so the surface grows by at most amp * radius (the stroke box allows that)
            return {"dn": f["d"] + amp * f["r"] * np.clip(noise(x, y, z), -1.0, 3.0)}
    box = curve_box(pts, rad * (1.0 + amp), 3.0)
    return Stroke(name, box, step, rules, into, tube=(pts, rad, attrs), post=post, store=store,
                  store_field="dn" if noise is not None else "d")
