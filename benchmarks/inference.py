"""Time CT prediction on the CPU: ctseg (torch, onnx) against MONAI and a plain PyTorch tiling loop.

All contenders run in this one process on the same network and weights, with ctseg's
preprocessing (reorient, resample to the plan's spacing, normalise), post-processing and inverse
to the input grid; they differ in the sliding window and in what they tile:

- ctseg (torch, spread grid): :class:`ctseg.inference.Predictor` with ``tile_grid="spread"`` (the
  default): the CT cropped to the body, tile starts spread evenly over it, Gaussian weights,
  tiles in batches of the run's ``predict.batch_size`` (a lone tile never sent alone to a 3D
  convolution on the CPU), the network in the channels-last layout with its convolutions into
  few channels computing two output columns at a time (:mod:`ctseg.inference.column_pairs`);
- ctseg (torch, monai grid): ``tile_grid="monai"``: MONAI's tile starts and weights on the whole
  preprocessed CT, only the tiles that reach the body's box run (inside it the probabilities
  equal MONAI's up to float rounding and the network's layout);
- ctseg (onnx, monai grid): the same, the network on onnxruntime (CPU, threads = cores);
- MONAI sliding_window_inference (whole volume), the reference of the agreement column:
  ``monai.inferers.sliding_window_inference`` (same patch, overlap ``1 - step``, mode "gaussian",
  ``sw_batch_size`` = the same batch size) stitching softmax probabilities over the whole
  preprocessed CT (no crop to the body, as a MONAI pipeline tiles it), the plain module in
  PyTorch's default layout;
- MONAI, whole volume, ctseg's CPU network: the same with the network as ctseg's predictor runs it
  on the CPU (channels-last, convolutions into few channels two output columns at a time; in
  float32), to show what the network's form alone changes in time and labels;
- MONAI, ctseg's body crop: MONAI's window on ctseg's cropped input (the earlier table's row);
- plain loop: tiles at half-patch steps on the body crop, one tile per network call, uniform
  averaging.

Columns: end to end (read the input -> written label NIfTI) and network-only wall seconds, peak
RSS of the process during the run (sampled every 5 ms), Dice agreement with the reference's label
map per foreground label (both empty counts 1; in brackets the reference's voxels of the label),
tiles, and achieved GFLOP/s of the network (FLOPs of one tile from ``torch.utils.flop_counter`` x
tiles / network seconds) against a reference rate. The reference is measured: the best float32
rate of dense 3x3x3 convolutions (32 and 64 channels in and out, channels-last, a batch of the
predictor's size on the patch halved and quartered; 2D plans: 3x3) in this process, i.e. what
oneDNN attains on this CPU. A clock-based peak (BogoMIPS, the base clock) understated it by half
on a CPU that boosts (2026-12-07: 332 GFLOP/s estimated, 605 measured). ``--ghz`` and
``--flop-per-cycle`` give a theoretical peak (cores x clock x float32 FLOP per cycle: 64 with
AVX-512's two 512-bit FMA pipes, 32 with AVX2's two 256-bit ones) to use instead. A bfloat16 row
can pass 100 %: its dot products run at twice the float32 rate (the bfloat16 rate of the same
convolutions is printed too).
ctseg's rows run the network in its default precision ("auto": bfloat16 autocast where the CPU
multiplies bfloat16 in hardware, float32 elsewhere) and, in the rows marked float32, in float32. The network is the ``cpu`` preset's plan on
synthetic data, trained for a few iterations (``--run`` reuses a run folder instead); the
synthetic 512x512x100 case (0.78 x 0.78 x 2.5 mm) is of the run's task (liver or pancreas, from
its labels). ``--cases`` and ``--contenders`` pick a subset (e.g. ``--cases dicom`` for a quick
check). ``--repeat N`` runs every contender N times in rounds and reports median times (on a
shared VM single runs have differed by 30 %). All rows run with the allocator setting the ``ctseg``
command makes at start (:func:`ctseg._resources.tune_malloc`; ``--default-malloc`` leaves glibc's
own). Run it niced, on a quiet machine::

    nice .venv/bin/python benchmarks/inference.py --run RUN --repeat 3
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ctseg._fileio import read_json
from ctseg._resources import cpu_flags, cpu_has_bf16_dot, tune_malloc
from ctseg.cli import main as ctseg_main
from ctseg.inference import Predictor
from ctseg.inference.export import cpu_threads
from ctseg.inference.postprocess import apply_postprocessing, remove_subgrid_regions
from ctseg.inference.sliding_window import tile_starts
from ctseg.io import Image, LabelMap, write_nifti
from ctseg.io.reader import read_image
from ctseg.models.runtime import forward
from ctseg.preprocessing import (
    CaseGeometry,
    Plan,
    preprocess_image,
    preprocess_region,
    restore_labels,
    volume_grid,
)

REFERENCE = "MONAI sliding_window_inference (whole volume)"
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "totalsegmentator"


class _RssPeak:
    """Peak resident memory (bytes) of this process while the context is open."""

    def __enter__(self) -> _RssPeak:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        page = resource.getpagesize()
        while not self._stop.is_set():
            with open("/proc/self/statm") as f:
                self.peak = max(self.peak, int(f.read().split()[1]) * page)
            self._stop.wait(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _Timed:
    """Wraps a network: sums the wall seconds of its calls and the tiles it was given."""

    def __init__(self, net: Callable[[torch.Tensor], torch.Tensor], ctseg_forward: bool) -> None:
        self.net, self.ctseg_forward, self.seconds, self.tiles = net, ctseg_forward, 0.0, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = forward(self.net, x) if self.ctseg_forward else self.net(x)
        self.seconds += time.perf_counter() - start
        self.tiles += int(x.shape[0])
        return out


def _monai_window(predictor: Predictor, net: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[np.ndarray], np.ndarray]:
    from monai.inferers import sliding_window_inference

    def window(array: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            probs = sliding_window_inference(torch.from_numpy(array[None, None]), predictor.plan.patch_size, predictor.batch_size, lambda x: torch.softmax(net(x), 1), overlap=1 - predictor.step, mode="gaussian")
        return probs[0].numpy()

    return window


def _plain_window(predictor: Predictor, net: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[np.ndarray], np.ndarray]:
    patch = predictor.plan.patch_size

    def window(array: np.ndarray) -> np.ndarray:
        pad = [(0, max(0, p - s)) for p, s in zip(patch, array.shape)]
        x_all = torch.from_numpy(np.pad(array, pad, constant_values=float(array.min())))
        probs = torch.zeros((predictor.plan.num_classes, *x_all.shape))
        count = torch.zeros(x_all.shape)
        with torch.inference_mode():
            for a in tile_starts(x_all.shape[0], patch[0], 0.5):
                for b in tile_starts(x_all.shape[1], patch[1], 0.5):
                    for c in tile_starts(x_all.shape[2], patch[2], 0.5):
                        sl = (slice(a, a + patch[0]), slice(b, b + patch[1]), slice(c, c + patch[2]))
                        probs[(slice(None), *sl)] += torch.softmax(net(x_all[sl][None, None])[0], 0)
                        count[sl] += 1
        probs /= count
        return probs[(slice(None), *(slice(0, s) for s in array.shape))].numpy()

    return window


def _whole_volume(image: Image, plan: Plan) -> tuple[np.ndarray, CaseGeometry]:
    """ctseg's preprocessing without the crop to the body: the whole CT on the plan's grid, and the
    geometry restoring all of it (what a MONAI user would tile)."""
    grid = volume_grid(image, plan)
    array, geometry = preprocess_region(grid, plan, tuple(slice(0, n) for n in grid.shape))  # type: ignore[arg-type]
    everything = [[0, n] for n in grid.canonical.shape]
    return array, replace(geometry, crop=everything, crop_affine=grid.reorientation.target_affine.tolist())


def _predict_with(predictor: Predictor, window: Callable[[np.ndarray], np.ndarray], image: Image, whole: bool) -> np.ndarray:
    """The Predictor's pipeline with another sliding window in place of ctseg's, on the whole
    preprocessed volume (``whole``) or on ctseg's crop to the body."""
    array, geometry = _whole_volume(image, predictor.plan) if whole else preprocess_image(image, predictor.plan)
    # the run's post-processing, as ctseg's rows apply it (so that the agreement column compares windows and networks)
    probs = apply_postprocessing(window(array), predictor.plan.spacing, keep_largest=predictor.keep_largest, min_component_mm3=predictor.min_component_mm3, min_contact=predictor.min_contact, min_confidence=predictor.min_confidence)
    return remove_subgrid_regions(restore_labels(probs, geometry), predictor.subgrid_voxels(image, geometry))


