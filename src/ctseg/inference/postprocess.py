"""Post-processing of class probabilities with connected components (cc3d)."""

from __future__ import annotations

import cc3d
import numpy as np

__all__ = ["keep_largest_foreground"]


def keep_largest_foreground(probabilities: np.ndarray) -> np.ndarray:
    """Keep only the largest connected foreground region (all classes > 0 together).

    For single-organ tasks (pancreas + tumour, liver + tumour) this removes false positives away
    from the organ and tumours that do not touch it. Works on (C, X, Y, Z) probabilities: outside
    the kept region every foreground probability is moved to the background, so the argmax there
    is background. Returns a new array.
    """
    foreground = probabilities.argmax(0) > 0
    if not foreground.any():
        return probabilities
    keep = cc3d.largest_k(foreground, k=1, connectivity=26) > 0
    out = probabilities.copy()
    drop = foreground & ~keep
    out[0][drop] = 1.0
    out[1:, drop] = 0.0
    return out
