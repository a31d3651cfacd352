"""Post-processing of class probabilities with connected components (cc3d)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cc3d
import numpy as np
from scipy import ndimage

from ..preprocessing.crop import mask_bbox

__all__ = ["keep_largest_foreground", "remove_small_components", "remove_exposed_components", "remove_uncertain_components", "apply_postprocessing", "remove_subgrid_regions"]


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
    return _drop_regions(probabilities, label, components, [int(v) for v in small])


def _shells(components: np.ndarray, indices: Iterable[int]) -> Iterator[tuple[int, tuple[slice, ...], np.ndarray, np.ndarray]]:
    """For each listed region of ``components``: its index, its box grown by one voxel, and the
    region and its one-voxel (26-neighbour) shell as masks in that box."""
    cube = np.ones((3,) * components.ndim, dtype=bool)
    objects = ndimage.find_objects(components)
    for index in indices:
        box = objects[index - 1]
        if box is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        region = components[grown] == index
        yield index, grown, region, ndimage.binary_dilation(region, structure=cube) & ~region


def _drop_regions(probabilities: np.ndarray, label: int, components: np.ndarray, drop: list[int]) -> np.ndarray:
    """``probabilities`` with ``label``'s probability zeroed on the listed regions of ``components``
    (so the next most probable class takes them over); the input itself when ``drop`` is empty."""
    if not drop:
        return probabilities
    out = probabilities.copy()
    out[label][np.isin(components, drop)] = 0.0
    return out


def remove_exposed_components(probabilities: np.ndarray, label: int, min_contact: float) -> np.ndarray:
    """Hand every connected region (26-connected) of ``label`` whose outer shell lies less than
    ``min_contact`` (a fraction, 0-1) on other foreground classes to the next most probable class.

    The shell is the one-voxel layer around the region (its 26-neighbours). A liver tumour sits in
    the liver, so nearly all of its shell is liver; a "tumour" whose shell is mostly background is
    the gallbladder, bowel or a neighbouring organ touching the liver, which ``keep_largest``
    cannot drop because it touches the organ. Works on (C, X, Y, Z) probabilities and returns a
    new array (the input when nothing changes).
    """
    labels = probabilities.argmax(0)
    mask = labels == label
    if min_contact <= 0 or not mask.any():
        return probabilities
    components = cc3d.connected_components(mask, connectivity=26)
    other = (labels > 0) & ~mask
    drop = [index for index, grown, _, shell in _shells(components, range(1, int(components.max()) + 1)) if shell.any() and float(other[grown][shell].mean()) < min_contact]
    return _drop_regions(probabilities, label, components, drop)


def remove_uncertain_components(probabilities: np.ndarray, label: int, min_confidence: float) -> np.ndarray:
    """Hand every connected region (26-connected) of ``label`` in the argmax whose mean
    probability of ``label`` is below ``min_confidence`` (0-1) to the next most probable class.

    A lesion the network is sure of has a high mean probability over its region; a false one in
    organ texture is often only just the argmax. Works on (C, X, Y, Z) probabilities and returns a
    new array (the input when nothing changes).
    """
    mask = probabilities.argmax(0) == label
    if min_confidence <= 0 or not mask.any():
        return probabilities
    components = cc3d.connected_components(mask, connectivity=26)
    counts = np.bincount(components.ravel())  # cc3d numbers the regions 1..n: none is empty
    means = np.bincount(components.ravel(), weights=probabilities[label].ravel())[1:] / counts[1:]
    drop = [int(i) + 1 for i in np.nonzero(means < min_confidence)[0]]
    return _drop_regions(probabilities, label, components, drop)


def apply_postprocessing(
    probabilities: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    keep_largest: bool = False,
    min_component_mm3: dict[int, float] | None = None,
    min_contact: dict[int, float] | None = None,
    min_confidence: dict[int, float] | None = None,
) -> np.ndarray:
    """The prediction's post-processing on the network grid (``spacing`` in mm): first the largest
    foreground region (optional), then per label the removal of regions whose shell touches the
    other foreground classes less than a fraction (``min_contact``), then per label the removal
    of regions whose mean probability of the label is under a value (``min_confidence``), then
    per label the removal of regions under a volume (mm^3)."""
    if keep_largest:
        probabilities = keep_largest_foreground(probabilities)
    for label, fraction in sorted((min_contact or {}).items()):
        probabilities = remove_exposed_components(probabilities, int(label), float(fraction))
    for label, confidence in sorted((min_confidence or {}).items()):
        probabilities = remove_uncertain_components(probabilities, int(label), float(confidence))
    voxel_mm3 = float(np.prod(spacing))
    for label, volume in sorted((min_component_mm3 or {}).items()):
        probabilities = remove_small_components(probabilities, int(label), int(np.ceil(volume / voxel_mm3)))
    return probabilities


def remove_subgrid_regions(labels: np.ndarray, max_voxels: int) -> np.ndarray:
    """Give every connected region (26-connected) of a foreground label with at most ``max_voxels``
    voxels the most common label of its one-voxel shell.

    For a label map restored to the input grid: the class probabilities are resampled linearly and
    the argmax taken there, so between a background and an organ voxel of the network's grid the
    interpolated lesion probability can win a few fine voxels without winning on either side. Such
    a region, smaller than the grid the network predicted on can resolve, is not a prediction (a
    tumour-free case with one would score Dice 0). Works inside the box of the foreground; returns
    a new array (the input when nothing changes).
    """
    if max_voxels < 1:
        return labels
    box = mask_bbox(labels > 0, (1.0,) * labels.ndim, 1.0)  # grown by one voxel for the shells
    if box is None:
        return labels
    sub = labels[box]
    components = cc3d.connected_components(sub, connectivity=26)  # one set of regions per label value
    sizes = np.bincount(components.ravel())
    small = np.flatnonzero(sizes <= max_voxels)
    small = small[small > 0]
    if not small.size:
        return labels
    out = labels.copy()
    target = out[box]
    for _, grown, region, shell in _shells(components, small):
        values = sub[grown][shell]
        target[grown][region] = np.bincount(values).argmax() if values.size else 0
    return out
