"""Predicting label maps on the input's exact grid from a run folder."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .._fileio import read_json
from ..config import read_run_config
from ..errors import InputError, RunFolderError
from ..io.datasets import case_id_from_path, list_nifti
from ..io.image import Image, LabelMap
from ..io.nifti import is_nifti, read_nifti, write_nifti
from ..models.persist import load_model
from ..preprocessing import CaseGeometry, Plan, preprocess_image, restore_labels
from .postprocess import keep_largest_foreground
from .sliding_window import sliding_window

__all__ = ["Predictor", "predict", "PredictionRecord"]


@dataclass(frozen=True)
class PredictionRecord:
    case_id: str
    input: Path
    output: Path
    seconds: float


class Predictor:
    """Loads a run folder once; ``predict_image`` maps a CT :class:`Image` to a :class:`LabelMap`."""

    def __init__(self, run_dir: str | Path, *, device: str = "cpu", step: float | None = None, tta: bool | None = None, checkpoint: str | None = None) -> None:
        run = Path(run_dir)
        if not run.is_dir():
            raise RunFolderError(f"{run}: run folder not found; give the folder written by `ctseg train -o`")
        cfg = read_run_config(run)
        plan_path = run / "plan.json"
        if not plan_path.is_file():
            raise RunFolderError(f"{run}: plan.json missing; the run folder is incomplete")
        self.plan = Plan.from_dict(read_json(plan_path))
        which = checkpoint or cfg.predict.checkpoint
        if which not in ("final", "best"):
            raise InputError(f"checkpoint must be 'final' or 'best', got {which!r}")
        weights = run / f"model_{which}.pt"
        if which == "final" and not weights.is_file() and (run / "model_best.pt").is_file():
            weights = run / "model_best.pt"
        self.device = torch.device(device)
        self.model, self.spec = load_model(weights, self.device)
        self.step = cfg.predict.step if step is None else step
        if not 0 < self.step <= 1:
            raise InputError(f"step must be in (0, 1], got {self.step}")
        self.tta = cfg.predict.tta if tta is None else tta
        self.batch_size = cfg.predict.batch_size
        self.keep_largest = cfg.predict.keep_largest_component
        self.labels = self.plan.labels

    def probabilities(self, image: Image, progress: bool = False) -> tuple[np.ndarray, CaseGeometry]:
        """Class probabilities on the preprocessed grid and the geometry to undo it."""
        array, geometry = preprocess_image(image, self.plan)
        probs = sliding_window(array[None], self.model, self.plan.patch_size, self.plan.num_classes, step=self.step, batch_size=self.batch_size, tta=self.tta, device=self.device, progress=progress)
        if self.keep_largest:
            probs = keep_largest_foreground(probs)
        return probs, geometry

    def predict_image(self, image: Image, progress: bool = False) -> LabelMap:
        """uint8 labels with exactly the input's shape and affine."""
        probs, geometry = self.probabilities(image, progress)
        labels = restore_labels(probs, geometry)
        return LabelMap(labels, image.affine.copy(), {"source": image.meta.get("path")})


def _plan_outputs(input_path: Path, output: Path) -> list[tuple[Path, Path]]:
    if not input_path.exists():
        raise InputError(f"{input_path}: input not found; give a NIfTI file or a folder of them")
    if input_path.is_dir():
        files = list_nifti(input_path)
        if not files:
            raise InputError(f"{input_path}: no NIfTI files (.nii, .nii.gz) in this folder")
        if output.exists() and not output.is_dir():
            raise InputError(f"{output}: is a file; give an output folder for a folder of inputs")
        return [(f, output / f"{case_id_from_path(f)}.nii.gz") for f in files]
    if not is_nifti(input_path):
        raise InputError(f"{input_path}: not a NIfTI file (.nii or .nii.gz)")
    target = output if is_nifti(output) else output / f"{case_id_from_path(input_path)}.nii.gz"
    return [(input_path, target)]


def predict(
    input_path: str | Path,
    output: str | Path,
    run_dir: str | Path,
    *,
    device: str = "cpu",
    step: float | None = None,
    tta: bool | None = None,
    checkpoint: str | None = None,
    progress: bool = True,
) -> list[PredictionRecord]:
    """Predict one NIfTI file or every NIfTI file in a folder; outputs are uint8 label NIfTI files
    on each input's exact grid (same shape, affine and header geometry), written atomically."""
    pairs = _plan_outputs(Path(input_path), Path(output))
    predictor = Predictor(run_dir, device=device, step=step, tta=tta, checkpoint=checkpoint)
    records = []
    for src, dst in tqdm(pairs, desc="predict", unit="case", disable=not progress or len(pairs) == 1):
        start = time.perf_counter()
        image = read_nifti(src, dtype=np.float32)
        labels = predictor.predict_image(image, progress=progress and len(pairs) == 1)
        write_nifti(labels, dst, dtype=np.uint8, like=image)
        records.append(PredictionRecord(case_id_from_path(src), src, dst, time.perf_counter() - start))
    return records
