"""Writing a predicted label map in the format asked for: NIfTI, DICOM-SEG or RTSTRUCT.

:func:`write_label_output` is what ``ctseg predict --format`` calls for every case; DICOM-SEG and
RTSTRUCT need the CT to have been read from a DICOM series (they reference its slices).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dicom import is_dicom_folder
from .image import Image, LabelMap
from .nifti import is_nifti, write_nifti

__all__ = ["OUTPUT_FORMATS", "output_suffix", "is_dicom_series_input", "check_output_format", "output_path", "write_label_output", "safe_name", "output_is_valid"]

#: Output formats of ``ctseg predict --format``.
OUTPUT_FORMATS = ("nifti", "dicom-seg", "rtstruct")
_SUFFIX = {"nifti": ".nii.gz", "dicom-seg": ".dcm", "rtstruct": ".dcm"}


def output_suffix(fmt: str) -> str:
    """File name ending for ``fmt``: ``.nii.gz`` for NIfTI, ``.dcm`` for DICOM-SEG and RTSTRUCT."""
    if fmt not in _SUFFIX:
        raise InputError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    return _SUFFIX[fmt]


def is_dicom_series_input(path: str | Path) -> bool:
    """True when ``path`` is a folder of DICOM slices (and holds no NIfTI files): one case."""
    path = Path(path)
    if not path.is_dir():
        return False
    if any(is_nifti(p) for p in path.iterdir() if p.is_file()):
        return False
    return is_dicom_folder(path)


def check_output_format(fmt: str, input_path: str | Path) -> None:
    """Refuse early (before any prediction) a DICOM output format for a non-DICOM input."""
    output_suffix(fmt)
    if fmt != "nifti" and not is_dicom_series_input(input_path):
        raise InputError(
            f"{input_path}: --format {fmt} needs a DICOM series folder as input (the output references its "
            "slices); give the DICOM folder, or use --format nifti"
        )


def safe_name(name: str) -> str:
    """A file name made from a case id or DICOM metadata that cannot leave its folder: path
    separators and characters outside ``A-Z a-z 0-9 . _ -`` become ``_``, leading dots are dropped
    (no ``..``, no hidden files), and an empty result becomes ``case``."""
    cleaned = "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else "_" for c in str(name))
    cleaned = cleaned.lstrip(".")
    return cleaned[:200] or "case"


def output_is_valid(path: str | Path, fmt: str, shape: tuple[int, ...] | None = None) -> bool:
    """Whether a finished prediction is already at ``path``: it reads completely (a truncated file
    does not) and, for NIfTI with ``shape`` given, has that shape."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        if fmt == "nifti":
            import nibabel as nib

            img = nib.load(str(path))
            data = np.asarray(img.dataobj)
            return data.ndim == 3 and (shape is None or tuple(data.shape) == tuple(shape))
        import pydicom

        pydicom.dcmread(str(path))
        return True
    except Exception:  # any read failure means "not a finished output"  # noqa: BLE001
        return False


def output_path(input_path: str | Path, output: str | Path, case_id: str, fmt: str) -> Path:
    """Where one case's prediction goes: ``output`` itself when it ends with the format's suffix
    (``.nii``/``.nii.gz`` for NIfTI, ``.dcm`` for DICOM), else ``output/<case_id><suffix>``."""
    output = Path(output)
    suffix = output_suffix(fmt)
    named = is_nifti(output) if fmt == "nifti" else output.name.lower().endswith(suffix)
    return output if named else output / f"{safe_name(case_id)}{suffix}"


def write_label_output(labels: LabelMap, image: Image, path: str | Path, fmt: str, names: Mapping[int, str]) -> Path:
    """Write ``labels`` (on ``image``'s grid) to ``path`` as ``fmt``; atomic.

    Args:
        labels: predicted labels, same shape and affine as ``image``.
        image: the CT that was segmented; for ``dicom-seg`` and ``rtstruct`` it must come from
            :func:`ctseg.io.dicom.read_dicom_series` (its slices are referenced).
        names: label value -> name (segment / ROI names; background 0 is ignored).

    Returns:
        ``path``. NIfTI outputs are uint8 with the input's header geometry.
    """
    output_suffix(fmt)
    if fmt == "nifti":
        return write_nifti(labels, path, dtype=np.uint8, like=image)
    if fmt == "dicom-seg":
        from .dicom_seg import write_dicom_seg

        return write_dicom_seg(labels, image, path, names)
    from .rtstruct import write_rtstruct

    return write_rtstruct(labels, image, path, names)
