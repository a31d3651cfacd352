"""Export a preprocessed dataset to NumPy (.npz per case) or HDF5 (one file), with its metadata.

The source is either a run folder (its ``preprocessed/`` cache and ``plan.json`` are exported as
they are, so the arrays are exactly what training saw) or a dataset folder (fingerprinted,
planned and preprocessed now with the given settings, in a temporary cache).

Per case: ``image`` (1, X, Y, Z) float32, normalised, on the plan's grid in canonical RAS axis
order; ``seg`` (1, X, Y, Z) uint8 labels; ``spacing`` (3,) mm; ``affine`` (4, 4) voxel -> RAS mm of
that grid; ``geometry`` (JSON: input shape/affine, crop, resampled grid: everything needed to map
a prediction back onto the input); ``split`` (``train``/``val`` for a run folder, else ``""``).

- ``numpy``: ``OUT/<case>.npz`` with those keys (``geometry`` as a JSON string), plus
  ``OUT/plan.json`` and ``OUT/dataset.json`` (labels). Read with ``np.load(path)``.
- ``hdf5``: one file (``OUT`` when it ends in .h5/.hdf5, else ``OUT/preprocessed.h5``); root
  attributes ``plan``, ``labels`` (JSON), ``ctseg_version``, ``source``; one group per case with
  datasets ``image``, ``seg`` (gzip-compressed, chunked) and attributes ``spacing``, ``affine``,
  ``geometry``, ``split``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .._fileio import atomic_path, read_json, write_json
from ..config import Config
from ..errors import InputError
from ..io.datasets import load_dataset
from .fingerprint import compute_fingerprint
from .pipeline import load_preprocessed, preprocess_dataset
from .plan import Plan, make_plan

__all__ = ["export_preprocessed", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("numpy", "hdf5")


def _is_run(path: Path) -> bool:
    return (path / "plan.json").is_file() and (path / "preprocessed").is_dir()


def _cached_ids(cache: Path) -> list[str]:
    ids = []
    for meta in sorted(cache.glob("*.json")):
        if not meta.name.startswith(".") and (cache / f"{meta.stem}_img.npy").is_file():
            ids.append(meta.stem)
    return ids


def _cases(cache: Path, ids: list[str], split: dict[str, str], progress: bool) -> Iterator[dict[str, Any]]:
    for case_id in tqdm(ids, desc="export", unit="case", disable=not progress):
        case = load_preprocessed(cache, case_id, mmap=True)
        affine = np.asarray(case["geometry"].resampled_affine, dtype=np.float64)
        yield {
            "case_id": case_id,
            "image": np.asarray(case["image"], dtype=np.float32),
            "seg": np.asarray(case["seg"], dtype=np.uint8),
            "affine": affine,
            "spacing": np.sqrt((affine[:3, :3] ** 2).sum(axis=0)),
            "geometry": json.dumps(case["geometry"].to_dict()),
            "split": split.get(case_id, ""),
        }


def _write_numpy(out: Path, cases: Iterator[dict[str, Any]], plan: Plan, labels: dict[int, str], source: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for case in cases:
        with atomic_path(out / f"{case['case_id']}.npz") as tmp:
            np.savez(tmp, image=case["image"], seg=case["seg"], affine=case["affine"], spacing=case["spacing"], geometry=np.array(case["geometry"]), split=np.array(case["split"]))
    write_json(out / "plan.json", plan.to_dict())
    write_json(out / "dataset.json", {"labels": {str(k): v for k, v in labels.items()}, "source": str(source)})
    return out


def _write_hdf5(out: Path, cases: Iterator[dict[str, Any]], plan: Plan, labels: dict[int, str], source: Path) -> Path:
    import h5py

    from .. import __version__

    target = out if out.suffix.lower() in (".h5", ".hdf5") else out / "preprocessed.h5"
    with atomic_path(target) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["plan"] = json.dumps(plan.to_dict())
        h5.attrs["labels"] = json.dumps({str(k): v for k, v in labels.items()})
        h5.attrs["ctseg_version"] = __version__
        h5.attrs["source"] = str(source)
        for case in cases:
            group = h5.create_group(case["case_id"])
            chunks = (1, *(min(64, s) for s in case["image"].shape[1:]))
            group.create_dataset("image", data=case["image"], chunks=chunks, compression="gzip", compression_opts=1, shuffle=True)
            group.create_dataset("seg", data=case["seg"], chunks=chunks, compression="gzip", compression_opts=1)
            for key in ("affine", "spacing", "geometry", "split"):
                group.attrs[key] = case[key]
    return target


def export_preprocessed(source: str | Path, out: str | Path, *, fmt: str = "numpy", config: Config | None = None, progress: bool = True) -> Path:
    """Export the preprocessed cases of a run folder or a dataset to NumPy or HDF5.

    Args:
        source: a run folder written by ``ctseg train`` or a dataset folder (any layout).
        out: the output folder (numpy) or .h5 file / folder (hdf5).
        fmt: ``"numpy"`` or ``"hdf5"``.
        config: plan settings used for a dataset source (default settings when None); ignored for
            a run folder, whose plan is exported as it is.

    Returns:
        The folder (numpy) or file (hdf5) written. Files are written atomically.

    Raises:
        InputError: unknown format or a source that is neither a run folder nor a dataset.
        DatasetError / InputError: the dataset's problems (see ``ctseg verify``).
    """
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    source, out = Path(source), Path(out)
    write = _write_numpy if fmt == "numpy" else _write_hdf5
    if _is_run(source):
        plan = Plan.from_dict(read_json(source / "plan.json"))
        split_path = source / "split.json"
        split = {}
        if split_path.is_file():
            saved = read_json(split_path)
            split = {i: "val" for i in saved.get("val", [])} | {i: "train" for i in saved.get("train", []) if i not in saved.get("val", [])}
        ids = _cached_ids(source / "preprocessed")
        if not ids:
            raise InputError(f"{source / 'preprocessed'}: no preprocessed case; run `ctseg train` first or export from the dataset")
        return write(out, _cases(source / "preprocessed", ids, split, progress), plan, plan.labels, source)
    dataset = load_dataset(source)  # raises a clear error when it is neither
    cfg = config or Config()
    fingerprint = compute_fingerprint(dataset, crop_threshold_hu=cfg.plan.crop_threshold_hu, seed=cfg.train.seed, progress=progress)
    plan = make_plan(fingerprint, cfg.plan)
    scratch = out.parent if out.suffix.lower() in (".h5", ".hdf5") else out
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".ctseg-export-", dir=scratch) as tmp:  # beside the output: same disk
        ids = preprocess_dataset(dataset, plan, Path(tmp), progress=progress)
        return write(out, _cases(Path(tmp), ids, {}, progress), plan, dataset.labels, source)
