"""One entry point for every image format: NIfTI, NRRD, MetaImage and DICOM series folders.

``read_image`` and ``read_label`` return an :class:`Image` / :class:`LabelMap` in NIfTI voxel order
(i, j, k) with a 4x4 RAS+ affine in mm, whatever the file format. NIfTI goes through nibabel
(:mod:`ctseg.io.nifti`); NRRD (.nrrd, .nhdr) and MetaImage (.mha, .mhd) through SimpleITK, whose
LPS geometry is converted exactly: ``affine = diag(-1, -1, 1, 1) @ [[D @ diag(spacing), origin],
[0, 1]]`` with ``D`` the ITK direction matrix; a folder is read as a DICOM series.

The same checks serve reading (the first problem raises :class:`InputError`) and ``ctseg verify``
(every problem becomes a row): :func:`header_problems` needs only the header,
:func:`voxel_problems` the voxels.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._copy import c_contiguous
from .image import Image, LabelMap, spacing_from_affine
from .nifti import load_nifti

__all__ = [
    "IMAGE_SUFFIXES",
    "image_suffix",
    "is_image_file",
    "Problem",
    "VolumeHeader",
    "read_header",
    "load_volume",
    "header_problems",
    "voxel_problems",
    "read_image",
    "read_label",
]

#: File name endings ``read_image`` accepts (a folder is read as a DICOM series).
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
#: Plausible voxel sizes in mm; outside this a header is broken (or in metres / microns).
MIN_SPACING_MM, MAX_SPACING_MM = 0.01, 100.0
#: Larger declared volumes are refused as corrupt headers (a 2048x1024x1024 float32 CT is 8 GiB).
MAX_VOLUME_BYTES = 16 * 2**30
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a volume: a short ``kind`` code, what was found, and the fix."""

    kind: str
    message: str
    fix: str

    def error(self, path: str | Path) -> InputError:
        return InputError(f"{path}: {self.message}; {self.fix}")


@dataclass
class VolumeHeader:
    """What a file's header says: shape in (i, j, k, ...) order, RAS affine, stored dtype."""

    path: Path
    shape: tuple[int, ...]
    affine: np.ndarray
    dtype: np.dtype
    meta: dict[str, Any] = field(default_factory=dict)


def image_suffix(path: str | Path) -> str | None:
    """The known suffix of ``path`` (``".nii.gz"``, ``".nrrd"``...) or None."""
    name = str(path).lower()
    return next((s for s in IMAGE_SUFFIXES if name.endswith(s)), None)


def is_image_file(path: str | Path) -> bool:
    """A visible file with one of :data:`IMAGE_SUFFIXES` (macOS ``._`` files are skipped)."""
    path = Path(path)
    return path.is_file() and not path.name.startswith(".") and image_suffix(path) is not None


def _unknown_format(path: Path) -> InputError:
    if path.suffix.lower() in (".dcm", ".ima"):
        return InputError(f"{path}: a single DICOM file; give the folder that holds the whole series")
    return InputError(
        f"{path}: unknown image format {path.suffix or '(no extension)'!r}; give a .nii, .nii.gz, .nrrd, "
        ".nhdr, .mha or .mhd file, or a folder holding one DICOM series"
    )


def _check_file(path: Path) -> str:
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    suffix = image_suffix(path)
    if suffix is None:
        raise _unknown_format(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); re-export or re-download it")
    return suffix


# --- NIfTI -------------------------------------------------------------------------------------


def _raw_nifti_problems(path: Path) -> list[Problem]:
    """Voxel sizes as stored (nibabel silently replaces a zero or negative pixdim by 1 or abs)."""
    import nibabel as nib
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(str(path)) as handle:
            raw = handle.read(540)
        size = int.from_bytes(raw[:4], "little")
        size = size if size in (348, 540) else int.from_bytes(raw[:4], "big")
        klass = nib.Nifti2Header if size == 540 else nib.Nifti1Header
        header = klass.from_fileobj(io.BytesIO(raw), check=False)
        if int(header["sform_code"]) > 0:
            return []
        ndim = max(1, min(int(header["dim"][0]), 3))
        pixdim = [float(v) for v in header["pixdim"][1 : 1 + ndim]]
    except Exception:  # unreadable headers are reported by the loader itself
        return []
    if all(v > 0 for v in pixdim):
        return []
    return [
        Problem(
            "spacing",
            f"voxel size {pixdim} mm in the header (pixdim) is zero or negative",
            "fix the header's pixdim or set an sform with the true voxel size",
        )
    ]


# --- SimpleITK (NRRD, MetaImage) ----------------------------------------------------------------


def _itk_affine(spacing: Any, origin: Any, direction: Any, dim: int) -> np.ndarray:
    """RAS affine of an ITK image (LPS); for a non-3D image the first three axes only."""
    n = min(dim, 3)
    d = np.eye(3)
    d[:n, :n] = np.asarray(direction, dtype=np.float64).reshape(dim, dim)[:n, :n]
    s = np.ones(3)
    s[:n] = np.asarray(spacing, dtype=np.float64)[:n]
    o = np.zeros(3)
    o[:n] = np.asarray(origin, dtype=np.float64)[:n]
    lps = np.eye(4)
    lps[:3, :3] = d @ np.diag(s)
    lps[:3, 3] = o
    return _LPS_TO_RAS @ lps


