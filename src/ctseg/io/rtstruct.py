"""Label maps as DICOM RT Structure Sets (RTSTRUCT) and back.

Writing: for each label and slice, the mask outline is traced with marching squares at level 0.5
(``skimage.measure.find_contours``), so every outline runs half way between inside and outside
voxel centres; holes become nested contours. Reading: every CLOSED_PLANAR contour is filled on its
slice (voxel centres inside the polygon) and the fills of one ROI are combined with XOR (even-odd),
so nested contours cut holes. Because outlines pass half way between voxel centres and filling
takes the voxel centres inside, writing then reading gives back the mask voxel for voxel (tested
on random shapes with holes and diagonal contacts, and on oblique grids).
"""

from __future__ import annotations

import copy
import datetime as _dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import atomic_path
from ..errors import InputError
from ._dicom_reference import check_on_grid, load_reference, strip_source_details
from .dicom import LPS_TO_RAS
from .dicom_write import new_instance
from .image import Image, LabelMap

__all__ = ["write_rtstruct", "read_rtstruct", "RT_STRUCTURE_SET_STORAGE"]

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230)]
_TUMOUR_WORDS = ("tumour", "tumor", "lesion", "cancer", "neoplasm", "gtv", "mass", "metasta")
#: Largest distance (in slices) of a contour's points from the nearest slice centre.
MAX_OFF_SLICE = 0.1


def _drop_collinear(polygon: np.ndarray) -> np.ndarray:
    """A closed polygon (N, 2) without the points lying on the segment between their neighbours."""
    before, after = np.roll(polygon, 1, axis=0), np.roll(polygon, -1, axis=0)
    a, b = polygon - before, after - polygon
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    keep = (np.abs(cross) > 1e-9) | ((a * b).sum(axis=1) <= 0)
    return polygon[keep]


