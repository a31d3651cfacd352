"""Choosing post-processing from the validation cases, as nnU-Net does after training.

For each foreground label, three rules are tried in turn on the full sliding-window prediction of
every validation case: first the removal of regions whose shell lies less than a fraction on the
other foreground labels (:data:`CANDIDATE_CONTACT`), then, with the contact rule chosen, the
removal of regions whose mean probability of the label is under a value
(:data:`CANDIDATE_CONFIDENCE`), then, with both chosen, the removal of regions smaller than a
volume (:data:`CANDIDATE_MM3`). Each time the value with the best mean per-case Dice wins (0 =
off); on a tie the smallest contact fraction and volume (as nnU-Net, which keeps a rule off unless
it helps) but the *largest* confidence: a handful of validation cases that all hold a lesion cannot
show what a doubtful region costs in a lesion-free case, and a tie says the stricter value lost no
lesion there (measured on the demo's runs: README, polarity pass). A case where reference and
prediction are both empty counts as Dice 1 here, so that removing a false positive in a
tumour-free case is rewarded. The choice and the tables it came from are saved as
``postprocessing.json`` in the run folder, which :class:`ctseg.inference.Predictor` applies.
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
from .backends import network_backend
from .polarity import add_mirrored_lesions, polarity_rule
from .postprocess import apply_postprocessing
from .slices import volume_probabilities

__all__ = ["determine_postprocessing", "POSTPROCESSING_FILE", "CANDIDATE_MM3", "CANDIDATE_CONTACT", "CANDIDATE_CONFIDENCE", "CONFIDENCE_ONLY"]

POSTPROCESSING_FILE = "postprocessing.json"
CANDIDATE_MM3 = (0.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
CANDIDATE_CONTACT = (0.0, 0.25, 0.5)
CANDIDATE_CONFIDENCE = (0.0, 0.6, 0.7, 0.8)
#: keyword arguments of :func:`determine_postprocessing` that tune only the confidence rule (the
#: contact and volume rules stay off): ``train --tune-postprocessing confidence`` and the demo
CONFIDENCE_ONLY: dict[str, tuple[float, ...]] = {"candidates_contact": (0.0,), "candidates_mm3": (0.0,)}


def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    total = int(pred.sum()) + int(ref.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(pred, ref).sum()) / total


def _best(scores: dict[float, list[float]], strictest: bool = False) -> tuple[float, dict[str, float]]:
    """The candidate whose mean Dice is the best (on a tie the smallest, or the largest with
    ``strictest``), and the table of means."""
    means = {v: float(np.mean(s)) for v, s in scores.items() if s}
    best = max(means.values(), default=0.0)
    tied = [v for v, m in means.items() if m >= best - 1e-9]
    chosen = (max if strictest else min)(tied, default=0.0)
    return chosen, {f"{v:g}": round(m, 4) for v, m in means.items()}


def determine_postprocessing(
    run_dir: str | Path,
    *,
    candidates_mm3: Sequence[float] = CANDIDATE_MM3,
    candidates_contact: Sequence[float] = CANDIDATE_CONTACT,
    candidates_confidence: Sequence[float] = CANDIDATE_CONFIDENCE,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Pick ``min_contact``, then ``min_confidence``, then ``min_component_mm3`` per foreground
    label on the run's validation cases and save them.

    Returns the saved dict: ``{"min_contact": {label: fraction}, "min_confidence": {label:
    probability}, "min_component_mm3": {label: mm3}, "validation": {label: {mm3: mean Dice}},
    "validation_contact": {label: {fraction: mean Dice}}, "validation_confidence": {label:
    {probability: mean Dice}}, "cases": [...]}``. With no validation cases distinct from the training cases nothing is chosen
    (all labels 0 = off).
    """
    run = Path(run_dir)
    cfg = read_run_config(run)
    plan = Plan.from_dict(read_json(run / "plan.json"))
    split = read_json(run / "split.json")
    cases = [c for c in split["val"] if c not in set(split["train"])]
    weights = run / "model_final.pt"
    model, _ = load_model(weights if weights.is_file() else run / "model_best.pt", torch.device(device))
    network = network_backend(model, plan.patch_size, "torch", device, cfg.predict.precision)  # as predict runs it
    labels = [k for k in sorted(plan.labels) if k > 0]
    polarity = polarity_rule(cfg, plan, run, strict=False) if cfg.predict.polarity_tta else None  # as predict will run
    predictions = []  # (probabilities after keep_largest, spacing, reference) per case
    for case_id in tqdm(cases, desc="tune post-processing", unit="case", disable=not progress):
        case = load_preprocessed(run / "preprocessed", case_id, mmap=False)

        def window(volume: np.ndarray) -> np.ndarray:
            return volume_probabilities(volume, network, plan, step=cfg.predict.step, batch_size=cfg.predict.batch_size, device=device)

        probs = window(case["image"])
        spacing = plan.spacing if plan.spatial_dims == 3 else case["geometry"].resampled_spacing  # 2D: the case's own grid
        if polarity is not None:
            probs = add_mirrored_lesions(case["image"][0], probs, lambda v: window(v[None]), polarity, spacing)
        predictions.append((apply_postprocessing(probs, spacing, keep_largest=cfg.predict.keep_largest_component), spacing, case["seg"][0]))

    def stage(label: int, current: list[np.ndarray], key: str, values: list[float], strictest: bool) -> tuple[float, dict[str, float], list[np.ndarray]]:
        """One rule on every case's probabilities (the earlier rules already applied): the
        best value (ties as ``strictest`` says), its table, and the probabilities with it applied."""
        found = [[_dice(apply_postprocessing(probs, spacing, **{key: {label: v}}).argmax(0) == label, ref == label) for probs, (_, spacing, ref) in zip(current, predictions)] for v in values]
        chosen, table = _best(dict(zip(values, found)), strictest)
        return chosen, table, [apply_postprocessing(probs, spacing, **{key: {label: chosen}}) for probs, (_, spacing, _) in zip(current, predictions)]

    chosen: dict[str, dict[str, float]] = {"min_contact": {}, "min_confidence": {}, "min_component_mm3": {}}
    tables: dict[str, dict[str, dict[str, float]]] = {"min_contact": {}, "min_confidence": {}, "min_component_mm3": {}}
    # (key, candidates, ties to the strictest): only the confidence rule breaks ties upwards (module docstring)
    rules = [("min_contact", candidates_contact, False), ("min_confidence", candidates_confidence, True), ("min_component_mm3", candidates_mm3, False)]
    for label in labels:
        current = [probs for probs, _, _ in predictions]
        for key, values, strictest in rules:  # in the order apply_postprocessing applies them
            chosen[key][str(label)], tables[key][str(label)], current = stage(label, current, key, [float(v) for v in values], strictest)
    result = {
        **chosen,
        "validation_contact": tables["min_contact"],
        "validation_confidence": tables["min_confidence"],
        "validation": tables["min_component_mm3"],
        "cases": cases,
        "rule": "first drop regions whose shell lies on other foreground labels less than min_contact, then regions whose mean probability of the label is under min_confidence, then regions smaller than min_component_mm3 (0 = off)",
    }
    write_json(run / POSTPROCESSING_FILE, result)
    return result
