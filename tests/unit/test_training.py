from __future__ import annotations

import numpy as np
import pytest
import torch

from ctseg.config import TrainSettings
from ctseg.errors import RunFolderError
from ctseg.models.persist import load_model, model_spec, save_model
from ctseg.training.checkpoint import capture_rng, load_state, restore_rng, save_state
from ctseg.training.optim import create_optimizer, lr_at

NET = {"features": [4, 8], "strides": [[1, 1, 1], [2, 2, 2]], "kernel_sizes": [[3, 3, 3], [3, 3, 3]]}


def test_schedules() -> None:
    assert lr_at(0.0, 0.01, "poly") == 0.01 and lr_at(1.0, 0.01, "poly") == 0.0
    assert lr_at(0.5, 0.01, "cosine") == pytest.approx(0.005)
    assert lr_at(0.7, 0.01, "constant") == 0.01
    with pytest.raises(ValueError, match="poly, cosine"):
        lr_at(0.1, 0.01, "linear")


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimizers(name) -> None:
    opt = create_optimizer([torch.nn.Parameter(torch.zeros(2))], TrainSettings(optimizer=name))
    assert opt.param_groups[0]["lr"] == TrainSettings().lr


def test_rng_state_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(5)
    rng.random(3)
    torch.manual_seed(1)
    save_state(tmp_path / "c.pt", {"rng": capture_rng(rng)})
    expected = (rng.random(4), torch.rand(3))
    rng2 = np.random.default_rng(0)
    restore_rng(rng2, load_state(tmp_path / "c.pt")["rng"])
    np.testing.assert_array_equal(rng2.random(4), expected[0])
    torch.testing.assert_close(torch.rand(3), expected[1])


def test_model_save_load_and_tampering(tmp_path) -> None:
    spec = model_spec(NET, num_classes=3, deep_supervision=False)
    from ctseg.models.persist import build_model

    model = build_model(spec).eval()
    save_model(model, spec, tmp_path / "m.pt")
    loaded, _ = load_model(tmp_path / "m.pt")
    x = torch.randn(1, 1, 8, 8, 8)
    torch.testing.assert_close(loaded(x), model(x))
    # a pickle that is not a plain state dict is refused by weights_only loading
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "m.pt")
    with pytest.raises(RunFolderError, match="cannot load weights"):
        load_model(tmp_path / "m.pt")
    (tmp_path / "t.pt").write_bytes(b"truncated")
    with pytest.raises(RunFolderError, match="cannot load checkpoint"):
        load_state(tmp_path / "t.pt")
