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
    # issue 2's tumour target; the README's two runs gave 0.653 and 0.650 (a 6-case mean moves by
    # about 0.05 between runs of one setting, so a failure here says "re-measure", see README)
    assert labels["tumour"]["dice"]["n"] >= 1
    assert labels["tumour"]["dice"]["mean"] >= 0.60
