"""Time ctseg's separable resampling against SciPy (one call and ctseg's threaded blocks) and
against SimpleITK's and PyTorch's resamplers, on CT-sized arrays.

Cases (random smooth fields, float32):

- "CT to the plan's grid": 512x512x100 at 0.78 x 0.78 x 2.5 mm -> 2.5 mm (160x160x100), cubic
  B-spline with Gaussian anti-aliasing, edge values outside (what preprocessing does);
- "thin-slice CT to the plan's grid": 512x512x300 at 0.74 x 0.74 x 0.8 mm -> 2.5 mm, the same;
- "probabilities back to the CT": one class map 160x160x100 at 2.5 mm -> 512x512x100, linear,
  0 outside (what restoring a prediction does, per class).

Rows: ``scipy``: one ``ndimage.gaussian_filter`` + ``ndimage.affine_transform`` call (the
reference); ``scipy, threaded``: the same passes split over one thread per core (ctseg before the
separable path; still used for oblique mappings); ``ctseg separable``: ``resample_array``'s
default for axis-aligned mappings (per-axis matrices from SciPy's own 1D operations, then matrix
products; the first call builds the matrices, later calls with the same geometry reuse them, so
both are shown); ``SimpleITK`` (``sitkBSpline`` / ``sitkLinear``, no anti-aliasing, its own
threads) and ``torch interpolate`` (trilinear, no anti-aliasing) for scale: they compute something
else (no anti-aliasing; another spline boundary), which the difference column shows.
Times are the best of ``--repeats`` wall-clock runs; the difference is the largest absolute
difference from the SciPy reference over the array, relative to its range. Run it niced, on a
quiet machine::

    nice .venv/bin/python benchmarks/resample.py
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from scipy import ndimage

from ctseg._resources import cpu_threads
from ctseg.preprocessing import resample
from ctseg.preprocessing.resample import grid_for_spacing, resample_array


def _field(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A smooth random field of CT-like values (about -200..300), float32."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(50.0, 120.0, tuple(max(4, s // 16) for s in shape))
    return ndimage.zoom(coarse, [s / c for s, c in zip(shape, coarse.shape)], order=1)[tuple(slice(0, s) for s in shape)].astype(np.float32)


def _cases() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, tuple[int, ...], dict]]:
    """(name, array, source affine, destination affine, destination shape, resample kwargs)."""
    cases = []
    for name, shape, spacing in (
        ("CT to the plan's grid: 512x512x100 at 0.78x0.78x2.5 mm -> 2.5 mm, cubic + anti-aliasing", (512, 512, 100), (0.78, 0.78, 2.5)),
        ("thin-slice CT to the plan's grid: 512x512x300 at 0.74x0.74x0.8 mm -> 2.5 mm, cubic + anti-aliasing", (512, 512, 300), (0.74, 0.74, 0.8)),
    ):
        src = np.diag([*spacing, 1.0])
        dst, dst_shape = grid_for_spacing(src, shape, (2.5, 2.5, 2.5))
        cases.append((name, _field(shape), src, dst, dst_shape, {"order": 3, "antialias": True, "mode": "nearest"}))
    src, shape = grid_for_spacing(np.diag([0.78, 0.78, 2.5, 1.0]), (512, 512, 100), (2.5, 2.5, 2.5))
    probs = np.clip(_field(shape, 1) / 300.0, 0.0, 1.0)
    cases.append(("probabilities back to the CT: 160x160x100 -> 512x512x100, linear, 0 outside", probs, src, np.diag([0.78, 0.78, 2.5, 1.0]), (512, 512, 100), {"order": 1, "antialias": False, "mode": "constant"}))
    return cases


def _sitk(array: np.ndarray, src: np.ndarray, dst: np.ndarray, shape: tuple[int, ...], order: int) -> np.ndarray:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))  # SimpleITK indexes (x, y, z) as array [z, y, x]
    image.SetSpacing([float(v) for v in np.diag(src)[:3]])
    image.SetOrigin([float(v) for v in src[:3, 3]])
    out = sitk.Resample(
        image, [int(s) for s in shape], sitk.Transform(), sitk.sitkBSpline if order == 3 else sitk.sitkLinear,
        [float(v) for v in dst[:3, 3]], [float(v) for v in np.diag(dst)[:3]], [1, 0, 0, 0, 1, 0, 0, 0, 1], 0.0, sitk.sitkFloat32,
    )  # fmt: skip
    return sitk.GetArrayFromImage(out).transpose(2, 1, 0)


def _torch(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    import torch

    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(array))[None, None]
        return torch.nn.functional.interpolate(x, size=tuple(shape), mode="trilinear", align_corners=False)[0, 0].numpy()


def _best(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out  # type: ignore[return-value]


def _rows(array: np.ndarray, src: np.ndarray, dst: np.ndarray, shape: tuple[int, ...], kwargs: dict, repeats: int) -> list[tuple[str, float, np.ndarray]]:
    """(method, best seconds, output) of every method on one case; the first is the reference."""
    call = partial(resample_array, array, src, dst, shape, **kwargs)
    rows = [("scipy (one call)", *_best(partial(call, threads=1, separable=False), repeats))]
    rows.append(("scipy, threaded blocks", *_best(partial(call, separable=False), repeats)))
    resample._axis_operator.cache_clear()
    rows.append(("ctseg separable, first call (builds the matrices)", *_best(call, 1)))
    rows.append(("ctseg separable, same geometry again", *_best(call, repeats)))
    kind = "BSpline" if kwargs["order"] == 3 else "linear"
    rows.append((f"SimpleITK {kind} (no anti-aliasing)", *_best(partial(_sitk, array, src, dst, shape, kwargs["order"]), repeats)))
    rows.append(("torch interpolate, trilinear (no anti-aliasing)", *_best(partial(_torch, array, shape), repeats)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the best wall time is shown (default 3)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(cpu_threads())
    print(f"machine: {platform.processor() or platform.machine()}, {cpu_threads()} cores")
    print("| case | method | seconds | max abs difference from SciPy (of the range) |")
    print("|---|---|---|---|")
    for name, array, src, dst, shape, kwargs in _cases():
        rows = _rows(array, src, dst, shape, kwargs, args.repeats)
        ref = rows[0][2]
        span = float(ref.max() - ref.min()) or 1.0
        for method, seconds, out in rows:
            diff = float(np.abs(out - ref).max())
            print(f"| {name} | {method} | {seconds:.2f} | {diff:.3g} ({diff / span:.1e}) |", flush=True)


if __name__ == "__main__":
    main()
