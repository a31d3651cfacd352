"""Dataset layouts -> one list of cases: MSD, nnU-Net raw (v1, v2), LiTS and a plain folder.

``load_dataset(root)`` detects the layout (or takes ``layout=``) and returns a :class:`Dataset`
whatever the layout; the rules for each layout are in :mod:`ctseg.io.layouts`:

- ``msd``: ``dataset.json`` listing ``training`` (image, label) pairs and ``test`` images, labels
  as ``{"0": "background", "1": "pancreas"}``.
- ``nnunet``: ``imagesTr/CASE_0000.nii.gz`` + ``labelsTr/CASE.nii.gz`` (``imagesTs/`` optional);
  ``dataset.json`` v2 (``channel_names``, ``labels`` as name -> value, ``file_ending``) or v1 (MSD
  style, its ``training`` list naming the images without the ``_0000`` channel suffix).
- ``lits``: ``volume-N.nii[.gz]`` + ``segmentation-N.nii[.gz]`` anywhere below the root (the
  challenge's "Training Batch 1/2" sub-folders), ``test-volume-N`` as test images; labels 0
  background, 1 liver, 2 tumour unless a ``dataset.json`` says otherwise.
- ``plain``: ``images/`` + ``labels/`` (or ``masks/``) holding files with equal names (or equal
  case ids with other extensions; a sub-folder of ``images/`` is a DICOM series), or one folder of
  ``NAME.nii.gz`` + ``NAME_seg.nii.gz`` pairs (``_seg``, ``_label``, ``_labels``, ``_mask``,
  ``_gt``). Label names come from an optional ``dataset.json``; without one they are inferred
  from the values found (``label_1``, ``label_2``...).

Images may be any format :func:`ctseg.io.reader.read_image` reads.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DatasetError, InputError
from .reader import image_suffix, is_image_file

__all__ = [
    "Case",
    "Dataset",
    "Issue",
    "LAYOUTS",
    "load_dataset",
    "detect_layout",
    "case_id_from_path",
    "list_nifti",
    "list_images",
]

#: Layout names and how they are described in messages.
LAYOUTS = {
    "msd": "MSD (dataset.json with a 'training' list, imagesTr/, labelsTr/)",
    "nnunet": "nnU-Net raw (dataset.json, imagesTr/CASE_0000.nii.gz, labelsTr/CASE.nii.gz)",
    "lits": "LiTS (volume-N.nii[.gz] + segmentation-N.nii[.gz], sub-folders allowed)",
    "plain": "plain (images/ + labels/ with equal file names, or NAME + NAME_seg pairs)",
}


@dataclass(frozen=True)
class Case:
    """One case: an image file (or DICOM folder) and, for training or scoring, its label file."""

    case_id: str
    image: Path
    label: Path | None = None


@dataclass(frozen=True)
class Issue:
    """One problem found in a dataset: which case and file, what is wrong, and how to fix it.

    ``kind`` is a short code (``missing-label``, ``duplicate``, ``unreadable``, ``shape``, ...);
    cases with an issue are the ones ``--skip-bad`` leaves out.
    """

    case: str
    file: str
    problem: str
    fix: str
    kind: str = "other"


@dataclass
class Dataset:
    """Cases of one dataset whatever its layout.

    Attributes:
        labels: label value -> name, 0 = background.
        layout: one of :data:`LAYOUTS`.
        issues: problems found while listing the cases (missing files, duplicate ids...); with
            ``load_dataset(strict=True)`` there are none, the first ones having been raised.
        labels_inferred: True when no file named the labels and they were taken from the values.
    """

    root: Path
    name: str
    labels: dict[int, str]
    training: list[Case]
    test: list[Case] = field(default_factory=list)
    layout: str = "msd"
    issues: list[Issue] = field(default_factory=list)
    labels_inferred: bool = False

    @property
    def num_classes(self) -> int:
        return max(self.labels) + 1

    def describe(self) -> str:
        """One line: layout, case counts and labels."""
        items = sorted(self.labels.items())
        labels = ", ".join(f"{k} {v}" for k, v in items[:6]) + (f", ... ({len(items)} labels)" if len(items) > 6 else "")
        inferred = " (inferred from the label values)" if self.labels_inferred else ""
        return f"{LAYOUTS[self.layout].split(' (')[0]} layout: {len(self.training)} training case(s), {len(self.test)} test case(s); labels {labels}{inferred}"

    def without(self, case_ids: set[str]) -> Dataset:
        """A copy with the given training/test cases left out."""
        return dataclasses.replace(
            self,
            training=[c for c in self.training if c.case_id not in case_ids],
            test=[c for c in self.test if c.case_id not in case_ids],
        )


def case_id_from_path(path: str | Path) -> str:
    """``pancreas_001.nii.gz`` -> ``pancreas_001`` (an nnU-Net channel suffix ``_0000`` is dropped)."""
    name = Path(path).name
    suffix = image_suffix(name)
    if suffix is not None:
        name = name[: -len(suffix)]
    if len(name) > 5 and name[-5] == "_" and name[-4:].isdigit():
        name = name[:-5]
    return name


def list_nifti(folder: Path) -> list[Path]:
    """NIfTI files in ``folder`` (sorted, hidden and macOS ``._`` files skipped)."""
    return [p for p in list_images(folder) if image_suffix(p) in (".nii", ".nii.gz")]


def list_images(folder: Path) -> list[Path]:
    """Image files of any readable format in ``folder`` (sorted, hidden files skipped)."""
    return sorted(p for p in Path(folder).iterdir() if is_image_file(p))


def read_dataset_json(root: Path) -> dict[str, Any] | None:
    """``root/dataset.json`` as a dict, None when absent.

    Raises:
        DatasetError: the file is not valid JSON or not a JSON object.
    """
    path = root / "dataset.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: invalid JSON ({exc}); fix the file (a JSON validator shows where)") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a JSON object with 'labels', found {type(meta).__name__}")
    return meta


def detect_layout(root: str | Path) -> str:
    """The layout of the dataset folder ``root`` (one of :data:`LAYOUTS`).

    Raises:
        InputError: ``root`` is missing or not a folder.
        DatasetError: invalid dataset.json, or no layout matches (the message lists the ones looked for).
    """
    from .layouts import lits_files, plain_pairs_found

    root = _check_root(root)
    meta = read_dataset_json(root)
    has_imagesTr = (root / "imagesTr").is_dir()
    if meta is not None:
        if "channel_names" in meta or "file_ending" in meta:
            return "nnunet"
        training = meta.get("training")
        if isinstance(training, list):
            first = training[0].get("image") if training and isinstance(training[0], dict) else None
            if isinstance(first, str) and not _resolve(root, first).exists() and _with_channel(_resolve(root, first)).exists():
                return "nnunet"
            return "msd"
        if has_imagesTr and any(p.name != case_id_from_path(p) + (image_suffix(p) or "") for p in list_images(root / "imagesTr")):
            return "nnunet"
    if lits_files(root):
        return "lits"
    if plain_pairs_found(root):
        return "plain"
    looked = "; ".join(LAYOUTS.values())
    if has_imagesTr and meta is None:
        raise DatasetError(f"{root}: not a dataset: imagesTr/ is there but no dataset.json (MSD and nnU-Net need one with 'labels'); looked for: {looked}")
    if meta is not None:
        raise DatasetError(f"{root}: not a dataset: dataset.json has neither a 'training' list nor 'channel_names', and no LiTS files or image/label pairs were found; looked for: {looked}")
    raise DatasetError(f"{root}: not a dataset (no dataset.json, no LiTS or image/label pairs found); looked for: {looked}")


def _check_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: dataset folder not found; check the path")
    if not root.is_dir():
        raise InputError(f"{root}: expected a dataset folder, found a file (layouts: {', '.join(LAYOUTS)})")
    return root


def _resolve(root: Path, entry: str) -> Path:
    return (root / entry).resolve() if not Path(entry).is_absolute() else Path(entry)


def _with_channel(path: Path) -> Path:
    suffix = image_suffix(path) or ""
    return path.with_name(path.name[: len(path.name) - len(suffix)] + "_0000" + suffix)


def load_dataset(root: str | Path, *, layout: str | None = None, strict: bool = True) -> Dataset:
    """Read a dataset folder of any supported layout into one :class:`Dataset`.

    Args:
        root: the dataset folder.
        layout: force a layout (``msd``, ``nnunet``, ``lits``, ``plain``); None detects it.
        strict: raise on the first listing problems (missing or duplicate files); with False they
            are returned in ``Dataset.issues`` and the affected cases left out (``ctseg verify``).

    Raises:
        InputError: the path does not exist or is not a folder.
        DatasetError: no layout matches, dataset.json is missing or malformed, files are missing or
            duplicated (strict), or no training case is found.
    """
    from . import layouts

    root = _check_root(root)
    if layout is not None and layout not in LAYOUTS:
        raise InputError(f"unknown dataset layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    layout = layout or detect_layout(root)
    meta = read_dataset_json(root)
    parser = {"msd": layouts.parse_msd, "nnunet": layouts.parse_nnunet, "lits": layouts.parse_lits, "plain": layouts.parse_plain}[layout]
    dataset = parser(root, meta)
    dataset = layouts.drop_duplicates(dataset)
    if strict and dataset.issues:
        shown = "; ".join(f"{i.file}: {i.problem}" for i in dataset.issues[:3])
        more = f" (and {len(dataset.issues) - 3} more; `ctseg verify {root}` lists all)" if len(dataset.issues) > 3 else ""
        raise DatasetError(f"{root}: {len(dataset.issues)} problem(s) in the {layout} layout: {shown}{more}")
    if not dataset.training and not dataset.issues:
        raise DatasetError(f"{root}: the {LAYOUTS[layout]} layout was found but lists no training cases")
    return dataset
