"""Soak: 200 predictions in a loop (read -> predict -> write) leave memory and open files flat."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ctseg.inference import Predictor
from ctseg.io import read_image, write_nifti

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_200_predictions_do_not_leak(tiny_data, tiny_run, tmp_path) -> None:
    src = sorted((tiny_data / "imagesTs").glob("*.nii.gz"))[0]
    predictor = Predictor(tiny_run)
    out = tmp_path / "pred.nii.gz"

    def once() -> None:
        image = read_image(src, dtype=np.float32)
        write_nifti(predictor.predict_image(image), out, dtype=np.uint8, like=image)

    for _ in range(20):  # warm-up: allocator pools, thread pools, lazy imports
        once()
    rss, files = _rss_mib(), _open_files()
    for _ in range(200):
        once()
    grown = _rss_mib() - rss
    assert _open_files() <= files, "open file descriptors grew"
    assert grown < 25.0, f"resident memory grew by {grown:.1f} MiB over 200 predictions"
    assert Path(out).is_file() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
