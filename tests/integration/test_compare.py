"""``ctseg compare`` on a tiny synthetic dataset, and ``ctseg train --model``.

Two entries (the ``cpu`` preset with its U-Net and with an FCN) train one epoch of two iterations;
the comparison's numbers are checked against the evaluation files each entry wrote, and a rerun
must reuse the trained runs.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml
from tests.tiny import TINIER

from ctseg.cli import main
from ctseg.reporting.comparison import COMPARE_COLUMNS

# every entry: a 3-stage network that fits the 16 x 16 x 32 patch, one tile per case, no TensorBoard
_SETTINGS = [*TINIER, "--set", "model.kwargs={features: [4, 8, 16]}", "--set", "plan.patch_size=[16,16,32]", "--set", "predict.step=1.0", "--set", "train.tensorboard=false"]
_ENTRIES = {"cpu": ("cpu", "unet"), "cpu/fcn": ("cpu_fcn", "fcn")}  # entry -> (folder, model)


def _compare(data: Path, out: Path, *extra: str) -> int:
    return main(["compare", str(data), "--presets", ",".join(_ENTRIES), "-o", str(out), "--epochs", "1", *_SETTINGS, *extra])


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    data, out = root / "data", root / "out"
    assert main(["synth", str(data), "--task", "pancreas", "--cases", "2", "--test-cases", "3", "--seed", "3", "--matrix", "32"]) == 0
    assert _compare(data, out) == 0
    return {"root": root, "data": data, "out": out}


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _finite_mean(values: list[str]) -> tuple[float, int]:
    arr = np.array([float(v) for v in values])
    finite = arr[np.isfinite(arr)]
    return (float(finite.mean()) if finite.size else math.nan), int(finite.size)


def test_csv_holds_what_each_evaluation_wrote(compared) -> None:
    import torch

    from ctseg.models import count_parameters
    from ctseg.models.persist import load_model

    out = compared["out"]
    rows = _csv(out / "compare.csv")
    assert tuple(rows[0]) == COMPARE_COLUMNS
    assert [(r["entry"], r["class"]) for r in rows] == [(e, c) for e in _ENTRIES for c in ("pancreas", "tumour")]
    timings = {}
    for entry, (folder, model) in _ENTRIES.items():
        metrics = _csv(out / "evaluations" / folder / "metrics.csv")
        weights = out / "runs" / folder / "model_final.pt"
        parameters = count_parameters(load_model(weights)[0], trainable_only=True)
        state = torch.load(out / "runs" / folder / "checkpoint_last.pt", weights_only=True)
        timing = json.loads((out / "timings" / f"{folder}.json").read_text())
        timings[entry] = timing
        assert timing["cases"] == 3
        for row in (r for r in rows if r["entry"] == entry):
            assert (row["preset"], row["model"], row["cases"]) == ("cpu", model, "3")
            ours = [m for m in metrics if m["name"] == row["class"]]
            assert row["label"] == ours[0]["label"] and len(ours) == 3
            for metric, column in (("dice", "dice"), ("jaccard", "jaccard"), ("hd95", "hd95_mm"), ("asd", "asd_mm")):
                mean, n = _finite_mean([m[metric] for m in ours])
                assert int(row[f"{metric}_n"]) == n
                assert float(row[column]) == pytest.approx(mean, rel=1e-12, nan_ok=True)
            assert int(row["parameters"]) == parameters
            assert (int(row["iterations"]), int(row["epochs"])) == (2, 1)  # 1 epoch x 2 iterations
            assert float(row["train_seconds"]) == pytest.approx(float(state["elapsed"]), abs=1e-3)
            assert float(row["infer_seconds_per_case"]) == pytest.approx(timing["seconds"] / 3, abs=1e-4)
    assert len({r["parameters"] for r in rows}) == 2  # the two networks differ
    config = yaml.safe_load((out / "runs" / "cpu_fcn" / "config.yaml").read_text())
    assert config["model"]["name"] == "fcn" and config["model"]["kwargs"] == {"features": [4, 8, 16]}
    assert config["train"]["epochs"] == 1 and config["train"]["tensorboard"] is False


def test_markdown_and_chart(compared) -> None:
    out = compared["out"]
    text = (out / "compare.md").read_text()
    header = "| entry | model | parameters | training | iterations | inference / case | Dice pancreas | Dice tumour | HD95 pancreas (mm) | HD95 tumour (mm) |"
    assert header in text
    rows = {r["entry"]: r for r in _csv(out / "compare.csv") if r["class"] == "pancreas"}
    for entry, (_, model) in _ENTRIES.items():
        line = next(x for x in text.splitlines() if x.startswith(f"| {entry} | {model} |"))
        assert f"| {int(rows[entry]['parameters']):,} |" in line
        assert f"| {float(rows[entry]['dice']):.3f} |" in line
    assert "- epochs: 1" in text and "3 test cases" in text and "CPU cores" in text and "## Per class" in text
    png = (out / "compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out / "compare.png")
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 200


def test_rerun_reuses_the_runs_and_resumes_predictions(compared, capsys) -> None:
    out = compared["out"]
    weights = {f: (out / "runs" / f / "model_final.pt").stat().st_mtime_ns for f, _ in _ENTRIES.values()}
    before = (out / "compare.csv").read_text()
    (out / "predictions" / "cpu_fcn" / "pancreas_003.nii.gz").unlink()  # an interrupted prediction
    capsys.readouterr()
    assert _compare(compared["data"], out) == 0
    printed = capsys.readouterr().out
    assert printed.count("not trained again") == 2 and "training unet" not in printed
    assert weights == {f: (out / "runs" / f / "model_final.pt").stat().st_mtime_ns for f, _ in _ENTRIES.values()}
    assert json.loads((out / "timings" / "cpu_fcn.json").read_text())["cases"] == 4  # 3 first, then the missing one
    assert json.loads((out / "timings" / "cpu.json").read_text())["cases"] == 3
    after = _csv(out / "compare.csv")
    old = _csv_rows(before)
    for a, b in zip(after, old):  # the same weights give the same scores
        assert {k: v for k, v in a.items() if k != "infer_seconds_per_case"} == {k: v for k, v in b.items() if k != "infer_seconds_per_case"}


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(text.splitlines()))


def test_an_interrupted_training_is_continued(compared, capsys) -> None:
    out = compared["out"]
    kept = (out / "runs" / "cpu" / "model_final.pt").stat().st_mtime_ns
    before = _csv(out / "compare.csv")
    (out / "runs" / "cpu_fcn" / "model_final.pt").unlink()  # killed after its last checkpoint
    capsys.readouterr()
    assert _compare(compared["data"], out) == 0
    printed = capsys.readouterr().out
    assert "cpu/fcn: training fcn (continuing its last checkpoint)" in printed and printed.count("not trained again") == 1
    assert (out / "runs" / "cpu_fcn" / "model_final.pt").is_file()
    assert (out / "runs" / "cpu" / "model_final.pt").stat().st_mtime_ns == kept
    assert json.loads((out / "timings" / "cpu_fcn.json").read_text())["cases"] == 3  # predicted afresh
    after = _csv(out / "compare.csv")
    for a, b in zip(after, before):  # the checkpoint's weights: the same scores, epochs and iterations
        assert (a["dice"], a["hd95_mm"], a["iterations"], a["epochs"]) == (b["dice"], b["hd95_mm"], b["iterations"], b["epochs"])


def test_other_settings_in_the_same_folder_are_refused(compared, capfd) -> None:
    assert main(["compare", str(compared["data"]), "--presets", "cpu", "-o", str(compared["out"]), "--epochs", "2", *_SETTINGS]) == 2
    err = capfd.readouterr().err
    assert "other settings" in err and "train.epochs" in err and "Traceback" not in err


def test_a_dataset_without_test_labels_is_refused(compared, tmp_path, capfd) -> None:
    data = tmp_path / "data"
    shutil.copytree(compared["data"], data, ignore=shutil.ignore_patterns("labelsTs"))
    assert main(["compare", str(data), "--presets", "cpu", "-o", str(tmp_path / "out"), "--epochs", "1"]) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{data / 'labelsTs'}: not found" in err and "add labelsTs/" in err
    assert not (tmp_path / "out").exists()  # refused before anything was trained


@pytest.mark.parametrize(
    ("entries", "needles"),
    [("cpu,nonesuch", ["unknown preset 'nonesuch'", "cpu"]), ("cpu/nonet", ["unknown model 'nonet'", "fcn", "vnet"]), ("cpu,cpu", ["list each entry once"])],
)
def test_bad_entries_are_refused_before_training(entries, needles, compared, tmp_path, capfd) -> None:
    assert main(["compare", str(compared["data"]), "--presets", entries, "-o", str(tmp_path / "out")]) == 2
    err = capfd.readouterr().err
    assert all(n in err for n in needles), err
    assert not (tmp_path / "out").exists()


def test_train_model_flag_sets_the_network(compared, tmp_path, capfd) -> None:
    run = tmp_path / "run"
    assert main(["train", str(compared["data"]), "-o", str(run), "--preset", "cpu", "--model", "fcn", "--epochs", "0", *_SETTINGS]) == 0  # builds the network, no step
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["name"] == "fcn"
    assert json.loads((run / "model_final.json").read_text())["name"] == "fcn"
    assert main(["train", str(compared["data"]), "-o", str(tmp_path / "bad"), "--model", "nonet"]) == 2
    err = capfd.readouterr().err
    assert "--model: unknown model 'nonet'; valid names:" in err and "simple_unet" in err
    assert not (tmp_path / "bad").exists()
