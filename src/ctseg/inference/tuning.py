"""Choosing post-processing from the validation cases, as nnU-Net does after training.

For each foreground label, regions smaller than a candidate volume are removed from the full
sliding-window prediction of every validation case; the smallest volume with the best mean
per-case Dice wins (0 = off). A case where reference and prediction are both empty counts as
Dice 1 here, so that removing a false positive in a tumour-free case is rewarded. The choice and
the table it came from are saved as ``postprocessing.json`` in the run folder, which
:class:`ctseg.inference.Predictor` applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .._fileio import read_json, write_json
from ..config import read_run_config
from ..models.persist import load_model
from ..preprocessing import Plan, load_preprocessed
from .postprocess import apply_postprocessing
from .slices import volume_probabilities

__all__ = ["determine_postprocessing", "POSTPROCESSING_FILE", "CANDIDATE_MM3"]

POSTPROCESSING_FILE = "postprocessing.json"
CANDIDATE_MM3 = (0.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)


def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    total = int(pred.sum()) + int(ref.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(pred, ref).sum()) / total


def determine_postprocessing(
    run_dir: str | Path, *, candidates_mm3: Sequence[float] = CANDIDATE_MM3, device: str = "cpu", progress: bool = True
) -> dict[str, Any]:
    """Pick ``min_component_mm3`` per foreground label on the run's validation cases and save it.

    Returns the saved dict: ``{"min_component_mm3": {label: mm3}, "validation": {label: {mm3: mean
    Dice}}, "cases": [...]}``. With no validation cases distinct from the training cases nothing
    is chosen (all labels 0 = off).
    """
    run = Path(run_dir)
    cfg = read_run_config(run)
    plan = Plan.from_dict(read_json(run / "plan.json"))
    split = read_json(run / "split.json")
    cases = [c for c in split["val"] if c not in set(split["train"])]
    weights = run / "model_final.pt"
    model, _ = load_model(weights if weights.is_file() else run / "model_best.pt", torch.device(device))
    labels = [k for k in sorted(plan.labels) if k > 0]
    scores: dict[int, dict[float, list[float]]] = {k: {float(v): [] for v in candidates_mm3} for k in labels}
    for case_id in tqdm(cases, desc="tune post-processing", unit="case", disable=not progress):
        case = load_preprocessed(run / "preprocessed", case_id, mmap=False)
        probs = volume_probabilities(case["image"], model, plan, step=cfg.predict.step, batch_size=cfg.predict.batch_size, device=device)
        spacing = plan.spacing if plan.spatial_dims == 3 else case["geometry"].resampled_spacing  # 2D: the case's own grid
        probs = apply_postprocessing(probs, spacing, keep_largest=cfg.predict.keep_largest_component)
        ref = case["seg"][0]
        for label in labels:
            for volume in scores[label]:
                pred = apply_postprocessing(probs, spacing, min_component_mm3={label: volume}).argmax(0)
                scores[label][volume].append(_dice(pred == label, ref == label))
    chosen: dict[str, float] = {}
    table: dict[str, dict[str, float]] = {}
    for label in labels:
        means = {v: float(np.mean(s)) for v, s in scores[label].items() if s}
        table[str(label)] = {f"{v:g}": round(m, 4) for v, m in means.items()}
        best = max(means.values(), default=0.0)
        chosen[str(label)] = min((v for v, m in means.items() if m >= best - 1e-9), default=0.0)
    result = {"min_component_mm3": chosen, "validation": table, "cases": cases, "rule": "remove regions smaller than min_component_mm3 (0 = off)"}
    write_json(run / POSTPROCESSING_FILE, result)
    return result
