"""Intensity clipping and normalisation of CT (HU in, network units out)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["normalize", "normalization_params"]


def normalization_params(fingerprint: dict[str, Any], mode: str, window: tuple[float, float]) -> dict[str, float | str]:
    """Parameters stored in the plan.

    ``foreground`` (nnU-Net's CT scheme): clip to the 0.5/99.5 percentiles of foreground HU across
    the dataset, subtract their mean and divide by their standard deviation.
    ``window``: clip to a fixed HU window (e.g. soft tissue -135..250) and map it to [-1, 1].
    """
    if mode == "foreground":
        stats = fingerprint["intensity"]
        return {
            "mode": mode,
            "clip_low": float(stats["p00_5"]),
            "clip_high": float(stats["p99_5"]),
            "mean": float(stats["mean"]),
            "std": float(max(stats["std"], 1e-3)),
        }
    if mode == "window":
        low, high = float(window[0]), float(window[1])
        return {"mode": mode, "clip_low": low, "clip_high": high, "mean": (low + high) / 2, "std": (high - low) / 2}
    raise ValueError(f"normalization must be 'foreground' or 'window', got {mode!r}")


def normalize(array: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Clip HU to [clip_low, clip_high], then (x - mean) / std; returns float32."""
    out = np.clip(array.astype(np.float32, copy=False), params["clip_low"], params["clip_high"])
    out -= np.float32(params["mean"])
    out /= np.float32(params["std"])
    return out
