"""Choosing a post-processing value from validation Dice: the best mean wins, ties broken by rule."""

from __future__ import annotations

from ctseg.inference.tuning import _best


def test_best_mean_wins_and_ties_go_to_the_smallest_or_the_strictest() -> None:
    scores = {0.0: [0.5, 0.7], 0.6: [0.6, 0.8], 0.7: [0.7, 0.7], 0.8: [0.9, 0.5]}  # 0.6, 0.7, 0.8 tie at 0.7
    assert _best(scores) == (0.6, {"0": 0.6, "0.6": 0.7, "0.7": 0.7, "0.8": 0.7})
    assert _best(scores, strictest=True)[0] == 0.8
    scores[0.6] = [0.6, 0.81]  # a clear winner is chosen either way
    assert _best(scores)[0] == _best(scores, strictest=True)[0] == 0.6
    assert _best({0.0: [1.0], 0.5: []}) == (0.0, {"0": 1.0})  # a candidate with no cases is not scored
