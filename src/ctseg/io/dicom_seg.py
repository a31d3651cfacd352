"""Label maps as DICOM Segmentation objects (DICOM-SEG) and back, with highdicom.

A SEG written here references every slice of its source CT series, holds one BINARY segment per
label present in the label map (numbered 1..n in label order) with its name, a SNOMED CT category
and type code and the algorithm (ctseg and its version). Only the patient and study identifiers
of the source are copied (highdicom does this; person and place attributes are dropped); the SEG gets its own series and instance UIDs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import atomic_path
from ..errors import InputError
from ._dicom_reference import (
    SeriesReference,
    check_on_grid,
    load_reference,
    nearest_onto_grid,
    strip_source_details,
)
from .dicom import LPS_TO_RAS
from .image import Image, LabelMap

__all__ = ["write_dicom_seg", "read_dicom_seg", "segment_codes", "SEGMENTATION_STORAGE"]

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"

# name keyword -> SNOMED CT (type code, meaning); the category is "Anatomical Structure" for organs.
_ORGANS = {
    "liver": ("10200004", "Liver"),
    "pancreas": ("15776009", "Pancreas"),
    "spleen": ("78961009", "Spleen"),
    "kidney": ("64033007", "Kidney"),
    "gallbladder": ("28231008", "Gallbladder"),
    "stomach": ("69695003", "Stomach"),
    "aorta": ("15825003", "Aorta"),
}
_TUMOUR_WORDS = ("tumour", "tumor", "neoplasm", "lesion", "cancer", "carcinoma", "metasta", "mass")


def segment_codes(name: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """SNOMED CT (category, type) codes, each (code value, meaning), for a label ``name``.

    Organs named in the table get "Anatomical Structure" + the organ; tumour-like names
    ("tumour", "lesion", "cancer", ...) get "Morphologically Abnormal Structure" + "Neoplasm";
    anything else gets "Tissue" + "Tissue".
    """
    low = name.lower()
    if any(word in low for word in _TUMOUR_WORDS):
        return ("49755003", "Morphologically Abnormal Structure"), ("108369006", "Neoplasm")
    for key, code in _ORGANS.items():
        if key in low:
            return ("91723000", "Anatomical Structure"), code
    return ("85756007", "Tissue"), ("85756007", "Tissue")


def _coded(value: tuple[str, str]) -> Any:
    from highdicom.sr import CodedConcept

    return CodedConcept(value=value[0], scheme_designator="SCT", meaning=value[1])


def write_dicom_seg(
    labels: LabelMap,
    source: str | Path | Image | Sequence[Any],
    out_path: str | Path,
    names: Mapping[int, str],
    *,
    series: str | int | None = None,
    series_description: str = "ctseg segmentation",
) -> Path:
    """Write ``labels`` as a DICOM-SEG that references the source CT series; atomic.

    Args:
        labels: integer labels on exactly the source series' grid, shape (columns, rows, slices)
            as :func:`ctseg.io.dicom.read_dicom_series` returns it (0 = background).
        source: the DICOM folder of the series, the Image read from it, or its pydicom datasets.
        out_path: the .dcm file to write.
        names: label value -> name; a present label without a name is called ``label_<v>``.
        series: which series of ``source`` (UID or index) when the folder holds several.

    Returns:
        ``out_path``. A label map with no foreground gives one empty segment per named label.

    Raises:
        InputError: the labels are not on the series grid, or the series has no UIDs to cite.
    """
    import highdicom as hd
    from pydicom.uid import generate_uid

    from .. import __version__

    reference = load_reference(source, series)
    reference.require_uids("a DICOM-SEG")
    check_on_grid(labels, reference)
    values = [int(v) for v in np.unique(labels.array) if v != 0]
    if any(v < 0 for v in values):
        raise InputError(f"{labels.meta.get('path', 'label map')}: negative label values {values}; labels must be >= 0")
    empty = not values
    if empty:
        values = sorted(int(v) for v in names if int(v) != 0) or [1]
    lut = np.zeros(max(values) + 1, dtype=np.uint8 if len(values) < 256 else np.uint16)
    for number, value in enumerate(values, start=1):
        lut[value] = number
    pixels = np.ascontiguousarray(lut[labels.array].transpose(2, 1, 0))  # (slices, rows, columns)
    algorithm = hd.AlgorithmIdentificationSequence(name="ctseg", family=_ai_family(), version=__version__)
    descriptions = []
    for number, value in enumerate(values, start=1):
        name = str(names.get(value, f"label_{value}"))
        category, kind = segment_codes(name)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name[:64],
                segmented_property_category=_coded(category),
                segmented_property_type=_coded(kind),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
            )
        )
    try:
        seg = hd.seg.Segmentation(
            source_images=_clean_sources(reference.datasets),
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=generate_uid(),
            series_number=max(int(reference.datasets[0].get("SeriesNumber", 0) or 0), 0) + 1000,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer="ctseg",
            manufacturer_model_name="ctseg",
            software_versions=__version__,
            device_serial_number="0",
            content_label="CTSEG",
            content_description=series_description[:64],
            omit_empty_frames=not empty,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{reference.source}: cannot build a DICOM-SEG on this series ({exc})") from None
    seg.SeriesDescription = series_description[:64]
    strip_source_details(seg)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        seg.save_as(tmp)
    return out_path


def _clean_sources(datasets: Sequence[Any]) -> list[Any]:
    """Copies of the slice headers without the empty optional attributes highdicom refuses."""
    import copy

    out = []
    for ds in datasets:
        ds = copy.deepcopy(ds)
        if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
            del ds.SpecificCharacterSet
        out.append(ds)
    return out


def _ai_family() -> Any:
    from pydicom.sr.codedict import codes

    return codes.cid7162.ArtificialIntelligence


def _read_seg(path: Path) -> Any:
    import highdicom as hd

    if not path.is_file():
        raise InputError(f"{path}: file not found; give a DICOM-SEG (.dcm) file")
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # pydicom/highdicom raise many types on a file that is not a SEG
        raise InputError(f"{path}: not a readable DICOM Segmentation ({type(exc).__name__}: {exc})") from None
    return seg


def _seg_volume(seg: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Masks (columns, rows, slices, segments) as bool and their RAS affine."""
    try:
        volume = seg.get_volume(combine_segments=False, rescale_fractional=True)
    except Exception as exc:  # highdicom raises RuntimeError/ValueError when frames are not a volume
        raise InputError(f"{path}: the SEG frames do not form one 3D volume ({exc}); read it with highdicom directly") from None
    array = np.asarray(volume.array)
    if array.ndim == 3:
        array = array[..., None]
    masks = array.transpose(2, 1, 0, 3) >= 0.5 if np.issubdtype(array.dtype, np.floating) else array.transpose(2, 1, 0, 3) > 0
    affine = LPS_TO_RAS @ np.asarray(volume.affine, np.float64)[:, [2, 1, 0, 3]]
    if np.linalg.det(affine[:3, :3]) < 0:  # stack along row x column, as read_dicom_series does
        masks = masks[:, :, ::-1]
        affine = affine.copy()
        affine[:3, 3] += affine[:3, 2] * (masks.shape[2] - 1)
        affine[:3, 2] *= -1
    return np.ascontiguousarray(masks), affine


