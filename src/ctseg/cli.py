"""The ``ctseg`` command line: parse, build settings, call one public function.

Heavy imports (torch, scipy, nibabel) happen inside the commands so that ``ctseg --help`` is
instant. Errors raised on purpose (:class:`ctseg.errors.CtsegError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def _cmd_demo(a: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(a.output, task=a.task, cases=a.cases, test_cases=a.test_cases, minutes=a.minutes, seed=a.seed, matrix=a.matrix)


def _cmd_synth(a: argparse.Namespace) -> None:
    from .synth import make_dataset

    out = make_dataset(a.output, task=a.task, cases=a.cases, test_cases=a.test_cases, seed=a.seed, matrix=a.matrix, slice_spacing=a.slice_spacing, workers=a.workers)
    print(f"dataset written to {out}")


def _train_overrides(a: argparse.Namespace) -> list[dict]:
    from .config import parse_override

    items = [parse_override(s) for s in a.set or []]
    train: dict = {}
    if a.epochs is not None:
        train["epochs"] = a.epochs
    if a.time_budget is not None:
        train["time_budget_minutes"] = a.time_budget
    if a.seed is not None:
        train["seed"] = a.seed
    if getattr(a, "deterministic", False):
        train["deterministic"] = True
    if train:
        items.append({"train": train})
    if getattr(a, "model", None) is not None:  # train --model NAME: model.name, after --set
        items.append({"model": {"name": a.model}})
    return items


def _check_model(name: str | None) -> None:
    """``--model``: an unknown name is refused with the registry's list of valid ones."""
    if name is None:
        return
    from .errors import InputError
    from .models import model_info

    try:
        model_info(name)
    except ValueError as exc:
        raise InputError(f"--model: {exc}") from None


def _cmd_train(a: argparse.Namespace) -> None:
    from .config import deep_merge, load_config
    from .training import train

    _check_model(a.model)
    overrides = _train_overrides(a)
    if a.resume:
        merged: dict = {}
        for item in overrides:
            merged = deep_merge(merged, item)
        result = train(a.dataset, a.output, None, resume=True, device=a.device, overrides=merged, skip_bad=a.skip_bad)
    else:
        config = load_config(a.preset, a.config, overrides)
        result = train(a.dataset, a.output, config, device=a.device, skip_bad=a.skip_bad)
    print(f"trained {result.epochs} epochs ({result.iterations} iterations, {result.seconds / 60:.1f} min); run folder: {result.run_dir}")
    if a.tune_postprocessing:
        from .inference.tuning import CONFIDENCE_ONLY, determine_postprocessing

        extra = CONFIDENCE_ONLY if a.tune_postprocessing == "confidence" else {}
        chosen = determine_postprocessing(result.run_dir, device=a.device, **extra)
        rules = (f"label {k}: contact {chosen['min_contact'][k]:g}, confidence {chosen['min_confidence'][k]:g}, {v:g} mm^3" for k, v in chosen["min_component_mm3"].items())
        print("post-processing chosen on the validation cases (drop regions touching other labels under a fraction of their shell, then regions whose mean probability is under a value, then regions under a volume; 0 = off): " + "; ".join(rules))


def _cmd_predict(a: argparse.Namespace) -> int:
    from pathlib import Path

    from .inference import predict

    records = predict(a.input, a.output, a.model, device=a.device, step=a.step, tta=a.tta or None, checkpoint=a.checkpoint, output_format=a.format, series=a.series, backend=a.backend, overwrite=a.overwrite, tile_grid=a.tile_grid, polarity=a.polarity, precision=a.precision)
    done = [r for r in records if r.status == "done"]
    for r in records:
        detail = {"done": f"({r.seconds:.1f} s)", "skipped": "(already there; --overwrite to redo)", "failed": f"FAILED: {r.error}"}[r.status]
        print(f"{r.case_id}: {r.output} {detail}")
    if len(done) > 1:
        times = sorted(r.seconds for r in done)
        print(f"{len(done)} cases in {sum(times):.1f} s: per case median {times[len(times) // 2]:.1f} s, min {times[0]:.1f} s, max {times[-1]:.1f} s (slowest: {max(done, key=lambda r: r.seconds).case_id})")
    failed = [r for r in records if r.status == "failed"]
    if failed:
        print(f"ctseg: error: {len(failed)} of {len(records)} cases failed ({', '.join(r.case_id for r in failed)}); the log is in {Path(a.output) / 'predict_log.json'}", file=sys.stderr)
        return 1
    return 0


def _cmd_export(a: argparse.Namespace) -> None:
    from .inference.export import export_onnx

    out = export_onnx(a.run, a.output, checkpoint=a.checkpoint)
    print(f"written {out} and {out.with_suffix('.json')} (plan, labels, prediction settings)")


