"""``ctseg convert``: a CT volume from one format to another (NIfTI <-> DICOM series)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .dicom_write import DicomIdentity, write_dicom_series
from .nifti import is_nifti, write_nifti
from .reader import read_image

__all__ = ["convert_image"]


def convert_image(
    source: str | Path,
    target: str | Path,
    *,
    series: str | int | None = None,
    identity: DicomIdentity | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert the CT at ``source`` to ``target``, choosing formats from the paths.

    ``source``: any file :func:`ctseg.io.reader.read_image` reads, or a DICOM series folder
    (``series`` picks one when it holds several). ``target``: a ``.nii``/``.nii.gz`` file, or
    else a folder to receive a new DICOM CT series (new UIDs; ``identity`` sets patient/study
    fields). Voxels (HU) and world geometry are kept exactly; written atomically.

    Raises:
        InputError: unreadable source, or a target that exists (unless ``overwrite``).
    """
    source, target = Path(source), Path(target)
    if target.resolve() == source.resolve():
        raise InputError(f"{target}: the output is the input; give another output path")
    if is_nifti(target):
        if target.exists() and not overwrite:
            raise InputError(f"{target}: exists; give a new file name, remove it, or overwrite it (--overwrite)")
        image = read_image(source, series=None if series is None else str(series))
        return write_nifti(image, target, like=image)
    if target.suffix.lower() in (".nrrd", ".nhdr", ".mha", ".mhd", ".gz", ".dcm"):
        raise InputError(
            f"{target}: convert writes NIfTI (.nii, .nii.gz) or a DICOM series folder; give a .nii.gz name "
            "or a folder name without extension"
        )
    image = read_image(source, series=None if series is None else str(series))
    write_dicom_series(image, target, identity=identity, overwrite=overwrite)
    return target
