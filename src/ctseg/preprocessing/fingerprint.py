"""Dataset fingerprint: spacings, body-cropped and foreground sizes, foreground intensities (JSON-able)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..errors import InputError
from ..io.datasets import Case, Dataset
from ..io.image import Image, LabelMap
from ..io.orientation import reorient
from ..io.reader import read_image, read_label
from .crop import body_bbox, mask_bbox

__all__ = ["compute_fingerprint", "read_case", "check_pair"]

_SAMPLES_PER_CASE = 10_000


def check_pair(image: Image, label: LabelMap, labels: dict[int, str] | None = None) -> None:
    """Refuse an image/label pair whose grids differ or whose label values are not declared."""
    if image.shape != label.shape:
        raise InputError(
            f"{label.meta.get('path')}: label shape {label.shape} differs from image shape {image.shape} "
            f"({image.meta.get('path')}); the label must be on the image's grid"
        )
    if not np.allclose(image.affine, label.affine, atol=1e-3):
        corners = np.array([[i, j, k] for i in (0, image.shape[0] - 1) for j in (0, image.shape[1] - 1) for k in (0, image.shape[2] - 1)])
        offset = np.abs(image.voxel_to_world(corners) - label.voxel_to_world(corners)).max()
        raise InputError(
            f"{label.meta.get('path')}: label affine differs from the image's ({image.meta.get('path')}) "
            f"by up to {offset:.2f} mm at the grid corners; resample the label onto the image grid"
        )
    if labels is not None:
        found = set(np.unique(label.array).tolist())
        extra = sorted(found - set(labels))
        if extra:
            raise InputError(
                f"{label.meta.get('path')}: label values {extra} are not in dataset.json labels "
                f"{sorted(labels)}; fix the label map or add them to dataset.json"
            )


def read_case(case: Case, labels: dict[int, str] | None = None) -> tuple[Image, LabelMap | None]:
    """Read a case's image (float32 HU) and label (uint8), checked against each other."""
    image = read_image(case.image, dtype=np.float32)
    if case.label is None:
        return image, None
    label = read_label(case.label)
    check_pair(image, label, labels)
    label.array = label.array.astype(np.uint8, copy=False)
    return image, label


def _case_fingerprint(case: Case, labels: dict[int, str], seed: int, threshold: float) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    image, label = read_case(case, labels)
    if label is None:
        raise InputError(f"{case.image}: training case without a label file")
    image_c, label_c = reorient(image), reorient(label)
    box = body_bbox(image_c.array, threshold)
    img, seg = image_c.array[box], label_c.array[box]
    fg = img[seg > 0]
    box = mask_bbox(seg > 0, image_c.spacing)
    fg_extent = [0.0, 0.0, 0.0] if box is None else [(b.stop - b.start) * s for b, s in zip(box, image_c.spacing)]
    if fg.size > _SAMPLES_PER_CASE:
        fg = rng.choice(fg, _SAMPLES_PER_CASE, replace=False)
    return {
        "case_id": case.case_id,
        "spacing": list(image_c.spacing),
        "shape": list(image.shape),
        "cropped_shape": list(img.shape),
        "orientation": image.orientation,
        "labels_present": sorted(int(v) for v in np.unique(seg)),
        "foreground_extent_mm": [float(e) for e in fg_extent],
        "_foreground": fg,
    }


def compute_fingerprint(
    dataset: Dataset, *, crop_threshold_hu: float = -500.0, seed: int = 0, workers: int = 1, progress: bool = True
) -> dict[str, Any]:
    """Read every training case once and summarise what the plan needs.

    Spacings and shapes are given in the canonical (RAS) axis order. Each case samples its
    foreground intensities with its own seed, so the result does not depend on ``workers``.
    """
    jobs = [(case, dataset.labels, seed * 100_003 + i, crop_threshold_hu) for i, case in enumerate(dataset.training)]
    bar = tqdm(total=len(jobs), desc="fingerprint", unit="case", disable=not progress)
    with bar:
        if workers > 1 and len(jobs) > 1:
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(_case_fingerprint, *job) for job in jobs]
                for fut in cf.as_completed(futures):
                    fut.result()  # re-raise a bad case's error at once
                    bar.update(1)
                results = [fut.result() for fut in futures]
        else:
            results = []
            for job in jobs:
                results.append(_case_fingerprint(*job))
                bar.update(1)
    samples = [info.pop("_foreground") for info in results]
    cases = results
    fg = np.concatenate(samples) if samples else np.zeros(0, np.float32)
    if fg.size == 0:
        raise InputError(f"{dataset.root}: no foreground voxels in any training label; check labelsTr")
    spacings = np.array([c["spacing"] for c in cases])
    extents = np.array([np.array(c["cropped_shape"]) * np.array(c["spacing"]) for c in cases])
    return {
        "dataset": dataset.name,
        "num_cases": len(cases),
        "labels": {str(k): v for k, v in dataset.labels.items()},
        "median_spacing": np.median(spacings, axis=0).tolist(),
        "spacing_p10": np.percentile(spacings, 10, axis=0).tolist(),
        "median_extent_mm": np.median(extents, axis=0).tolist(),
        "median_foreground_extent_mm": np.median([c["foreground_extent_mm"] for c in cases], axis=0).tolist(),
        "intensity": {
            "mean": float(fg.mean()),
            "std": float(fg.std()),
            "min": float(fg.min()),
            "max": float(fg.max()),
            "p00_5": float(np.percentile(fg, 0.5)),
            "p99_5": float(np.percentile(fg, 99.5)),
        },
        "cases": cases,
    }
