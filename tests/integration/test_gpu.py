"""The same predictor and trainer on CUDA (bfloat16 autocast) when a GPU is present; skipped on a
machine without one (this project's CI has none: run it where the device tool lends a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.integration.test_pipeline import tiny  # noqa: F401  (the module-scoped tiny trained run)
from tests.tiny import TINY

from ctseg.cli import main
from ctseg.inference import Predictor
from ctseg.io import read_nifti

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_cuda_prediction_matches_the_cpu(tiny) -> None:  # noqa: F811
    src = sorted((tiny["data"] / "imagesTs").glob("*.nii.gz"))[0]
    image = read_nifti(src, dtype=np.float32)
    cpu = Predictor(tiny["run"], device="cpu").predict_image(image).array
    gpu = Predictor(tiny["run"], device="cuda").predict_image(image).array
    assert gpu.shape == cpu.shape
    for label in (1, 2):
        a, b = cpu == label, gpu == label
        total = int(a.sum()) + int(b.sum())
        assert total == 0 or 2 * int((a & b).sum()) / total >= 0.98  # bfloat16 moves a few boundary voxels


def test_cuda_training_runs(tiny, tmp_path) -> None:  # noqa: F811
    run = tmp_path / "run"
    assert main(["train", str(tiny["data"]), "-o", str(run), "--preset", "cpu", "--epochs", "1", "--device", "cuda", *TINY]) == 0
    assert (run / "model_final.pt").is_file()
