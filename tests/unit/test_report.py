"""The HTML report: self-contained, built from what evaluate writes, tolerant of missing pieces."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from tests.reporting_fixtures import CASES, make_evaluation

from ctseg.cli import main
from ctseg.errors import InputError
from ctseg.reporting import build_report
from ctseg.reporting.tables import metric_stats, read_evaluation


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    return make_evaluation(tmp_path_factory.mktemp("report"))


def test_report_is_self_contained_and_holds_every_case(evaluation, tmp_path) -> None:
    summary = json.loads((evaluation["eval"] / "summary.json").read_text())
    assert summary["inputs"]["pred"] == str(evaluation["pred"].resolve())  # evaluate records its inputs
    result = build_report(evaluation["eval"], tmp_path / "report.html")
    page = result.path.read_text(encoding="utf-8")
    assert result.overlays == sorted(c[0] for c in CASES) and result.notes == []
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # nothing fetched from a network
    assert "<script src" not in page and "<link rel=\"stylesheet\"" not in page
    store = json.loads(re.search(r'<script type="application/json" id="overlay-data">(.*?)</script>', page, re.S).group(1))
    assert set(store) == {c[0] for c in CASES}
    assert all(v["full"].startswith("data:image/png;base64,") and len(v["full"]) > len(v["thumb"]) for v in store.values())
    for case, *_ in CASES:
        assert f'<tr data-case="{case}">' in page
    # the summary shows the mean Dice of the liver computed from metrics.csv
    rows = [r for r in csv.DictReader((evaluation["eval"] / "metrics.csv").open()) if r["name"] == "liver"]
    mean = np.mean([float(r["dice"]) for r in rows])
    assert f"{mean:.3f} ±" in page
    assert page.count('class="plot"') == 1  # the box plots (no run folder given)


def test_inputs_are_found_without_the_record_and_explicit_paths_win(evaluation, tmp_path) -> None:
    import shutil

    ev = tmp_path / "eval"
    shutil.copytree(evaluation["eval"], ev)
    summary = json.loads((ev / "summary.json").read_text())
    summary.pop("inputs")
    (ev / "summary.json").write_text(json.dumps(summary))
    bare = build_report(ev, tmp_path / "bare.html")
    assert bare.overlays == [] and any("--pred and --ref" in n for n in bare.notes)
    # the CT folder is found beside the labelsTs reference folder
    found = build_report(ev, tmp_path / "found.html", pred=evaluation["pred"], ref=evaluation["data"] / "labelsTs", png_dir=tmp_path / "png")
    assert len(found.overlays) == len(CASES) and found.notes == []
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [f"{c[0]}.png" for c in CASES]
    with pytest.raises(InputError, match="not found"):
        build_report(ev, tmp_path / "x.html", images=tmp_path / "nowhere")


def test_missing_columns_and_files_degrade_gracefully(tmp_path) -> None:
    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "metrics.csv").write_text("case,name,dice,note\nc1,organ,0.9,x\nc2,organ,nan,y\nc1,tumour,0.5,z\n")
    (ev / "lesions.csv").write_text("case,lesion,status\nc1,ref-1,matched\n")
    result = build_report(ev, tmp_path / "r.html")
    page = result.path.read_text(encoding="utf-8")
    table = read_evaluation(ev)
    assert table.metrics == ["dice"] and table.names == ["organ", "tumour"]  # text column left out
    assert np.isnan(table.values["tumour"].get("c2", {}).get("dice", np.nan))
    assert "lesions.csv (1 rows)" in page and 'data-v="nan"' in page
    assert any("--pred and --ref" in n for n in result.notes)
    with pytest.raises(InputError, match="no metrics.csv"):
        build_report(tmp_path / "nothing", tmp_path / "r.html")


def test_run_folder_adds_training_curves_drawn_from_history(tmp_path, evaluation) -> None:
    run = tmp_path / "run"
    run.mkdir()
    history = [{"epoch": e, "iteration": 10 * e, "train_loss": 1.0 / e, "val_loss": 0.8 / e, "val_dice": {"liver": 0.5 + 0.1 * e, "tumour": 0.1 * e}, "lr": 0.01 / e, "elapsed_s": 3.0 * e} for e in (1, 2, 3)]
    (run / "history.json").write_text(json.dumps(history))
    result = build_report(evaluation["eval"], tmp_path / "r.html", run_dir=run, overlays=False)
    page = result.path.read_text(encoding="utf-8")
    assert (run / "training_curves.png").is_file() and page.count('class="plot"') == 2
    assert "final validation Dice: tumour" in page and result.overlays == []


def test_cli_report(evaluation, tmp_path, capsys) -> None:
    assert main(["report", str(evaluation["eval"]), "-o", str(tmp_path / "r.html"), "--no-overlays"]) == 0
    assert "report:" in capsys.readouterr().out and (tmp_path / "r.html").is_file()
    assert main(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "r.html")]) == 2
    assert main(["report", str(evaluation["eval"]), "-o", str(tmp_path / "r.html"), "--run", str(tmp_path / "no_run")]) == 2


def test_metric_stats_counts_undefined_values() -> None:
    stats = metric_stats([1.0, 2.0, 3.0, 4.0, float("nan"), float("inf")])
    assert stats["n"] == 4 and stats["n_undefined"] == 2
    assert stats["mean"] == 2.5 and stats["median"] == 2.5 and stats["q1"] == 1.75 and stats["q3"] == 3.25
    assert metric_stats([float("nan")])["mean"] is None
