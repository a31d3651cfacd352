"""Builders of tiny files and dataset folders for the reader, layout, verify and malformed-input tests.

Every volume is a few voxels wide; each builder returns the paths it wrote.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from tests.conftest import make_affine, phantom

SHAPE = (12, 10, 6)
AFFINE = make_affine((2.0, 2.0, 3.0), shape=SHAPE)


def ct_and_mask(shape=SHAPE, affine=AFFINE) -> tuple[np.ndarray, np.ndarray]:
    """An int16 HU phantom (air, body, organ) and its uint8 organ mask."""
    return phantom(shape, affine, center=(0.0, 0.0, 0.0), radii=(8.0, 6.0, 6.0))


def save(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), affine), path)
    return path


def write_raw_nifti(path: Path, data: np.ndarray, **fields) -> Path:
    """A NIfTI-1 file written byte by byte, so that header fields nibabel would refuse to write
    (zero pixdim, singular sform, NaN in srow, wrong dims) can be set: ``fields`` go into the header."""
    header = nib.Nifti1Header()
    header.set_data_dtype(data.dtype)
    header.set_data_shape(data.shape)
    header.set_sform(np.eye(4), code=1)
    header.set_qform(np.eye(4), code=1)
    for key, value in fields.items():
        header[key] = value
    header["vox_offset"] = 352
    raw = header.binaryblock + b"\0" * 4 + np.asarray(data).tobytes(order="F")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def make_msd(root: Path, n: int = 2, *, labels=None, name: str = "case") -> list[tuple[Path, Path]]:
    """An MSD folder of ``n`` phantom cases (dataset.json, imagesTr, labelsTr, one imagesTs)."""
    image, mask = ct_and_mask()
    pairs, items = [], []
    for i in range(n):
        img = save(root / "imagesTr" / f"{name}_{i:03d}.nii.gz", image)
        lab = save(root / "labelsTr" / f"{name}_{i:03d}.nii.gz", mask)
        pairs.append((img, lab))
        items.append({"image": f"./imagesTr/{img.name}", "label": f"./labelsTr/{lab.name}"})
    save(root / "imagesTs" / f"{name}_900.nii.gz", image)
    meta = {"name": "tiny", "labels": labels or {"0": "background", "1": "organ"}, "training": items, "test": [f"./imagesTs/{name}_900.nii.gz"]}
    (root / "dataset.json").write_text(json.dumps(meta))
    return pairs


def make_lits(root: Path, numbers=(0, 1, 2), *, batches: bool = True, gz: bool = False) -> list[tuple[Path, Path]]:
    """LiTS files (volume-N / segmentation-N), split over "Training Batch" sub-folders."""
    image, mask = ct_and_mask()
    ext = ".nii.gz" if gz else ".nii"
    pairs = []
    for n in numbers:
        folder = root / (f"Training Batch {1 + n % 2}" if batches else "")
        lits_mask = mask.copy()
        lits_mask[tuple(np.argwhere(mask > 0)[0])] = 2  # one tumour voxel
        pairs.append((save(folder / f"volume-{n}{ext}", image), save(folder / f"segmentation-{n}{ext}", lits_mask)))
    return pairs


def make_nnunet(root: Path, ids=("liver_001", "liver_002"), *, version: int = 2) -> list[tuple[Path, Path]]:
    """An nnU-Net raw folder (imagesTr/ID_0000.nii.gz, labelsTr/ID.nii.gz) with dataset.json v1 or v2."""
    image, mask = ct_and_mask()
    pairs = [(save(root / "imagesTr" / f"{i}_0000.nii.gz", image), save(root / "labelsTr" / f"{i}.nii.gz", mask)) for i in ids]
    save(root / "imagesTs" / "liver_900_0000.nii.gz", image)
    if version == 2:
        meta = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1}, "numTraining": len(ids), "file_ending": ".nii.gz"}
    else:
        meta = {
            "name": "v1",
            "modality": {"0": "CT"},
            "labels": {"0": "background", "1": "liver"},
            "training": [{"image": f"./imagesTr/{i}.nii.gz", "label": f"./labelsTr/{i}.nii.gz"} for i in ids],
            "test": ["./imagesTs/liver_900.nii.gz"],
        }
    (root / "dataset.json").write_text(json.dumps(meta))
    return pairs


def make_plain(root: Path, ids=("a", "b"), *, flat: bool = False, label_value: int = 1) -> list[tuple[Path, Path]]:
    """images/ + labels/ with equal names, or (``flat``) NAME.nii.gz + NAME_seg.nii.gz in one folder."""
    image, mask = ct_and_mask()
    pairs = []
    for i in ids:
        if flat:
            pairs.append((save(root / f"{i}.nii.gz", image), save(root / f"{i}_seg.nii.gz", mask * label_value)))
        else:
            pairs.append((save(root / "images" / f"{i}.nii.gz", image), save(root / "labels" / f"{i}.nii.gz", mask * label_value)))
    return pairs


def write_dicom_series(folder: Path, *, n: int = 3, series_uid: str = "1.2.3.4", modality: str = "CT", z0: float = 0.0, size: int = 8) -> list[Path]:
    """A tiny uncompressed CT series (int16 HU via RescaleIntercept -1024) written with pydicom."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"{series_uid.replace('.', '_')}_{k:03d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "1.2.3", series_uid, "1.2.3.9"
        ds.Modality, ds.PatientID, ds.PatientName = modality, "anon", "anon"
        ds.Rows = ds.Columns = size
        ds.PixelSpacing = [1.0, 1.0]
        ds.SliceThickness = 2.0
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, z0 + 2.0 * k]
        ds.InstanceNumber = k + 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (np.full((size, size), 1000 + 10 * k, np.int16)).tobytes()
        pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
        paths.append(path)
    return paths
