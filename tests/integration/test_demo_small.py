"""``ctseg demo`` end to end on a tiny dataset (the full demo is in test_demo_slow.py)."""

from __future__ import annotations

import json

from ctseg.demo import run_demo
from ctseg.inference import Predictor
from ctseg.inference.tuning import POSTPROCESSING_FILE


def test_tiny_demo_tunes_post_processing_and_predicts_with_it(tmp_path) -> None:
    summary = run_demo(tmp_path / "demo", cases=5, test_cases=2, minutes=0.1, matrix=128, progress=False)
    run = tmp_path / "demo" / "run"
    tuned = json.loads((run / POSTPROCESSING_FILE).read_text())
    assert summary["postprocessing"] == {k: {"min_contact": tuned["min_contact"][k], "min_confidence": tuned["min_confidence"][k], "min_component_mm3": v} for k, v in tuned["min_component_mm3"].items()}
    assert set(summary["postprocessing"]) == {"1", "2"} and summary["times"]["tune_s"] > 0
    predictor = Predictor(run)  # what predict applied: the tuned file
    assert predictor.min_confidence == {int(k): v for k, v in tuned["min_confidence"].items()}
    assert len(list((tmp_path / "demo" / "predictions").glob("*.nii.gz"))) == 2
    assert summary["metrics"]["labels"]["liver"]["dice"]["n"] == 2
    split = json.loads((run / "split.json").read_text())
    assert len(split["val"]) == 1 and len(split["train"]) == 4