def read_dicom_seg(
    path: str | Path,
    reference: str | Path | Image | None = None,
    *,
    as_masks: bool = False,
    series: str | int | None = None,
) -> LabelMap | dict[str, LabelMap]:
    """Decode a DICOM-SEG into a label map (segment numbers as labels) or one mask per segment.

    Args:
        path: the SEG file.
        reference: the series grid to decode onto: its DICOM folder or an :class:`Image` (e.g. from
            :func:`ctseg.io.dicom.read_dicom_series`). None keeps the SEG's own frame grid.
        as_masks: return ``{segment label: uint8 LabelMap}`` instead of one label map (needed when
            segments overlap). Fractional segments are thresholded at 0.5.

    Returns:
        A uint8/uint16 :class:`LabelMap` with ``meta["label_names"] = {segment number: label}``, or
        the dict of masks.

    Raises:
        InputError: unreadable or not a SEG, another frame of reference than the reference series,
            or overlapping segments without ``as_masks``.
    """
    path = Path(path)
    seg = _read_seg(path)
    numbers = [int(d.SegmentNumber) for d in seg.SegmentSequence]
    names = {int(d.SegmentNumber): str(d.SegmentLabel) for d in seg.SegmentSequence}
    masks, affine = _seg_volume(seg, path)
    if reference is not None:
        grid = _reference_grid(reference, series, str(seg.get("FrameOfReferenceUID", "") or ""), path)
        masks = nearest_onto_grid(masks, affine, grid.shape, grid.affine)
        affine = grid.affine
    meta = {"path": str(path), "label_names": names}
    if as_masks:
        return {names[n]: LabelMap(masks[..., c].astype(np.uint8), affine, dict(meta)) for c, n in enumerate(numbers)}
    if masks.shape[3] > 1 and bool((masks.sum(axis=3) > 1).any()):
        raise InputError(f"{path}: segments overlap, so they cannot share one label map; use as_masks=True")
    out = np.zeros(masks.shape[:3], dtype=np.uint8 if max(numbers) < 256 else np.uint16)
    for c, number in enumerate(numbers):
        out[masks[..., c]] = number
    return LabelMap(out, affine, meta)


def _reference_grid(reference: str | Path | Image, series: str | int | None, frame_uid: str, path: Path) -> Image | SeriesReference:
    grid: Image | SeriesReference
    if isinstance(reference, Image):
        grid = reference
        ref_uid = str(reference.meta.get("dicom", {}).get("frame_of_reference_uid", "") or "")
    else:
        grid = load_reference(reference, series)
        ref_uid = grid.frame_of_reference_uid
    if frame_uid and ref_uid and frame_uid != ref_uid:
        raise InputError(
            f"{path}: its FrameOfReferenceUID {frame_uid} differs from the reference series' {ref_uid}; "
            "the SEG was made on another scan: give the series it references"
        )
    return grid
