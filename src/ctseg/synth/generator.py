"""``generate_case``: one synthetic abdominal CT (HU) and its label map.

Steps: sample the anatomy (mm, grid-free) -> choose the grid (field of view / matrix, slice spacing)
-> paint tissue classes -> CT numbers with smooth texture -> white noise -> partial-volume blur
(Gaussian, along z matched to the slice thickness, slight in-plane) -> int16 -> reorient the canonical
RAS arrays to the requested axis codes, keeping every voxel's world position.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import InputError
from ..io.image import Image, LabelMap
from ..io.orientation import Reorientation
from .anatomy import Anatomy, sample_anatomy
from .fields import Grid, lattice_noise
from .paint import Canvas, Stroke, gather
from .tissues import TUMOUR_CLASSES, T, TissueTable, organ_classes, sample_tissues

__all__ = ["generate_case", "TASKS", "ORIENTATIONS", "check_task"]

#: The synthetic tasks: label names (MSD ``labels``) and a short description.
TASKS: dict[str, dict] = {
    "pancreas": {
        "labels": {"0": "background", "1": "pancreas", "2": "tumour"},
        "description": "Synthetic contrast-enhanced abdominal CT: pancreas and pancreatic tumours",
    },
    "liver": {
        "labels": {"0": "background", "1": "liver", "2": "tumour"},
        "description": "Synthetic contrast-enhanced abdominal CT: liver and liver tumours",
    },
}

#: Axis codes drawn per case when ``orientation`` is None (the last two reverse the slice order).
ORIENTATIONS = ("RAS", "LPS", "LAS", "LPI", "RAI")
_PAIRS = ({"L", "R"}, {"A", "P"}, {"S", "I"})


def check_task(task: str) -> str:
    if task not in TASKS:
        raise InputError(f"unknown synthetic task {task!r}; choose one of {', '.join(sorted(TASKS))}")
    return task


def _check_orientation(codes: str) -> str:
    codes = str(codes).upper()
    ok = len(codes) == 3 and all(sum(c in pair for c in codes) == 1 for pair in _PAIRS)
    if not ok:
        raise InputError(
            f"orientation {codes!r} is not valid: give three axis codes, one of L/R, A/P and S/I "
            "each, e.g. 'RAS' or 'LPS'"
        )
    return codes


def _check_args(matrix: int, slice_spacing: float | None) -> None:
    if not isinstance(matrix, (int, np.integer)) or not 16 <= int(matrix) <= 1024:
        raise InputError(f"matrix must be an integer in 16..1024 (in-plane voxels), got {matrix!r}")
    if slice_spacing is not None and not 0.3 <= float(slice_spacing) <= 10.0:
        raise InputError(f"slice_spacing must be in 0.3..10 mm, got {slice_spacing!r}")


def _grid(anatomy: Anatomy, matrix: int, dz: float) -> Grid:
    dx = anatomy.fov / matrix
    x0 = anatomy.centre[0] - anatomy.fov / 2.0 + dx / 2.0
    y0 = anatomy.centre[1] - anatomy.fov / 2.0 + dx / 2.0
    z_lo, z_hi = anatomy.z_range
    nz = int(np.floor((z_hi - z_lo) / dz + 1e-6)) + 1
    return Grid((x0, y0, z_lo), (dx, dx, dz), (matrix, matrix, nz))


def _three_tap(sigma: float) -> float:
    """Side weight w of the kernel [w, 1 - 2w, w] whose variance (voxels^2) is sigma^2."""
    return float(np.clip(sigma * sigma / 2.0, 0.0, 1.0 / 3.0))


def _blur_axis(src: np.ndarray, w: float, axis: int) -> np.ndarray:
    """Convolve with [w, 1 - 2w, w] along ``axis`` (edges repeat), two threads over another axis."""
    out = np.empty_like(src)
    split = 2 if axis != 2 else 0
    n = src.shape[split]
    halves = [slice(0, n // 2), slice(n // 2, n)]

    def job(part: slice) -> None:
        idx = [slice(None)] * 3
        idx[split] = part
        a, o = src[tuple(idx)], out[tuple(idx)]
        a_, o_ = np.moveaxis(a, axis, 0), np.moveaxis(o, axis, 0)
        np.multiply(a_, np.float32(1.0 - 2.0 * w), out=o_)
        tmp = np.empty_like(a_[1:])
        np.multiply(a_[:-1], np.float32(w), out=tmp)
        o_[1:] += tmp
        np.multiply(a_[1:], np.float32(w), out=tmp)
        o_[:-1] += tmp
        o_[0] += np.float32(w) * a_[0]
        o_[-1] += np.float32(w) * a_[-1]

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(job, halves))
    return out


def _finish(hu: np.ndarray, table: TissueTable, rng: np.random.Generator, sigmas: tuple) -> np.ndarray:
    """Add white noise, blur (partial volume + scanner kernel), round to int16 HU.

    The noise is uniform white noise (cheap to draw) scaled so that after the blur, which sums many
    voxels and makes it close to Gaussian, its standard deviation is ``table.noise_sigma`` HU.
    """
    weights = [_three_tap(s) for s in sigmas]
    gain = float(np.prod([np.sqrt(2 * w * w + (1 - 2 * w) ** 2) for w in weights]))
    scale = np.float32(table.noise_sigma / gain / np.sqrt((256.0**2 - 1.0) / 12.0))
    noise = rng.integers(0, 256, size=hu.shape, dtype=np.uint8)
    flat, nflat = hu.reshape(-1), noise.reshape(-1)
    step = 1 << 22
    for start in range(0, flat.size, step):
        part = nflat[start:start + step].astype(np.float32)
        part -= np.float32(127.5)
        part *= scale
        flat[start:start + step] += part
    del noise
    for axis, w in enumerate(weights):
        if w > 0.005 and hu.shape[axis] > 1:
            hu = _blur_axis(hu, w, axis)
    np.rint(hu, out=hu)
    np.clip(hu, -1024, 3071, out=hu)
    return hu.astype(np.int16)


def _tissue_table(rng: np.random.Generator, anatomy: Anatomy, task: str) -> TissueTable:
    table = sample_tissues(rng)
    organ = T.LIVER if task == "liver" else T.PANCREAS
    pairs = ((T.TUMOUR_A, T.TUMOUR_A_CORE), (T.TUMOUR_B, T.TUMOUR_B_CORE))
    for tumour, (cls, core) in zip(anatomy.tumours, pairs):
        table.base[cls] = table.base[organ] + tumour.delta
        table.base[core] = table.base[cls] + tumour.core_delta
        table.amp_low[[cls, core]] = rng.uniform(3.0, 7.0)
        table.amp_mid[[cls, core]] = rng.uniform(4.0, 9.0)
    return table


def render_classes(anatomy: Anatomy, grid: Grid) -> np.ndarray:
    """Paint the anatomy's tissue classes on ``grid`` (canonical RAS order), uint8."""
    canvas = Canvas(grid, T.AIR)
    for item in anatomy.items:
        if isinstance(item, Stroke):
            canvas.paint(item)
        else:
            item(canvas)
    return canvas.cls


