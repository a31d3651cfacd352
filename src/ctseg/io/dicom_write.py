"""Write an :class:`Image` as a DICOM CT Image Storage series (one file per slice).

Pixels are stored as int16 with RescaleSlope/RescaleIntercept giving HU; geometry is exact for
any orthogonal affine (RAS in, LPS in the files). New UIDs come from ``pydicom.uid.generate_uid``.
The series is written into a temporary folder beside the target and renamed into place, so a
failed write never leaves a partial series.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._dicom_geometry import slice_layout
from .image import Image

__all__ = ["write_dicom_series", "DicomIdentity", "atomic_folder", "format_ds"]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@dataclass(frozen=True)
class DicomIdentity:
    """Patient and study fields written into every slice (all optional; UIDs are generated when empty)."""

    patient_name: str = "ANONYMOUS"
    patient_id: str = "CTSEG"
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_instance_uid: str = ""
    study_id: str = "1"
    study_description: str = ""
    accession_number: str = ""
    series_description: str = "ctseg"
    series_number: int = 1
    frame_of_reference_uid: str = ""


def format_ds(value: float) -> str:
    """A float as a DICOM decimal string (at most 16 characters, as precise as that allows)."""
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


@contextmanager
def atomic_folder(target: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a new temporary folder beside ``target``; on success it replaces ``target``.

    An existing empty folder is replaced; a non-empty one only with ``overwrite=True`` (it is
    removed after the new folder is in place). On any exception the temporary folder is removed.

    Raises:
        InputError: ``target`` is a file, or a non-empty folder and ``overwrite`` is False.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: is a file; give a folder name for the DICOM series")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise InputError(f"{target}: folder exists and is not empty; give a new folder, remove this one, or overwrite it (--overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _storage(array: np.ndarray, source: str) -> tuple[np.ndarray, float, float]:
    """int16 stored values and (slope, intercept) with ``HU = stored * slope + intercept``.

    Whole-number HU in the int16 range are stored exactly (slope 1, intercept 0); other values are
    quantised linearly over the int16 range (error at most slope / 2).
    """
    if array.size == 0:
        raise InputError(f"{source}: empty image; nothing to write")
    values = np.asarray(array)
    if np.issubdtype(values.dtype, np.floating) and not np.all(np.isfinite(values)):
        raise InputError(f"{source}: holds NaN or infinite values; fix them before writing DICOM")
    lo, hi = float(values.min()), float(values.max())
    info = np.iinfo(np.int16)
    whole = np.issubdtype(values.dtype, np.integer) or bool(np.array_equal(values, np.round(values)))
    if whole and lo >= info.min and hi <= info.max:
        return values.astype(np.int16), 1.0, 0.0
    slope = float(format_ds(max((hi - lo) / 65000.0, 1e-6)))
    intercept = float(format_ds(lo + 32500.0 * slope))
    stored = np.clip(np.round((values.astype(np.float64) - intercept) / slope), info.min, info.max)
    return stored.astype(np.int16), slope, intercept


def write_dicom_series(
    image: Image,
    folder: str | Path,
    *,
    identity: DicomIdentity | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``image`` (HU) as a CT Image Storage series into ``folder`` atomically.

    Args:
        image: the volume, any orientation; its affine must be orthogonal (no shear).
        folder: output folder (created; an existing non-empty one needs ``overwrite=True``).
        identity: patient/study/series fields; defaults to an anonymous patient and new UIDs.

    Returns:
        The slice files, ordered along the slice normal (file ``k`` has InstanceNumber ``k+1``).

    A left-handed affine (e.g. LAS) is written with its k axis reversed, because DICOM readers
    stack slices along ``row x column``: reading the series back gives the same voxels at the same
    world positions, with the k axis in the right-handed order.
    """
    from pydicom.uid import generate_uid

    who = identity or DicomIdentity()
    source = str(image.meta.get("path", "image"))
    layout = slice_layout(image.affine, image.shape, source=source)
    stored, slope, intercept = _storage(image.array, source)
    if layout.reverse_k:
        stored = stored[:, :, ::-1]
    now = _dt.datetime.now()
    common = {
        "study_uid": who.study_instance_uid or generate_uid(),
        "series_uid": generate_uid(),
        "frame_uid": who.frame_of_reference_uid or generate_uid(),
        "date": now.strftime("%Y%m%d"),
        "time": now.strftime("%H%M%S"),
    }
    paths = []
    with atomic_folder(folder, overwrite=overwrite) as tmp:
        for k in range(stored.shape[2]):
            ds = _slice_dataset(who, common, layout, k, np.ascontiguousarray(stored[:, :, k].T), slope, intercept)
            name = f"slice_{k + 1:04d}.dcm"
            ds.save_as(tmp / name, enforce_file_format=True)
            paths.append(Path(folder) / name)
    return paths


def new_instance(sop_class_uid: str) -> Any:
    """An empty DICOM dataset of ``sop_class_uid`` with a new SOP instance UID and its file meta
    (explicit VR little endian)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_uid
    return ds


def _slice_dataset(who: DicomIdentity, common: dict[str, str], layout: Any, k: int, pixels: np.ndarray, slope: float, intercept: float) -> Any:
    from .. import __version__

    ds = new_instance(CT_IMAGE_STORAGE)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = common["date"]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = common["time"]
    ds.AccessionNumber = who.accession_number
    ds.Modality = "CT"
    ds.Manufacturer = "ctseg"
    ds.ManufacturerModelName = "ctseg"
    ds.SoftwareVersions = __version__
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = who.study_description
    ds.SeriesDescription = who.series_description
    ds.PatientName = who.patient_name
    ds.PatientID = who.patient_id
    ds.PatientBirthDate = who.patient_birth_date
    ds.PatientSex = who.patient_sex
    ds.StudyInstanceUID = common["study_uid"]
    ds.SeriesInstanceUID = common["series_uid"]
    ds.StudyID = who.study_id
    ds.SeriesNumber = who.series_number
    ds.InstanceNumber = k + 1
    ds.AcquisitionNumber = 1
    ds.PatientPosition = ""
    ds.FrameOfReferenceUID = common["frame_uid"]
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [format_ds(v) for v in layout.positions[k]]
    ds.ImageOrientationPatient = [format_ds(v) for v in layout.orientation]
    ds.PixelSpacing = [format_ds(v) for v in layout.pixel_spacing]
    ds.SliceThickness = format_ds(layout.gap)
    ds.SpacingBetweenSlices = format_ds(layout.gap)
    normal = np.cross(layout.orientation[:3], layout.orientation[3:])
    ds.SliceLocation = format_ds(float(layout.positions[k] @ normal))
    ds.KVP = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = format_ds(intercept)
    ds.RescaleSlope = format_ds(slope)
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.PixelData = pixels.astype("<i2").tobytes()
    return ds
