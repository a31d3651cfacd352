"""``ctseg compare``: train several presets (or preset/model pairs) under one budget on a dataset,
predict and score its test cases, and write one comparison (CSV, Markdown, PNG).

Output folder layout::

    DIR/runs/<entry>/          run folder of each entry (``ctseg predict -m`` works on it)
    DIR/predictions/<entry>/   label maps of the test images (imagesTs)
    DIR/evaluations/<entry>/   metrics.csv + summary.json against labelsTs
    DIR/timings/<entry>.json   inference wall time and cases predicted
    DIR/compare.csv, compare.md, compare.png, compare.json

``<entry>`` is the entry made safe for a file name (``pancreas-2d/fcn`` -> ``pancreas-2d_fcn``).
A rerun resumes: a finished training (``model_final.pt`` present) is not repeated, an interrupted
one continues from its last checkpoint, finished predictions and evaluations are reused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from ._fileio import atomic_path, read_json, write_json, write_text
from .config import Config, load_config, read_run_config
from .errors import DatasetError, InputError, RunFolderError
from .io.datasets import case_id_from_path, list_images, list_nifti, read_dataset_json
from .io.outputs import safe_name

__all__ = ["CompareEntry", "EntryResult", "CompareResult", "parse_entries", "compare"]

_METRICS = {"dice": "dice", "jaccard": "jaccard", "hd95": "hd95_mm", "asd": "asd_mm"}  # summary -> column


@dataclass(frozen=True)
class CompareEntry:
    """One entry: ``name`` as given (``PRESET`` or ``PRESET/MODEL``), its preset, the model name
    it trains (``None``: the preset's own) and ``folder``, the name made safe for a file name."""

    name: str
    preset: str
    model: str | None
    folder: str


@dataclass(frozen=True)
class EntryResult:
    """What one entry gave. ``classes``: per class name, the summary.json statistics of
    :func:`ctseg.evaluation.evaluate` for Dice, Jaccard, HD95 and ASD (``mean``, ``n`` finite...)."""

    entry: CompareEntry
    model: str
    run_dir: Path
    predictions: Path
    evaluation: Path
    parameters: int
    train_seconds: float
    iterations: int
    epochs: int
    infer_seconds_per_case: float
    cases: int
    classes: dict[str, dict[str, Any]]
    trained_now: bool


@dataclass(frozen=True)
class CompareResult:
    """The entries' results, the rows of ``compare.csv`` (one per entry x class) and the files."""

    out_dir: Path
    entries: list[EntryResult]
    rows: list[dict[str, Any]]
    settings: dict[str, Any]
    csv_path: Path
    markdown_path: Path
    png_path: Path
    json_path: Path


def parse_entries(entries: str | Sequence[str]) -> list[CompareEntry]:
    """``"cpu,pancreas-2d/fcn"`` (or a list of such items) -> entries, checked: each preset must
    exist and each model be registered; no two entries may share a folder name.

    Raises:
        InputError: an empty list, an unknown preset or model (the message lists the valid
            ones), or two entries that are the same once made safe for a file name.
    """
    from .config import list_presets
    from .models import model_info

    items = [s.strip() for s in (entries.split(",") if isinstance(entries, str) else entries) if s.strip()]
    if not items:
        raise InputError("--presets: no entry given; list presets (or PRESET/MODEL pairs) separated by commas, e.g. cpu,default/fcn")
    out: list[CompareEntry] = []
    for item in items:
        preset, _, model = item.partition("/")
        preset, model = preset.strip(), model.strip() or None
        if preset not in list_presets():
            raise InputError(f"--presets entry {item!r}: unknown preset {preset!r}; available: {', '.join(list_presets())}")
        if model is not None:
            try:
                model_info(model)
            except ValueError as exc:
                raise InputError(f"--presets entry {item!r}: {exc}") from None
        folder = safe_name(item.replace("/", "_"))
        clash = next((e for e in out if e.folder == folder), None)
        if clash is not None:
            raise InputError(f"--presets: entries {clash.name!r} and {item!r} would share the folder runs/{folder}; list each entry once")
        out.append(CompareEntry(item, preset, model, folder))
    return out


def _test_cases(dataset: Path) -> tuple[Path, Path, list[str]]:
    """The test images and labels folders and the case ids, checked: every test image has a
    reference label map (same case id) in labelsTs."""
    images, labels = dataset / "imagesTs", dataset / "labelsTs"
    if not dataset.is_dir():
        raise DatasetError(f"{dataset}: dataset folder not found")
    image_ids = [case_id_from_path(p) for p in list_images(images)] if images.is_dir() else []
    if not image_ids:
        raise DatasetError(f"{images}: no test images; compare scores each entry on the test cases: put test images in imagesTs/ and their reference label maps in labelsTs/")
    if not labels.is_dir():
        raise DatasetError(f"{labels}: not found; compare scores the predictions of imagesTs/ against reference labels: add labelsTs/ with one label map per test image (same file name), e.g. by moving a few labelled training cases there")
    label_ids = {case_id_from_path(p) for p in list_nifti(labels)}
    missing = [c for c in image_ids if c not in label_ids]
    if missing:
        shown = ", ".join(missing[:10]) + (f", ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise DatasetError(f"{labels}: no reference label map for test image(s) {shown}; add them (e.g. {missing[0]}.nii.gz) or move those images out of imagesTs/")
    return images, labels, sorted(image_ids)


def _entry_config(entry: CompareEntry, overrides: Sequence[dict[str, Any]], common: dict[str, Any]) -> Config:
    """preset <- ``overrides`` (every entry's ``--set``) <- the entry's model <- budget/epochs/seed."""
    items = [*overrides]
    if entry.model is not None:
        items.append({"model": {"name": entry.model}})
    if common:
        items.append({"train": common})
    return load_config(entry.preset, overrides=items)


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two nested dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def _dotted(tree: dict[str, Any], prefix: str = "") -> str:
    """``{"train": {"lr": 0.1}}`` -> ``train.lr=0.1`` (several keys joined by ", ")."""
    return ", ".join(_dotted(v, f"{prefix}{k}.") if isinstance(v, dict) and v else f"{prefix}{k}={v}" for k, v in tree.items())


def _check_same_settings(run: Path, config: Config) -> None:
    """A run folder being reused must hold this entry's settings (else its numbers would be of
    another experiment)."""
    if not (run / "config.yaml").is_file():
        return
    diff = _differences(read_run_config(run).to_dict(), config.to_dict())
    if diff:
        more = f" and {len(diff) - 5} more" if len(diff) > 5 else ""
        raise RunFolderError(f"{run}: holds a run trained with other settings ({', '.join(diff[:5])}{more} differ); choose another -o folder, or delete {run} to train it again")


def _train_entry(dataset: Path, run: Path, config: Config, device: str, progress: bool) -> bool:
    """Train (or continue) the entry's run unless it finished; True when it trained now."""
    from .training import train

    if (run / "model_final.pt").is_file():
        return False
    started = (run / "checkpoint_last.pt").is_file()
    train(dataset, run, None if started else config, resume=started, device=device, progress=progress)
    return True


def _training_numbers(run: Path) -> tuple[float, int, int]:
    """(seconds, iterations, epochs) of a finished run from its last checkpoint; a cascade adds
    its locator's seconds and iterations."""
    from .preprocessing import LOCATOR_DIR
    from .training.checkpoint import load_state

    seconds, iterations, epochs = 0.0, 0, 0
    for folder in (run / LOCATOR_DIR, run):
        if (folder / "checkpoint_last.pt").is_file():
            state = load_state(folder / "checkpoint_last.pt")
            seconds += float(state["elapsed"])
            iterations += int(state["iteration"])
            epochs = int(state["epoch"])
    return seconds, iterations, epochs


def _parameters(run: Path) -> tuple[int, str]:
    """Trainable parameters of the run's network(s) (a cascade counts its locator too) and the
    model name, from the saved model specs."""
    from .models import count_parameters
    from .models.persist import build_model
    from .preprocessing import LOCATOR_DIR

    spec = read_json(run / "model_final.json")
    total = count_parameters(build_model(spec), trainable_only=True)
    if (run / LOCATOR_DIR / "model_final.json").is_file():
        total += count_parameters(build_model(read_json(run / LOCATOR_DIR / "model_final.json")), trainable_only=True)
    return total, str(spec["name"])


def _predict_entry(images: Path, pred: Path, run: Path, timing_path: Path, *, redo: bool, device: str, progress: bool) -> tuple[float, bool]:
    """Predict the test images not yet predicted (all of them when ``redo``); returns the mean
    inference wall seconds per case over the cases predicted so far and whether any was now.

    The wall time of a :func:`ctseg.inference.predict` call (loading the network, reading,
    predicting and writing every case) divided by the cases it predicted; an interrupted
    prediction resumed later adds its time and cases.
    """
    from .inference import predict

    timing = read_json(timing_path) if timing_path.is_file() and not redo else {"seconds": 0.0, "cases": 0}
    start = time.perf_counter()
    records = predict(images, pred, run, device=device, progress=progress, overwrite=redo)
    seconds = time.perf_counter() - start
    failed = [r for r in records if r.status == "failed"]
    if failed:
        raise InputError(f"{len(failed)} test case(s) failed to predict with {run} ({failed[0].case_id}: {failed[0].error}); the log is in {pred / 'predict_log.json'}")
    done = sum(r.status == "done" for r in records)
    if done:
        timing = {"seconds": float(timing["seconds"]) + seconds, "cases": int(timing["cases"]) + done}
        write_json(timing_path, timing)
    if not timing["cases"]:  # predicted earlier without a timing record: time every case now
        return _predict_entry(images, pred, run, timing_path, redo=True, device=device, progress=progress)
    return float(timing["seconds"]) / int(timing["cases"]), bool(done)


def _evaluate_entry(pred: Path, labels: Path, dataset: Path, out: Path, *, redo: bool, progress: bool) -> dict[str, Any]:
    """summary.json of the entry's evaluation (computed unless it is there and ``redo`` is off)."""
    from .evaluation import evaluate

    summary_path = out / "summary.json"
    if summary_path.is_file() and not redo:
        return read_json(summary_path)
    return evaluate(pred, labels, out, dataset=dataset, progress=progress).summary


def _machine(device: str) -> str:
    """CPU cores, and the GPU's name when running on CUDA."""
    text = f"{os.cpu_count()} CPU cores"
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(torch.device(device))}"
    return text


def _rows(result: EntryResult) -> list[dict[str, Any]]:
    """One compare.csv row per class of an entry."""
    rows = []
    for name, entry in result.classes.items():
        row: dict[str, Any] = {"entry": result.entry.name, "preset": result.entry.preset, "model": result.model, "class": name, "label": entry.get("label"), "cases": result.cases}
        for metric, column in _METRICS.items():
            stats = entry.get(metric) or {}
            row[column] = stats.get("mean")
            row[f"{metric}_n"] = stats.get("n", 0)
        row.update(parameters=result.parameters, train_seconds=round(result.train_seconds, 3), iterations=result.iterations, epochs=result.epochs, infer_seconds_per_case=round(result.infer_seconds_per_case, 4))
        rows.append(row)
    return rows


def _run_entry(index: str, entry: CompareEntry, config: Config, dataset: Path, test: tuple[Path, Path, list[str]], out: Path, device: str, progress: bool) -> EntryResult:
    images, labels, ids = test
    run, pred, ev = out / "runs" / entry.folder, out / "predictions" / entry.folder, out / "evaluations" / entry.folder
    if not (run / "model_final.pt").is_file():
        resuming = " (continuing its last checkpoint)" if (run / "checkpoint_last.pt").is_file() else ""
        print(f"{index} {entry.name}: training {config.model.name}{resuming} -> {run}", flush=True)
    trained = _train_entry(dataset, run, config, device, progress)
    seconds, iterations, epochs = _training_numbers(run)
    parameters, model = _parameters(run)
    state = "trained" if trained else f"already trained in {run} (not trained again):"
    print(f"{index} {entry.name}: {state} {epochs} epoch(s), {iterations} iterations, {seconds:.1f} s; {parameters:,} parameters", flush=True)
    per_case, predicted = _predict_entry(images, pred, run, out / "timings" / f"{entry.folder}.json", redo=trained, device=device, progress=progress)
    print(f"{index} {entry.name}: {'predicted' if predicted else 'predictions already there for'} {len(ids)} test cases ({per_case:.2f} s per case) -> {pred}", flush=True)
    summary = _evaluate_entry(pred, labels, dataset, ev, redo=trained or predicted, progress=progress)
    dice = ", ".join(f"{k} {v['dice']['mean']:.3f}" if v["dice"]["mean"] is not None else f"{k} -" for k, v in summary["labels"].items())
    print(f"{index} {entry.name}: evaluated {summary['n_cases']} cases (Dice {dice}) -> {ev}", flush=True)
    classes = {k: v for k, v in summary["labels"].items() if isinstance(v.get("label"), int)}
    return EntryResult(entry, model, run, pred, ev, parameters, seconds, iterations, epochs, per_case, int(summary["n_cases"]), classes, trained)


def compare(
    dataset: str | Path,
    entries: str | Sequence[str],
    out_dir: str | Path,
    *,
    time_budget_minutes: float | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    overrides: Sequence[dict[str, Any]] = (),
    device: str = "cpu",
    progress: bool = True,
) -> CompareResult:
    """Train each entry on ``dataset`` with the same settings on top of its preset, predict the
    test images (``imagesTs``), score them against ``labelsTs`` and write the comparison.

    Args:
        dataset: a dataset folder that :func:`ctseg.training.train` reads, with ``imagesTs/`` and
            ``labelsTs/`` (one reference per test image, same case id).
        entries: ``"a,b/MODEL"`` or a list: presets, or preset/model pairs
            (``pancreas-2d/fcn`` trains the preset with ``model.name=fcn``).
        out_dir: output folder (see the module docstring for its layout); rerunning resumes.
        time_budget_minutes, epochs, seed: ``train.time_budget_minutes`` / ``train.epochs`` /
            ``train.seed`` of every entry (None: the preset's).
        overrides: nested dicts applied to every entry's settings before its model (``--set``).
        device: "cpu" or "cuda", for training and prediction.
        progress: progress bars and the training log lines (the stage lines always print).

    Returns:
        A :class:`CompareResult`; ``compare.csv`` has one row per entry x class (columns
        :data:`ctseg.reporting.comparison.COMPARE_COLUMNS`).

    Raises:
        InputError: a bad entry or setting (before anything is trained).
        DatasetError: no test images, or no labelsTs / a missing reference (before training).
        RunFolderError: a reused run folder was trained with other settings.
    """
    from .reporting.comparison import comparison_chart, comparison_csv, comparison_markdown

    data, out = Path(dataset), Path(out_dir)
    parsed = parse_entries(entries)
    test = _test_cases(data)
    common = {k: v for k, v in {"time_budget_minutes": time_budget_minutes, "epochs": epochs, "seed": seed}.items() if v is not None}
    configs = [_entry_config(e, overrides, common) for e in parsed]  # every setting checked before training
    for e, c in zip(parsed, configs):
        _check_same_settings(out / "runs" / e.folder, c)
    results = [_run_entry(f"[{i + 1}/{len(parsed)}]", e, c, data, test, out, device, progress) for i, (e, c) in enumerate(zip(parsed, configs))]
    rows = [row for r in results for row in _rows(r)]
    name = str((read_dataset_json(data) or {}).get("name") or data.resolve().name)
    settings = {
        "dataset": f"{name} ({data.resolve().name}/, {len(test[2])} test cases)",
        "training budget per entry": f"{time_budget_minutes:g} min (or the epochs, if reached first)" if time_budget_minutes is not None else "none (the epochs)",
        "epochs": str(epochs) if epochs is not None else "each preset's",
        "seed": str(seed) if seed is not None else "each preset's",
        "extra settings (every entry)": ", ".join(_dotted(o) for o in overrides) or "none",
        "device": device,
        "machine": _machine(device),
        "ctseg": __version__,
    }
    paths = {k: out / f"compare.{k}" for k in ("csv", "md", "png", "json")}
    write_text(paths["csv"], comparison_csv(rows))
    write_text(paths["md"], comparison_markdown(rows, settings, title=f"Comparison on {name}"))
    png = comparison_chart(rows)
    with atomic_path(paths["png"]) as tmp:
        tmp.write_bytes(png)
    write_json(paths["json"], {"settings": settings, "test_cases": test[2], "rows": rows})
    print(f"comparison: {paths['md']}, {paths['csv']}, {paths['png']}", flush=True)
    return CompareResult(out, results, rows, settings, paths["csv"], paths["md"], paths["png"], paths["json"])
