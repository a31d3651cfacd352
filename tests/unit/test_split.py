"""The train/validation split of a run: its size, its seed, and stratification by labels present."""

from __future__ import annotations

from collections import Counter

from ctseg.training.run import _split


def _cases() -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """24 cases: 18 with organ and tumour, 6 with the organ only (every fourth)."""
    ids = [f"case_{i:03d}" for i in range(24)]
    return ids, {c: (0, 1) if i % 4 == 0 else (0, 1, 2) for i, c in enumerate(ids)}


def test_stratified_split_shares_the_validation_cases_out_by_stratum() -> None:
    ids, present = _cases()
    for seed in range(5):
        train, val = _split(ids, 0.2, seed, present)
        assert len(val) == 5 and sorted(train + val) == ids and not set(train) & set(val)
        # 5 x 18/24 = 3.75 and 5 x 6/24 = 1.25: floors 3 + 1, the one left to the larger remainder
        assert Counter(present[c] for c in val) == {(0, 1, 2): 4, (0, 1): 1}
    assert _split(ids, 0.2, 0, present) == _split(ids, 0.2, 0, present)  # the seed decides
    assert len({tuple(_split(ids, 0.2, s, present)[1]) for s in range(5)}) > 1


def test_unstratified_split_and_small_cases() -> None:
    ids, present = _cases()
    train, val = _split(ids, 0.2, 3)
    assert len(val) == 5 and sorted(train + val) == ids
    assert _split(ids, 0.2, 3, None) == _split(ids, 0.2, 3, {})  # no strata: the plain draw
    # one kind of case only: the same number of validation cases as without strata
    assert len(_split(ids, 0.2, 3, {c: (0, 1) for c in ids})[1]) == 5
    assert _split(["a"], 0.2, 0, {"a": (0, 1)}) == (["a"], ["a"])  # too few: both parts
    train, val = _split(["a", "b"], 0.9, 0, {"a": (0,), "b": (0, 1)})
    assert len(val) == 1 and len(train) == 1  # at least one training case stays
