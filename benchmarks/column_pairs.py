"""Time 3D convolutions into few channels on the CPU: oneDNN's own, against two output columns at
a time (:class:`ctseg.inference.column_pairs.ColumnPairConv3d`, which the CPU predictor uses where
it pays: into at most half of the CPU's float32 vector lanes).

Rows: the full-resolution convolutions of the demo's U-Net (8 base features) on a batch of 4
tiles of 40 x 48 x 48, channels-last, in float32 and in bfloat16 (where the CPU multiplies it in
hardware), plus the same shapes with 16 output channels for the rate oneDNN reaches when its
vectors are full; then the whole network (random weights) both ways. The paired column is measured
whether or not ctseg pairs that convolution on this CPU; ``ONEDNN_MAX_CPU_ISA=AVX2`` shows an AVX2
CPU's case on an AVX-512 one. Times are the best of
``--repeat`` runs; "max diff" is the largest difference between the two outputs against the
largest output. Run it on a quiet machine::

    nice .venv/bin/python benchmarks/column_pairs.py
"""

from __future__ import annotations

import argparse
import copy
import timeit
from collections.abc import Callable

import torch
from torch import nn

from ctseg._resources import cpu_has_bf16_dot, cpu_threads, tune_malloc
from ctseg.inference.backends import network_backend
from ctseg.inference.column_pairs import (
    ColumnPairConv3d,
    pair_output_columns,
    pairable,
    vector_lanes,
)
from ctseg.models import UNet

CL = torch.channels_last_3d


def _best(fn: Callable[[], torch.Tensor], repeat: int) -> float:
    """The fastest of ``repeat`` calls, after three to warm up (kernels picked, memory faulted in)."""
    timeit.repeat(fn, number=1, repeat=3)
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def _conv_row(cin: int, cout: int, shape: tuple[int, ...], dtype: torch.dtype, repeat: int) -> str:
    torch.manual_seed(0)
    plain = nn.Conv3d(cin, cout, 3, padding=1, bias=False).to(dtype=dtype, memory_format=CL)
    x = torch.randn(4, cin, *shape).to(dtype).contiguous(memory_format=CL)
    gflop = 2 * 27 * cin * cout * x[:, 0].numel() / 1e9
    name = str(dtype).replace("torch.", "")
    here = "yes" if pairable(plain, vector_lanes() // 2) else "no"
    with torch.inference_mode():
        t_plain = _best(lambda: plain(x), repeat)
        head = f"| {cin} -> {cout}, 4 x {'x'.join(map(str, shape))} | {name} | {t_plain * 1e3:.2f} ({gflop / t_plain:.0f} GFLOP/s) "
        if not pairable(plain, 8):
            return head + "| - | - | no | - |"
        paired = copy.deepcopy(plain)
        pair_output_columns(paired, max_channels=8)  # measured whether or not ctseg pairs it on this CPU
        a, b = plain(x).float(), paired(x).float()
        t_paired = _best(lambda: paired(x), repeat)
    diff = ((a - b).abs().max() / a.abs().max()).item()
    return head + f"| {t_paired * 1e3:.2f} | {t_plain / t_paired:.2f}x | {here} | {diff:.1e} |"


def _network_row(precision: str, shape: tuple[int, ...], repeat: int) -> str:
    torch.manual_seed(0)
    model = UNet(3, 1, 3, features=(8, 16, 32, 64), strides=[1, 2, 2, 2]).eval()
    ours = network_backend(model, shape, precision=precision)
    here = sum(isinstance(m, ColumnPairConv3d) for m in ours.modules())
    plain = copy.deepcopy(ours)
    for m in plain.modules():  # the same network on nn.Conv3d's own forward
        if isinstance(m, ColumnPairConv3d):
            m.__class__ = nn.Conv3d
    paired = copy.deepcopy(plain)
    count = pair_output_columns(paired, max_channels=8)
    x = torch.randn(4, 1, *shape)
    with torch.inference_mode():
        a, b = plain(x), paired(x)
        t_plain = _best(lambda: plain(x), repeat)
        t_paired = _best(lambda: paired(x), repeat)
    diff = ((a - b).abs().max() / a.abs().max()).item()
    return f"| demo U-Net (8, 16, 32, 64), 4 x {'x'.join(map(str, shape))}, {count} convolutions | {precision} | {t_plain * 1e3:.1f} | {t_paired * 1e3:.1f} | {t_plain / t_paired:.2f}x | {here} of {count} | {diff:.1e} |"


def main(argv: list[str] | None = None) -> None:
    """Print the table (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--size", type=int, nargs=3, default=[40, 48, 48], metavar=("D", "H", "W"), help="tile size (default the demo's patch, 40 48 48; W even)")
    args = parser.parse_args(argv)
    shape = tuple(args.size)
    torch.set_num_threads(cpu_threads())
    tune_malloc()
    dtypes = [torch.float32] + ([torch.bfloat16] if cpu_has_bf16_dot() else [])
    print(f"{cpu_threads()} threads, torch {torch.__version__}; bfloat16 rows: {'yes' if len(dtypes) > 1 else 'no (no bfloat16 instructions)'}")
    print(f"float32 vector lanes here: {vector_lanes() or 'unknown'}; ctseg pairs convolutions into at most {vector_lanes() // 2} channels")
    print("| convolution (3x3x3, channels-last) | dtype | oneDNN ms | paired columns ms | speed-up | ctseg pairs it here | max diff |")
    print("|---|---|---|---|---|---|---|")
    for dtype in dtypes:
        for cin, cout in ((8, 8), (16, 8), (8, 4), (8, 16), (16, 16)):
            print(_conv_row(cin, cout, shape, dtype, args.repeat), flush=True)
    for precision in ["float32"] + (["bfloat16"] if len(dtypes) > 1 else []):
        print(_network_row(precision, shape, args.repeat), flush=True)


if __name__ == "__main__":
    main()
