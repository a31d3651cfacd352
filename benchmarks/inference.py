"""Time CT prediction on the CPU: ctseg (torch, onnx) against MONAI and a plain PyTorch tiling loop.

All contenders run in this one process on the same network and weights, with the same
preprocessing (ctseg's: reorient, crop to the body, resample to the plan's spacing, normalise),
the same post-processing and the same inverse to the input grid; only the sliding window differs:

- ctseg (torch): :class:`ctseg.inference.Predictor` (Gaussian weights, tiles in batches of the
  run's ``predict.batch_size``, a lone tile never sent alone to a 3D convolution on the CPU);
- ctseg (onnx): the same, the network on onnxruntime (CPU execution provider, threads = cores);
- MONAI: ``monai.inferers.sliding_window_inference`` (same patch, overlap 0.5, mode "gaussian",
  ``sw_batch_size`` = the same batch size), stitching softmax probabilities as ctseg does;
- plain loop: tiles at half-patch steps, one tile per network call, uniform averaging.

Columns: end to end (read the input -> written label NIfTI) and network-only wall seconds, peak
RSS of the process during the run (sampled every 5 ms), Dice agreement with MONAI's label map
(mean over the foreground labels; both empty counts 1), tiles, and achieved GFLOP/s of the
network (FLOPs of one tile from ``torch.utils.flop_counter`` x tiles / network seconds) against
the CPU's peak (cores x clock x 32 FP32 FLOP/cycle: two 256-bit FMA pipes, AVX2; state the
clock with ``--ghz``). The network is the ``cpu`` preset's plan on synthetic data, trained for a
few iterations (``--run`` reuses a run folder instead). Run it niced::

    nice .venv/bin/python benchmarks/inference.py
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
from pathlib import Path

import numpy as np
import torch

from ctseg.cli import main as ctseg_main
from ctseg.inference import Predictor
from ctseg.inference.export import cpu_threads
from ctseg.inference.postprocess import apply_postprocessing
from ctseg.inference.sliding_window import tile_starts
from ctseg.io import Image, LabelMap, write_nifti
from ctseg.io.reader import read_image
from ctseg.models.runtime import forward
from ctseg.preprocessing import preprocess_image, restore_labels

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


def _monai_window(predictor: Predictor, net: _Timed) -> Callable[[np.ndarray], np.ndarray]:
    from monai.inferers import sliding_window_inference

    def window(array: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            probs = sliding_window_inference(torch.from_numpy(array[None, None]), predictor.plan.patch_size, predictor.batch_size, lambda x: torch.softmax(net(x), 1), overlap=0.5, mode="gaussian")
        return probs[0].numpy()

    return window


def _plain_window(predictor: Predictor, net: _Timed) -> Callable[[np.ndarray], np.ndarray]:
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


def _predict_with(predictor: Predictor, window: Callable[[np.ndarray], np.ndarray], image: Image) -> np.ndarray:
    """The Predictor's pipeline with another sliding window in place of ctseg's."""
    array, geometry = preprocess_image(image, predictor.plan)
    probs = apply_postprocessing(window(array), predictor.plan.spacing, keep_largest=predictor.keep_largest, min_component_mm3=predictor.min_component_mm3)
    return restore_labels(probs, geometry)


def _dice(a: np.ndarray, b: np.ndarray, num_classes: int) -> float:
    scores = []
    for label in range(1, num_classes):
        x, y = a == label, b == label
        total = int(x.sum()) + int(y.sum())
        scores.append(1.0 if total == 0 else 2.0 * int((x & y).sum()) / total)
    return float(np.mean(scores))


def _tile_gflop(model: torch.nn.Module, patch: tuple[int, ...]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(torch.zeros((2, 1, *patch)))
    return counter.get_total_flops() / 2 / 1e9


def _synthetic_case(out: Path, slices: int = 100) -> Path:
    from ctseg.synth import generate_case

    image, _ = generate_case("pancreas", seed=11, matrix=512, slice_spacing=2.5, orientation="RAS")
    array = np.asarray(image.array)[:, :, :slices]
    if array.shape[2] < slices:
        array = np.pad(array, [(0, 0), (0, 0), (0, slices - array.shape[2])], mode="edge")
    affine = image.affine.copy()
    affine[:3, :3] = np.diag([0.78, 0.78, 2.5])  # the requested grid: 0.78 x 0.78 x 2.5 mm
    path = out / "synthetic_512x512x100.nii.gz"
    write_nifti(Image(array, affine), path)
    return path


def _make_run(root: Path) -> Path:
    data, run = root / "data", root / "run"
    ctseg_main(["synth", str(data), "--task", "pancreas", "--cases", "4", "--test-cases", "0", "--seed", "1", "--matrix", "256", "--slice-spacing", "2.5"])
    ctseg_main(["train", str(data), "-o", str(run), "--preset", "cpu", "--epochs", "1", "--set", "train.iterations_per_epoch=4", "--set", "train.val_patches_per_case=1"])
    return run


def _cases(root: Path, which: list[str]) -> list[tuple[str, Path]]:
    cases = []
    if "synthetic" in which:
        cases.append(("synthetic 512x512x100", _synthetic_case(root)))
    for name, rel in (("dicom", "example_ct_dicom"), ("nifti", "example_ct.nii.gz")):
        if name in which and (SHARED / rel).exists():
            cases.append((f"real {name} ({rel})", SHARED / rel))
    return cases


def run_case(label: str, path: Path, predictors: dict[str, Predictor], out: Path, gflop: float, peak: float) -> list[str]:
    rows, results = [], {}
    base = predictors["torch"]
    contenders: list[tuple[str, Predictor, Callable]] = [
        ("ctseg (torch)", base, lambda p, n: None),
        ("ctseg (onnx)", predictors["onnx"], lambda p, n: None),
        ("MONAI sliding_window_inference", base, _monai_window),
        ("plain PyTorch loop", base, _plain_window),
    ]
    # MONAI and the plain loop get the network as a user would hand it over: the plain module in
    # PyTorch's default (contiguous) layout, not ctseg's channels-last CPU wrapper
    plain = copy.deepcopy(base.model).to(memory_format=torch.contiguous_format).eval()
    for name, predictor, make_window in contenders:
        ours = name.startswith("ctseg")
        net = _Timed(predictor.network if ours else plain, ctseg_forward=ours)
        saved = predictor.network
        with _RssPeak() as rss:
            start = time.perf_counter()
            image = read_image(path, dtype=np.float32)
            window = make_window(predictor, net)
            if window is None:
                predictor.network = net
                try:
                    labels = predictor.predict_image(image).array
                finally:
                    predictor.network = saved
            else:
                labels = _predict_with(predictor, window, image)
            write_nifti(LabelMap(labels, image.affine.copy()), out / f"{name.split()[0]}-{path.name.split('.')[0]}.nii.gz", like=image)
            total = time.perf_counter() - start
        results[name] = (labels, total, net.seconds, rss.peak, net.tiles)
    ref = results["MONAI sliding_window_inference"][0]
    for name, (labels, total, network, rss, tiles) in results.items():
        rate = gflop * tiles / network
        rows.append(f"| {label} | {name} | {total:.1f} | {network:.1f} | {rss / 2**30:.2f} | {_dice(labels, ref, base.plan.num_classes):.4f} | {tiles} | {rate:.1f} ({100 * rate / peak:.0f}%) |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="existing run folder (default: train a tiny cpu-preset run)")
    parser.add_argument("--cases", default="synthetic,dicom,nifti")
    parser.add_argument("--ghz", type=float, default=2.45, help="CPU clock for the peak estimate (default: BogoMIPS/2)")
    args = parser.parse_args()
    torch.set_num_threads(cpu_threads())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = Path(args.run) if args.run else _make_run(root)
        predictors = {b: Predictor(run, backend=b) for b in ("torch", "onnx")}
        for p in predictors.values():  # warm-up: first calls pick kernels and fault in memory
            warm = torch.zeros((2, 1, *p.plan.patch_size))
            for n in (1, 2):
                p.network(warm[:n])
        plan = predictors["torch"].plan
        gflop = _tile_gflop(predictors["torch"].model, plan.patch_size)
        peak = cpu_threads() * args.ghz * 32
        print(f"machine: {platform.processor() or platform.machine()}, {cpu_threads()} cores, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
        print(f"network: {predictors['torch'].spec['name']} {plan.network.get('features')}, patch {plan.patch_size}, spacing {plan.spacing} mm, {gflop:.2f} GFLOP per tile; CPU peak {peak:.0f} GFLOP/s")
        print("| case | contender | end to end s | network s | peak RSS GiB | Dice vs MONAI | tiles | GFLOP/s (of peak) |")
        print("|---|---|---|---|---|---|---|---|")
        for label, path in _cases(root, args.cases.split(",")):
            for row in run_case(label, path, predictors, root, gflop, peak):
                print(row, flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