def _hu(cls: np.ndarray, grid: Grid, table: TissueTable, rng: np.random.Generator, task: str
        ) -> np.ndarray:
    """Mean HU per class plus smooth texture: low-frequency everywhere, mid-frequency in the
    target organ's box (organ and tumour heterogeneity)."""
    full = (slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(0, grid.shape[2]))
    hu = gather(table.base, cls)
    hu += gather(table.amp_low, cls) * lattice_noise(rng, grid, full, 30.0)
    organ = np.zeros(256, dtype=bool)
    organ[list(organ_classes(task)) + list(TUMOUR_CLASSES)] = True
    box = _bbox(gather(organ, cls))
    if box is not None:
        box = tuple(slice(max(s.start - 4, 0), s.stop + 4) for s in box)
        part = cls[box]
        hu[box] += gather(table.amp_mid, part) * lattice_noise(rng, grid, box, 7.0)
    return hu


def _bbox(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    out = []
    for axis in range(3):
        hit = np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))[0]
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return out[0], out[1], out[2]


def _labels(cls: np.ndarray, task: str) -> np.ndarray:
    lut = np.zeros(256, dtype=np.uint8)
    lut[list(organ_classes(task))] = 1
    lut[list(TUMOUR_CLASSES)] = 2
    return gather(lut, cls)


