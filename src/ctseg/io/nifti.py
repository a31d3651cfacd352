"""NIfTI reading and writing with nibabel, keeping the exact affine and header."""

from __future__ import annotations

import contextlib
import gzip
import logging
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import nibabel as nib
import numpy as np

from .._fileio import atomic_path
from ..errors import InputError
from .image import Image, LabelMap

__all__ = ["read_nifti", "load_nifti", "write_nifti", "is_nifti", "NIFTI_SUFFIXES"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def read_nifti(path: str | Path, *, label: bool = False, dtype: Any = None) -> Image:
    """Read a 3D NIfTI file into an :class:`Image` (or :class:`LabelMap` with ``label=True``).

    The affine is nibabel's best affine (sform when set, else qform). A 4D file whose last axis has
    length 1 is squeezed to 3D. The original header is kept in ``meta["nifti_header"]`` so that
    outputs can be written with the same geometry fields.

    Raises:
        InputError: the file is missing, not NIfTI, truncated, not 3D, or holds NaN/inf values.
    """
    path = Path(path)
    img, loaded = load_nifti(path)
    data = cast(np.ndarray, loaded)  # voxels=True always gives an array
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(
            f"{path}: expected a 3D volume, found shape {data.shape}; split 4D series or stack 2D slices first"
        )
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
        raise InputError(f"{path}: holds NaN or infinite values; fix or mask them before use")
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    meta = {"path": str(path), "nifti_header": img.header.copy()}
    cls = LabelMap if label else Image
    return cls(np.asarray(data), img.affine, meta)


_QUIET = threading.local()


def _drop_while_quiet(record: logging.LogRecord) -> bool:
    return not getattr(_QUIET, "active", False)


nib.imageglobals.logger.addFilter(_drop_while_quiet)


@contextlib.contextmanager
def _quiet_header_fixups() -> Iterator[None]:
    """Silence nibabel's header fix-up messages (e.g. "pixdim[1,2,3] should be positive") in this
    thread: ``ctseg.io.reader`` checks those header fields itself and reports them as errors."""
    _QUIET.active = True
    try:
        yield
    finally:
        _QUIET.active = False


def load_nifti(path: str | Path, *, voxels: bool = True) -> tuple[nib.Nifti1Image | nib.Nifti2Image, np.ndarray | None]:
    """Load a NIfTI file's image object and voxel array (any number of dimensions, no value checks).

    With ``voxels=False`` only the header is read (fast, even for .nii.gz) and the array is None.

    Raises:
        InputError: the file is missing, a folder, not NIfTI, truncated or corrupt.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a NIfTI file (.nii or .nii.gz)")
    try:
        with _quiet_header_fixups():
            img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise InputError(f"{path}: not a NIfTI image (nibabel read it as {type(img).__name__})")
        data = np.asanyarray(img.dataobj) if voxels else None
    except InputError:
        raise
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, MemoryError, nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError) as exc:
        raise InputError(
            f"{path}: cannot read as NIfTI ({type(exc).__name__}: {' '.join(str(exc).split())}); the file may be truncated "
            "or corrupt, re-export or re-download it"
        ) from None
    return img, data


def write_nifti(image: Image, path: str | Path, *, dtype: Any = None, like: Image | None = None) -> Path:
    """Write ``image`` to ``path`` atomically.

    When ``like`` (or ``image`` itself) carries an original NIfTI header, its geometry fields
    (sform/qform codes, units) are reused so that the output opens on exactly the same grid as the
    input in any viewer.
    """
    path = Path(path)
    data = image.array if dtype is None else image.array.astype(dtype, copy=False)
    source = like if like is not None else image
    header = source.meta.get("nifti_header")
    if header is not None and np.allclose(header.get_best_affine(), image.affine, atol=1e-6):
        header = header.copy()
        header.set_data_dtype(data.dtype)
        header.set_slope_inter(1.0, 0.0)
        out = nib.Nifti1Image(data, header.get_best_affine(), header=header)
    else:
        out = nib.Nifti1Image(data, image.affine)
        out.header.set_data_dtype(data.dtype)
        out.set_qform(image.affine, code=1)
        out.set_sform(image.affine, code=1)
    out.header.set_xyzt_units("mm", "sec")
    if isinstance(image, LabelMap) or np.issubdtype(data.dtype, np.integer):
        out.header.set_slope_inter(1.0, 0.0)
    with atomic_path(path) as tmp:
        nib.save(out, str(tmp))
    return path
