"""Optimisers and learning-rate schedules chosen by name from TrainSettings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import torch

from ctseg.config import Config, TrainSettings
from ctseg.errors import InputError
from ctseg.losses import create_loss
from ctseg.models.persist import build_model, model_spec
from ctseg.training.optim import (
    check_optim_settings,
    create_optimizer,
    lr_at,
    scheduled_lr,
    set_lr,
)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny networks: one thread avoids OpenMP overheads that dominate at these sizes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(2))]


def test_defaults_keep_nnunet_sgd_and_poly() -> None:
    s = TrainSettings()
    opt = create_optimizer(_params(), s)
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.01, 0.99, True)
    assert group["weight_decay"] == 3e-5
    assert scheduled_lr(0.5, s) == pytest.approx(0.01 * 0.5**0.9)
    assert scheduled_lr(0.5, s) == lr_at(0.5, 0.01, "poly")


@pytest.mark.parametrize(
    ("name", "cls"),
    [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_optimizers_take_their_settings(name: str, cls: type) -> None:
    s = TrainSettings(optimizer=name, lr=0.002, weight_decay=0.01, betas=(0.8, 0.9),
                      momentum=0.9, nesterov=False)  # fmt: skip
    opt = create_optimizer(_params(), s)
    group = opt.param_groups[0]
    assert type(opt) is cls and group["lr"] == 0.002 and group["weight_decay"] == 0.01
    if name == "sgd":
        assert group["momentum"] == 0.9 and group["nesterov"] is False
    else:
        assert group["betas"] == (0.8, 0.9)
    set_lr(opt, 0.5)
    assert opt.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
@pytest.mark.usefixtures("one_thread")
def test_each_optimizer_fits_a_tiny_batch(name: str) -> None:
    torch.manual_seed(0)
    spec = model_spec(
        None,
        2,
        "simple_unet",
        spatial_dims=2,
        deep_supervision=False,
        overrides={"features": [4, 8]},
    )
    model = build_model(spec).train()
    lr = 0.05 if name == "sgd" else 0.01
    s = TrainSettings(optimizer=name, lr=lr, momentum=0.9, schedule="cosine")
    opt = create_optimizer(model.parameters(), s)
    loss_fn = create_loss("dice_ce")
    x = torch.randn(4, 1, 8, 8)
    y = (x[:, 0] > 0.5).long()
    losses = []
    for step in range(25):
        set_lr(opt, scheduled_lr(step / 25, s))
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_schedule_known_values() -> None:
    assert lr_at(0.0, 0.01, "poly") == 0.01 and lr_at(1.0, 0.01, "poly") == 0.0
    assert lr_at(0.5, 1.0, "poly", poly_power=2.0) == pytest.approx(0.25)
    assert lr_at(0.5, 0.01, "cosine") == pytest.approx(0.005)
    assert lr_at(1.0, 0.01, "cosine") == pytest.approx(0.0)
    assert lr_at(0.7, 0.01, "constant") == 0.01
    step = [lr_at(p, 1.0, "step", milestones=(0.5, 0.75), gamma=0.1) for p in (0.49, 0.5, 0.8)]
    assert step == pytest.approx([1.0, 0.1, 0.01])
    assert lr_at(-1.0, 1.0, "cosine") == 1.0 and lr_at(2.0, 1.0, "poly") == 0.0  # clipped
    with pytest.raises(ValueError, match="poly, cosine, step, constant"):
        lr_at(0.1, 0.01, "linear")


@pytest.mark.parametrize("schedule", ["poly", "cosine", "step", "constant"])
def test_warmup_ramps_up_then_follows_the_schedule(schedule: str) -> None:
    s = TrainSettings(lr=1.0, schedule=schedule, warmup_fraction=0.2, lr_milestones=(0.6,))
    assert scheduled_lr(0.0, s) == pytest.approx(0.01)
    assert scheduled_lr(0.1, s) == pytest.approx(0.505)
    ramp = [scheduled_lr(p / 100, s) for p in range(21)]
    assert ramp == sorted(ramp)  # rising during the warm-up
    assert scheduled_lr(0.2, s) == pytest.approx(1.0)  # the schedule starts afresh after it
    if schedule in ("poly", "cosine"):
        assert scheduled_lr(1.0, s) == pytest.approx(0.0)
        assert scheduled_lr(0.6, s) == pytest.approx(lr_at(0.5, 1.0, schedule))
    if schedule == "step":
        assert scheduled_lr(0.59, s) == 1.0 and scheduled_lr(0.6, s) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"optimizer": "rmsprop"}, "train.optimizer: unknown 'rmsprop'; valid: sgd, adam, adamw"),
        ({"schedule": "linear"}, "train.schedule: unknown 'linear'"),
        ({"lr": 0.0}, "train.lr must be > 0"),
        ({"momentum": 1.0}, "train.momentum"),
        ({"momentum": 0.0}, "train.nesterov needs train.momentum > 0"),
        ({"betas": (0.9, 1.5)}, "train.betas"),
        ({"lr_milestones": (0.8, 0.4)}, "train.lr_milestones must be increasing"),
        ({"lr_gamma": 2.0}, "train.lr_gamma"),
        ({"warmup_fraction": 1.0}, "train.warmup_fraction"),
        ({"poly_power": 0.0}, "train.poly_power"),
        ({"weight_decay": -1.0}, "train.weight_decay"),
    ],
)
def test_bad_settings_name_the_field(change: dict, message: str) -> None:
    s = dataclasses.replace(TrainSettings(), **change)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_optim_settings(s)
    with pytest.raises(InputError):
        create_optimizer(_params(), s)


def test_settings_from_a_config_build_model_loss_and_optimiser() -> None:
    cfg = Config.from_dict(
        {
            "model": {"name": "resunet", "dropout": 0.1, "kwargs": {"features": [4, 8]}},
            "train": {
                "optimizer": "sgd", "nesterov": False, "momentum": 0.9, "schedule": "step",
                "lr_milestones": [0.3, 0.6], "loss": "weighted_ce",
                "loss_kwargs": {"class_weights": [1.0, 2.0, 4.0]},
            },
        }
    )  # fmt: skip
    assert cfg.train.lr_milestones == (0.3, 0.6)
    assert Config.from_dict(cfg.to_dict()) == cfg and cfg.hash() != Config().hash()
    spec = model_spec(None, 3, cfg.model.name, dropout=cfg.model.dropout,
                      overrides=cfg.model.kwargs)  # fmt: skip
    model = build_model(spec)
    assert model.features == (4, 8) and spec["kwargs"]["dropout"] == 0.1
    loss = create_loss(cfg.train.loss, **cfg.train.loss_kwargs)
    assert loss.class_weights.tolist() == [1.0, 2.0, 4.0]
    opt = create_optimizer(model.parameters(), cfg.train)
    assert opt.param_groups[0]["nesterov"] is False
    assert scheduled_lr(0.4, cfg.train) == pytest.approx(0.001)
    with pytest.raises(InputError, match="model.kwargs: expected a mapping"):
        Config.from_dict({"model": {"kwargs": [1, 2]}})
