"""Time one training step of the demo's 3D U-Net on the CPU, in the variants that decide how many
iterations a time budget buys.

The network is the ``cpu`` preset's plan on the synthetic liver data (UNet 8-16-32-64, strides 2,
3x3x3 kernels, deep supervision, patch 40x48x48, batch 2; ``--features``, ``--patch`` and
``--batch`` change it), trained as ``ctseg train`` does: channels-last, Dice + cross-entropy over
the deep-supervision outputs, AdamW, gradient clipping. The input is a smooth random volume with a
blob of each foreground label, so no dataset is needed.

Rows:

- ``norm + leaky ReLU as two modules``: PyTorch's ``group_norm`` backward (ctseg before the fused
  module);
- ``fused InstanceNormLeakyReLU``: the default (its own backward, ``ctseg.models._norm_act``);
- each of these with one convolution per decoder stage (``model.kwargs.decoder_convs_per_stage``);
- the default on ``--small-patch`` (24x32x32): the steps of the ``cpu`` preset's first half
  (progressive patches, ``train.small_patch_scale``).

On a shared VM single timings drift by 30 %, so the steps of two variants are interleaved (A B B A
...) and every row is compared with the first: the ratio column is the median of the per-pair
ratios. Run it niced, on a quiet machine::

    nice .venv/bin/python benchmarks/training_step.py
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ctseg.losses import DeepSupervisionLoss, create_loss
from ctseg.models import InstanceNorm, InstanceNormLeakyReLU, UNet


def _unfused(model: nn.Module) -> nn.Module:
    """``model`` with every fused norm + activation split back into InstanceNorm + LeakyReLU (the
    same parameters, PyTorch's own backward)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, InstanceNormLeakyReLU):
                norm = InstanceNorm(child.num_channels, eps=child.eps)
                norm.load_state_dict(child.state_dict())
                setattr(parent, name, nn.Sequential(norm, nn.LeakyReLU(child.negative_slope, inplace=True)))
    return model


def _batch(batch: int, patch: tuple[int, ...], classes: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    grids = np.meshgrid(*(np.linspace(-1, 1, p) for p in patch), indexing="ij")
    labels = np.zeros((batch, *patch), dtype=np.int64)
    for b in range(batch):
        for c in range(1, classes):
            centre = rng.uniform(-0.5, 0.5, size=3)
            radius = 0.6 / c
            labels[b][sum((g - x) ** 2 for g, x in zip(grids, centre, strict=True)) < radius**2] = c
    images = labels.astype(np.float32) + rng.normal(0, 0.5, size=labels.shape).astype(np.float32)
    return torch.from_numpy(images[:, None]).contiguous(memory_format=torch.channels_last_3d), torch.from_numpy(labels[:, None])


def _stepper(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    model = model.to(memory_format=torch.channels_last_3d).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = DeepSupervisionLoss(create_loss("dice_ce"))

    def step() -> None:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 12.0)
        optimizer.step()

    return step


def _paired(first: Callable[[], None], second: Callable[[], None], pairs: int) -> tuple[float, float, float]:
    """Median seconds of each and the median ratio second/first over interleaved pairs."""
    for _ in range(3):
        first()
        second()
    a, b = [], []
    for i in range(pairs):
        order = ((first, a), (second, b)) if i % 2 == 0 else ((second, b), (first, a))
        for fn, times in order:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ta, tb = np.array(a), np.array(b)
    return float(np.median(ta)), float(np.median(tb)), float(np.median(tb / ta))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--patch", type=int, nargs=3, default=[40, 48, 48])
    parser.add_argument("--small-patch", type=int, nargs=3, default=[24, 32, 32], help="progressive training's early patch (the last row)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=40, help="interleaved step pairs per row")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    patch = tuple(args.patch)
    x, y = _batch(args.batch, patch, 3, np.random.default_rng(0))
    small = tuple(args.small_patch)
    batches = {patch: (x, y), small: _batch(args.batch, small, 3, np.random.default_rng(0))}

    def model(decoder_convs: int, fused: bool) -> nn.Module:
        torch.manual_seed(0)
        net = UNet(3, 1, 3, features=args.features, deep_supervision=True, decoder_convs_per_stage=decoder_convs)
        return net if fused else _unfused(net)

    variants = [
        ("norm + leaky ReLU as two modules, 2 convs per decoder stage", 2, False, patch),
        ("fused InstanceNormLeakyReLU, 2 convs per decoder stage", 2, True, patch),
        ("norm + leaky ReLU as two modules, 1 conv per decoder stage", 1, False, patch),
        ("fused InstanceNormLeakyReLU, 1 conv per decoder stage", 1, True, patch),
        (f"fused, 2 convs per decoder stage, on {'x'.join(map(str, small))} patches", 2, True, small),
    ]
    print(f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}; UNet {'-'.join(map(str, args.features))}, "
          f"batch {args.batch} x {'x'.join(map(str, patch))}, {args.pairs} interleaved pairs per row")
    print()
    print("| variant | step ms (median) | iterations per minute | time vs the first row (median of pairs) |")
    print("|---|---|---|---|")
    base = _stepper(model(2, False), x, y)
    for i, (name, decoder_convs, fused, size) in enumerate(variants):
        if i == 0:
            ta, _, _ = _paired(base, base, max(4, args.pairs // 4))
            tb, ratio = ta, 1.0
        else:
            _, tb, ratio = _paired(base, _stepper(model(decoder_convs, fused), *batches[size]), args.pairs)
        print(f"| {name} | {tb * 1000:.0f} | {60 / tb:.0f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
