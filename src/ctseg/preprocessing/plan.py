"""Plan: the dataset fingerprint + plan settings -> spacing, patch, normalisation and network."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import PlanSettings
from ..errors import RunFolderError
from .intensity import normalization_params

__all__ = ["Plan", "make_plan", "LOCATOR_DIR"]

LOCATOR_DIR = "locator"  # a cascade run keeps its locator run folder under this name


@dataclass(frozen=True)
class Plan:
    """Everything preprocessing and the network need, in canonical (RAS) axis order."""

    spacing: tuple[float, float, float]
    patch_size: tuple[int, int, int]
    median_shape: tuple[int, int, int]
    normalization: dict[str, Any]
    crop_threshold_hu: float
    labels: dict[int, str]
    network: dict[str, Any]
    crop: str = "body"  # "body": the whole body; "roi": the organ's box + roi_margin_mm (cascade)
    roi_margin_mm: float = 0.0

    @property
    def num_classes(self) -> int:
        return max(self.labels) + 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["labels"] = {str(k): v for k, v in self.labels.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            spacing=tuple(data["spacing"]),  # type: ignore[arg-type]
            patch_size=tuple(data["patch_size"]),  # type: ignore[arg-type]
            median_shape=tuple(data["median_shape"]),  # type: ignore[arg-type]
            normalization=dict(data["normalization"]),
            crop_threshold_hu=float(data["crop_threshold_hu"]),
            labels={int(k): v for k, v in data["labels"].items()},
            network=dict(data["network"]),
            crop=str(data.get("crop", "body")),
            roi_margin_mm=float(data.get("roi_margin_mm", 0.0)),
        )


def _extent_mm(fp: dict[str, Any], settings: PlanSettings, roi: bool) -> np.ndarray:
    """Median extent of what the network sees: the body, or the organ box plus its margins."""
    body = np.asarray(fp["median_extent_mm"], dtype=np.float64)
    if not roi:
        return body
    if "median_foreground_extent_mm" not in fp:
        raise RunFolderError("fingerprint.json has no foreground extents (made by an older ctseg); delete it to recompute")
    organ = np.asarray(fp["median_foreground_extent_mm"], dtype=np.float64) + 2 * settings.roi_margin_mm
    return np.minimum(organ, body)


def _target_spacing(fp: dict[str, Any], settings: PlanSettings, extent: np.ndarray) -> np.ndarray:
    if settings.target_spacing is not None:
        return np.asarray(settings.target_spacing, dtype=np.float64)
    spacing = np.asarray(fp["median_spacing"], dtype=np.float64)
    worst = int(np.argmax(spacing))
    others = np.delete(spacing, worst)
    if spacing[worst] > 3 * others.max():  # very anisotropic: nnU-Net takes the 10th percentile
        spacing[worst] = max(fp["spacing_p10"][worst], 3 * others.max())
    budget = settings.max_median_voxels
    while budget is not None and np.prod(extent / spacing) > budget:
        finest = spacing <= spacing.min() * 1.01
        spacing[finest] *= 1.05
    return spacing


def _stages(patch: np.ndarray, spacing: np.ndarray, max_stages: int) -> tuple[list[list[int]], list[list[int]]]:
    """Strides and kernel sizes per stage (nnU-Net rules: pool an axis while it stays >= 4 voxels
    and its spacing is within 2x of the finest; 1-wide kernels on very coarse axes)."""
    strides, kernels = [[1, 1, 1]], []
    size, sp = patch.astype(float), spacing.astype(float)
    for _ in range(max_stages - 1):
        kernels.append([3 if s <= 2 * sp.min() else 1 for s in sp])
        stride = [2 if (size[a] >= 8 and sp[a] <= 2 * sp.min()) else 1 for a in range(3)]
        if max(stride) == 1:
            break
        strides.append(stride)
        size, sp = size / np.array(stride), sp * np.array(stride)
    kernels.append([3 if s <= 2 * sp.min() else 1 for s in sp])
    return strides, kernels[: len(strides)]


def _patch_size(median_shape: np.ndarray, spacing: np.ndarray, settings: PlanSettings) -> np.ndarray:
    if settings.patch_size is not None:
        return np.asarray(settings.patch_size)
    patch = np.maximum(median_shape, 8).astype(float)
    while np.prod(patch) > settings.max_patch_voxels:
        extent = patch * spacing
        axis = int(np.argmax(extent))
        patch[axis] = max(8.0, math.floor(patch[axis] * 0.9))
    return patch.astype(int)


def make_plan(fingerprint: dict[str, Any], settings: PlanSettings, *, roi: bool = False) -> Plan:
    """Derive the plan from a fingerprint (see :func:`compute_fingerprint`).

    With ``roi`` (a cascade's fine stage) the network sees the organ's box grown by
    ``settings.roi_margin_mm`` instead of the whole body: spacing and patch follow that extent.
    """
    extent = _extent_mm(fingerprint, settings, roi)
    spacing = _target_spacing(fingerprint, settings, extent)
    median_shape = np.round(extent / spacing).astype(int)
    patch = _patch_size(median_shape, spacing, settings)
    strides, kernels = _stages(patch, spacing, settings.max_stages)
    divisor = np.prod(np.array(strides), axis=0)
    patch = np.maximum(divisor, (patch // divisor) * divisor)
    features = [min(settings.base_features * 2**i, settings.max_features) for i in range(len(strides))]
    labels = {int(k): v for k, v in fingerprint["labels"].items()}
    return Plan(
        spacing=tuple(round(float(s), 4) for s in spacing),  # type: ignore[arg-type]
        patch_size=tuple(int(p) for p in patch),  # type: ignore[arg-type]
        median_shape=tuple(int(s) for s in median_shape),  # type: ignore[arg-type]
        normalization=normalization_params(fingerprint, settings.normalization, settings.window, equalize=settings.histogram_equalization),
        crop_threshold_hu=settings.crop_threshold_hu,
        labels=labels,
        network={"features": features, "strides": strides, "kernel_sizes": kernels},
        crop="roi" if roi else "body",
        roi_margin_mm=float(settings.roi_margin_mm) if roi else 0.0,
    )
