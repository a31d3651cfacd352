"""Deterministic mode: seeded RNGs, deterministic kernels and a fixed thread count.

With ``train.deterministic`` two runs with the same seed, data and machine give bit-identical
weights (and, through them, predictions). The cost is speed: kernels without a deterministic
implementation raise instead of running, and the thread count is pinned (to ``num_threads``,
or 1 when that is 0) because a CPU reduction split over a different number of threads sums in
another order.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["seed_everything", "deterministic_mode"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's legacy global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - for third-party code that draws from the legacy global RNG
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic_mode(enabled: bool, num_threads: int = 0) -> Iterator[None]:
    """Within the block: deterministic algorithms and ``num_threads`` threads (1 when 0).

    Everything changed is restored on exit, so a library caller (or a test session) is left as it
    was. With ``enabled`` False only a positive ``num_threads`` is applied (and also restored).
    """
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    threads = num_threads if num_threads > 0 else (1 if enabled else 0)
    try:
        if threads > 0:
            torch.set_num_threads(threads)
        if enabled:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what CUDA matmuls need
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)
        if old_cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