def _cmd_convert(a: argparse.Namespace) -> None:
    from .io.convert import convert_image

    print(f"written {convert_image(a.input, a.output, series=a.series, overwrite=a.overwrite)}")


def _label_list(text: str) -> list[int]:
    """``--lesion-labels``: comma-separated label values, or ``none``."""
    if text.strip().lower() == "none":
        return []
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected label values such as 2 or 2,3 (or none), found {text!r}") from None


def _cmd_evaluate(a: argparse.Namespace) -> None:
    from .evaluation import evaluate, format_table
    from .metrics import LesionSettings

    try:
        lesions = LesionSettings(connectivity=a.lesion_connectivity, criterion=a.lesion_criterion, threshold=a.lesion_threshold, one_to_one=a.one_to_one)
    except ValueError as exc:
        from .errors import InputError

        raise InputError(str(exc)) from None
    result = evaluate(a.pred, a.gt, a.output, dataset=a.dataset, nsd_tolerance_mm=a.nsd_tolerance, lesion_labels=a.lesion_labels, lesion_settings=lesions)
    print(format_table(result.summary))
    print(f"metrics: {result.csv_path}\nsummary: {result.summary_path}")
    if result.lesions_path is not None:
        print(f"lesions: {result.lesions_path}")


def _cmd_report(a: argparse.Namespace) -> None:
    from .reporting import build_report

    result = build_report(a.eval_dir, a.output, run_dir=a.run, images=a.images, pred=a.pred, ref=a.ref, png_dir=a.png_dir, overlays=not a.no_overlays)
    for note in result.notes:
        print(f"note: {note}")
    print(f"report: {result.path} ({len(result.overlays)} case overlays)")


def _cmd_verify(a: argparse.Namespace) -> int:
    from .io.verify import verify_dataset

    report = verify_dataset(a.dataset, layout=a.layout, include_test=not a.no_test, headers_only=a.headers_only, workers=a.workers)
    print(report.format_table())
    if a.json:
        from ._fileio import write_json

        write_json(a.json, report.to_dict())
    return 0 if report.ok else 1


def _cmd_export_data(a: argparse.Namespace) -> None:
    from .config import load_config
    from .preprocessing.export import export_preprocessed

    config = load_config(a.preset, a.config, _train_overrides(a)) if a.preset or a.config or a.set else None
    out = export_preprocessed(a.source, a.output, fmt=a.format, config=config)
    print(f"exported to {out}")


def _cmd_compare(a: argparse.Namespace) -> None:
    from .compare import compare
    from .config import parse_override

    result = compare(a.dataset, a.presets, a.output, time_budget_minutes=a.time_budget, epochs=a.epochs, seed=a.seed, overrides=[parse_override(s) for s in a.set or []], device=a.device)
    print(f"{len(result.entries)} entries on {result.entries[0].cases} test cases: {result.markdown_path}")


def _add_compare_command(sub: argparse._SubParsersAction) -> None:
    cp = sub.add_parser("compare", help="train presets (or PRESET/MODEL pairs) under one budget, score them on the test cases, one table + chart")
    cp.add_argument("dataset", help="dataset with imagesTs/ and labelsTs/ (the test cases scored)")
    cp.add_argument("--presets", required=True, metavar="A,B/MODEL,...", help="entries: presets, or PRESET/MODEL to train a preset with another network (e.g. cpu,cpu/fcn)")
    cp.add_argument("-o", "--output", required=True, help="output folder (runs/, predictions/, evaluations/, compare.csv/.md/.png); rerun to resume")
    cp.add_argument("--time-budget", type=float, default=None, metavar="MINUTES", help="training time of every entry (default: each preset's epochs)")
    cp.add_argument("--epochs", type=int, default=None, help="epochs of every entry (default: each preset's)")
    cp.add_argument("--seed", type=int, default=None)
    cp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting of every entry, e.g. train.batch_size=4")
    cp.add_argument("--device", default="cpu", help="cpu or cuda")
    cp.set_defaults(func=_cmd_compare)


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("verify", help="check every case of a dataset (MSD, nnU-Net, LiTS, plain) and list problems with fixes")
    v.add_argument("dataset")
    v.add_argument("--layout", choices=["msd", "nnunet", "lits", "plain"], default=None, help="force a layout (default: detect)")
    v.add_argument("--headers-only", action="store_true", help="check listings, headers and grids only (fast, no voxel reads)")
    v.add_argument("--no-test", action="store_true", help="skip the test images")
    v.add_argument("--workers", type=int, default=None, help="threads reading files (default: up to 4)")
    v.add_argument("--json", default=None, metavar="FILE", help="also write the problems as JSON")
    v.set_defaults(func=_cmd_verify)

    x = sub.add_parser("export-data", help="export a preprocessed dataset (a run folder or a dataset) to NumPy .npz or HDF5")
    x.add_argument("source", help="run folder (its preprocessed cache) or dataset folder (planned and preprocessed now)")
    x.add_argument("-o", "--output", required=True, help="output folder (numpy) or .h5 file / folder (hdf5)")
    x.add_argument("--format", choices=["numpy", "hdf5"], default="numpy")
    x.add_argument("--preset", default=None, help="for a dataset: preset of the plan (default: default)")
    x.add_argument("--config", default=None, help="for a dataset: YAML settings")
    x.add_argument("--set", action="append", metavar="KEY=VALUE", help="for a dataset: override one setting")
    x.set_defaults(func=_cmd_export_data, epochs=None, time_budget=None, seed=None)


