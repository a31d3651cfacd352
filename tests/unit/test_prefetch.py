from __future__ import annotations

import threading
import time

import pytest

from ctseg.inference.prefetch import prefetched


def test_next_item_loads_while_the_current_one_is_used() -> None:
    started: dict[int, float] = {}

    def load(i: int) -> int:
        started[i] = time.perf_counter()
        time.sleep(0.05)
        return i * 10

    out = []
    for i, get in prefetched([1, 2, 3], load):
        value = get()
        if i == 1:
            time.sleep(0.1)  # "predicting" case 1: case 2 must already be loading
            assert 2 in started
        out.append(value)
    assert out == [10, 20, 30]


def test_a_failed_load_raises_in_the_caller_and_the_rest_go_on() -> None:
    def load(i: int) -> int:
        if i == 2:
            raise ValueError("bad case 2")
        return i

    got, errors = [], []
    for i, get in prefetched([1, 2, 3], load):
        try:
            got.append(get())
        except ValueError as exc:
            errors.append((i, str(exc), threading.current_thread() is threading.main_thread()))
    assert got == [1, 3] and errors == [(2, "bad case 2", True)]


def test_empty_input_yields_nothing() -> None:
    assert list(prefetched([], lambda i: pytest.fail("load called"))) == []
