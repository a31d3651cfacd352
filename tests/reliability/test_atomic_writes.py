"""Atomic writes: a writer SIGKILLed at random points leaves each target absent, the previous
complete version or the new complete version, never a truncated file; leftovers are hidden
temporaries that no ctseg reader mistakes for outputs."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import nibabel as nib
import numpy as np
import torch

from ctseg._fileio import read_json
from ctseg.io.datasets import list_images

SHAPE = (96, 96, 48)  # about 0.9 MB of int16 per version: big enough to be killed mid-write

WRITER = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path
    import numpy as np
    import torch
    from ctseg._fileio import write_json
    from ctseg.io.image import Image
    from ctseg.io.nifti import write_nifti
    from ctseg.training.checkpoint import save_state

    out = Path(sys.argv[1])
    version = 0
    print("ready", flush=True)
    while True:
        version += 1
        v = version % 7 + 1
        data = (np.arange(int(np.prod({SHAPE}))) % 997 + 1000 * v).astype(np.int16).reshape({SHAPE})
        write_nifti(Image(data, np.eye(4)), out / "case.nii.gz")
        write_json(out / "log.json", {{"version": v, "values": [v] * 20000}})
        save_state(out / "checkpoint.pt", {{"version": v, "weights": torch.full((250000,), float(v))}})
        print(version, flush=True)
    """
)


def _check_targets(out) -> None:
    nifti, log, ckpt = out / "case.nii.gz", out / "log.json", out / "checkpoint.pt"
    if nifti.exists():
        data = np.asarray(nib.load(nifti).dataobj)
        v = int(data.flat[0]) // 1000
        expected = (np.arange(int(np.prod(SHAPE))) % 997 + 1000 * v).reshape(SHAPE)
        assert 1 <= v <= 7 and np.array_equal(data, expected)
    if log.exists():
        obj = read_json(log)
        assert obj["values"] == [obj["version"]] * 20000
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        assert state["weights"].shape == (250000,) and bool(
            (state["weights"] == state["version"]).all()
        )


def test_killed_writers_leave_only_complete_files(tmp_path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    out = tmp_path / "out"
    out.mkdir()
    rng = random.Random(7)
    completed = 0
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.2 + rng.random() * 0.8)  # somewhere inside a write
        os.kill(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, stderr
        completed += len(stdout.split())
        _check_targets(out)
    assert completed > 0, "the writer never finished a round: the test checked nothing"
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} <= {
        "case.nii.gz",
        "log.json",
        "checkpoint.pt",
    }
    assert [p.name for p in list_images(out)] == [
        "case.nii.gz"
    ]  # hidden temporaries are not inputs