def _add_train_command(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a model on a CT dataset (MSD, nnU-Net raw, LiTS or plain layout; verified first)")
    t.add_argument("dataset")
    t.add_argument("-o", "--output", required=True, help="run folder")
    t.add_argument("--preset", default="default", help="configs/presets/NAME.yaml (default, cpu, ...)")
    t.add_argument("--config", default=None, help="YAML file of settings overriding the preset")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting, e.g. train.lr=0.001")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--time-budget", type=float, default=None, metavar="MINUTES")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--deterministic", action="store_true", help="bit-identical reruns (same seed, data, machine): deterministic kernels, fixed thread count; slower")
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--model", default=None, metavar="NAME", help="network of the registry (unet, fcn, vnet, simple_unet, ...); short for --set model.name=NAME")
    t.add_argument("--resume", action="store_true", help="continue the run in --output")
    t.add_argument("--skip-bad", action="store_true", help="leave out the cases `ctseg verify` lists instead of refusing the dataset")
    t.add_argument(
        "--tune-postprocessing",
        nargs="?",
        const="all",
        choices=("all", "confidence"),
        help="after training, choose per label a minimum contact with the other labels, a minimum mean probability and a minimum region volume on the validation cases (saved as postprocessing.json, used by predict); 'confidence' tunes only the minimum mean probability (what the demo does)",
    )
    t.set_defaults(func=_cmd_train)


