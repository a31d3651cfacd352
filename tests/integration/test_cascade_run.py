"""A cascade run end to end on tiny data: locator + fine stage in one run folder, prediction on the
input's exact grid through the locator's box, and a resume that does not retrain the locator."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
from tests.tiny import TINY

from ctseg.cli import main
from ctseg.inference import Predictor
from ctseg.io import read_nifti


def test_cascade_trains_both_stages_and_predicts_on_the_input_grid(tmp_path) -> None:
    data, run, pred = tmp_path / "data", tmp_path / "run", tmp_path / "pred"
    assert main(["synth", str(data), "--task", "liver", "--cases", "3", "--test-cases", "1", "--seed", "5", "--matrix", "64"]) == 0
    args = ["train", str(data), "-o", str(run), "--preset", "cpu", "--epochs", "2", *TINY, "--set", "cascade.enabled=true", "--set", "cascade.locator_time_fraction=0.5"]
    assert main(args) == 0
    locator = run / "locator"
    assert (locator / "model_final.pt").is_file() and (run / "model_final.pt").is_file()
    fine_plan, loc_plan = (json.loads((p / "plan.json").read_text()) for p in (run, locator))
    assert fine_plan["crop"] == "roi" and loc_plan["crop"] == "body"
    assert len(json.loads((locator / "history.json").read_text())) == 1  # half of 2 epochs
    assert len(json.loads((run / "history.json").read_text())) == 1

    src = sorted((data / "imagesTs").glob("*.nii.gz"))[0]
    assert main(["predict", "-i", str(src), "-o", str(pred), "-m", str(run)]) == 0
    out, ref = nib.load(pred / src.name), nib.load(src)
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out.affine, ref.affine)

    # the fine stage saw only the locator's box (plus margin): its geometry says so
    predictor = Predictor(run)
    assert predictor.locator is not None
    image = read_nifti(src, dtype=np.float32)
    _, geometry = predictor.probabilities(image)
    located = predictor.locator.predict_image(image)
    if located.array.any():
        body = predictor.locator.probabilities(image)[1]
        assert np.prod([hi - lo for lo, hi in geometry.crop]) <= np.prod([hi - lo for lo, hi in body.crop])

    # post-processing tuned on the validation cases is saved and then used by the predictor
    from ctseg.inference.tuning import (
        CANDIDATE_CONFIDENCE,
        CANDIDATE_CONTACT,
        CANDIDATE_MM3,
        determine_postprocessing,
    )

    tuned = determine_postprocessing(run, progress=False)
    assert set(tuned["min_component_mm3"]) == set(tuned["min_contact"]) == set(tuned["min_confidence"]) == {"1", "2"} and tuned["cases"]
    assert all(v in CANDIDATE_MM3 for v in tuned["min_component_mm3"].values())
    assert all(v in CANDIDATE_CONTACT for v in tuned["min_contact"].values())
    assert all(v in CANDIDATE_CONFIDENCE for v in tuned["min_confidence"].values())
    assert set(tuned["validation"]["2"]) == {f"{v:g}" for v in CANDIDATE_MM3}
    assert set(tuned["validation_contact"]["2"]) == {f"{v:g}" for v in CANDIDATE_CONTACT}
    assert set(tuned["validation_confidence"]["2"]) == {f"{v:g}" for v in CANDIDATE_CONFIDENCE}
    predictor = Predictor(run)
    assert predictor.min_component_mm3 == {int(k): v for k, v in tuned["min_component_mm3"].items()}
    assert predictor.min_contact == {int(k): v for k, v in tuned["min_contact"].items()}
    assert predictor.min_confidence == {int(k): v for k, v in tuned["min_confidence"].items()}

    # resuming for more epochs continues the fine stage only
    mtime = (locator / "model_final.pt").stat().st_mtime_ns
    assert main(["train", str(data), "-o", str(run), "--resume", "--epochs", "4"]) == 0
    assert (locator / "model_final.pt").stat().st_mtime_ns == mtime
    assert len(json.loads((run / "history.json").read_text())) == 2  # the fine stage's share of 4
