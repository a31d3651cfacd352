"""``ctseg verify``: check every case of a dataset and list each problem with its fix.

Checks, per case: the listing (missing image or label, duplicate case ids, a non-CT channel),
each file's header (unreadable, 2D/4D, zero/negative/implausible voxel size, singular affine,
truncated), the image/label pair (shape, affine: the largest world-space offset of the grid
corners in mm), the voxels (truncated data, NaN/inf, intensities that are not HU, label values
not declared in the labels, fractional labels) and, for DICOM series, a modality other than CT.
Headers are read first; a file whose header is already unusable is not read further.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..errors import InputError
from .datasets import Case, Dataset, Issue, load_dataset
from .reader import (
    Problem,
    VolumeHeader,
    header_problems,
    load_volume,
    read_header,
    read_image,
    squeeze_shape,
    voxel_problems,
)

__all__ = ["VerifyReport", "verify_dataset", "grid_corner_offset_mm", "hu_problems"]

_PROGRESS_FROM = 10  # cases; smaller datasets need no progress bar


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_dataset`: one :class:`Issue` row per problem (empty: all good)."""

    root: Path
    dataset: Dataset
    rows: list[Issue] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.rows

    @property
    def bad_case_ids(self) -> set[str]:
        """Cases to leave out (``--skip-bad``); a duplicate's first copy stays, its later copies are
        already out of the lists."""
        return {r.case for r in self.rows if r.kind != "duplicate" and r.case != "*"}

    def format_table(self) -> str:
        """A text table: case, file (relative to the dataset), problem, fix."""
        head = f"{self.root}: {self.dataset.describe()}"
        if self.ok:
            return f"{head}\nno problems found in {self.n_cases} case(s) ({self.seconds:.1f} s)"
        cells = [("case", "file", "problem", "fix")] + [(r.case, _short(r.file, self.root), r.problem, r.fix) for r in self.rows]
        widths = [min(max(len(c[i]) for c in cells), cap) for i, cap in enumerate((24, 44, 200, 200))]
        lines = [f"{head}", f"{len(self.rows)} problem(s) in {len({r.case for r in self.rows})} case(s):"]
        for n, row in enumerate(cells):
            lines.append("  ".join(_fit(v, w) for v, w in zip(row[:3], widths)) + "  " + row[3])
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)

    @property
    def n_cases(self) -> int:
        return len(self.dataset.training) + len(self.dataset.test)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "layout": self.dataset.layout,
            "n_cases": self.n_cases,
            "ok": self.ok,
            "problems": [{"case": r.case, "file": r.file, "problem": r.problem, "fix": r.fix, "kind": r.kind} for r in self.rows],
        }


def _short(file: str, root: Path) -> str:
    try:
        return str(Path(file).resolve().relative_to(root.resolve()))
    except ValueError:
        return file


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else "..." + text[-(width - 3) :]


def grid_corner_offset_mm(affine_a: np.ndarray, shape_a: tuple[int, ...], affine_b: np.ndarray, shape_b: tuple[int, ...]) -> float:
    """Largest distance in mm between matching corner voxel centres of two 3D grids.

    Corner (i, j, k) of grid a, with each index 0 or its last index, is matched with the same
    corner of grid b; 0 means both grids span the same box (same shape and affine up to float).
    """

    def corners(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        idx = np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)])
        return (idx @ np.asarray(affine, dtype=np.float64).T)[:, :3]

    return float(np.linalg.norm(corners(affine_a, shape_a) - corners(affine_b, shape_b), axis=1).max())


def hu_problems(array: np.ndarray) -> list[Problem]:
    """A CT should be in Hounsfield units: air near -1000, a range of over a thousand HU."""
    if array.size == 0:
        return []
    lo, hi = float(np.min(array)), float(np.max(array))
    if lo == hi:
        return [Problem("not-hu", f"the image is constant ({lo:g} everywhere)", "re-export the CT; this volume holds no image")]
    if lo >= 0:
        return [Problem("not-hu", f"intensities {lo:g}..{hi:g} have no negative values, so they are not HU (air is -1000 HU)", "convert to HU first (value * RescaleSlope + RescaleIntercept, the intercept is often -1024)")]
    if hi - lo < 100:
        return [Problem("not-hu", f"intensities span only {lo:g}..{hi:g}, not HU (normalised already?)", "give the CT in HU, before any normalisation")]
    return []


def _issue(case: Case, path: Path, problem: Problem) -> Issue:
    return Issue(case.case_id, str(path), problem.message, problem.fix, problem.kind)


def _error_issue(case: Case, path: Path, error: InputError) -> Issue:
    """An InputError ("PATH: what; fix") as a row."""
    text = str(error)
    prefix = f"{path}: "
    text = text[len(prefix) :] if text.startswith(prefix) else text
    problem, _, fix = text.partition("; ")
    kind = "modality" if "modality" in problem.lower() else "unreadable"
    return Issue(case.case_id, str(path), problem, fix or "re-export the file", kind)


