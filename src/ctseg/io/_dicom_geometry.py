"""DICOM slice geometry <-> 4x4 RAS affine, with the checks that make a stack of slices a volume.

DICOM stores, per slice, ImageOrientationPatient (row and column direction cosines, LPS),
ImagePositionPatient (centre of the first pixel, LPS mm) and PixelSpacing (row spacing, column
spacing in mm). A volume exists only when every slice shares orientation, spacing and size, the
positions lie on one line along the slice normal (no gantry tilt) and are evenly spaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["SeriesGeometry", "series_geometry", "SliceLayout", "slice_layout"]

#: Largest angle (degrees) between the slice stacking direction and the slice normal.
MAX_TILT_DEGREES = 0.05
#: Largest distance (mm) of any slice position from the straight line of the stack.
MAX_OFF_LINE_MM = 0.05
#: Largest deviation of one slice gap from the median gap, as a fraction of the median.
SPACING_TOLERANCE = 0.01


@dataclass(frozen=True)
class SeriesGeometry:
    """``order``: dataset indices sorted along the normal; ``affine``: 4x4 RAS for (col, row, slice)."""

    order: tuple[int, ...]
    affine: np.ndarray
    slice_gap_mm: float


def _vector(ds: Any, name: str, count: int, path: Path) -> np.ndarray:
    value = ds.get(name)
    try:
        out = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        out = np.zeros(0)
    if out.shape != (count,) or not np.all(np.isfinite(out)):
        raise InputError(
            f"{path}: {name} is missing or malformed ({value!r}); this file is not a slice of a CT volume "
            "(localizer, screenshot or damaged header): move it out of the series folder"
        )
    return out


def series_geometry(folder: Path, datasets: Sequence[Any], files: Sequence[Path]) -> SeriesGeometry:
    """Sort the slices of one series and build its affine; refuse anything that is not a volume.

    Raises:
        InputError: naming ``folder`` (and the files involved) for mixed orientation, spacing or
            size, gantry tilt, duplicate positions, missing slices or uneven spacing.
    """
    iops = [_vector(ds, "ImageOrientationPatient", 6, p) for ds, p in zip(datasets, files)]
    ipps = np.stack([_vector(ds, "ImagePositionPatient", 3, p) for ds, p in zip(datasets, files)])
    spacings = [_vector(ds, "PixelSpacing", 2, p) for ds, p in zip(datasets, files)]
    sizes = [(int(ds.Rows), int(ds.Columns)) for ds in datasets]
    for name, values in (("ImageOrientationPatient", iops), ("PixelSpacing", spacings)):
        bad = [i for i, v in enumerate(values) if not np.allclose(v, values[0], atol=1e-4)]
        if bad:
            raise InputError(
                f"{folder}: slices differ in {name} ({files[0].name}: {np.round(values[0], 5).tolist()}, "
                f"{files[bad[0]].name}: {np.round(values[bad[0]], 5).tolist()}); the folder mixes several "
                "acquisitions: put each series in its own folder"
            )
    if len(set(sizes)) > 1:
        raise InputError(f"{folder}: slices differ in size (rows x columns {sorted(set(sizes))}); put each series in its own folder")
    row, col = iops[0][:3], iops[0][3:]
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3 or abs(row @ col) > 1e-3:
        raise InputError(f"{folder}: ImageOrientationPatient {iops[0].tolist()} is not two orthogonal unit vectors; the header is damaged")
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    normal = np.cross(row, col)
    along = ipps @ normal
    order = np.argsort(along, kind="stable")
    gap = _slice_gap(folder, datasets, files, ipps, along, order, normal)
    lps = np.eye(4)
    lps[:3, 0] = row * spacings[0][1]
    lps[:3, 1] = col * spacings[0][0]
    lps[:3, 2] = normal * gap
    lps[:3, 3] = ipps[order[0]]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return SeriesGeometry(tuple(int(i) for i in order), affine, gap)


def _slice_gap(folder: Path, datasets: Sequence[Any], files: Sequence[Path], ipps: np.ndarray, along: np.ndarray, order: np.ndarray, normal: np.ndarray) -> float:
    if len(order) == 1:
        ds = datasets[0]
        for name in ("SpacingBetweenSlices", "SliceThickness"):
            value = ds.get(name)
            if value not in (None, "") and float(value) > 0:
                return float(value)
        return 1.0
    z = along[order]
    gaps = np.diff(z)
    dup = np.flatnonzero(gaps < 1e-3)
    if dup.size:
        a, b = files[order[dup[0]]], files[order[dup[0] + 1]]
        raise InputError(
            f"{folder}: {a.name} and {b.name} lie at the same position ({z[dup[0]]:.3f} mm along the normal); "
            "the series holds several acquisitions, phases or echoes: separate them into one folder each"
        )
    offsets = ipps[order] - ipps[order[0]]
    stack = offsets[-1]
    tilt = float(np.degrees(np.arccos(min(1.0, abs(stack @ normal) / np.linalg.norm(stack)))))
    off_line = offsets - np.outer(offsets @ normal, normal)
    if tilt > MAX_TILT_DEGREES or float(np.linalg.norm(off_line, axis=1).max()) > MAX_OFF_LINE_MM:
        tag = datasets[order[0]].get("GantryDetectorTilt")
        tag_text = f", GantryDetectorTilt {float(tag):g} deg" if tag not in (None, "") else ""
        raise InputError(
            f"{folder}: gantry tilt: the slice positions move {tilt:.2f} deg off the slice normal{tag_text}, so "
            "the slices do not form a rectangular volume; resample to an untilted grid first (e.g. dcm2niix, "
            "which corrects tilt) and give the NIfTI file"
        )
    median = float(np.median(gaps))
    missing = np.flatnonzero(gaps > 1.5 * median)
    if missing.size:
        where = ", ".join(f"{int(round(gaps[i] / median)) - 1} between {z[i]:.2f} and {z[i + 1]:.2f} mm" for i in missing[:5])
        raise InputError(
            f"{folder}: missing slices ({where}; regular gap {median:.3f} mm); the series is incomplete: "
            "re-export the whole series from the PACS"
        )
    worst = int(np.argmax(np.abs(gaps - median)))
    if abs(gaps[worst] - median) > max(SPACING_TOLERANCE * median, 1e-3):
        raise InputError(
            f"{folder}: uneven slice spacing (gaps from {gaps.min():.3f} to {gaps.max():.3f} mm, median "
            f"{median:.3f} mm, first odd gap after {files[order[worst]].name}); resample to even spacing first "
            "(e.g. dcm2niix or SimpleITK) and give the NIfTI file"
        )
    return float((z[-1] - z[0]) / (len(z) - 1))


@dataclass(frozen=True)
class SliceLayout:
    """How to store an (I, J, K) volume as DICOM slices.

    ``reverse_k``: write slice ``K-1-k`` as the k-th file (a left-handed affine cannot keep its
    k order, since DICOM readers stack along ``row x column``); ``orientation``: the 6
    ImageOrientationPatient values; ``positions``: (K, 3) ImagePositionPatient in LPS mm;
    ``pixel_spacing``: (row spacing, column spacing) = (spacing along j, spacing along i);
    ``gap``: slice spacing in mm.
    """

    reverse_k: bool
    orientation: tuple[float, ...]
    positions: np.ndarray
    pixel_spacing: tuple[float, float]
    gap: float


def slice_layout(affine: np.ndarray, shape: Sequence[int], *, source: str = "image") -> SliceLayout:
    """The DICOM geometry of a volume with RAS ``affine`` and ``shape`` (I, J, K).

    Raises:
        InputError: the affine's axes are not orthogonal (sheared), which DICOM cannot represent.
    """
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=np.float64)
    axes = lps[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    unit = axes / spacing
    gram = unit.T @ unit
    if np.abs(gram - np.eye(3)).max() > 1e-4:
        raise InputError(
            f"{source}: the affine's voxel axes are not orthogonal (sheared grid); DICOM slices need a "
            "rectangular grid: resample the image first"
        )
    row, col = unit[:, 0], unit[:, 1]
    normal = np.cross(row, col)
    reverse = bool(unit[:, 2] @ normal < 0)
    k = np.arange(int(shape[2]), dtype=np.float64)
    if reverse:
        k = k[::-1]
    positions = lps[:3, 3][None, :] + np.outer(k, lps[:3, 2])
    return SliceLayout(reverse, tuple(float(v) for v in (*row, *col)), positions, (float(spacing[1]), float(spacing[0])), float(spacing[2]))
