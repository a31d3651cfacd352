"""Case preprocessing (reorient -> crop to body -> resample -> normalise) and its exact inverse.

The :class:`CaseGeometry` recorded for each case is all that is needed to bring a prediction made
on the preprocessed grid back onto the input's grid, shape and affine.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .._fileio import atomic_path, read_json, write_json
from ..io.datasets import Case, Dataset
from ..io.image import Image, LabelMap, spacing_from_affine
from ..io.orientation import Reorientation
from .crop import body_bbox, mask_bbox
from .fingerprint import read_case
from .intensity import normalize
from .plan import Plan
from .resample import argmax_resampled, grid_for_spacing, resample_array, resample_labels

__all__ = [
    "CaseGeometry",
    "preprocess_image",
    "preprocess_label",
    "restore_labels",
    "preprocess_dataset",
    "load_preprocessed",
    "roi_box",
]

_LOCATIONS_PER_CLASS = 5_000


@dataclass(frozen=True)
class CaseGeometry:
    """How a case went from its input grid to the network grid (all affines voxel -> RAS mm)."""

    input_shape: tuple[int, int, int]
    input_affine: list[list[float]]
    crop: list[list[int]]  # [lo, hi) per canonical axis
    crop_affine: list[list[float]]
    resampled_shape: tuple[int, int, int]
    resampled_affine: list[list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseGeometry:
        return cls(
            input_shape=tuple(d["input_shape"]),  # type: ignore[arg-type]
            input_affine=d["input_affine"],
            crop=d["crop"],
            crop_affine=d["crop_affine"],
            resampled_shape=tuple(d["resampled_shape"]),  # type: ignore[arg-type]
            resampled_affine=d["resampled_affine"],
        )

    @property
    def reorientation(self) -> Reorientation:
        return Reorientation(np.asarray(self.input_affine), self.input_shape)

    @property
    def resampled_spacing(self) -> tuple[float, float, float]:
        """Voxel size (mm) of the network grid, per canonical axis."""
        return spacing_from_affine(np.asarray(self.resampled_affine, dtype=np.float64))

    @property
    def crop_slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(lo, hi) for lo, hi in self.crop)  # type: ignore[return-value]


def roi_box(mask: np.ndarray, affine: np.ndarray, margin_mm: float) -> tuple[slice, slice, slice] | None:
    """The crop of a cascade's fine stage: the box of ``mask`` (on the grid of ``affine``, in any
    orientation) grown by ``margin_mm``, as slices of the canonical (RAS) grid; ``None`` when empty."""
    reo = Reorientation(np.asarray(affine, dtype=np.float64), mask.shape)
    canonical = reo.apply(np.asarray(mask))
    return mask_bbox(canonical, spacing_from_affine(reo.target_affine), margin_mm)


def crop_box(canonical: np.ndarray, plan: Plan, box: tuple[slice, slice, slice] | None = None) -> tuple[slice, slice, slice]:
    """What preprocessing keeps of a canonical (RAS) CT in HU: the body's box, or ``box`` (the
    organ's, in canonical voxels) within the body's when they overlap."""
    body = body_bbox(canonical, plan.crop_threshold_hu)
    if box is not None:  # the organ's box, never beyond the body
        box = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(box, body))  # type: ignore[assignment]
        if any(s.stop <= s.start for s in box):
            box = None
    return body if box is None else box


def shifted_affine(affine: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    """The voxel -> mm affine of the sub-grid of ``affine``'s grid that starts at ``box``'s corner."""
    lo = np.array([s.start for s in box], dtype=np.float64)
    out = np.asarray(affine, dtype=np.float64).copy()
    out[:3, 3] = out[:3, :3] @ lo + out[:3, 3]
    return out


def preprocess_image(image: Image, plan: Plan, box: tuple[slice, slice, slice] | None = None) -> tuple[np.ndarray, CaseGeometry]:
    """Bring a CT (HU) onto the plan's grid; returns (float32 array, geometry).

    ``box`` (slices of the canonical grid, see :func:`roi_box`) replaces the crop to the body.
    """
    reo = Reorientation(image.affine, image.shape)
    canonical = reo.apply(np.asarray(image.array, dtype=np.float32))
    box = crop_box(canonical, plan, box)
    cropped = canonical[box]
    crop_affine = shifted_affine(reo.target_affine, box)
    res_affine, res_shape = grid_for_spacing(crop_affine, cropped.shape, plan.case_spacing(crop_affine, cropped.shape))
    resampled = resample_array(cropped, crop_affine, res_affine, res_shape, order=3)
    geometry = CaseGeometry(
        input_shape=image.shape,
        input_affine=image.affine.tolist(),
        crop=[[s.start, s.stop] for s in box],
        crop_affine=crop_affine.tolist(),
        resampled_shape=res_shape,
        resampled_affine=res_affine.tolist(),
    )
    return normalize(resampled, plan.normalization), geometry


def preprocess_label(label: LabelMap, geometry: CaseGeometry) -> np.ndarray:
    """Bring a label map onto the same grid as its image (per-label linear interpolation)."""
    canonical = geometry.reorientation.apply(label.array)
    cropped = canonical[geometry.crop_slices]
    return resample_labels(
        cropped, np.asarray(geometry.crop_affine), np.asarray(geometry.resampled_affine), geometry.resampled_shape
    )


def restore_labels(probabilities: np.ndarray, geometry: CaseGeometry) -> np.ndarray:
    """Class probabilities (C, *resampled_shape) -> uint8 labels on the input grid.

    Probabilities are resampled linearly per class onto the cropped input grid and the argmax is
    taken there (smoother than resampling a label map); outside the body crop is background.
    """
    reo = geometry.reorientation
    crop_shape = tuple(hi - lo for lo, hi in geometry.crop)
    labels_crop = argmax_resampled(
        probabilities, np.asarray(geometry.resampled_affine), np.asarray(geometry.crop_affine), crop_shape
    )
    canonical = np.zeros(reo.target_shape, dtype=np.uint8)
    canonical[geometry.crop_slices] = labels_crop
    return reo.invert(canonical)


def _class_locations(seg: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for value in np.unique(seg):
        if value == 0:
            continue
        coords = np.argwhere(seg == value)
        if len(coords) > _LOCATIONS_PER_CLASS:
            coords = coords[rng.choice(len(coords), _LOCATIONS_PER_CLASS, replace=False)]
        out[str(int(value))] = coords.astype(np.int32)
    return out


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, array)


def _preprocess_one(case: Case, plan: Plan, labels: dict[int, str], out_dir: Path, seed: int) -> str:
    image, label = read_case(case, labels)
    box = None
    if plan.crop == "roi" and label is not None:  # a cascade's fine stage trains on the organ's box
        box = roi_box(label.array > 0, label.affine, plan.roi_margin_mm)
    array, geometry = preprocess_image(image, plan, box)
    seg = preprocess_label(label, geometry) if label is not None else np.zeros(array.shape, np.uint8)
    locations = _class_locations(seg, np.random.default_rng(seed))
    _save_npy(out_dir / f"{case.case_id}_img.npy", array[None].astype(np.float32))
    _save_npy(out_dir / f"{case.case_id}_seg.npy", seg[None])
    with atomic_path(out_dir / f"{case.case_id}_locs.npz") as tmp:
        np.savez(tmp, **locations)
    write_json(out_dir / f"{case.case_id}.json", {"case_id": case.case_id, "geometry": geometry.to_dict()})
    return case.case_id


def preprocess_dataset(
    dataset: Dataset, plan: Plan, out_dir: str | Path, *, workers: int = 1, progress: bool = True
) -> list[str]:
    """Preprocess every training case into ``out_dir`` (cached: finished cases are skipped).

    Each case gives ``<id>_img.npy`` (1, X, Y, Z) float32, ``<id>_seg.npy`` (1, X, Y, Z) uint8,
    ``<id>_locs.npz`` (sampled voxel positions per foreground class) and ``<id>.json`` (geometry),
    the JSON written last so that an interrupted run redoes only unfinished cases.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [c for c in dataset.training if not (out_dir / f"{c.case_id}.json").is_file()]
    bar = tqdm(total=len(dataset.training), initial=len(dataset.training) - len(todo), desc="preprocess", unit="case", disable=not progress)
    with bar:
        if workers > 1 and len(todo) > 1:
            ctx = mp.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_preprocess_one, c, plan, dataset.labels, out_dir, i) for i, c in enumerate(todo)]
                for fut in cf.as_completed(futures):
                    fut.result()
                    bar.update(1)
        else:
            for i, case in enumerate(todo):
                _preprocess_one(case, plan, dataset.labels, out_dir, i)
                bar.update(1)
    return [c.case_id for c in dataset.training]


def load_preprocessed(out_dir: str | Path, case_id: str, *, mmap: bool = True) -> dict[str, Any]:
    """Load a cached case: image (1, X, Y, Z), seg (1, X, Y, Z), locations per class, geometry."""
    out_dir = Path(out_dir)
    mode = "r" if mmap else None
    with np.load(out_dir / f"{case_id}_locs.npz") as locs:
        locations = {int(k): locs[k] for k in locs.files}
    return {
        "case_id": case_id,
        "image": np.load(out_dir / f"{case_id}_img.npy", mmap_mode=mode),
        "seg": np.load(out_dir / f"{case_id}_seg.npy", mmap_mode=mode),
        "locations": locations,
        "geometry": CaseGeometry.from_dict(read_json(out_dir / f"{case_id}.json")["geometry"]),
    }
