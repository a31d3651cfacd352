from __future__ import annotations

import numpy as np
import torch

from ctseg.inference.sliding_window import gaussian_importance, sliding_window, tile_starts


class Threshold(torch.nn.Module):
    """A 'network' whose logits say class 1 where the input is positive (position independent)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([-10 * x, 10 * x], dim=1)


class FlipSensitive(torch.nn.Module):
    """Logits favour class 1 in the first half of the patch along axis 0 (tests mirror TTA)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ramp = torch.linspace(1, -1, x.shape[2]).view(1, 1, -1, 1, 1).expand(x.shape[0], 1, *x.shape[2:])
        return torch.cat([-ramp, ramp], dim=1)


def test_tiles_cover_the_volume() -> None:
    assert tile_starts(10, 16, 0.5) == [0]
    starts = tile_starts(100, 32, 0.5)
    assert starts[0] == 0 and starts[-1] == 68 and max(np.diff(starts)) <= 16
    g = gaussian_importance((8, 8, 8))
    assert g.max() == 1.0 and g.min() > 0 and g[4, 4, 4] == 1.0


def test_sliding_window_reproduces_a_pointwise_model_exactly() -> None:
    vol = np.random.default_rng(0).normal(size=(1, 37, 29, 11)).astype(np.float32)
    probs = sliding_window(vol, Threshold(), (16, 16, 8), 2, step=0.5, batch_size=3)
    assert probs.shape == (2, 37, 29, 11)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(0), (vol[0] > 0).astype(int))


def test_small_volume_is_padded_and_cropped_back() -> None:
    vol = np.random.default_rng(1).normal(size=(1, 5, 6, 3)).astype(np.float32)
    probs = sliding_window(vol, Threshold(), (8, 8, 4), 2)
    assert probs.shape == (2, 5, 6, 3)
    np.testing.assert_array_equal(probs.argmax(0), (vol[0] > 0).astype(int))


def test_mirror_tta_averages_flipped_predictions() -> None:
    vol = np.zeros((1, 8, 8, 8), np.float32)
    plain = sliding_window(vol, FlipSensitive(), (8, 8, 8), 2)
    mirrored = sliding_window(vol, FlipSensitive(), (8, 8, 8), 2, tta=True)
    assert plain[1, 0, 4, 4] > 0.8 and plain[1, 7, 4, 4] < 0.2
    np.testing.assert_allclose(mirrored[1], 0.5, atol=1e-5)  # a flip cancels the ramp exactly
