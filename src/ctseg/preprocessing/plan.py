"""Plan: the dataset fingerprint + plan settings -> spacing, patch, normalisation and network.

A 2D plan (``PlanSettings.spatial_dims == 2``) serves a network on axial slices: the canonical
cranio-caudal axis k keeps each case's native spacing (slices are never interpolated), each
slice is resampled in-plane (to a target spacing, or with ``slice_size`` to a fixed matrix that
the body box fits), and the patch, strides and kernels are 2D.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import PlanSettings
from ..errors import InputError, RunFolderError
from ..io.image import spacing_from_affine
from .intensity import normalization_params

__all__ = ["Plan", "make_plan", "LOCATOR_DIR"]

LOCATOR_DIR = "locator"  # a cascade run keeps its locator run folder under this name


@dataclass(frozen=True)
class Plan:
    """Everything preprocessing and the network need, in canonical (RAS) axis order.

    In 2D (``spatial_dims == 2``) ``patch_size`` and the network are in-plane (axes i, j),
    ``spacing[2]`` is the median native slice spacing (each case keeps its own), and with
    ``slice_size`` the in-plane spacing is each case's own too (``spacing[:2]`` is the median).
    """

    spacing: tuple[float, float, float]
    patch_size: tuple[int, ...]
    median_shape: tuple[int, int, int]
    normalization: dict[str, Any]
    crop_threshold_hu: float
    labels: dict[int, str]
    network: dict[str, Any]
    crop: str = "body"  # "body": the whole body; "roi": the organ's box + roi_margin_mm (cascade)
    roi_margin_mm: float = 0.0
    spatial_dims: int = 3
    slice_size: tuple[int, int] | None = None

    def case_spacing(self, affine: np.ndarray, shape: tuple[int, ...]) -> tuple[float, float, float]:
        """The spacing (mm) to resample a canonical (RAS) crop with voxel -> mm ``affine`` and
        ``shape`` to: the plan's spacing in 3D; in 2D the crop's own slice spacing along k and, with
        ``slice_size``, the in-plane spacing (square pixels) at which the crop just fits the matrix."""
        if self.spatial_dims == 3:
            return self.spacing
        native = np.asarray(spacing_from_affine(affine))
        if self.slice_size is None:
            return (self.spacing[0], self.spacing[1], float(native[2]))
        extent = native[:2] * np.asarray(shape[:2], dtype=np.float64)
        pixel = float(np.max(extent / np.asarray(self.slice_size, dtype=np.float64)))
        return (pixel, pixel, float(native[2]))

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
            spatial_dims=int(data.get("spatial_dims", 3)),
            slice_size=tuple(data["slice_size"]) if data.get("slice_size") else None,  # type: ignore[arg-type]
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
    strides, kernels = [[1] * len(patch)], []
    size, sp = patch.astype(float), spacing.astype(float)
    for _ in range(max_stages - 1):
        kernels.append([3 if s <= 2 * sp.min() else 1 for s in sp])
        stride = [2 if (size[a] >= 8 and sp[a] <= 2 * sp.min()) else 1 for a in range(len(sp))]
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
    if settings.spatial_dims not in (2, 3):
        raise InputError(f"plan.spatial_dims must be 2 (a network on axial slices) or 3, got {settings.spatial_dims!r}")
    if settings.spatial_dims == 2:
        return _make_plan_2d(fingerprint, settings, roi=roi)
    if settings.slice_size is not None:
        raise InputError("plan.slice_size applies to 2D plans only; set plan.spatial_dims=2 as well, or drop plan.slice_size")
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


def _check_size(value: tuple[int, ...] | None, name: str, example: str) -> np.ndarray | None:
    if value is None:
        return None
    if len(value) != 2 or not all(isinstance(v, int) and v >= 8 for v in value):
        raise InputError(f"plan.{name} of a 2D plan must be two in-plane sizes of at least 8 pixels, e.g. {example}; got {list(value)}")
    return np.asarray(value, dtype=np.int64)


def _make_plan_2d(fingerprint: dict[str, Any], settings: PlanSettings, *, roi: bool) -> Plan:
    """A plan for a 2D network on axial slices (see the module docstring)."""
    if roi:
        raise InputError("a cascade (cascade.enabled) needs a 3D plan; set plan.spatial_dims=3 or turn the cascade off")
    slice_size = _check_size(settings.slice_size, "slice_size", "[256, 256]")
    patch_setting = _check_size(settings.patch_size, "patch_size", "[256, 256]")
    extent = np.asarray(fingerprint["median_extent_mm"], dtype=np.float64)
    slice_mm = float(fingerprint["median_spacing"][2])
    if slice_size is not None:  # the median body box just fits the matrix, square pixels
        inplane = np.full(2, np.max(extent[:2] / slice_size))
    elif settings.target_spacing is not None:
        inplane = np.asarray(settings.target_spacing[:2], dtype=np.float64)
    else:
        inplane = np.asarray(fingerprint["median_spacing"][:2], dtype=np.float64)
        budget = settings.max_median_voxels
        while budget is not None and np.prod(extent[:2] / inplane) * extent[2] / slice_mm > budget:
            inplane = inplane * 1.05
    spacing = np.array([inplane[0], inplane[1], slice_mm])
    median_shape = np.round(extent / spacing).astype(int)
    if patch_setting is not None:
        patch = patch_setting
    elif slice_size is not None:
        patch = slice_size
    else:
        patch = _patch_size(median_shape[:2], inplane, settings)
    strides, kernels = _stages(np.asarray(patch), inplane, settings.max_stages)
    divisor = np.prod(np.array(strides), axis=0)
    patch = np.maximum(divisor, (patch // divisor) * divisor)
    features = [min(settings.base_features * 2**i, settings.max_features) for i in range(len(strides))]
    return Plan(
        spacing=tuple(round(float(s), 4) for s in spacing),  # type: ignore[arg-type]
        patch_size=tuple(int(p) for p in patch),
        median_shape=tuple(int(s) for s in median_shape),  # type: ignore[arg-type]
        normalization=normalization_params(fingerprint, settings.normalization, settings.window, equalize=settings.histogram_equalization),
        crop_threshold_hu=settings.crop_threshold_hu,
        labels={int(k): v for k, v in fingerprint["labels"].items()},
        network={"features": features, "strides": strides, "kernel_sizes": kernels},
        spatial_dims=2,
        slice_size=None if slice_size is None else (int(slice_size[0]), int(slice_size[1])),
    )
