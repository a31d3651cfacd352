"""Contract tests run many tiny networks: one thread avoids OpenMP start-up and spinning costs
that dominate at these sizes (about 4x less CPU time on a busy 2-core machine)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
