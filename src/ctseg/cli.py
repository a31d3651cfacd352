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
    if train:
        items.append({"train": train})
    return items


def _cmd_train(a: argparse.Namespace) -> None:
    from .config import deep_merge, load_config
    from .training import train

    overrides = _train_overrides(a)
    if a.resume:
        merged: dict = {}
        for item in overrides:
            merged = deep_merge(merged, item)
        result = train(a.dataset, a.output, None, resume=True, device=a.device, overrides=merged)
    else:
        config = load_config(a.preset, a.config, overrides)
        result = train(a.dataset, a.output, config, device=a.device)
    print(f"trained {result.epochs} epochs ({result.iterations} iterations, {result.seconds / 60:.1f} min); run folder: {result.run_dir}")


def _cmd_predict(a: argparse.Namespace) -> None:
    from .inference import predict

    records = predict(a.input, a.output, a.model, device=a.device, step=a.step, tta=a.tta or None, checkpoint=a.checkpoint)
    for r in records:
        print(f"{r.case_id}: {r.output} ({r.seconds:.1f} s)")


def _cmd_evaluate(a: argparse.Namespace) -> None:
    from .evaluation import evaluate, format_table

    result = evaluate(a.pred, a.gt, a.output, dataset=a.dataset)
    print(format_table(result.summary))
    print(f"metrics: {result.csv_path}\nsummary: {result.summary_path}")


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
    d.add_argument("--minutes", type=float, default=9.0, help="training time budget in minutes")
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

    t = sub.add_parser("train", help="train a model on an MSD-layout CT dataset")
    t.add_argument("dataset")
    t.add_argument("-o", "--output", required=True, help="run folder")
    t.add_argument("--preset", default="default", help="configs/presets/NAME.yaml (default, cpu, ...)")
    t.add_argument("--config", default=None, help="YAML file of settings overriding the preset")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting, e.g. train.lr=0.001")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--time-budget", type=float, default=None, metavar="MINUTES")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--resume", action="store_true", help="continue the run in --output")
    t.set_defaults(func=_cmd_train)

    r = sub.add_parser("predict", help="predict label maps for a NIfTI file or a folder")
    r.add_argument("-i", "--input", required=True)
    r.add_argument("-o", "--output", required=True, help="output file (.nii.gz) or folder")
    r.add_argument("-m", "--model", required=True, help="run folder written by `ctseg train`")
    r.add_argument("--step", type=float, default=None, help="tile step as a fraction of the patch (default 0.5)")
    r.add_argument("--tta", action="store_true", help="mirror test-time augmentation (8 flips)")
    r.add_argument("--checkpoint", choices=["final", "best"], default=None)
    r.add_argument("--device", default="cpu")
    r.set_defaults(func=_cmd_predict)

    e = sub.add_parser("evaluate", help="score predictions against references (Dice, Jaccard, HD95, ASD in mm)")
    e.add_argument("pred")
    e.add_argument("gt")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--dataset", default=None, help="dataset folder whose dataset.json names the labels")
    e.set_defaults(func=_cmd_evaluate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .errors import CtsegError

    try:
        args.func(args)
    except CtsegError as exc:
        print(f"ctseg: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ctseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctseg: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
