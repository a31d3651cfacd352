"""Intensity clipping and normalisation of CT (HU in, network units out)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["normalize", "normalization_params", "equalize_histogram"]


_EQUALIZE_BINS = 1024


def normalization_params(
    fingerprint: dict[str, Any], mode: str, window: tuple[float, float], *, equalize: bool = False
) -> dict[str, Any]:
    """Parameters stored in the plan.

    ``foreground`` (nnU-Net's CT scheme): clip to the 0.5/99.5 percentiles of foreground HU across
    the dataset, subtract their mean and divide by their standard deviation.
    ``window``: clip to a fixed HU window (e.g. soft tissue -135..250) and map it to [-1, 1].
    ``window_zscore``: clip to the fixed window, then subtract the foreground's mean and divide by
    its standard deviation (the window keeps fat and dark tumour apart; the foreground's scale keeps
    a 10 HU contrast inside the organ as large to the network as nnU-Net's scheme does).
    ``equalize`` (either mode): after clipping, each volume's histogram is equalised (its own
    cumulative distribution maps the clip range onto itself), as the UPC pancreas pipeline did.
    """
    params = _mode_params(fingerprint, mode, window)
    if equalize:
        params["equalize"] = True
    return params


def _mode_params(fingerprint: dict[str, Any], mode: str, window: tuple[float, float]) -> dict[str, Any]:
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
    if mode == "window_zscore":
        stats = fingerprint["intensity"]
        low, high = float(window[0]), float(window[1])
        return {"mode": mode, "clip_low": low, "clip_high": high, "mean": float(stats["mean"]), "std": float(max(stats["std"], 1e-3))}
    raise ValueError(f"normalization must be 'foreground', 'window' or 'window_zscore', got {mode!r}")


def normalize(array: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Clip HU to [clip_low, clip_high] (histogram-equalised there if the plan says so), then
    (x - mean) / std; returns float32."""
    out = np.clip(array.astype(np.float32, copy=False), params["clip_low"], params["clip_high"])
    if params.get("equalize"):
        out = equalize_histogram(out, float(params["clip_low"]), float(params["clip_high"]))
    out -= np.float32(params["mean"])
    out /= np.float32(params["std"])
    return out


def equalize_histogram(array: np.ndarray, low: float, high: float, bins: int = _EQUALIZE_BINS) -> np.ndarray:
    """Map values in [low, high] through the volume's own cumulative histogram back onto [low, high].

    Monotonic (the order of intensities is kept) and deterministic per volume; a volume whose
    values fall in a single histogram bin is returned unchanged. Returns float32.
    """
    counts, edges = np.histogram(array, bins=bins, range=(low, high))
    if np.count_nonzero(counts) < 2:
        return array.astype(np.float32)
    cdf = np.cumsum(counts, dtype=np.float64)
    cdf = (cdf - cdf[0]) / max(cdf[-1] - cdf[0], 1.0)
    centres = (edges[:-1] + edges[1:]) / 2
    out = np.interp(array.ravel(), centres, low + cdf * (high - low)).reshape(array.shape)
    return out.astype(np.float32)