def _dice_per_label(a: np.ndarray, b: np.ndarray, labels: dict[int, str]) -> str:
    """Dice of each foreground label between two label maps ("liver 0.9999, tumour 1.0000"; both
    empty counts 1) and, in brackets, the voxels of that label in ``b``."""
    scores = []
    for label, name in sorted(labels.items()):
        if label == 0:
            continue
        x, y = a == label, b == label
        total = int(x.sum()) + int(y.sum())
        scores.append(f"{name} {1.0 if total == 0 else 2.0 * int((x & y).sum()) / total:.4f} ({int(y.sum())})")
    return ", ".join(scores)


def _theoretical_peak(ghz: float | None, per_cycle: int | None) -> float:
    """Cores x clock x float32 FLOP per cycle, in GFLOP/s; the clock defaults to BogoMIPS / 2 (the
    base clock), FLOP per cycle to 64 with AVX-512, else 32."""
    if ghz is None:
        ghz = 2.45
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                ghz = next(float(line.split(":")[1]) / 2000 for line in f if line.startswith("bogomips"))
        except (OSError, ValueError, StopIteration):
            pass
    return cpu_threads() * ghz * (per_cycle or (64 if "avx512f" in cpu_flags() else 32))


def _dense_conv_rate(patch: tuple[int, ...], batch: int, dtype: torch.dtype = torch.float32) -> float:
    """The best GFLOP/s of dense 3x3x3 (2D: 3x3) convolutions, 32 and 64 channels in and out, in the
    channels-last layout, on a batch of ``batch`` blocks of ``patch`` halved and quartered: what
    oneDNN attains on this CPU, the reference of the GFLOP/s column."""
    conv = torch.nn.functional.conv3d if len(patch) == 3 else torch.nn.functional.conv2d
    layout = torch.channels_last_3d if len(patch) == 3 else torch.channels_last
    best = 0.0
    with torch.inference_mode():
        for channels, shrink in ((32, 2), (64, 2), (64, 4)):
            size = tuple(max(4, p // shrink) for p in patch)
            x = torch.randn((batch, channels, *size)).to(dtype).contiguous(memory_format=layout)
            w = torch.randn((channels, channels, *(3,) * len(patch))).to(dtype).contiguous(memory_format=layout)
            flop = 2.0 * channels * channels * 3 ** len(patch) * batch * float(np.prod(size))
            for _ in range(3):
                conv(x, w, padding=1)
            for _ in range(5):
                start = time.perf_counter()
                conv(x, w, padding=1)
                best = max(best, flop / (time.perf_counter() - start) / 1e9)
    return best


def _tile_gflop(model: torch.nn.Module, patch: tuple[int, ...]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(torch.zeros((2, 1, *patch)))
    return counter.get_total_flops() / 2 / 1e9


def _synthetic_case(out: Path, task: str, slices: int = 100) -> Path:
    from ctseg.synth import generate_case

    image, _ = generate_case(task, seed=11, matrix=512, slice_spacing=2.5, orientation="RAS")
    array = np.asarray(image.array)[:, :, :slices]
    if array.shape[2] < slices:
        array = np.pad(array, [(0, 0), (0, 0), (0, slices - array.shape[2])], mode="edge")
    affine = image.affine.copy()
    affine[:3, :3] = np.diag([0.78, 0.78, 2.5])  # the requested grid: 0.78 x 0.78 x 2.5 mm
    path = out / f"synthetic_{task}_512x512x100.nii.gz"
    write_nifti(Image(array, affine), path)
    return path


def _run_task(run: Path) -> str:
    """The synthetic task the run was trained for, from its labels (dataset.json, else plan.json)."""
    for name in ("dataset.json", "plan.json"):
        if (run / name).is_file():
            labels = " ".join(str(v) for v in read_json(run / name).get("labels", {}).values()).lower()
            for task in ("liver", "pancreas"):
                if task in labels:
                    return task
    return "pancreas"


def _make_run(root: Path) -> Path:
    data, run = root / "data", root / "run"
    ctseg_main(["synth", str(data), "--task", "pancreas", "--cases", "4", "--test-cases", "0", "--seed", "1", "--matrix", "256", "--slice-spacing", "2.5"])
    ctseg_main(["train", str(data), "-o", str(run), "--preset", "cpu", "--epochs", "1", "--set", "train.iterations_per_epoch=4", "--set", "train.val_patches_per_case=1"])
    return run


def _cases(root: Path, which: list[str], task: str) -> list[tuple[str, Path]]:
    cases = []
    if "synthetic" in which:
        cases.append((f"synthetic {task} 512x512x100", _synthetic_case(root, task)))
    for name, rel in (("dicom", "example_ct_dicom"), ("nifti", "example_ct.nii.gz")):
        if name in which and (SHARED / rel).exists():
            cases.append((f"real {name} ({rel})", SHARED / rel))
    return cases


#: rows: key -> (name, ctseg backend or None, ctseg tile grid or window maker, whole volume?, network
#: layout, ctseg precision: "auto" is the default, bfloat16 where the CPU multiplies it in hardware)
CONTENDERS: dict[str, tuple[str, str | None, str | Callable, bool, str, str]] = {
    "spread": ("ctseg (torch, spread grid)", "torch", "spread", False, "channels-last", "auto"),
    "monai-grid": ("ctseg (torch, monai grid)", "torch", "monai", False, "channels-last", "auto"),
    "spread-fp32": ("ctseg (torch, spread grid, float32)", "torch", "spread", False, "channels-last", "float32"),
    "monai-grid-fp32": ("ctseg (torch, monai grid, float32)", "torch", "monai", False, "channels-last", "float32"),
    "onnx": ("ctseg (onnx, monai grid)", "onnx", "monai", False, "onnx", "float32"),
    "monai": (REFERENCE, None, _monai_window, True, "default", "float32"),
    "monai-cl": ("MONAI, whole volume, ctseg's CPU network", None, _monai_window, True, "channels-last", "float32"),
    "monai-crop": ("MONAI, ctseg's body crop", None, _monai_window, False, "default", "float32"),
    "plain": ("plain PyTorch loop (body crop)", None, _plain_window, False, "default", "float32"),
}


def run_case(label: str, path: Path, predictors: dict[tuple[str, str, str], Predictor], keys: list[str], out: Path, gflop: float, peak: float, repeat: int = 1) -> list[str]:
    """The table rows of one case. With ``repeat`` > 1 every contender runs that many times, in
    rounds (each round runs them all once, so a slow spell of the machine hits every contender),
    and the times are the medians (peak RSS the largest)."""
    rows = []
    base = predictors[("torch", "spread", "float32")]
    # MONAI and the plain loop get the network as a user would hand it over: the plain module in
    # PyTorch's default (contiguous) layout, not ctseg's channels-last CPU wrapper (except the
    # "monai-cl" row, which measures what ctseg's form of the network alone changes)
    plain = copy.deepcopy(base.model).to(memory_format=torch.contiguous_format).eval()
    names = [k for k in CONTENDERS if k in keys or k == "monai"]
    runs: dict[str, list[tuple[np.ndarray, float, float, int, int]]] = {k: [] for k in names}
    for _ in range(repeat):
        for key in names:
            runs[key].append(_run_once(key, path, predictors, base, plain, out))
    results = {}
    for key, found in runs.items():
        labels, _, _, _, tiles = found[-1]
        total = float(np.median([f[1] for f in found]))
        network = float(np.median([f[2] for f in found]))
        results[CONTENDERS[key][0]] = (labels, total, network, max(f[3] for f in found), tiles)
    ref = results[REFERENCE][0]
    for name, (labels, total, network, rss, tiles) in results.items():
        rate = gflop * tiles / network
        rows.append(f"| {label} | {name} | {total:.1f} | {network:.1f} | {rss / 2**30:.2f} | {_dice_per_label(labels, ref, base.labels)} | {tiles} | {rate:.1f} ({100 * rate / peak:.0f}%) |")
    return rows


def _run_once(key: str, path: Path, predictors: dict[tuple[str, str, str], Predictor], base: Predictor, plain: torch.nn.Module, out: Path) -> tuple[np.ndarray, float, float, int, int]:
    """One contender on one case: (labels, end-to-end s, network s, peak RSS bytes, tiles)."""
    _, backend, how, whole, layout, precision = CONTENDERS[key]
    predictor = predictors[(backend, how, precision)] if backend else base
    ours = backend is not None
    net = _Timed(predictor.network if ours or layout == "channels-last" else plain, ctseg_forward=ours)
    saved = predictor.network
    with _RssPeak() as rss:
        start = time.perf_counter()
        image = read_image(path, dtype=np.float32)
        if ours:
            predictor.network = net
            try:
                labels = predictor.predict_image(image).array
            finally:
                predictor.network = saved
        else:
            labels = _predict_with(predictor, how(predictor, net), image, whole)  # type: ignore[operator]
        write_nifti(LabelMap(labels, image.affine.copy()), out / f"{key}-{path.name.split('.')[0]}.nii.gz", like=image)
        total = time.perf_counter() - start
    return labels, total, net.seconds, rss.peak, net.tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="existing run folder (default: train a tiny cpu-preset run)")
    parser.add_argument("--cases", default="synthetic,dicom,nifti", help="comma-separated: synthetic, dicom, nifti (default all)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help=f"comma-separated rows (default all; the MONAI reference always runs): {', '.join(CONTENDERS)}")
    parser.add_argument("--ghz", type=float, default=None, help="CPU clock of a theoretical float32 peak to rate the network against instead of the measured dense-convolution rate (default clock with --flop-per-cycle: BogoMIPS/2)")
    parser.add_argument("--flop-per-cycle", type=int, default=None, help="float32 FLOP per cycle and core of that theoretical peak (default with --ghz: 64 with AVX-512, else 32)")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's allocator as it is (default: ctseg.tune_malloc, as the ctseg command sets it; it applies to every row)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender and case, in rounds; the table gives median times (default 1)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    keys = args.contenders.split(",")
    unknown = sorted(set(keys) - set(CONTENDERS))
    if unknown:
        parser.error(f"unknown contenders {', '.join(unknown)}; choose from {', '.join(CONTENDERS)}")
    torch.set_num_threads(cpu_threads())
    # as the ctseg command does at start; every row (MONAI's too) runs in the same process, so
    # every row gets it: --default-malloc shows glibc's own behaviour instead
    tuned = False if args.default_malloc else tune_malloc()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = Path(args.run) if args.run else _make_run(root)
        wanted = {("torch", "spread", "float32")} | {(c[1], c[2], c[5]) for k, c in CONTENDERS.items() if k in keys and c[1]}
        # one sliding window per case for every contender: the polarity pass (on in the cpu preset's runs) is a second one
        predictors = {(b, g, q): Predictor(run, backend=b, tile_grid=g, polarity=False, precision=q) for b, g, q in sorted(wanted)}  # type: ignore[arg-type,misc]
        for p in predictors.values():  # warm-up: first calls pick kernels and fault in memory
            warm = torch.zeros((p.batch_size, 1, *p.plan.patch_size))
            for n in sorted({1, 2, p.batch_size}):
                p.network(warm[:n])
        base = predictors[("torch", "spread", "float32")]
        plan = base.plan
        gflop = _tile_gflop(base.model, plan.patch_size)
        dense = _dense_conv_rate(plan.patch_size, base.batch_size)
        dense_bf16 = _dense_conv_rate(plan.patch_size, base.batch_size, torch.bfloat16) if cpu_has_bf16_dot() else None
        theoretical = args.ghz is not None or args.flop_per_cycle is not None
        peak = _theoretical_peak(args.ghz, args.flop_per_cycle) if theoretical else dense
        task = _run_task(run)
        print(f"machine: {platform.processor() or platform.machine()}, {cpu_threads()} cores, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
        print(f"runs per contender and case: {args.repeat} (median times); allocator: {'ctseg.tune_malloc (as the ctseg command)' if tuned else 'glibc as it is'}")
        print(f"network: {base.spec['name']} {plan.network.get('features')}, patch {plan.patch_size}, spacing {plan.spacing} mm, {gflop:.2f} GFLOP per tile, batch {base.batch_size}; task {task}")
        bf16_rate = "" if dense_bf16 is None else f", bfloat16 {dense_bf16:.0f}"
        print(f"dense convolutions here: float32 {dense:.0f} GFLOP/s{bf16_rate}; the GFLOP/s column is a % of " + (f"the theoretical float32 peak {peak:.0f} GFLOP/s" if theoretical else "the float32 rate"))
        print(f"ctseg's default precision here: {Predictor(run, polarity=False).precision} (bfloat16 instructions: {'yes' if cpu_has_bf16_dot() else 'no'})")
        print(f"| case | contender | end to end s | network s | peak RSS GiB | Dice vs MONAI per label (MONAI's voxels) | tiles | GFLOP/s (of {'peak' if theoretical else 'dense conv'}) |")
        print("|---|---|---|---|---|---|---|---|")
        for label, path in _cases(root, args.cases.split(","), task):
            for row in run_case(label, path, predictors, keys, root, gflop, peak, args.repeat):
                print(row, flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