def _itk_error(path: Path, exc: Exception) -> InputError:
    line = next((ln for ln in str(exc).splitlines() if "ERROR:" in ln), "")
    reason = re.sub(r"^\w+\(0x[0-9a-f]+\):\s*", "", line.split("ERROR:", 1)[-1].strip())
    if not reason or "cannot be read" in reason or "No such file" in reason:
        reason = "incomplete data, or its data file is missing"
    return InputError(
        f"{path}: cannot read as {path.suffix.lstrip('.').upper()} ({reason}); the file may be truncated, "
        "corrupt or miss its data file, re-export or re-download it"
    )


def _itk_header(path: Path) -> VolumeHeader:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise _itk_error(path, exc) from None
    dim = reader.GetDimension()
    size = tuple(int(v) for v in reader.GetSize())
    try:
        dtype = np.dtype(sitk.GetArrayViewFromImage(sitk.Image([1] * dim, reader.GetPixelID())).dtype)
    except RuntimeError:  # a dimension SimpleITK cannot hold in memory (5D+)
        dtype = np.dtype(object)
    affine = _itk_affine(reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection(), dim)
    meta: dict[str, Any] = {"path": str(path), "format": path.suffix.lstrip(".").lower(), "raw_problems": []}
    if reader.GetNumberOfComponents() > 1:
        meta["raw_problems"].append(
            Problem("dimensions", f"holds {reader.GetNumberOfComponents()} values per voxel (colour or vector image)", "give a scalar CT volume (one value per voxel)")
        )
    if any(float(v) <= 0 for v in reader.GetSpacing()):  # ITK would silently take abs()
        meta["raw_problems"].append(
            Problem("spacing", f"voxel size {tuple(reader.GetSpacing())} mm in the header is zero or negative", "fix the header's spacing (directions carry the flips)")
        )
    return VolumeHeader(path, size, affine, dtype, meta)


