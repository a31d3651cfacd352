"""``--seed N --deterministic``: two runs give bit-identical weights and predictions."""

from __future__ import annotations

import numpy as np
import torch

from ctseg.inference import Predictor
from ctseg.io import read_nifti

from .conftest import train_deterministic


def _weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_weights(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs"


def test_two_deterministic_runs_are_bit_identical(tiny_data, tiny_run, tmp_path) -> None:
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    second = tmp_path / "run2"
    train_deterministic(tiny_data, second, seed=1)
    assert_same_weights(tiny_run / "model_final.pt", second / "model_final.pt")
    # the process-wide torch settings are restored after training
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, det)
    # another seed really gives other weights (the comparison can fail)
    third = tmp_path / "run3"
    train_deterministic(tiny_data, third, seed=2)
    wa, wc = _weights(tiny_run / "model_final.pt"), _weights(third / "model_final.pt")
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)

    image = read_nifti(next((tiny_data / "imagesTs").glob("*.nii.gz")), dtype=np.float32)
    first_pred = Predictor(tiny_run).predict_image(image).array
    again = Predictor(tiny_run).predict_image(image).array
    other_run = Predictor(second).predict_image(image).array
    np.testing.assert_array_equal(first_pred, again)
    np.testing.assert_array_equal(first_pred, other_run)
    probs_a, _ = Predictor(tiny_run).probabilities(image)
    probs_b, _ = Predictor(second).probabilities(image)
    assert np.array_equal(probs_a, probs_b)  # the probabilities themselves, not just the argmax