def _header(case: Case, path: Path) -> tuple[VolumeHeader | None, Any, list[Issue]]:
    """(header, voxels when already read, issues) of one file; a DICOM folder is read whole."""
    try:
        if path.is_dir():
            image = read_image(path)
            modality = str(image.meta.get("dicom", {}).get("modality", "CT") or "CT").upper()
            issues = [] if modality == "CT" else [Issue(case.case_id, str(path), f"modality {modality}, not CT", "give the CT series", "modality")]
            return VolumeHeader(path, image.shape, image.affine, image.array.dtype, {}), image.array, issues
        header = read_header(path)
    except InputError as exc:
        return None, None, [_error_issue(case, path, exc)]
    problems = header_problems(header.shape, header.affine, header.meta)
    return (None if problems else header), None, [_issue(case, path, p) for p in problems]


def _voxels(case: Case, path: Path, array: Any, *, label: bool, labels: dict[int, str] | None, labels_from: str) -> list[Issue]:
    try:
        if array is None:
            array = load_volume(path)[0]
    except InputError as exc:
        return [_error_issue(case, path, exc)]
    problems = voxel_problems(array, label=label)
    if not problems and not label:
        problems = hu_problems(array)
    if not problems and label and labels is not None:
        values = _label_values(array)
        extra = sorted(int(v) for v in values if int(v) not in labels)
        if extra:
            problems = [Problem("label-values", f"label values {extra} are not in the {labels_from} labels {sorted(labels)}", "fix the label map or add the values to dataset.json 'labels'")]
    return [_issue(case, path, p) for p in problems]


def _label_values(array: np.ndarray) -> np.ndarray:
    """Distinct values of a label map (a counting pass when they are small integers: no sort)."""
    if array.dtype.kind in "iub" and array.size and 0 <= int(array.min()) and int(array.max()) < 4096:
        return np.flatnonzero(np.bincount(array.ravel().astype(np.intp, copy=False)))
    return np.unique(array)


def _check_case(case: Case, labels: dict[int, str] | None, labels_from: str, headers_only: bool) -> list[Issue]:
    image_header, image_voxels, rows = _header(case, case.image)
    label_header, label_voxels = None, None
    if case.label is not None:
        label_header, label_voxels, label_rows = _header(case, case.label)
        rows += label_rows
    if image_header is not None and label_header is not None:
        rows += _pair_issues(case, image_header, label_header)
    if image_header is not None and min(squeeze_shape(image_header.shape)) < 2:
        rows.append(Issue(case.case_id, str(case.image), f"a single slice, shape {image_header.shape}", "give a 3D CT volume (many slices)", "dimensions"))
    if headers_only:
        return rows
    if image_header is not None:
        rows += _voxels(case, case.image, image_voxels, label=False, labels=None, labels_from=labels_from)
    if label_header is not None and case.label is not None:
        rows += _voxels(case, case.label, label_voxels, label=True, labels=labels, labels_from=labels_from)
    return rows


def _pair_issues(case: Case, image: VolumeHeader, label: VolumeHeader) -> list[Issue]:
    ishape, lshape = squeeze_shape(image.shape), squeeze_shape(label.shape)
    offset = grid_corner_offset_mm(image.affine, ishape, label.affine, lshape)
    fix = "resample the label onto the image grid (same shape and affine)"
    if ishape != lshape:
        return [Issue(case.case_id, str(label.path), f"label shape {lshape} differs from the image shape {ishape} (grid corners up to {offset:.2f} mm apart)", fix, "shape")]
    if not np.allclose(image.affine, label.affine, atol=1e-3):
        return [Issue(case.case_id, str(label.path), f"label affine differs from the image's: grid corners up to {offset:.2f} mm apart in world space", fix, "affine")]
    return []


def verify_dataset(
    root: str | Path,
    *,
    layout: str | None = None,
    include_test: bool = True,
    headers_only: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> VerifyReport:
    """Check every case of the dataset at ``root`` (any layout :func:`load_dataset` reads).

    Args:
        layout: force a layout; None detects it.
        include_test: check the test images too (their labels when present).
        headers_only: check listings, headers and grids only (no voxel reads: fast, less thorough).
        workers: threads reading files (default: up to 4).
        progress: show a progress bar (datasets of 10 cases or more).

    Returns:
        A :class:`VerifyReport`; ``report.ok`` is False when any problem was found.

    Raises:
        InputError / DatasetError: the folder is missing, matches no layout, or its dataset.json
            is unusable (no case can be listed at all).
    """
    start = time.perf_counter()
    dataset = load_dataset(root, layout=layout, strict=False)
    labels_from = "dataset.json" if (dataset.root / "dataset.json").is_file() else f"default {dataset.layout}"
    labels = None if dataset.labels_inferred else dataset.labels
    cases = dataset.training + (dataset.test if include_test else [])
    workers = workers or min(4, os.cpu_count() or 1)
    rows = list(dataset.issues)
    bar = tqdm(total=len(cases), desc="verify", unit="case", disable=not progress or len(cases) < _PROGRESS_FROM)
    with bar, cf.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_check_case, c, labels, labels_from, headers_only) for c in cases]
        for fut in futures:  # in case order: the table is stable
            rows += fut.result()
            bar.update(1)
    report = VerifyReport(dataset.root, dataset, rows)
    report.seconds = time.perf_counter() - start
    return report