def _itk_load(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    import SimpleITK as sitk

    header = _itk_header(path)  # refuses a bad header before any voxel is read
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise _itk_error(path, exc) from None
    array = sitk.GetArrayFromImage(img)  # (k, j, i[, components])
    comps = img.GetNumberOfComponentsPerPixel()
    spatial = array.ndim - (1 if comps > 1 else 0)
    order = tuple(reversed(range(spatial))) + ((spatial,) if comps > 1 else ())
    array = c_contiguous(array.transpose(order))
    affine = _itk_affine(img.GetSpacing(), img.GetOrigin(), img.GetDirection(), img.GetDimension())
    return array, affine, header.meta


# --- format-independent ---------------------------------------------------------------------------


def read_header(path: str | Path) -> VolumeHeader:
    """The header of a NIfTI / NRRD / MetaImage file, without reading its voxels.

    Raises:
        InputError: missing, empty, unknown format or unreadable header.
    """
    path = Path(path)
    suffix = _check_file(path)
    if suffix in _ITK_SUFFIXES:
        return _itk_header(path)
    img, _ = load_nifti(path, voxels=False)
    shape, dtype = tuple(int(s) for s in img.shape), np.dtype(img.get_data_dtype())
    meta = {"path": str(path), "format": "nifti", "raw_problems": _raw_nifti_problems(path) + _size_problems(path, img, shape, dtype)}
    return VolumeHeader(path, shape, np.asarray(img.affine, np.float64), dtype, meta)


def _size_problems(path: Path, img: Any, shape: tuple[int, ...], dtype: np.dtype) -> list[Problem]:
    """A header that declares more voxels than the file can hold (truncated, or a corrupt dim)."""
    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if declared > MAX_VOLUME_BYTES:
        return [Problem("truncated", f"the header declares shape {shape} ({declared / 2**30:.0f} GiB of voxels)", "the header's dim field is corrupt; re-export the file")]
    if not str(path).lower().endswith(".gz"):
        offset = int(getattr(img.dataobj, "offset", 0))
        if offset + declared > path.stat().st_size:
            return [Problem("truncated", f"the file holds {path.stat().st_size} bytes but its header declares {offset + declared}", "the file is truncated; re-export or re-download it")]
    return []


def load_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(array in (i, j, k, ...) order, RAS affine, meta) of a file, with no value checks."""
    path = Path(path)
    suffix = _check_file(path)
    if suffix in _ITK_SUFFIXES:
        return _itk_load(path)
    img, data = load_nifti(path)
    meta = {"path": str(path), "format": "nifti", "nifti_header": img.header.copy(), "raw_problems": _raw_nifti_problems(path)}
    return np.asarray(data), np.asarray(img.affine, np.float64), meta


def squeeze_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop trailing axes of length 1 beyond the third (a 4D NIfTI with one time point is 3D)."""
    shape = tuple(shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def header_problems(shape: tuple[int, ...], affine: np.ndarray, meta: dict[str, Any] | None = None) -> list[Problem]:
    """Problems visible from the header alone: dimensions, voxel size, affine."""
    out = list((meta or {}).get("raw_problems", []))
    shape = squeeze_shape(shape)
    if len(shape) != 3:
        what = {2: "2D (a single slice)", 4: "4D (a time series or several channels)"}.get(len(shape), f"{len(shape)}D")
        out.append(Problem("dimensions", f"is {what}, shape {shape}; a 3D volume is needed", "give one 3D CT volume per file (split 4D series, stack 2D slices)"))
        return out
    if min(shape) < 1:
        out.append(Problem("dimensions", f"has an empty axis, shape {shape}", "re-export the volume"))
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        out.append(Problem("affine", "the affine holds NaN or infinite values", "fix the header's sform/qform (or origin and spacing)"))
        return out
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        out.append(Problem("affine", "the affine is singular (zero voxel size or parallel axes)", "fix the header's sform/qform (or direction and spacing)"))
        return out
    spacing = spacing_from_affine(affine)
    if not out and not all(MIN_SPACING_MM <= s <= MAX_SPACING_MM for s in spacing):
        shown = tuple(round(s, 6) for s in spacing)
        out.append(
            Problem(
                "spacing",
                f"implausible voxel size {shown} mm (expected {MIN_SPACING_MM} to {MAX_SPACING_MM} mm)",
                "fix the header's spacing; sizes in metres or microns must be converted to mm",
            )
        )
    return out


def voxel_problems(array: np.ndarray, *, label: bool = False) -> list[Problem]:
    """Problems in the voxel values: NaN/inf; for a label map also fractional or negative values."""
    out: list[Problem] = []
    floating = np.issubdtype(array.dtype, np.floating)
    if floating and not np.all(np.isfinite(array)):
        n_bad = int(np.count_nonzero(~np.isfinite(array)))
        out.append(Problem("nan", f"holds {n_bad} NaN or infinite voxel(s)", "replace them (e.g. by the background value) before use"))
        return out
    if label:
        if floating and not np.array_equal(array, np.round(array)):
            out.append(Problem("label-values", "label values must be whole numbers, found fractional values (e.g. 0.5)", "give an integer label map, not a probability map or an image"))
        elif array.size and array.min() < 0:
            out.append(Problem("label-values", f"negative label value {array.min()}", "labels are 0 (background) and positive integers"))
        elif floating and array.size and array.max() > 32767:
            out.append(Problem("label-values", f"label value {array.max()} is out of range", "labels are small positive integers"))
    return out


def _read(path: str | Path, *, label: bool, series: str | int | None, dtype: Any) -> Image:
    path = Path(path)
    if path.is_dir():
        from .dicom import read_dicom_series  # the DICOM stack loads only when needed

        image = read_dicom_series(path, series=series)
        if label:
            return LabelMap(image.array, image.affine, image.meta)
        return image if dtype is None else image.with_array(image.array.astype(dtype, copy=False))
    if series is not None:
        raise InputError(f"{path}: 'series' applies to DICOM folders only; give the folder or drop the series choice")
    header = read_header(path)  # a broken header is refused before any voxel is read
    problems = header_problems(header.shape, header.affine, header.meta)
    if problems:
        raise problems[0].error(path)
    array, affine, meta = load_volume(path)
    problems = voxel_problems(array, label=label)
    if problems:
        raise problems[0].error(path)
    array = array.reshape(squeeze_shape(array.shape))
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    meta.pop("raw_problems", None)
    return (LabelMap if label else Image)(array, affine, meta)


def read_image(path: str | Path, *, series: str | int | None = None, dtype: Any = None) -> Image:
    """Read a CT volume from a NIfTI / NRRD / MetaImage file or a DICOM series folder.

    Args:
        path: a .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd file, or a folder holding a DICOM series.
        series: which series of a DICOM folder holding several (see ``read_dicom_series``).
        dtype: cast the voxels (e.g. ``np.float32``); None keeps the stored type.

    Returns:
        An :class:`Image` of shape (I, J, K) in HU for CT, its RAS affine in mm, and ``meta`` with
        ``path`` and ``format`` (``nifti_header`` for NIfTI, so outputs keep its geometry fields).

    Raises:
        InputError: missing or empty file, unknown format, unreadable or truncated data, not 3D,
            NaN/inf voxels, a singular affine or an implausible voxel size.
    """
    return _read(path, label=False, series=series, dtype=dtype)


def read_label(path: str | Path) -> LabelMap:
    """Read a label map (whole-number values >= 0) from any format :func:`read_image` reads.

    Raises:
        InputError: as :func:`read_image`, and for fractional or negative label values.
    """
    return _read(path, label=True, series=None, dtype=None)  # type: ignore[return-value]
