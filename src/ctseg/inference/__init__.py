"""Inference: sliding window, prediction on the input grid."""

from __future__ import annotations

from .predictor import PredictionRecord, Predictor, predict
from .sliding_window import gaussian_importance, sliding_window, tile_starts

__all__ = ["Predictor", "predict", "PredictionRecord", "sliding_window", "gaussian_importance", "tile_starts"]