def _add_predict_command(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("predict", help="predict label maps for a NIfTI file, a folder of them, or a DICOM series folder")
    r.add_argument("-i", "--input", required=True)
    r.add_argument("-o", "--output", required=True, help="output file (.nii.gz, or .dcm for DICOM formats) or folder")
    r.add_argument("--format", choices=["nifti", "dicom-seg", "rtstruct"], default="nifti", help="output format; dicom-seg and rtstruct need a DICOM series input (default nifti)")
    r.add_argument("--series", default=None, metavar="UID|INDEX", help="which series of a DICOM folder that holds several")
    r.add_argument("-m", "--model", required=True, help="run folder written by `ctseg train`")
    r.add_argument("--overwrite", action="store_true", help="for a folder: predict cases whose output already exists too")
    r.add_argument("--step", type=float, default=None, help="tile step as a fraction of the patch (default 0.5)")
    r.add_argument("--tta", action="store_true", help="mirror test-time augmentation over the axes the network was trained to see flipped (8 flip sets for all three; refused for a run trained without flips, such as the cpu preset)")
    r.add_argument("--checkpoint", choices=["final", "best"], default=None)
    r.add_argument("--device", default="cpu")
    r.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="engine running the network: torch or onnxruntime on the CPU (needs ctseg[onnx]; default torch)")
    r.add_argument("--polarity-tta", dest="polarity", action=argparse.BooleanOptionalAction, default=None, help="a second pass on the image with intensities just above the organ's median mirrored below it, adding the lesions found there that are brighter than the organ (hyperdense lesions; default: the run's predict.polarity_tta)")
    r.add_argument("--tile-grid", choices=["spread", "monai"], default=None, help="tile placement: spread over the body's box, or MONAI's sliding_window_inference starts on the whole volume with the tiles off the body skipped (default: the run's predict.tile_grid, spread)")
    r.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default=None, help="the network's arithmetic: bfloat16 autocast or float32; auto takes bfloat16 on CUDA and on CPUs with bfloat16 instructions (AVX-512 BF16, AMX), where it is faster at the same labels (default: the run's predict.precision, auto)")
    r.set_defaults(func=_cmd_predict)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="ctseg", description="Segment organs and tumours in 3D CT.")
    p.add_argument("--version", action="version", version=f"ctseg {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="synth -> train -> predict -> evaluate on the embedded synthetic CT (CPU, minutes)")
    d.add_argument("-o", "--output", default="ctseg-demo", help="output folder (default: ./ctseg-demo)")
    d.add_argument("--task", default="liver", choices=["pancreas", "liver"], help="synthetic task (default: liver)")
    d.add_argument("--cases", type=int, default=24, help="training cases to synthesise (default 24)")
    d.add_argument("--test-cases", type=int, default=6)
    d.add_argument("--minutes", type=float, default=None, help="training time budget in minutes (default: what keeps the whole demo under 15 minutes, from how long synthesis took; about 10.5 on 2 fast cores)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--matrix", type=int, default=512, help=argparse.SUPPRESS)
    d.set_defaults(func=_cmd_demo)

    s = sub.add_parser("synth", help="write a synthetic abdominal CT dataset in the MSD layout")
    s.add_argument("output")
    s.add_argument("--task", default="pancreas", choices=["pancreas", "liver"])
    s.add_argument("--cases", type=int, default=10)
    s.add_argument("--test-cases", type=int, default=4)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--matrix", type=int, default=512, help="in-plane matrix (default 512, as real CT)")
    s.add_argument("--slice-spacing", type=float, default=None, help="fixed slice spacing in mm (default: varies 1.5-5)")
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(func=_cmd_synth)

    _add_train_command(sub)
    _add_predict_command(sub)

    xo = sub.add_parser("export", help="export a run's network to ONNX (model.onnx + model.json with the plan and labels)")
    xo.add_argument("run", help="run folder written by `ctseg train`")
    xo.add_argument("-o", "--output", required=True, help="the .onnx file to write; its .json goes beside it")
    xo.add_argument("--checkpoint", choices=["final", "best"], default=None)
    xo.set_defaults(func=_cmd_export)

    e = sub.add_parser("evaluate", help="score predictions against references (Dice, HD95, ASD, NSD in mm; lesion detection)")
    e.add_argument("pred")
    e.add_argument("gt")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--dataset", default=None, help="dataset folder whose dataset.json names the labels")
    e.add_argument("--nsd-tolerance", type=float, default=2.0, metavar="MM", help="tolerance of the normalised surface Dice in mm (default 2)")
    e.add_argument("--lesion-labels", type=_label_list, default=None, metavar="2,3|none", help="labels scored lesion by lesion (default: those named tumour/cancer/lesion/...)")
    e.add_argument("--lesion-connectivity", type=int, default=26, choices=[6, 18, 26], help="connected components of a lesion label (default 26)")
    e.add_argument("--lesion-criterion", default="iou", choices=["iou", "dice", "overlap"], help="match score of a predicted and a reference lesion (default iou)")
    e.add_argument("--lesion-threshold", type=float, default=0.1, help="a pair matches when its score is > this (default 0.1; 0 = any overlap)")
    e.add_argument("--one-to-one", action="store_true", help="match each lesion at most once (default: many-to-many)")
    e.set_defaults(func=_cmd_evaluate)

    rp = sub.add_parser("report", help="one self-contained HTML page of an evaluation: tables, box plots, three-plane overlays")
    rp.add_argument("eval_dir", help="output folder of `ctseg evaluate` (metrics.csv, summary.json)")
    rp.add_argument("-o", "--output", default="report.html", help="HTML file to write (default: report.html)")
    rp.add_argument("--run", default=None, help="training run folder: adds its training curves")
    rp.add_argument("--images", default=None, metavar="DIR_or_DATASET", help="CT images (a folder or a dataset); default: found from what evaluate recorded")
    rp.add_argument("--pred", default=None, help="prediction folder (default: recorded by evaluate)")
    rp.add_argument("--ref", default=None, help="reference label folder (default: recorded by evaluate)")
    rp.add_argument("--png-dir", default=None, help="also write each case's overlay montage as a PNG here")
    rp.add_argument("--no-overlays", action="store_true", help="tables and plots only")
    rp.set_defaults(func=_cmd_report)
    _add_data_commands(sub)
    _add_compare_command(sub)

    c = sub.add_parser("convert", help="convert a CT between NIfTI and a DICOM series folder (exact HU and geometry)")
    c.add_argument("input", help="NIfTI/NRRD/MHA file, or DICOM series folder")
    c.add_argument("output", help="a .nii/.nii.gz file, or a new folder for a DICOM CT series")
    c.add_argument("--series", default=None, metavar="UID|INDEX", help="which series of a DICOM folder that holds several")
    c.add_argument("--overwrite", action="store_true", help="replace an existing output")
    c.set_defaults(func=_cmd_convert)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ._resources import tune_malloc
    from .errors import CtsegError

    tune_malloc()  # this process is ctseg's: keep freed activations mapped (see tune_malloc)

    try:
        code = args.func(args)
    except CtsegError as exc:
        print(f"ctseg: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ctseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctseg: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