def generate_case(task: str = "pancreas", seed: int = 0, *, matrix: int = 512,
                  slice_spacing: float | None = None, orientation: str | None = None
                  ) -> tuple[Image, LabelMap]:
    """Generate one synthetic contrast-enhanced abdominal CT and its labels.

    Args:
        task: "pancreas" (labels 0 background, 1 pancreas, 2 tumour) or "liver" (1 liver, 2 tumour).
        seed: any non-negative integer; the same arguments give bit-identical arrays and affine.
        matrix: in-plane matrix (voxels per row/column). The field of view is 300-460 mm per case,
            so the in-plane spacing is fov / matrix (0.6-0.9 mm at 512).
        slice_spacing: mm between slices; None draws 1.5-5 mm per case.
        orientation: axis codes of the output arrays (e.g. "RAS", "LPS"); None draws one of
            :data:`ORIENTATIONS` per case. The anatomy's world coordinates do not depend on it.

    Returns:
        (image, labels): an int16 HU :class:`Image` and a uint8 :class:`LabelMap` on the same grid
        (array axes in NIfTI voxel order, affine in RAS+ mm).

    Raises:
        InputError: unknown task, bad matrix, slice spacing or orientation.
    """
    image, labels, _ = _generate(task, seed, matrix, slice_spacing, orientation)
    return image, labels


def _generate(task: str, seed: int, matrix: int, slice_spacing: float | None, orientation: str | None
              ) -> tuple[Image, LabelMap, np.ndarray]:
    """:func:`generate_case` plus the tissue-class array (same orientation), for tests and debugging."""
    check_task(task)
    _check_args(matrix, slice_spacing)
    if orientation is not None:
        orientation = _check_orientation(orientation)
    if not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(5)]
    anatomy = sample_anatomy(streams[0], task)
    geo = streams[1]  # drawn in full whatever the arguments, so that each choice is independent
    dz = float(np.round(geo.uniform(1.5, 5.0) * 4.0) / 4.0)
    codes = str(geo.choice(ORIENTATIONS))
    offset = geo.uniform([-20.0, -150.0, -700.0], [20.0, 50.0, 300.0])
    thickness = float(geo.uniform(1.0, 1.25))  # slice thickness / spacing
    in_plane = float(geo.uniform(0.4, 0.75))  # in-plane blur sigma (voxels)
    dz = float(slice_spacing) if slice_spacing is not None else dz
    codes = orientation or codes

    grid = _grid(anatomy, int(matrix), dz)
    cls = render_classes(anatomy, grid)
    table = _tissue_table(streams[2], anatomy, task)
    hu = _hu(cls, grid, table, streams[3], task)
    image = _finish(hu, table, streams[4], (in_plane, in_plane, thickness / 2.355))
    labels = _labels(cls, task)
    del hu

    affine = np.diag([*grid.spacing, 1.0])
    affine[:3, 3] = np.asarray(grid.origin) + offset
    turn = Reorientation(affine, grid.shape, codes)
    meta = {"task": task, "seed": int(seed), "orientation": codes, "contrast_phase": table.phase,
            "noise_sigma_hu": table.noise_sigma, "tumours": len(anatomy.tumours)}
    return (Image(turn.apply(image), turn.target_affine, dict(meta)),
            LabelMap(turn.apply(labels), turn.target_affine, dict(meta)), turn.apply(cls))
