"""The full demo on 2 CPU cores: minutes, so marked slow (run with ``pytest -m slow``)."""

from __future__ import annotations

import pytest

from ctseg.demo import run_demo


@pytest.mark.slow
def test_demo_reaches_its_accuracy_targets(tmp_path) -> None:
    summary = run_demo(tmp_path / "demo", progress=False)
    labels = summary["metrics"]["labels"]
    assert labels["liver"]["dice"]["mean"] >= 0.85
    assert summary["times"]["total_s"] <= 15 * 60
    # issue 2's tumour target: with weight averaging (the cpu preset now) 0.666 and 0.647 on the
    # AVX2 machine, 0.754, 0.768 and 0.753 on the faster AVX-512 one; before it one run in six missed
    # (0.533: one 1.6 mL tumour found or missed moves the 6-case mean by 0.1; README)
    assert labels["tumour"]["dice"]["n"] >= 1
    assert labels["tumour"]["dice"]["mean"] >= 0.60
