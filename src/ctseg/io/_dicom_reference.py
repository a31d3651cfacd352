"""The source series that a DICOM-SEG or RTSTRUCT refers to: its slice headers and its grid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .image import Image

__all__ = ["SeriesReference", "load_reference", "nearest_onto_grid", "check_on_grid", "strip_source_details"]

_REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")


@dataclass(frozen=True)
class SeriesReference:
    """Slice headers sorted along the slice normal (``datasets[k]`` is slice k) and the grid.

    ``shape`` is (columns, rows, slices) and ``affine`` the RAS affine, as :func:`read_dicom_series`
    returns them.
    """

    datasets: tuple[Any, ...]
    shape: tuple[int, int, int]
    affine: np.ndarray
    source: str

    @property
    def frame_of_reference_uid(self) -> str:
        return str(self.datasets[0].get("FrameOfReferenceUID", "") or "")

    def require_uids(self, purpose: str) -> None:
        """Raise unless every slice has the UIDs that ``purpose`` (e.g. "a DICOM-SEG") must cite."""
        for ds in self.datasets:
            missing = [name for name in _REQUIRED_UIDS if not str(ds.get(name, "") or "").strip()]
            if missing:
                path = getattr(ds, "filename", None) or self.source
                raise InputError(
                    f"{path}: empty {', '.join(missing)}; {purpose} must reference the source slices by UID, "
                    "and this (de-identified) series has none: write NIfTI instead (--format nifti), or "
                    "re-export the series with its UIDs"
                )


def load_reference(source: str | Path | Image | Sequence[Any], series: str | int | None = None) -> SeriesReference:
    """Slice headers (no pixel data) and grid of a series given as a folder, an :class:`Image`
    read by :func:`ctseg.io.dicom.read_dicom_series`, or a sequence of pydicom datasets.

    Raises:
        InputError: the source is not a readable series, or an Image that did not come from DICOM.
    """
    import pydicom

    from .dicom import select_series

    if isinstance(source, Image):
        files = source.meta.get("dicom", {}).get("files")
        if not files:
            raise InputError(
                f"{source.meta.get('path', 'image')}: not read from a DICOM series, so there are no source "
                "slices to reference; give the DICOM folder of the CT"
            )
        paths = [Path(f) for f in files]
        label = str(source.meta.get("path", paths[0].parent))
    elif isinstance(source, (str, Path)):
        paths = list(select_series(source, series).files)
        label = str(source)
    else:
        datasets = list(source)
        if not datasets:
            raise InputError("no source datasets given; pass the CT slices of the series")
        names = [Path(getattr(ds, "filename", None) or f"dataset {i}") for i, ds in enumerate(datasets)]
        return _from_datasets("datasets", datasets, names)
    try:
        datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{label}: cannot read the source slices ({type(exc).__name__}: {exc})") from None
    return _from_datasets(label, datasets, paths)


def _from_datasets(label: str, datasets: list[Any], names: Sequence[Path]) -> SeriesReference:
    from ._dicom_geometry import series_geometry

    geometry = series_geometry(Path(label), datasets, names)
    ordered = tuple(datasets[i] for i in geometry.order)
    first = ordered[0]
    shape = (int(first.Columns), int(first.Rows), len(ordered))
    return SeriesReference(ordered, shape, geometry.affine, label)


def check_on_grid(labels: Image, reference: SeriesReference, atol_mm: float = 1e-3) -> None:
    """Raise unless ``labels`` has exactly the reference series' shape and affine."""
    if labels.shape != reference.shape or not np.allclose(labels.affine, reference.affine, atol=atol_mm):
        raise InputError(
            f"label map (shape {labels.shape}, orientation {labels.orientation}) is not on the grid of the source "
            f"series {reference.source} (shape {reference.shape}, orientation "
            f"{Image(np.zeros((1, 1, 1)), reference.affine).orientation}); predict on the DICOM series "
            "itself (ctseg predict -i DICOM_FOLDER) so that the labels share its grid"
        )


def nearest_onto_grid(array: np.ndarray, affine: np.ndarray, shape: Sequence[int], target_affine: np.ndarray) -> np.ndarray:
    """Sample ``array`` (I, J, K[, C]) with ``affine`` at the voxel centres of a target grid.

    Nearest neighbour; target voxels outside the source volume get 0. Exact (a pure index
    mapping) when both grids share their voxel centres, as a SEG on its source series does.
    """
    to_source = np.linalg.inv(np.asarray(affine, np.float64)) @ np.asarray(target_affine, np.float64)
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    plane = np.stack([ii.ravel(), jj.ravel()], axis=1).astype(np.float64)
    out = np.zeros((*shape[:3], *array.shape[3:]), dtype=array.dtype)
    bounds = np.asarray(array.shape[:3])
    for k in range(int(shape[2])):
        idx = plane @ to_source[:3, :2].T + k * to_source[:3, 2] + to_source[:3, 3]
        idx = np.floor(idx + 0.5 + 1e-6).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < bounds), axis=1)
        values = np.zeros((plane.shape[0], *array.shape[3:]), dtype=array.dtype)
        values[ok] = array[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
        out[:, :, k] = values.reshape(int(shape[0]), int(shape[1]), *array.shape[3:])
    return out


# Person and place attributes a source series may hold besides the patient and study identifiers.
_NOT_COPIED = (
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName", "OperatorsName",
    "PerformingPhysicianName", "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "RequestingPhysician",
    "PatientAddress", "PatientTelephoneNumbers", "OtherPatientIDs", "OtherPatientNames", "PatientMotherBirthName",
    "MilitaryRank", "EthnicGroup", "Occupation", "AdditionalPatientHistory", "PatientComments",
)  # fmt: skip


def strip_source_details(ds: Any) -> None:
    """Keep only the patient and study identifiers of the source in a derived object (SEG,
    RTSTRUCT): person and place attributes are removed at every nesting level (highdicom copies
    the source's institution into the contributing-equipment item, for one), and the referring
    physician (type 2 in the study module) is emptied."""
    for keyword in _NOT_COPIED:
        if keyword in ds:
            delattr(ds, keyword)
    if "ReferringPhysicianName" in ds:
        ds.ReferringPhysicianName = ""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                strip_source_details(item)
