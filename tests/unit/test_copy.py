"""ctseg.io._copy.c_contiguous: the same array as np.ascontiguousarray, for every view."""

from __future__ import annotations

import numpy as np
import pytest

from ctseg.io._copy import BLOCK, c_contiguous


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint8, np.float64])
@pytest.mark.parametrize(
    "make_view",
    [
        lambda a: a,  # Fortran order, as nibabel reads NIfTI
        lambda a: a[::-1, :, ::-1],
        lambda a: a.transpose(1, 0, 2),
        lambda a: a.transpose(2, 0, 1)[:, ::-1],
        lambda a: a[3:-5, ::2, 1:],  # a strided crop, with edges off the block grid
    ],
)
def test_same_values_and_order_as_numpy(dtype, make_view) -> None:
    shape = (BLOCK * 2 + 7, BLOCK + 3, 70)  # blocks that do not tile the volume evenly
    a = np.asfortranarray(np.random.default_rng(0).integers(0, 100, shape).astype(dtype))
    view = make_view(a)
    out = c_contiguous(view)
    assert out.flags.c_contiguous and out.dtype == view.dtype and out.shape == view.shape
    np.testing.assert_array_equal(out, view)


def test_a_contiguous_array_is_returned_as_it_is() -> None:
    a = np.zeros((80, 80, 80), dtype=np.float32)
    assert c_contiguous(a) is a


@pytest.mark.parametrize("shape", [(4, 5, 6), (100, 100), (2, 70, 70, 70)])
def test_small_or_other_ranks_take_numpys_copy(shape) -> None:
    a = np.asfortranarray(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))
    out = c_contiguous(a)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, a)


def test_the_benchmark_prints_equal_copies(capsys) -> None:
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "transpose_copy.py"
    spec = importlib.util.spec_from_file_location("ctseg_benchmark_transpose_copy", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.main(["--slices", "4", "--repeat", "1"])
    assert len(rows) == 9 and all(r["equal"] and r["numpy"] > 0 and r["ctseg"] > 0 for r in rows)
    assert "| 512x512x4 | float32 | Fortran order |" in capsys.readouterr().out
