"""``make_dataset``: write synthetic cases in the Medical Segmentation Decathlon (MSD) layout.

::

    out_dir/
      dataset.json            written last: its presence marks a complete dataset
      imagesTr/<task>_000.nii.gz   labelsTr/<task>_000.nii.gz
      imagesTs/<task>_010.nii.gz   labelsTs/<task>_010.nii.gz   (test references, for scoring)
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np

from .._fileio import read_json, write_json
from ..errors import InputError
from ..io.nifti import write_nifti
from .generator import TASKS, check_task, generate_case

__all__ = ["make_dataset", "case_seed"]

_SUBDIRS = ("imagesTr", "labelsTr", "imagesTs", "labelsTs")
_MARK = "ctseg.synth"


def case_seed(seed: int, index: int) -> int:
    """The seed of case ``index`` of a dataset made with ``seed`` (independent of the case count)."""
    child = np.random.SeedSequence(int(seed), spawn_key=(int(index),))
    return int(child.generate_state(1, dtype=np.uint32)[0])


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; choose an empty folder")
    if not out.exists() or not any(out.iterdir()):
        return
    meta = out / "dataset.json"
    ours = False
    if meta.is_file():
        try:
            ours = _MARK in str(read_json(meta).get("reference", ""))
        except (OSError, ValueError, AttributeError):
            ours = False
    else:  # an interrupted run of ours: only our sub-folders
        ours = all(p.name in _SUBDIRS and p.is_dir() for p in out.iterdir())
    if not ours:
        raise InputError(
            f"{out}: the folder is not empty and is not a ctseg synthetic dataset; "
            "choose an empty folder (or a new path)"
        )


def _write_case(job: tuple) -> str:
    """Generate and write one case (top-level so that process pools can pickle it)."""
    task, seed, index, image_dir, label_dir, matrix, slice_spacing = job
    name = f"{task}_{index:03d}.nii.gz"
    image, labels = generate_case(task, seed, matrix=matrix, slice_spacing=slice_spacing)
    write_nifti(image, Path(image_dir) / name, dtype=np.int16)
    write_nifti(labels, Path(label_dir) / name, dtype=np.uint8)
    return name


def _progress(iterable, total: int, enabled: bool, task: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=f"synth {task}", unit="case")


def make_dataset(out_dir: str | Path, task: str = "pancreas", cases: int = 10, test_cases: int = 4,
                 seed: int = 0, *, matrix: int = 512, slice_spacing: float | None = None,
                 workers: int = 1, progress: bool = True) -> Path:
    """Write ``cases`` training and ``test_cases`` test cases of ``task`` into ``out_dir`` (MSD layout).

    Case ``i`` (training first, then test) uses :func:`case_seed` ``(seed, i)``, so datasets made
    with the same seed share their first training cases whatever ``cases`` is. Every file is written
    atomically; ``dataset.json`` comes last. Re-running into an existing ctseg synthetic dataset
    overwrites it case by case.

    Args:
        out_dir: the dataset folder; created if missing; must be empty or a ctseg synthetic dataset.
        matrix, slice_spacing: passed to :func:`generate_case`.
        workers: processes generating cases in parallel (1 = in this process).
        progress: show a progress bar (tqdm).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        InputError: unknown task, negative counts, or a non-empty folder that is not ours.
    """
    check_task(task)
    if int(cases) < 0 or int(test_cases) < 0 or int(cases) + int(test_cases) == 0:
        raise InputError(f"need cases >= 0 and test_cases >= 0, not both 0 (got {cases}, {test_cases})")
    if int(workers) < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    out = Path(out_dir)
    _check_out_dir(out)
    for sub in _SUBDIRS:
        (out / sub).mkdir(parents=True, exist_ok=True)
    jobs = []
    for index in range(int(cases) + int(test_cases)):
        split = ("imagesTr", "labelsTr") if index < int(cases) else ("imagesTs", "labelsTs")
        jobs.append((task, case_seed(seed, index), index, str(out / split[0]), str(out / split[1]),
                     int(matrix), slice_spacing))
    if int(workers) > 1 and len(jobs) > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(int(workers), len(jobs))) as pool:
            names = list(_progress(pool.imap(_write_case, jobs), len(jobs), progress, task))
    else:
        names = [_write_case(job) for job in _progress(jobs, len(jobs), progress, task)]
    write_json(out / "dataset.json", _dataset_json(task, names, int(cases), seed, matrix))
    return out


def _dataset_json(task: str, names: list[str], cases: int, seed: int, matrix: int) -> dict:
    return {
        "name": f"synthetic-{task}",
        "description": (
            f"{TASKS[task]['description']}. Generated by {_MARK} (seed {seed}, matrix {matrix}). "
            "labelsTs holds the reference labels of the test cases, for scoring."
        ),
        "tensorImageSize": "3D",
        "reference": f"{_MARK} synthetic phantom (no patient data)",
        "licence": "CC0-1.0",
        "release": "1.0",
        "modality": {"0": "CT"},
        "labels": dict(TASKS[task]["labels"]),
        "numTraining": cases,
        "numTest": len(names) - cases,
        "training": [{"image": f"./imagesTr/{n}", "label": f"./labelsTr/{n}"} for n in names[:cases]],
        "test": [f"./imagesTs/{n}" for n in names[cases:]],
    }
