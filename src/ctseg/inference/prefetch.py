"""Reading the next case in a background thread while the current one is predicted."""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")
R = TypeVar("R")


def prefetched(items: Sequence[T], load: Callable[[T], R]) -> Iterator[tuple[T, Callable[[], R]]]:
    """Yield ``(item, get)`` in order; ``load(next item)`` already runs in one worker thread while
    the caller works on the current one. ``get()`` waits for the current item's load and returns
    its result, or raises its exception in the caller's thread (so per-case error handling stays
    where it was). At most two loaded items are held at a time."""
    if not items:
        return
    with cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctseg-read") as pool:
        pending = pool.submit(load, items[0])
        for index, item in enumerate(items):
            current = pending
            if index + 1 < len(items):
                pending = pool.submit(load, items[index + 1])
            yield item, current.result
            del current
