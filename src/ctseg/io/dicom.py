"""DICOM CT series: find the series in a folder and read one into an :class:`Image`.

Slices are grouped by SeriesInstanceUID (and by geometry: orientation, pixel spacing, rows and
columns, which also separates de-identified series whose UIDs are empty), sorted by
ImagePositionPatient projected on the slice normal (never by file name) and rescaled to HU with
RescaleSlope/RescaleIntercept. Compressed transfer syntaxes (JPEG 2000, JPEG-LS, JPEG) are decoded
by pydicom's pylibjpeg plugins.

Geometry: DICOM patient coordinates are LPS; the returned affine is RAS (x and y negated). Array
axes are i = along a row (column index), j = down a column (row index), k = slice order along the
normal ``row x column`` of ImageOrientationPatient, so the affine is always right-handed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .image import Image

__all__ = [
    "SeriesInfo",
    "list_dicom_series",
    "read_dicom_series",
    "select_series",
    "is_dicom_file",
    "is_dicom_folder",
    "LPS_TO_RAS",
]

#: Multiply a 4x4 LPS affine (or LPS points) by this to get RAS, and back (it is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: SOP classes / modalities that hold no image slices (skipped when listing series).
_NON_IMAGE_MODALITIES = {"RTSTRUCT", "SEG", "SR", "RTPLAN", "PR", "KO", "REG", "RTRECORD", "DOC"}
_GEOMETRY_DECIMALS = 4


@dataclass(frozen=True)
class SeriesInfo:
    """One series found in a folder (read from headers only).

    Attributes:
        index: position in the list that :func:`list_dicom_series` returns (choose with ``series=``).
        uid: SeriesInstanceUID ("" when the files were de-identified without one).
        description: SeriesDescription ("" when absent).
        modality: Modality, e.g. "CT".
        slices: number of image files in the series.
        rows, columns: slice size in pixels.
        files: the files, in folder-listing order (not yet sorted by position).
    """

    index: int
    uid: str
    description: str
    modality: str
    slices: int
    rows: int
    columns: int
    number: int | None = None
    files: tuple[Path, ...] = field(default=(), repr=False)

    def label(self) -> str:
        """One line for listings: index, uid, description, modality and slice count."""
        uid = self.uid or "(no SeriesInstanceUID)"
        desc = f" '{self.description}'" if self.description else ""
        return f"[{self.index}] {uid}{desc} {self.modality or '?'}, {self.slices} slice(s) {self.rows}x{self.columns}"


def is_dicom_file(path: Path) -> bool:
    """True when ``path`` is a file with the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _candidate_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def is_dicom_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder holding at least one DICOM file (searched recursively)."""
    folder = Path(path)
    return folder.is_dir() and any(is_dicom_file(p) for p in _candidate_files(folder))


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == count and all(np.isfinite(out)) else None


@dataclass(frozen=True)
class _Header:
    path: Path
    series_uid: str
    modality: str
    description: str
    number: int | None
    rows: int
    columns: int
    orientation: tuple[float, ...] | None
    spacing: tuple[float, ...] | None

    def key(self) -> tuple:
        geometry = (
            None if self.orientation is None else tuple(np.round(self.orientation, _GEOMETRY_DECIMALS)),
            None if self.spacing is None else tuple(np.round(self.spacing, _GEOMETRY_DECIMALS)),
            self.rows,
            self.columns,
        )
        number = self.number if not self.series_uid else None
        return (self.series_uid, self.modality, number, geometry)


def _scan(folder: Path) -> tuple[list[_Header], dict[str, int]]:
    """Headers of the image files in ``folder`` and a count of skipped non-image DICOM objects."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    headers: list[_Header] = []
    skipped: dict[str, int] = {}
    for path in _candidate_files(folder):
        if not is_dicom_file(path):
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as exc:
            raise InputError(f"{path}: unreadable DICOM file ({type(exc).__name__}: {exc}); remove or replace it") from None
        modality = str(ds.get("Modality", "") or "").upper()
        if modality in _NON_IMAGE_MODALITIES or "Rows" not in ds or "Columns" not in ds:
            skipped[modality or "non-image"] = skipped.get(modality or "non-image", 0) + 1
            continue
        number = ds.get("SeriesNumber")
        headers.append(
            _Header(
                path=path,
                series_uid=str(ds.get("SeriesInstanceUID", "") or "").strip(),
                modality=modality,
                description=str(ds.get("SeriesDescription", "") or "").strip(),
                number=int(number) if number not in (None, "") else None,
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                orientation=_floats(ds.get("ImageOrientationPatient"), 6),
                spacing=_floats(ds.get("PixelSpacing"), 2),
            )
        )
    return headers, skipped


