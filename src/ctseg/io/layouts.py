"""The rules of each dataset layout (see :mod:`ctseg.io.datasets` for the layouts themselves).

Each ``parse_*`` function lists the cases of one layout. Structural errors (no usable labels,
several input channels) raise :class:`DatasetError`; per-case problems (a missing label, a label
without its image) become :class:`Issue` rows and the case is left out of the lists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CtsegError, DatasetError
from .datasets import Case, Dataset, Issue, _resolve, _with_channel, case_id_from_path, list_images
from .reader import image_suffix, is_image_file

__all__ = ["parse_msd", "parse_nnunet", "parse_lits", "parse_plain", "parse_labels", "lits_files", "plain_pairs_found", "drop_duplicates"]

LITS_LABELS = {0: "background", 1: "liver", 2: "tumour"}
_LITS_VOLUME = re.compile(r"^(test-)?volume-(\d+)\.nii(\.gz)?$", re.IGNORECASE)
_LITS_SEGMENTATION = re.compile(r"^segmentation-(\d+)\.nii(\.gz)?$", re.IGNORECASE)
_LABEL_SUFFIXES = ("_seg", "_label", "_labels", "_mask", "_gt")
_LABEL_FOLDERS = ("labels", "masks")
_NON_CT_CHANNELS = {"MR", "MRI", "T1", "T1W", "T2", "T2W", "FLAIR", "ADC", "DWI", "PET", "US", "T1GD", "T1CE"}


def parse_labels(meta: dict[str, Any] | None, where: Path) -> dict[int, str] | None:
    """``labels`` of a dataset.json in either style: MSD ``{"0": "background"}`` or nnU-Net v2
    ``{"background": 0}``; None when there is no ``labels`` entry.

    Raises:
        DatasetError: malformed labels, region-based (list) labels, or no background 0.
    """
    if meta is None or "labels" not in meta:
        return None
    raw = meta["labels"]
    if not isinstance(raw, dict) or not raw:
        raise DatasetError(f"{where}: 'labels' must be a non-empty mapping, e.g. {{\"0\": \"background\", \"1\": \"liver\"}}")
    try:
        if all(str(k).strip().lstrip("-").isdigit() for k in raw):
            labels = {int(k): str(v) for k, v in raw.items()}
        else:
            if any(isinstance(v, (list, tuple)) for v in raw.values()):
                raise DatasetError(f"{where}: region-based labels (lists of values) are not supported; give one value per label")
            labels = {int(v): str(k) for k, v in raw.items()}
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: malformed 'labels' ({exc}); use {{\"0\": \"background\", \"1\": \"liver\"}} or {{\"background\": 0, \"liver\": 1}}") from None
    if 0 not in labels:
        raise DatasetError(f"{where}: 'labels' must include 0 (background)")
    if min(labels) < 0:
        raise DatasetError(f"{where}: label values must be >= 0, found {min(labels)}")
    return labels


def _missing(case_id: str, path: Path, kind: str) -> Issue:
    what = "label" if kind == "missing-label" else "image"
    return Issue(case_id, str(path), f"{what} file not found", f"add the {what} or remove the case from the dataset", kind)


def _require_meta(root: Path, meta: dict[str, Any] | None, layout: str) -> dict[str, Any]:
    if meta is None:
        raise DatasetError(f"{root}: not a dataset (no dataset.json); the {layout} layout needs one with 'labels'")
    return meta


def parse_msd(root: Path, meta: dict[str, Any] | None) -> Dataset:
    meta = _require_meta(root, meta, "MSD")
    meta_path = root / "dataset.json"
    labels = parse_labels(meta, meta_path)
    if labels is None:
        raise DatasetError(f"{meta_path}: malformed dataset.json: it needs a 'labels' mapping, e.g. {{\"0\": \"background\", \"1\": \"liver\"}}")
    entries = meta.get("training", [])
    if not isinstance(entries, list):
        raise DatasetError(f"{meta_path}: 'training' must be a list of {{'image': ..., 'label': ...}}")
    training, issues = [], []
    for item in entries:
        if not isinstance(item, dict) or not isinstance(item.get("image"), str) or not isinstance(item.get("label"), str):
            raise DatasetError(f"{meta_path}: each 'training' entry needs 'image' and 'label' paths, found {item!r}"[:300])
        image, label = _resolve(root, item["image"]), _resolve(root, item["label"])
        case = Case(case_id_from_path(image), image, label)
        _add(case, training, issues)
    test = []
    for item in meta.get("test", []) or []:
        image = _resolve(root, item["image"] if isinstance(item, dict) else str(item))
        label = root / "labelsTs" / image.name
        case = Case(case_id_from_path(image), image, label if label.is_file() else None)
        _add(case, test, issues)
    return Dataset(root, str(meta.get("name", root.name)), labels, training, test, layout="msd", issues=issues)


def _add(case: Case, cases: list[Case], issues: list[Issue]) -> None:
    """Append ``case`` when its files exist, else record what is missing."""
    if not case.image.exists():
        issues.append(_missing(case.case_id, case.image, "missing-image"))
    elif case.label is not None and not case.label.is_file():
        issues.append(_missing(case.case_id, case.label, "missing-label"))
    else:
        cases.append(case)


def parse_nnunet(root: Path, meta: dict[str, Any] | None) -> Dataset:
    meta = _require_meta(root, meta, "nnU-Net")
    meta_path = root / "dataset.json"
    labels = parse_labels(meta, meta_path)
    if labels is None:
        raise DatasetError(f"{meta_path}: no 'labels'; nnU-Net dataset.json v2 needs e.g. {{\"background\": 0, \"liver\": 1}}")
    channels = meta.get("channel_names") or meta.get("modality") or {"0": "CT"}
    if not isinstance(channels, dict) or len(channels) != 1:
        raise DatasetError(f"{meta_path}: ctseg segments single-channel CT; 'channel_names' lists {len(channels) if isinstance(channels, dict) else '?'} channels ({channels})")
    issues = []
    channel = str(next(iter(channels.values())))
    if channel.upper().replace(" ", "") in _NON_CT_CHANNELS:
        issues.append(Issue("*", str(meta_path), f"channel 0 is {channel!r}, not CT", "ctseg segments CT; use a CT dataset (HU intensities)", "modality"))
    ending = str(meta.get("file_ending", ".nii.gz"))
    listed = meta.get("training")
    if isinstance(listed, list) and listed and "channel_names" not in meta:  # v1: MSD-style list
        images = [_with_channel(_resolve(root, str(item.get("image", "")))) for item in listed if isinstance(item, dict)]
    else:
        images = _channel0(root / "imagesTr", ending)
    training: list[Case] = []
    for image in images:
        case_id = image.name[: -len("_0000" + ending)] if image.name.endswith("_0000" + ending) else case_id_from_path(image)
        _add(Case(case_id, image, root / "labelsTr" / f"{case_id}{ending}"), training, issues)
    known = {c.case_id for c in training} | {i.case for i in issues}
    for label in sorted((root / "labelsTr").glob(f"*{ending}")) if (root / "labelsTr").is_dir() else []:
        case_id = label.name[: -len(ending)]
        if case_id not in known and not label.name.startswith("."):
            issues.append(Issue(case_id, str(label), f"label without an image (expected imagesTr/{case_id}_0000{ending})", "add the image or remove the label", "missing-image"))
    test = [Case(p.name[: -len("_0000" + ending)], p) for p in _channel0(root / "imagesTs", ending)]
    return Dataset(root, str(meta.get("name", root.name)), labels, training, test, layout="nnunet", issues=issues)


def _channel0(folder: Path, ending: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"*_0000{ending}") if not p.name.startswith("."))


def lits_files(root: Path) -> dict[str, list[tuple[int, Path]]]:
    """LiTS files below ``root``: ``{"volume": [(N, path)...], "segmentation": [...], "test": [...]}``
    (empty dict when there are none)."""
    found: dict[str, list[tuple[int, Path]]] = {"volume": [], "segmentation": [], "test": []}
    for path in sorted(root.rglob("*.nii*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if m := _LITS_VOLUME.match(path.name):
            found["test" if m.group(1) else "volume"].append((int(m.group(2)), path))
        elif m := _LITS_SEGMENTATION.match(path.name):
            found["segmentation"].append((int(m.group(1)), path))
    return found if found["volume"] or found["segmentation"] else {}


def parse_lits(root: Path, meta: dict[str, Any] | None) -> Dataset:
    files = lits_files(root)
    if not files:
        raise DatasetError(f"{root}: no LiTS files (volume-N.nii[.gz] and segmentation-N.nii[.gz]) below this folder")
    labels = parse_labels(meta, root / "dataset.json") or dict(LITS_LABELS)
    segs: dict[tuple[Path | None, int], Path] = {}
    for n, path in sorted(files["segmentation"], key=lambda t: (t[0], str(t[1]))):
        segs.setdefault((path.parent, n), path)  # the segmentation beside the volume first
        segs.setdefault((None, n), path)
    training: list[Case] = []
    issues: list[Issue] = []
    volumes = sorted(files["volume"], key=lambda t: (t[0], str(t[1])))
    for n, path in volumes:
        label = segs.get((path.parent, n)) or segs.get((None, n)) or path.with_name(f"segmentation-{n}.nii")
        _add(Case(f"volume-{n}", path, label), training, issues)
    with_volume = {n for n, _ in volumes}
    for n, path in sorted(files["segmentation"]):
        if n not in with_volume:
            issues.append(Issue(f"volume-{n}", str(path), f"segmentation without its volume-{n}.nii[.gz]", "add the volume or remove the segmentation", "missing-image"))
    test = [Case(f"test-volume-{n}", p) for n, p in sorted(files["test"], key=lambda t: (t[0], str(t[1])))]
    name = str((meta or {}).get("name", root.name))
    return Dataset(root, name, labels, training, test, layout="lits", issues=issues)


def _label_folder(root: Path) -> Path | None:
    return next((root / n for n in _LABEL_FOLDERS if (root / n).is_dir()), None)


def _flat_pairs(root: Path) -> tuple[list[Path], dict[str, Path]]:
    """Images and {case id: label} of a flat folder of NAME + NAME_seg pairs."""
    images, labels = [], {}
    for path in list_images(root):
        case_id = case_id_from_path(path)
        tag = next((s for s in _LABEL_SUFFIXES if case_id.lower().endswith(s)), None)
        if tag:
            labels[case_id[: -len(tag)]] = path
        else:
            images.append(path)
    return images, labels


def plain_pairs_found(root: Path) -> bool:
    if (root / "images").is_dir() and _label_folder(root) is not None:
        return True
    images, labels = _flat_pairs(root)
    return any(case_id_from_path(p) in labels for p in images)


def parse_plain(root: Path, meta: dict[str, Any] | None) -> Dataset:
    label_dir = _label_folder(root)
    issues: list[Issue] = []
    if (root / "images").is_dir() and label_dir is not None:
        entries = sorted(p for p in (root / "images").iterdir() if not p.name.startswith(".") and (p.is_dir() or is_image_file(p)))
        images = [(p.name if p.is_dir() else case_id_from_path(p), p) for p in entries]
        labels_by_id: dict[str, Path] = {}
        for p in list_images(label_dir):
            labels_by_id.setdefault(case_id_from_path(p), p)
        default_label = lambda cid, img: label_dir / (img.name if image_suffix(img) else f"{cid}.nii.gz")  # noqa: E731
    else:
        flat, labels_by_id = _flat_pairs(root)
        images = [(case_id_from_path(p), p) for p in flat]
        default_label = lambda cid, img: img.with_name(f"{cid}_seg{image_suffix(img)}")  # noqa: E731
    training: list[Case] = []
    for case_id, image in images:
        _add(Case(case_id, image, labels_by_id.get(case_id, default_label(case_id, image))), training, issues)
    with_image = {cid for cid, _ in images}
    for case_id, label in sorted(labels_by_id.items()):
        if case_id not in with_image:
            issues.append(Issue(case_id, str(label), "label without an image of the same name", "add the image or remove the label", "missing-image"))
    labels = parse_labels(meta, root / "dataset.json")
    inferred = labels is None
    if labels is None:
        labels = _infer_labels(training)
    name = str((meta or {}).get("name", root.name))
    return Dataset(root, name, labels, training, [], layout="plain", issues=issues, labels_inferred=inferred)


def _infer_labels(cases: list[Case]) -> dict[int, str]:
    """{0: background, 1: label_1, ...} up to the largest value in any readable label file."""
    from .reader import read_label

    top = 1
    for case in cases:
        if case.label is None:
            continue
        try:
            top = max(top, int(np.max(read_label(case.label).array, initial=0)))
        except CtsegError:
            continue  # ctseg verify reports the unreadable file
    return {0: "background", **{v: f"label_{v}" for v in range(1, top + 1)}}


def drop_duplicates(dataset: Dataset) -> Dataset:
    """Keep the first case of each id in ``training`` and ``test``; later ones become issues."""
    issues = list(dataset.issues)

    def unique(cases: list[Case]) -> list[Case]:
        first: dict[str, Case] = {}
        for case in cases:
            if case.case_id in first:
                issues.append(Issue(case.case_id, str(case.image), f"duplicate case id {case.case_id!r} (also {first[case.case_id].image})", "rename or remove one of the two; this copy is left out", "duplicate"))
            else:
                first[case.case_id] = case
        return list(first.values())

    training, test = unique(dataset.training), unique(dataset.test)
    return Dataset(dataset.root, dataset.name, dataset.labels, training, test, dataset.layout, issues, dataset.labels_inferred)
