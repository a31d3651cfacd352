"""Reading and writing images, label maps and dataset layouts."""

from __future__ import annotations

from .datasets import Case, Dataset, load_dataset
from .dicom import SeriesInfo, list_dicom_series, read_dicom_series
from .dicom_seg import read_dicom_seg, write_dicom_seg
from .dicom_write import write_dicom_series
from .image import Image, LabelMap, orientation_codes, spacing_from_affine
from .nifti import read_nifti, write_nifti
from .reader import read_image, read_label
from .rtstruct import read_rtstruct, write_rtstruct
from .verify import VerifyReport, verify_dataset

__all__ = ["Image", "LabelMap", "orientation_codes", "spacing_from_affine", "read_nifti", "write_nifti", "read_image", "read_label"]
__all__ += ["Case", "Dataset", "load_dataset", "VerifyReport", "verify_dataset"]
__all__ += ["SeriesInfo", "list_dicom_series", "read_dicom_series", "write_dicom_series", "read_dicom_seg", "write_dicom_seg", "read_rtstruct", "write_rtstruct"]