def list_dicom_series(folder: str | Path) -> list[SeriesInfo]:
    """The image series found under ``folder`` (recursively), ordered by SeriesNumber then UID.

    Non-image objects (RTSTRUCT, SEG, SR, ...) and non-DICOM files are skipped. Files whose
    SeriesInstanceUID is empty are grouped by geometry (orientation, pixel spacing, rows/columns)
    and SeriesNumber.

    Raises:
        InputError: ``folder`` is not a folder, or a DICOM file in it cannot be parsed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; give the folder that holds the DICOM slices")
    headers, _ = _scan(folder)
    return _group(headers)


def _group(headers: list[_Header]) -> list[SeriesInfo]:
    groups: dict[tuple, list[_Header]] = {}
    for h in headers:
        groups.setdefault(h.key(), []).append(h)
    ordered = sorted(groups.values(), key=lambda g: (g[0].number if g[0].number is not None else 1 << 30, g[0].series_uid, g[0].description, str(g[0].path)))
    return [
        SeriesInfo(
            index=i,
            uid=g[0].series_uid,
            description=g[0].description,
            modality=g[0].modality,
            slices=len(g),
            rows=g[0].rows,
            columns=g[0].columns,
            number=g[0].number,
            files=tuple(h.path for h in g),
        )
        for i, g in enumerate(ordered)
    ]


def _listing(folder: Path, series: Sequence[SeriesInfo]) -> str:
    lines = "; ".join(s.label() for s in series)
    return (
        f"{folder}: holds {len(series)} image series: {lines}. Choose one with series=UID or series=INDEX "
        "(command line: --series UID|INDEX)"
    )


def select_series(folder: str | Path, series: str | int | None = None) -> SeriesInfo:
    """The one series of ``folder`` that ``series`` names (a SeriesInstanceUID or a list index).

    With ``series=None`` the folder must hold exactly one image series.

    Raises:
        InputError: no image series, several and none chosen, or ``series`` matches none (the
            message lists the series with their index, UID, description and slice count).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; give the folder that holds the DICOM slices")
    headers, skipped = _scan(folder)
    found = _group(headers)
    if not found:
        extra = f" (only non-image objects: {', '.join(f'{n} {k}' for k, n in sorted(skipped.items()))})" if skipped else ""
        raise InputError(f"{folder}: no DICOM image slices found{extra}; give the folder of the CT series")
    if series is None:
        if len(found) > 1:
            raise InputError(_listing(folder, found))
        return found[0]
    if isinstance(series, str) and not series.strip().isdigit():
        matches = [s for s in found if s.uid == series.strip()]
        if len(matches) == 1:
            return matches[0]
        why = "matches several geometry groups" if matches else "matches no series"
        raise InputError(f"series={series!r} {why}. " + _listing(folder, found))
    index = int(series)
    if not 0 <= index < len(found):
        raise InputError(f"series index {index} is out of range. " + _listing(folder, found))
    return found[index]


