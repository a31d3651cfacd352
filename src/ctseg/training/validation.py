"""Validation on a fixed set of patches (or, for a 2D plan, axial-slice patches) per validation
case: loss and Dice per class."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data import (
    PatchParams,
    choose_center,
    choose_slice,
    extract_patch,
    foreground_slices,
    slice_patch,
)
from ..models.runtime import forward

__all__ = ["ValidationSet"]


class ValidationSet:
    """Fixed patches (half foreground-centred, half random) drawn once with their own seed.

    A 2D ``patch`` (two sizes) draws in-plane patches of axial slices; with ``drop_empty`` only
    slices holding foreground, as the training sampler does (a case without any is left out).
    """

    def __init__(self, cases: list[dict[str, Any]], patch: tuple[int, ...], per_case: int, labels: dict[int, str], seed: int = 0, drop_empty: bool = False, max_voxels: int | None = None) -> None:
        rng = np.random.default_rng(seed + 1_000_003)
        self.labels = labels
        # patches per forward call: 4, or as many as fit in ``max_voxels`` (at least one), so that
        # large validation patches (256x256x64 at 1 mm) do not multiply the network's activations
        per_patch = int(np.prod(patch))
        self.chunk = 4 if max_voxels is None else max(1, min(4, int(max_voxels) // per_patch))
        self.items: list[tuple[np.ndarray, np.ndarray]] = []
        for case in cases:
            slices = foreground_slices(case["seg"]) if drop_empty and len(patch) == 2 else None
            if slices is not None and not len(slices):
                continue
            for i in range(per_case):
                if len(patch) == 2:
                    z, center = choose_slice(case, patch, rng, i % 2 == 0, slices)
                    img, lab = slice_patch(case, z, center, patch, PatchParams(), float(case["pad_value"]))
                else:
                    center = choose_center(case, patch, rng, foreground=i % 2 == 0)
                    img, lab = extract_patch(case["image"], case["seg"], center, patch, PatchParams(), float(case["pad_value"]))
                self.items.append((img, lab.astype(np.int64)))

    @torch.inference_mode()
    def evaluate(self, model: torch.nn.Module, device: torch.device) -> dict[str, Any]:
        """Global Dice per foreground class over all patches (nan when a class never occurs)."""
        model.eval()
        n = max(self.labels) + 1
        tp, fp, fn = np.zeros(n), np.zeros(n), np.zeros(n)
        losses = []
        for start in range(0, len(self.items), self.chunk):
            chunk = self.items[start : start + self.chunk]
            images = torch.from_numpy(np.stack([img for img, _ in chunk])).to(device)
            targets = torch.from_numpy(np.stack([lab for _, lab in chunk])).to(device)
            logits = forward(model, images)
            losses.append(float(torch.nn.functional.cross_entropy(logits, targets)) * len(chunk))
            preds = logits.argmax(1).cpu().numpy()
            for pred, lab in zip(preds, (lab for _, lab in chunk)):
                for c in range(1, n):
                    p, r = pred == c, lab == c
                    tp[c] += np.count_nonzero(p & r)
                    fp[c] += np.count_nonzero(p & ~r)
                    fn[c] += np.count_nonzero(~p & r)
        dice = {}
        for c in range(1, n):
            denom = 2 * tp[c] + fp[c] + fn[c]
            dice[self.labels.get(c, f"label_{c}")] = float(2 * tp[c] / denom) if denom > 0 else float("nan")
        loss = float(np.sum(losses) / len(self.items)) if self.items else float("nan")
        return {"loss": loss, "dice": dice}
