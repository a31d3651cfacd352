"""Weight averaging (``train.average_from``): model_final.pt is the mean of the weights at the end of
every epoch from that fraction of training on; the live weights stay in the checkpoint and
model_best.pt; a bad fraction is refused before anything is prepared."""

from __future__ import annotations

import pytest
import torch

from ctseg.cli import main
from ctseg.config import TrainSettings
from ctseg.errors import InputError
from ctseg.training.trainer import Trainer, _check_settings

from .conftest import TINY

ARGS = ["--preset", "cpu", "--seed", "3", "--epochs", "3", *TINY]


def test_the_final_weights_are_the_mean_of_the_epochs_from_average_from(tiny_data, tmp_path, monkeypatch) -> None:
    seen: list[dict[str, torch.Tensor]] = []
    original = Trainer._average

    def record(self: Trainer) -> None:
        seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        original(self)

    monkeypatch.setattr(Trainer, "_average", record)
    run = tmp_path / "run"
    # progress after epochs 1, 2, 3 of 3: 1/3, 2/3, 1; from 0.5 on, epochs 2 and 3 are averaged
    assert main(["train", str(tiny_data), "-o", str(run), *ARGS, "--set", "train.average_from=0.5"]) == 0
    assert len(seen) == 3
    final = torch.load(run / "model_final.pt", map_location="cpu", weights_only=True)
    state = torch.load(run / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert int(state["averaged"]["n_averaged"]) == 2
    for name, value in final.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (seen[1][name] + seen[2][name]) / 2)
    live = state["model"]
    assert any(not torch.equal(final[k], live[k]) for k in final if final[k].is_floating_point())
    for name, value in live.items():  # the checkpoint keeps the live weights, to resume from
        assert torch.equal(value, seen[2][name])


def test_without_averaging_the_final_weights_are_the_last_ones(tiny_data, tmp_path) -> None:
    run = tmp_path / "run"
    assert main(["train", str(tiny_data), "-o", str(run), *ARGS, "--set", "train.average_from=0"]) == 0
    final = torch.load(run / "model_final.pt", map_location="cpu", weights_only=True)
    state = torch.load(run / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert state["averaged"] is None
    assert all(torch.equal(final[k], state["model"][k]) for k in final)


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_a_fraction_outside_zero_to_one_is_refused(value) -> None:
    with pytest.raises(InputError, match="train.average_from"):
        _check_settings(TrainSettings(average_from=value))