def read_dicom_series(folder: str | Path, series: str | int | None = None) -> Image:
    """Read one CT series from ``folder`` into an :class:`Image` in HU with its exact RAS affine.

    Args:
        folder: a folder holding the slices (sub-folders are searched too).
        series: SeriesInstanceUID or index from :func:`list_dicom_series`; needed only when the
            folder holds several series.

    Returns:
        An Image of shape (columns, rows, slices); int16 when RescaleSlope/Intercept are whole
        numbers and the HU fit, else float32. ``meta["dicom"]`` holds the UIDs, the sorted file
        list and the patient/study identifiers (used to write DICOM-SEG and RTSTRUCT).

    Raises:
        InputError: several series and none chosen, non-CT modality, multi-frame files, slices
            that disagree on orientation/spacing/size, gantry tilt, missing slices, uneven slice
            spacing, duplicate positions, or pixel data that cannot be decoded.
    """
    from ._dicom_geometry import series_geometry

    folder = Path(folder)
    info = select_series(folder, series)
    if info.modality and info.modality != "CT":
        raise InputError(
            f"{folder}: series {info.uid or info.index} has modality {info.modality}, not CT; ctseg segments CT only "
            "(choose the CT series with --series, or convert the images yourself if you know they are CT)"
        )
    datasets = _read_datasets(info.files)
    geometry = series_geometry(folder, datasets, info.files)
    slices = [_hu_slice(datasets[i], info.files[i]) for i in geometry.order]
    volume = np.stack([s.T for s in slices], axis=-1)
    volume = _compact_dtype(volume)
    first = datasets[geometry.order[0]]
    meta = {
        "path": str(folder),
        "dicom": {
            "series_uid": info.uid,
            "study_uid": str(first.get("StudyInstanceUID", "") or ""),
            "frame_of_reference_uid": str(first.get("FrameOfReferenceUID", "") or ""),
            "modality": info.modality,
            "description": info.description,
            "files": [str(info.files[i]) for i in geometry.order],
            "sop_instance_uids": [str(datasets[i].get("SOPInstanceUID", "") or "") for i in geometry.order],
            "patient_id": str(first.get("PatientID", "") or ""),
            "patient_name": str(first.get("PatientName", "") or ""),
        },
    }
    return Image(volume, geometry.affine, meta)


def _read_datasets(files: Sequence[Path]) -> list[Any]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    out = []
    for path in files:
        try:
            ds = pydicom.dcmread(path)
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            raise InputError(f"{path}: unreadable DICOM file ({type(exc).__name__}: {exc}); remove or replace it") from None
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames != 1:
            raise InputError(
                f"{path}: a multi-frame (enhanced) DICOM object with {frames} frames; ctseg reads single-frame "
                "CT Image Storage series; convert it to NIfTI (e.g. with dcm2niix) first"
            )
        if "PixelData" not in ds:
            raise InputError(f"{path}: has no pixel data; it is not an image slice, move it out of the series folder")
        out.append(ds)
    return out


def _hu_slice(ds: Any, path: Path) -> np.ndarray:
    """One slice as HU (float64 when rescaled with fractions, else int32), shape (rows, columns)."""
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise InputError(f"{path}: colour image (SamplesPerPixel {ds.SamplesPerPixel}); CT slices are greyscale")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # decoders raise many types (RuntimeError, NotImplementedError, ValueError)
        syntax = ds.file_meta.get("TransferSyntaxUID", "?")
        name = getattr(syntax, "name", str(syntax))
        raise InputError(
            f"{path}: cannot decode pixel data with transfer syntax {name} ({type(exc).__name__}: {exc}); "
            "install the decoders: pip install pylibjpeg pylibjpeg-openjpeg pylibjpeg-libjpeg"
        ) from None
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    if slope.is_integer() and intercept.is_integer():
        return pixels.astype(np.int32) * int(slope) + int(intercept)
    return pixels.astype(np.float64) * slope + intercept


def _compact_dtype(volume: np.ndarray) -> np.ndarray:
    if np.issubdtype(volume.dtype, np.integer):
        if volume.min() >= np.iinfo(np.int16).min and volume.max() <= np.iinfo(np.int16).max:
            return volume.astype(np.int16)
        return volume.astype(np.int32)
    return volume.astype(np.float32)
