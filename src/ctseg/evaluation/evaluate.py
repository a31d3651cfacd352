"""Evaluate predicted label maps against references: folders (or files) in, CSV + JSON out.

``evaluate(pred, ref, out_dir)`` pairs NIfTI files by case id (the file name without ``.nii`` /
``.nii.gz``), checks that each pair shares one voxel grid, scores every label with
:func:`ctseg.metrics.case_metrics` (Dice, Jaccard, precision, recall, HD, HD95, ASD and NSD in mm,
volumes and volume errors in mL and %), and writes

* ``metrics.csv``: one row per case x label (``nan``/``inf`` written as such; the lesion counts
  of tumour labels in the last columns, empty for other labels);
* ``summary.json``: per label name, statistics over cases of each metric (mean, median, std,
  IQR, counts of nan and inf) and a pooled Dice; the lesion detection summary; the inputs;
* ``lesions.csv`` (when some label is a lesion label): one row per reference lesion and per
  false predicted lesion (:mod:`ctseg.metrics.lesions`).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from .._fileio import csv_text, write_json, write_text
from ..errors import DatasetError, InputError
from ..io.datasets import case_id_from_path as case_id
from ..io.datasets import list_nifti
from ..io.image import Image
from ..io.nifti import is_nifti, read_nifti
from ..metrics import DEFAULT_NSD_TOLERANCE_MM, LesionSettings, case_metrics
from ..types import PathLike_
from .lesion_summary import CASE_LESION_COLUMNS, LESION_CSV_COLUMNS, summarise_lesions
from .scoring import scoring_options
from .summary import format_table, summarise

__all__ = [
    "EvaluationResult",
    "evaluate",
    "format_table",
    "summarise",
    "pair_cases",
    "load_label_names",
    "case_id",
    "CSV_COLUMNS",
    "LESION_CSV_COLUMNS",
]

logger = logging.getLogger(__name__)

#: Columns of ``metrics.csv``, in order.
CSV_COLUMNS = (
    "case",
    "label",
    "name",
    "dice",
    "jaccard",
    "hd95",
    "asd",
    "ref_volume_ml",
    "pred_volume_ml",
    "precision",
    "recall",
    "hd",
    "nsd",
    "volume_error_ml",
    "volume_error_pct",
    "ref_empty",
    "pred_empty",
    *CASE_LESION_COLUMNS,
)
_GRID_ATOL_MM = 1e-3
_MAX_LISTED = 20


@dataclass
class EvaluationResult:
    """What :func:`evaluate` computed and wrote.

    Attributes:
        rows: one dict per case x label: ``case`` plus the keys of
            :func:`ctseg.metrics.case_metrics` rows.
        summary: the content of ``summary.json`` (see :func:`summarise`; lesion detection under
            ``"lesions"``, see :func:`~ctseg.evaluation.lesion_summary.summarise_lesions`).
        csv_path: path of ``metrics.csv``.
        summary_path: path of ``summary.json``.
        lesion_rows: one dict per lesion (``LESION_CSV_COLUMNS``), empty without lesion labels.
        lesions_path: path of ``lesions.csv``, ``None`` when no label is a lesion label.
    """

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    csv_path: Path
    summary_path: Path
    lesion_rows: list[dict[str, Any]] = field(default_factory=list)
    lesions_path: Path | None = None


# ----------------------------------------------------------------------------- pairing and names


def _nifti_files(path: Path, role: str) -> dict[str, Path]:
    """``{case id: file}`` for a NIfTI file or the NIfTI files of a folder (hidden files skipped)."""
    if not path.exists():
        raise InputError(f"{role} {path}: not found; check the path")
    if path.is_file():
        if not is_nifti(path):
            raise InputError(f"{role} {path}: not a NIfTI file (.nii or .nii.gz)")
        return {case_id(path): path}
    files: dict[str, Path] = {}
    for item in list_nifti(path):
        cid = case_id(item)
        if cid in files:
            raise InputError(
                f"{role} folder {path}: two files for case {cid!r}: {files[cid].name} and {item.name}"
            )
        files[cid] = item
    if not files:
        raise InputError(f"{role} folder {path}: holds no NIfTI files (.nii or .nii.gz)")
    return files


def _listing(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_MAX_LISTED])
    return shown + (f", ... and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else "")


def pair_cases(pred: PathLike_, ref: PathLike_) -> list[tuple[str, Path, Path]]:
    """Pair prediction and reference NIfTI files by case id: ``[(case id, pred, ref)]``, sorted.

    Both may be folders or single files. Two files are paired whatever their names (the case id is
    the reference's). A single prediction file against a reference folder is paired with the
    reference of the same case id. Predictions without a reference are skipped with a logged
    warning.

    Raises:
        InputError: a path is missing or holds no NIfTI file, or references lack a prediction (the
            message lists their case ids).
    """
    pred_path, ref_path = Path(pred), Path(ref)
    refs = _nifti_files(ref_path, "reference")
    preds = _nifti_files(pred_path, "prediction")
    if ref_path.is_file() and pred_path.is_file():
        return [(case_id(ref_path), pred_path, ref_path)]
    if pred_path.is_file():
        refs = {cid: p for cid, p in refs.items() if cid in preds}
        if not refs:
            raise InputError(
                f"prediction {pred_path}: no reference named {case_id(pred_path)}.nii[.gz] in {ref_path}"
            )
    missing = [cid for cid in refs if cid not in preds]
    if missing:
        raise InputError(
            f"{len(missing)} reference case(s) in {ref_path} have no prediction in {pred_path}: "
            f"{_listing(missing)}; predictions must be named like the references (e.g. {missing[0]}.nii.gz)"
        )
    extra = [cid for cid in preds if cid not in refs]
    if extra:
        logger.warning(
            "ignoring %d prediction(s) without a reference in %s: %s",
            len(extra),
            ref_path,
            _listing(extra),
        )
    return [(cid, preds[cid], refs[cid]) for cid in sorted(refs)]


def load_label_names(dataset: PathLike_) -> dict[int, str]:
    """``{label value: name}`` from an MSD ``dataset.json`` (a dataset folder or the file itself).

    MSD writes ``"labels": {"0": "background", "1": "pancreas"}``; the nnU-Net v2 form
    ``{"background": 0, "pancreas": 1}`` is read too.

    Raises:
        DatasetError: no dataset.json, invalid JSON, or no usable ``labels`` mapping.
    """
    path = Path(dataset)
    path = path / "dataset.json" if path.is_dir() else path
    if not path.is_file():
        raise DatasetError(
            f"{path}: dataset.json not found; give an MSD dataset folder or its dataset.json"
        )
    try:
        labels = json.loads(path.read_text(encoding="utf-8")).get("labels")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise DatasetError(f"{path}: not a valid dataset.json ({exc})") from None
    if not isinstance(labels, dict) or not labels:
        raise DatasetError(
            f'{path}: needs a "labels" mapping such as {{"0": "background", "1": "liver"}}'
        )
    try:
        if all(str(k).strip().lstrip("-").isdigit() for k in labels):
            return {int(k): str(v) for k, v in labels.items()}
        return {int(v): str(k) for k, v in labels.items()}
    except (TypeError, ValueError):
        raise DatasetError(
            f'{path}: "labels" must map label values to names, e.g. {{"0": "background", "1": "liver"}}; '
            f"found {labels}"
        ) from None


def _present_labels(array: np.ndarray) -> set[int]:
    """Non-zero (positive) label values present in an integer array."""
    top = int(array.max()) if array.size else 0
    if top <= 0:
        return set()
    boxes = ndimage.find_objects(
        array.view(np.uint8) if array.dtype == bool else array, max_label=top
    )
    return {i + 1 for i, box in enumerate(boxes) if box is not None}


# ----------------------------------------------------------------------------- geometry check


def _corner_offset_mm(a: Image, b: Image) -> float:
    """Largest distance in mm between corresponding corner voxel centres of two grids."""
    corners_a = np.array(list(itertools.product(*[(0, n - 1) for n in a.shape])), dtype=np.float64)
    corners_b = np.array(list(itertools.product(*[(0, n - 1) for n in b.shape])), dtype=np.float64)
    diff = a.voxel_to_world(corners_a) - b.voxel_to_world(corners_b)
    return float(np.sqrt((diff**2).sum(axis=1)).max())


def _check_grid(pred: Image, ref: Image, pred_path: Path, ref_path: Path) -> None:
    if pred.shape == ref.shape and np.allclose(pred.affine, ref.affine, atol=_GRID_ATOL_MM):
        return
    raise InputError(
        f"prediction {pred_path} and reference {ref_path} are not on the same voxel grid: shapes "
        f"{pred.shape} vs {ref.shape}, grid corners up to {_corner_offset_mm(pred, ref):.3f} mm apart; "
        "resample the prediction onto the reference grid (nearest neighbour) before evaluating"
    )


# ----------------------------------------------------------------------------- summary and output


def _csv_cell(value: Any) -> str:
    if value is None:  # a column that does not apply to this row (e.g. lesion counts)
        return ""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # 'nan', 'inf', or the shortest exact decimal
    return str(value)


# ----------------------------------------------------------------------------- the entry point


def _resolve_names(
    labels: Mapping[int, str] | None, dataset: PathLike_ | None
) -> dict[int, str] | None:
    if labels is not None:
        try:
            return {int(k): str(v) for k, v in labels.items()}
        except (TypeError, ValueError):
            raise InputError(
                f"labels must map integer label values to names, found {dict(labels)}"
            ) from None
    if dataset is not None:
        return load_label_names(dataset)
    return None


def _score_case(
    cid: str,
    pred_path: Path,
    ref_path: Path,
    names: dict[int, str] | None,
    regions: Any,
    scoring: dict[str, Any],
) -> tuple[list[dict[str, Any]], set[int]]:
    """Rows of one case and the non-zero label values found in it (``scoring``: the keyword
    arguments of :func:`case_metrics` that set the NSD tolerance and the lesion analysis)."""
    ref = read_nifti(ref_path, label=True)
    pred = read_nifti(pred_path, label=True)
    _check_grid(pred, ref, pred_path, ref_path)
    found = _present_labels(ref.array) | _present_labels(pred.array)
    if names is not None:
        unknown = sorted(found - set(names))
        if unknown:
            logger.warning(
                "case %s: label values %s have no name and are not scored",
                cid,
                _listing([str(v) for v in unknown]),
            )
    case_names = names if names is not None else {k: f"label_{k}" for k in sorted(found)}
    rows = case_metrics(pred.array, ref.array, ref.spacing, case_names, regions, **scoring)
    return [{"case": cid, **row} for row in rows], found


def evaluate(
    pred_dir_or_file: PathLike_,
    ref_dir_or_file: PathLike_,
    out_dir: PathLike_,
    *,
    labels: Mapping[int, str] | None = None,
    dataset: PathLike_ | None = None,
    regions: Mapping[str, Sequence[int]] | None = None,
    progress: bool = True,
    nsd_tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
    lesion_labels: Sequence[int] | None = None,
    lesion_settings: LesionSettings | None = None,
) -> EvaluationResult:
    """Score predicted label maps against references; write ``metrics.csv``, ``summary.json`` and,
    when some label is a lesion label, ``lesions.csv``.

    Args:
        pred_dir_or_file: a NIfTI prediction or a folder of them, named like the references.
        ref_dir_or_file: a NIfTI reference label map or a folder of them.
        out_dir: output folder (created); files are written atomically.
        labels: ``{value: name}``; else names come from ``dataset``'s dataset.json; else every
            non-zero value found in any case is scored as ``label_<value>``. Background 0 is not
            scored. A label absent from a case scores as both-empty (nan).
        dataset: an MSD dataset folder (or its dataset.json) to read label names from.
        regions: ``{name: [values]}`` unions of labels also scored, e.g. ``{"pancreas+tumour": [1, 2]}``.
        progress: show a tqdm progress bar over cases.
        nsd_tolerance_mm: tolerance of the normalised surface Dice, in mm (default 2).
        lesion_labels: label values that get lesion-wise detection; default: the labels whose
            name says tumour / cancer / lesion / metastasis (:func:`find_lesion_labels`); ``[]``
            for none.
        lesion_settings: connectivity and matching of lesions (default ``LesionSettings()``:
            26-connectivity, IoU > 0.1, many-to-many).

    Spacing comes from the reference affine (column norms); metrics are in mm and mL.

    Raises:
        InputError: missing or unreadable files, references without a prediction, a pair whose
            shapes or affines differ (more than 1e-3 mm), or bad ``lesion_labels`` /
            ``nsd_tolerance_mm``.
        DatasetError: ``dataset`` has no usable dataset.json labels.
    """
    names = _resolve_names(labels, dataset)
    scoring = scoring_options(names, nsd_tolerance_mm, lesion_labels, lesion_settings)
    pairs = pair_cases(pred_dir_or_file, ref_dir_or_file)
    per_case: list[tuple[str, list[dict[str, Any]]]] = []
    all_found: set[int] = set()
    for cid, pred_path, ref_path in tqdm(pairs, desc="evaluate", unit="case", disable=not progress):
        rows, found = _score_case(cid, pred_path, ref_path, names, regions, scoring)
        per_case.append((cid, rows))
        all_found |= found
    final_names = names if names is not None else {k: f"label_{k}" for k in sorted(all_found)}
    rows = [
        row
        for cid, case_rows in per_case
        for row in _complete(cid, case_rows, final_names, regions, scoring)
    ]
    lesion_rows = [
        {"case": row["case"], "label": row["label"], "name": row["name"], **lesion}
        for row in rows
        for lesion in row.pop("lesion_table", [])
    ]
    summary = summarise(rows, nsd_tolerance_mm=scoring["nsd_tolerance_mm"])
    if scoring["lesion_labels"]:
        summary["lesions"] = summarise_lesions(rows, lesion_rows, scoring["lesion_settings"])
    # where the label maps came from: `ctseg report` finds the files for its overlays here
    summary["inputs"] = {
        "pred": str(Path(pred_dir_or_file).resolve()),
        "ref": str(Path(ref_dir_or_file).resolve()),
        "dataset": str(Path(dataset).resolve()) if dataset is not None else None,
    }
    out = Path(out_dir)
    csv_path, summary_path = out / "metrics.csv", out / "summary.json"
    write_text(csv_path, csv_text(rows, CSV_COLUMNS, _csv_cell))
    lesions_path = None
    if scoring["lesion_labels"]:
        lesions_path = out / "lesions.csv"
        write_text(lesions_path, csv_text(lesion_rows, LESION_CSV_COLUMNS, _csv_cell))
    write_json(summary_path, summary)
    return EvaluationResult(
        rows=rows,
        summary=summary,
        csv_path=csv_path,
        summary_path=summary_path,
        lesion_rows=lesion_rows,
        lesions_path=lesions_path,
    )


def _complete(
    cid: str, rows: list[dict[str, Any]], names: dict[int, str], regions: Any, scoring: dict[str, Any]
) -> list[dict[str, Any]]:
    """Rows of one case for every label in ``names`` (absent ones scored as both empty), in order."""
    by_label = {row["label"]: row for row in rows}
    missing = {k: v for k, v in names.items() if k != 0 and k not in by_label}
    if missing:
        tiny = np.zeros((1, 1, 1), dtype=np.uint8)
        for row in case_metrics(tiny, tiny, (1.0, 1.0, 1.0), missing, **scoring):
            by_label[row["label"]] = {"case": cid, **row}
    ordered = [by_label[k] for k in sorted(names) if k != 0]
    return ordered + [row for row in rows if isinstance(row["label"], str)]
