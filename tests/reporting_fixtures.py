"""A small evaluation folder for the report tests: phantom CTs, references and shifted predictions
in the MSD layout, scored by ``ctseg.evaluation.evaluate`` (so the report reads what evaluate writes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ctseg.evaluation import evaluate
from ctseg.io import Image, LabelMap, write_nifti
from tests.conftest import make_affine, phantom, world_grid

LABELS = {0: "background", 1: "liver", 2: "tumour"}
# (case id, prediction shift in voxels along i, tumour in the reference, tumour in the prediction, LPS file)
CASES = [
    ("case_b", 3, True, True, True),
    ("case_c", 1, False, True, False),
    ("case_d", 6, True, False, True),
]


def make_evaluation(root: Path) -> dict[str, Path]:
    """Write ``root/data`` (dataset.json, imagesTs, labelsTs), ``root/pred`` and ``root/eval``."""
    data, pred_dir = root / "data", root / "pred"
    for sub in ("imagesTs", "labelsTs"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    pred_dir.mkdir(parents=True, exist_ok=True)
    shape = (48, 40, 16)
    for n, (case, shift, ref_tumour, pred_tumour, lps) in enumerate(CASES):
        affine = make_affine((1.5, 1.5, 4.0), flips=(lps, lps, False), shape=shape)
        image, organ = phantom(shape, affine, radii=(28.0 - 2 * n, 20.0, 22.0))
        tumour = (((world_grid(shape, affine) - np.array([12.0, -6.0, 2.0])) / 7.0) ** 2).sum(-1) < 1
        ref = organ.copy()
        if ref_tumour:
            ref[tumour & (organ > 0)] = 2
        pred = np.roll(organ, shift, axis=0)
        if pred_tumour:
            pred[np.roll(tumour, shift, axis=0) & (pred > 0)] = 2
        image[ref == 2] = 90
        write_nifti(Image(image, affine), data / "imagesTs" / f"{case}.nii.gz")
        write_nifti(LabelMap(ref.astype(np.uint8), affine), data / "labelsTs" / f"{case}.nii.gz")
        write_nifti(LabelMap(pred.astype(np.uint8), affine), pred_dir / f"{case}.nii.gz")
    meta = {"name": "phantoms", "labels": {str(k): v for k, v in LABELS.items()}, "training": [], "test": []}
    (data / "dataset.json").write_text(json.dumps(meta))
    evaluate(pred_dir, data / "labelsTs", root / "eval", dataset=data, progress=False)
    return {"data": data, "pred": pred_dir, "eval": root / "eval"}
