"""The demo's training budget: what keeps the whole demo within issue 2's 15 minutes."""

from __future__ import annotations

import pytest

from ctseg.demo import (
    LIMIT_S,
    MARGIN_S,
    MAX_TRAIN_MINUTES,
    MIN_TRAIN_MINUTES,
    REST_PER_SYNTH,
    training_minutes,
)


def test_a_fast_machine_trains_longer_than_a_slow_one() -> None:
    assert training_minutes(60.0) == pytest.approx(10.5)  # the README's machine: 60 s of synthesis
    assert training_minutes(120.0) == pytest.approx(7.5)
    assert training_minutes(60.0) > training_minutes(90.0) > training_minutes(120.0)


@pytest.mark.parametrize("synth_s", [30.0, 60.0, 90.0, 150.0])
def test_the_estimated_demo_stays_within_the_limit(synth_s) -> None:
    estimated = synth_s * (1 + REST_PER_SYNTH) + 60 * training_minutes(synth_s)
    assert estimated <= LIMIT_S - MARGIN_S + 1e-9


def test_the_budget_is_bounded() -> None:
    assert training_minutes(1.0) == MAX_TRAIN_MINUTES
    assert training_minutes(1000.0) == MIN_TRAIN_MINUTES  # a very slow machine still trains
