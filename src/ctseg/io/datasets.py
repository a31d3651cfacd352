"""Dataset layouts -> one list of cases. Medical Segmentation Decathlon (MSD) layout for now."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError, InputError
from .nifti import is_nifti

__all__ = ["Case", "Dataset", "load_dataset", "case_id_from_path", "list_nifti"]


@dataclass(frozen=True)
class Case:
    """One case: an image file and, for training or scoring, its label file."""

    case_id: str
    image: Path
    label: Path | None = None


@dataclass
class Dataset:
    root: Path
    name: str
    labels: dict[int, str]
    training: list[Case]
    test: list[Case] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return max(self.labels) + 1


def case_id_from_path(path: str | Path) -> str:
    """``pancreas_001.nii.gz`` -> ``pancreas_001`` (an nnU-Net channel suffix ``_0000`` is dropped)."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    if len(name) > 5 and name[-5] == "_" and name[-4:].isdigit():
        name = name[:-5]
    return name


def list_nifti(folder: Path) -> list[Path]:
    """NIfTI files in ``folder`` (sorted, hidden and macOS ``._`` files skipped)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_nifti(p) and not p.name.startswith("."))


def _resolve(root: Path, entry: str) -> Path:
    return (root / entry).resolve() if not Path(entry).is_absolute() else Path(entry)


def load_dataset(root: str | Path) -> Dataset:
    """Read an MSD-layout dataset folder (dataset.json, imagesTr, labelsTr, imagesTs[, labelsTs]).

    Raises:
        InputError: the path does not exist or is not a folder.
        DatasetError: dataset.json is missing or malformed, or lists files that do not exist.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: dataset folder not found; check the path")
    if not root.is_dir():
        raise InputError(f"{root}: expected a dataset folder (MSD layout: dataset.json, imagesTr, labelsTr)")
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise DatasetError(
            f"{root}: not a dataset (no dataset.json); expected the MSD layout: dataset.json, "
            "imagesTr/, labelsTr/ (create one with `ctseg synth` to see an example)"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        labels = {int(k): str(v) for k, v in meta["labels"].items()}
    except (json.JSONDecodeError, KeyError, ValueError, AttributeError, TypeError) as exc:
        raise DatasetError(f"{meta_path}: malformed dataset.json ({type(exc).__name__}: {exc}); it needs a 'labels' mapping") from None
    if 0 not in labels:
        raise DatasetError(f"{meta_path}: 'labels' must include 0 (background)")
    training = [_training_case(root, item, meta_path) for item in meta.get("training", [])]
    if not training:
        raise DatasetError(f"{meta_path}: lists no training cases")
    test = [_test_case(root, item) for item in meta.get("test", [])]
    missing = [str(p) for c in training for p in (c.image, c.label) if p is not None and not p.is_file()]
    missing += [str(c.image) for c in test if not c.image.is_file()]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise DatasetError(f"{meta_path}: listed file(s) missing: {', '.join(missing[:3])}{more}")
    ids = [c.case_id for c in training]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{meta_path}: duplicate training case ids")
    return Dataset(root=root, name=str(meta.get("name", root.name)), labels=labels, training=training, test=test)


def _training_case(root: Path, item: object, meta_path: Path) -> Case:
    if not isinstance(item, dict) or "image" not in item or "label" not in item:
        raise DatasetError(f"{meta_path}: each 'training' entry needs 'image' and 'label'")
    image = _resolve(root, item["image"])
    return Case(case_id_from_path(image), image, _resolve(root, item["label"]))


def _test_case(root: Path, item: object) -> Case:
    entry = item["image"] if isinstance(item, dict) else str(item)
    image = _resolve(root, entry)
    label = root / "labelsTs" / image.name
    return Case(case_id_from_path(image), image, label if label.is_file() else None)
