"""Time a C-ordered copy of reoriented CT volumes: NumPy's ``ascontiguousarray`` against ctseg's
block-by-block copy (:func:`ctseg.io._copy.c_contiguous`), which reorientation and the ITK reader
use.

Views: the Fortran-ordered array nibabel reads from a NIfTI file, the same flipped on two axes
(e.g. LPS -> RAS), and with its first two axes swapped; float32 (CT after scaling), int16 (stored
CT) and uint8 (label maps); 512 x 512 x 100 and 512 x 512 x 300. Times are the best of
``--repeat`` runs. Run it on a quiet machine::

    nice .venv/bin/python benchmarks/transpose_copy.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from ctseg.io._copy import c_contiguous


def _best(fn: Callable[[], np.ndarray], repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slices", type=int, nargs="+", default=[100, 300])
    args = parser.parse_args(argv)
    rows = []
    print("| volume | dtype | view | numpy s | ctseg blocks s | speed-up | equal |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for slices in args.slices:
        for dtype in (np.float32, np.int16, np.uint8):
            volume = np.asfortranarray(rng.integers(0, 100, (512, 512, slices)).astype(dtype))
            for name, view in (("Fortran order", volume), ("flipped x, z", volume[::-1, :, ::-1]), ("x, y swapped", volume.transpose(1, 0, 2))):
                numpy_s = _best(lambda v=view: np.ascontiguousarray(v), args.repeat)
                ours_s = _best(lambda v=view: c_contiguous(v), args.repeat)
                equal = bool(np.array_equal(c_contiguous(view), view))
                rows.append({"slices": slices, "dtype": np.dtype(dtype).name, "view": name, "numpy": numpy_s, "ctseg": ours_s, "equal": equal})
                print(f"| 512x512x{slices} | {np.dtype(dtype).name} | {name} | {numpy_s:.3f} | {ours_s:.3f} | {numpy_s / ours_s:.1f}x | {equal} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
