"""Post-processing of class probabilities with connected components (cc3d)."""

from __future__ import annotations

import cc3d
import numpy as np

__all__ = ["keep_largest_foreground", "remove_small_components", "apply_postprocessing"]


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


def remove_small_components(probabilities: np.ndarray, label: int, min_voxels: int) -> np.ndarray:
    """Hand every connected region (26-connected) of ``label`` smaller than ``min_voxels`` in the
    argmax to the next most probable class (a small tumour island inside the organ becomes organ).

    Works on (C, X, Y, Z) probabilities and returns a new array (the input when nothing changes).
    """
    mask = probabilities.argmax(0) == label
    if min_voxels <= 1 or not mask.any():
        return probabilities
    components = cc3d.connected_components(mask, connectivity=26)
    sizes = np.bincount(components.ravel())
    small = np.nonzero(sizes < min_voxels)[0]
    small = small[small > 0]
    if small.size == 0:
        return probabilities
    drop = np.isin(components, small)
    out = probabilities.copy()
    out[label][drop] = 0.0
    return out


def apply_postprocessing(
    probabilities: np.ndarray, spacing: tuple[float, float, float], *, keep_largest: bool = False, min_component_mm3: dict[int, float] | None = None
) -> np.ndarray:
    """The prediction's post-processing on the network grid (``spacing`` in mm): first the largest
    foreground region (optional), then per label the removal of regions under a volume (mm^3)."""
    if keep_largest:
        probabilities = keep_largest_foreground(probabilities)
    voxel_mm3 = float(np.prod(spacing))
    for label, volume in sorted((min_component_mm3 or {}).items()):
        probabilities = remove_small_components(probabilities, int(label), int(np.ceil(volume / voxel_mm3)))
    return probabilities
