"""Finding each evaluated case's CT, reference and prediction files for the report's overlays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.datasets import case_id_from_path, list_nifti
from ..io.nifti import is_nifti
from ..types import PathLike_

__all__ = ["CaseFiles", "locate_case_files", "nifti_by_case"]


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case (None where not found)."""

    image: Path | None
    ref: Path | None
    pred: Path | None


def nifti_by_case(path: Path, kind: str) -> dict[str, Path]:
    """``{case id: file}`` of a NIfTI file, a folder of them, or an MSD dataset folder (its
    ``<kind>Ts`` and ``<kind>Tr`` folders, ``kind`` being ``images`` or ``labels``)."""
    if path.is_file():
        return {case_id_from_path(path): path} if is_nifti(path) else {}
    folders = [path / f"{kind}Tr", path / f"{kind}Ts"]
    folders = [f for f in folders if f.is_dir()] or [path]
    found: dict[str, Path] = {}
    for folder in folders:  # test cases win over training cases of the same id
        found.update({case_id_from_path(p): p for p in list_nifti(folder)})
    return found


def _pick(explicit: PathLike_ | None, recorded: Any, role: str, notes: list[str]) -> Path | None:
    if explicit is not None:
        path = Path(explicit)
        if not path.exists():
            raise InputError(f"{role} {path}: not found; check the path")
        return path
    if isinstance(recorded, str) and recorded:
        path = Path(recorded)
        if path.exists():
            return path
        notes.append(f"the {role} recorded by evaluate ({path}) no longer exists; pass it explicitly")
    return None


def _images_beside(ref: Path | None) -> Path | None:
    """``.../labelsTs`` -> ``.../imagesTs`` (likewise Tr) when that folder exists."""
    if ref is None or not ref.name.startswith("labels"):
        return None
    sibling = ref.with_name("images" + ref.name[len("labels") :])
    return sibling if sibling.is_dir() else None


def locate_case_files(
    cases: Sequence[str],
    summary: Mapping[str, Any],
    *,
    images: PathLike_ | None = None,
    pred: PathLike_ | None = None,
    ref: PathLike_ | None = None,
    notes: list[str] | None = None,
) -> dict[str, CaseFiles]:
    """Files of each case id, from explicit paths or else those ``summary["inputs"]`` records.

    The CT images are searched in ``images`` (a folder or an MSD dataset folder), else the
    recorded ``images`` or ``dataset``, else the ``imagesXx`` folder beside a ``labelsXx``
    reference folder. What cannot be found is described in ``notes``.

    Raises:
        InputError: an explicitly given path does not exist.
    """
    notes = notes if notes is not None else []
    recorded = summary.get("inputs") if isinstance(summary.get("inputs"), Mapping) else {}
    pred_path = _pick(pred, recorded.get("pred"), "prediction folder", notes)
    ref_path = _pick(ref, recorded.get("ref"), "reference folder", notes)
    image_path = _pick(images, recorded.get("images") or recorded.get("dataset"), "image folder", notes) or _images_beside(ref_path)
    preds = nifti_by_case(pred_path, "labels") if pred_path else {}
    refs = nifti_by_case(ref_path, "labels") if ref_path else {}
    cts = nifti_by_case(image_path, "images") if image_path else {}
    if not preds and not refs:
        notes.append("overlays left out: the prediction and reference folders are unknown; pass --pred and --ref "
                     "(or evaluate again: summary.json then records them)")
        return {}
    if not cts:
        notes.append("no CT images found: overlays show contours only; pass --images (an image folder or the dataset)")
    out = {c: CaseFiles(cts.get(c), refs.get(c), preds.get(c)) for c in cases}
    missing = [c for c, f in out.items() if f.ref is None and f.pred is None]
    if missing:
        notes.append(f"no label files found for {len(missing)} case(s): {', '.join(missing[:10])}")
    return out
