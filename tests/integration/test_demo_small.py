"""``ctseg demo`` end to end on a tiny dataset (the full demo is in test_demo_slow.py)."""

from __future__ import annotations

import json

from ctseg.demo import run_demo
from ctseg.inference import Predictor
from ctseg.inference.tuning import POSTPROCESSING_FILE


def test_tiny_demo_tunes_only_the_confidence_rule_and_predicts_with_it(tmp_path, capsys) -> None:
    summary = run_demo(tmp_path / "demo", cases=5, test_cases=2, minutes=0.1, matrix=128, progress=False)
    run = tmp_path / "demo" / "run"
    tuned = json.loads((run / POSTPROCESSING_FILE).read_text())
    assert summary["min_confidence"] == tuned["min_confidence"] and set(tuned["min_confidence"]) == {"1", "2"}
    assert set(tuned["validation_confidence"]["2"]) == {"0", "0.6", "0.7", "0.8"}  # the candidates were scored
    assert tuned["min_contact"] == {"1": 0.0, "2": 0.0} and tuned["min_component_mm3"] == {"1": 0.0, "2": 0.0}
    assert summary["times"]["tune_s"] > 0
    assert "post-processing chosen on the 1 validation case:" in capsys.readouterr().out
    predictor = Predictor(run)  # what predict applied: the tuned file
    assert predictor.min_confidence == {int(k): v for k, v in tuned["min_confidence"].items()}
    assert len(list((tmp_path / "demo" / "predictions").glob("*.nii.gz"))) == 2
    assert summary["metrics"]["labels"]["liver"]["dice"]["n"] == 2