def _contours_2d(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines of a 2D bool mask (I, J) as (N, 2) float (i, j) voxel coordinates."""
    from skimage.measure import find_contours

    padded = np.pad(mask.astype(np.float32), 1)
    out = []
    for contour in find_contours(padded, 0.5):
        if len(contour) > 1 and np.allclose(contour[0], contour[-1]):
            contour = contour[:-1]
        contour = _drop_collinear(contour) - 1.0
        if len(contour) >= 3:
            out.append(contour)
    return out


def _ds_element(values: np.ndarray) -> Any:
    """A ContourData element built directly from its text (pydicom's per-value DS objects are
    too slow for the 10^5 - 10^6 numbers of an organ's contours). 9 significant digits, <= 16 chars."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    text = "\\".join(f"{v:.9g}" for v in values.tolist()).encode("ascii")
    if len(text) % 2:
        text += b" "
    return RawDataElement(Tag(0x3006, 0x0050), "DS", len(text), text, 0, False, True)


def _ds_values(item: Any) -> np.ndarray:
    """ContourData as float64, parsed from the raw text when pydicom has not converted it yet."""
    element = item.get_item(0x30060050)
    if element is None:
        return np.zeros(0)
    value = element.value
    if isinstance(value, bytes):
        parts = value.decode("ascii", "replace").strip(" \x00").split("\\")
        return np.asarray([float(v) for v in parts if v.strip()], dtype=np.float64)
    return np.zeros(0) if value is None else np.atleast_1d(np.asarray(value, dtype=np.float64))


def write_rtstruct(
    labels: LabelMap,
    source: str | Path | Image | Sequence[Any],
    out_path: str | Path,
    names: Mapping[int, str],
    *,
    series: str | int | None = None,
    structure_set_label: str = "ctseg",
) -> Path:
    """Write ``labels`` as an RTSTRUCT (one ROI per present label) referencing the source series.

    Args:
        labels: integer labels on exactly the source series' grid (see
            :func:`ctseg.io.dicom.read_dicom_series`), 0 = background.
        source: the DICOM folder of the series, the Image read from it, or its pydicom datasets.
        out_path: the .dcm file to write (atomically).
        names: label value -> ROI name (``label_<v>`` when missing).

    Returns:
        ``out_path``. Contour points are in patient (LPS) mm on the slice planes.

    Raises:
        InputError: the labels are not on the series grid, or the series has no UIDs to cite.
    """
    from pydicom.dataset import Dataset

    reference = load_reference(source, series)
    reference.require_uids("an RTSTRUCT")
    check_on_grid(labels, reference)
    ds = _structure_set_header(reference, structure_set_label)
    values = [int(v) for v in np.unique(labels.array) if v > 0]
    for number, value in enumerate(values, start=1):
        name = str(names.get(value, f"label_{value}"))[:64]
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = reference.frame_of_reference_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        ds.StructureSetROISequence.append(roi)
        item = Dataset()
        item.ROIDisplayColor = list(_COLOURS[(number - 1) % len(_COLOURS)])
        item.ReferencedROINumber = number
        item.ContourSequence = _roi_contours(labels, value, reference.datasets)
        ds.ROIContourSequence.append(item)
        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = "GTV" if any(w in name.lower() for w in _TUMOUR_WORDS) else "ORGAN"
        obs.ROIInterpreter = ""
        ds.RTROIObservationsSequence.append(obs)
    out_path = Path(out_path)
    strip_source_details(ds)
    with atomic_path(out_path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return out_path


def _roi_contours(labels: LabelMap, value: int, slices: Sequence[Any]) -> list[Any]:
    from pydicom.dataset import Dataset

    items = []
    ras_to_lps = LPS_TO_RAS @ labels.affine
    for k in range(labels.shape[2]):
        mask = labels.array[:, :, k] == value
        if not mask.any():
            continue
        for contour in _contours_2d(mask):
            ijk = np.column_stack([contour, np.full(len(contour), float(k)), np.ones(len(contour))])
            lps = (ijk @ ras_to_lps.T)[:, :3]
            image = Dataset()
            image.ReferencedSOPClassUID = slices[k].SOPClassUID
            image.ReferencedSOPInstanceUID = slices[k].SOPInstanceUID
            item = Dataset()
            item.ContourImageSequence = [image]
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(lps)
            item[0x30060050] = _ds_element(lps.ravel())
            item.set_original_encoding(False, True, "iso8859")  # lets pydicom write the raw element as it is
            items.append(item)
    return items


def _structure_set_header(reference: Any, label: str) -> Any:
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    from .. import __version__

    first = reference.datasets[0]
    ds = new_instance(RT_STRUCTURE_SET_STORAGE)
    charset = first.get("SpecificCharacterSet")
    if charset:
        ds.SpecificCharacterSet = charset
    now = _dt.datetime.now()
    ds.InstanceCreationDate = ds.StructureSetDate = ds.SeriesDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = ds.StructureSetTime = ds.SeriesTime = now.strftime("%H%M%S")
    for name in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription"):
        if name in first:  # copy the element as it is (source headers are not always valid)
            ds.add(copy.deepcopy(first[name]))
        else:
            setattr(ds, name, "")
    ds.Modality = "RTSTRUCT"
    ds.Manufacturer = "ctseg"
    ds.ManufacturerModelName = "ctseg"
    ds.SoftwareVersions = __version__
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = max(int(first.get("SeriesNumber", 0) or 0), 0) + 2000
    ds.SeriesDescription = "ctseg structures"
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = reference.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.StructureSetLabel = label[:16]
    contour_images = []
    for sl in reference.datasets:
        image = Dataset()
        image.ReferencedSOPClassUID = sl.SOPClassUID
        image.ReferencedSOPInstanceUID = sl.SOPInstanceUID
        contour_images.append(image)
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = contour_images
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (as RT convention has it)
    study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = reference.frame_of_reference_uid
    frame.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    ds.StructureSetROISequence = []
    ds.ROIContourSequence = []
    ds.RTROIObservationsSequence = []
    return ds


def read_rtstruct(
    path: str | Path,
    series_folder: str | Path | Image,
    *,
    series: str | int | None = None,
) -> dict[str, LabelMap]:
    """Rasterise every ROI of an RTSTRUCT onto the grid of its CT series.

    Args:
        path: the RTSTRUCT file.
        series_folder: the DICOM folder of the referenced series (only headers are read) or an
            :class:`Image` giving the grid.

    Returns:
        ROI name -> uint8 :class:`LabelMap` (0/1) of the series' shape and affine; an ROI without
        contours gives an empty mask. POINT and OPEN_PLANAR contours are ignored.

    Raises:
        InputError: not an RTSTRUCT, another frame of reference, or a contour that does not lie
            on a slice plane of the series (oblique contours, or another slice spacing).
    """
    import pydicom

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises many types on a damaged file
        raise InputError(f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    if str(ds.get("Modality", "")) != "RTSTRUCT" or "ROIContourSequence" not in ds:
        raise InputError(f"{path}: not an RT Structure Set (Modality {ds.get('Modality', '?')}); give the RTSTRUCT file")
    if isinstance(series_folder, Image):
        shape, affine = series_folder.shape, series_folder.affine
        info = series_folder.meta.get("dicom", {})
        frame_uid, instances = str(info.get("frame_of_reference_uid", "") or ""), set(info.get("sop_instance_uids", []))
    else:
        reference = load_reference(series_folder, series)
        shape, affine, frame_uid = reference.shape, reference.affine, reference.frame_of_reference_uid
        instances = {str(d.get("SOPInstanceUID", "")) for d in reference.datasets}
    _check_frame(ds, frame_uid, instances, path)
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.get("StructureSetROISequence", [])}
    lps_to_voxel = np.linalg.inv(LPS_TO_RAS @ affine)
    out: dict[str, LabelMap] = {}
    for item in ds.ROIContourSequence:
        number = int(item.ReferencedROINumber)
        name = names.get(number, f"ROI_{number}")
        mask = np.zeros(shape, dtype=np.uint8)
        for contour in item.get("ContourSequence", []):
            if str(contour.get("ContourGeometricType", "")) != "CLOSED_PLANAR":
                continue
            _fill(mask, contour, lps_to_voxel, path, name)
        key = name if name not in out else f"{name}_{number}"
        out[key] = LabelMap(mask, affine.copy(), {"path": str(path), "roi_number": number})
    return out


def _check_frame(ds: Any, frame_uid: str, instances: set[str], path: Path) -> None:
    """Refuse a structure set drawn on another scan: another frame of reference and no contour
    citing a slice of the series (some tools write a fresh frame UID but cite the right slices)."""
    refs = {str(f.FrameOfReferenceUID) for f in ds.get("ReferencedFrameOfReferenceSequence", []) if "FrameOfReferenceUID" in f}
    if not frame_uid or not refs or frame_uid in refs:
        return
    cited = {
        str(image.get("ReferencedSOPInstanceUID", ""))
        for roi in ds.ROIContourSequence
        for contour in roi.get("ContourSequence", [])
        for image in contour.get("ContourImageSequence", [])
    }
    if cited & (instances - {""}):
        return
    raise InputError(
        f"{path}: references frame of reference {sorted(refs)}, but the series has {frame_uid}, and no "
        "contour cites one of its slices; give the CT series the structure set was drawn on"
    )


def _fill(mask: np.ndarray, contour: Any, lps_to_voxel: np.ndarray, path: Path, name: str) -> None:
    from skimage.draw import polygon

    values = _ds_values(contour)
    if values.size % 3:
        raise InputError(f"{path}: a contour of ROI '{name}' has {values.size} ContourData values, not x, y, z triplets; the file is damaged")
    points = values.reshape(-1, 3)
    ijk = np.column_stack([points, np.ones(len(points))]) @ lps_to_voxel.T
    k = float(np.round(ijk[:, 2].mean()))
    if np.abs(ijk[:, 2] - k).max() > MAX_OFF_SLICE:
        raise InputError(
            f"{path}: a contour of ROI '{name}' does not lie on a slice plane of the series (off by up to "
            f"{np.abs(ijk[:, 2] - k).max():.2f} slices); give the series the structure set was drawn on"
        )
    if not 0 <= k < mask.shape[2] or len(points) < 3:
        return
    rr, cc = polygon(ijk[:, 0], ijk[:, 1], shape=mask.shape[:2])
    plane = mask[:, :, int(k)]
    plane[rr, cc] ^= 1
