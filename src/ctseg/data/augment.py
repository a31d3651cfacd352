"""Training augmentations: sample parameters from an RNG, then apply them deterministically.

Spatial parameters (rotation about the cranio-caudal axis, scaling, elastic deformation) are applied while the patch
is extracted (see :mod:`ctseg.data.sampling`); a lesion paste (:mod:`ctseg.data.paste`), flips, the
lesion contrast (which needs the patch's labels) and intensity changes act on the patch, in that
order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import AugmentSettings

__all__ = ["PatchParams", "make_params", "apply_intensity", "apply_flips", "apply_lesion_contrast", "elastic_displacement"]


@dataclass(frozen=True)
class PatchParams:
    """What was applied to one patch (recorded so it can be replayed and tested)."""

    rotation_deg: float = 0.0
    scale: float = 1.0
    flips: tuple[int, ...] = ()
    brightness: float = 1.0
    shift: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    noise_std: float = 0.0
    noise_seed: int = 0
    elastic_alpha: float = 0.0  # largest displacement (voxels); 0 = no deformation
    elastic_sigma: float = 6.0
    elastic_seed: int = 0
    lesion_contrast: float = 0.0  # mirrored lesion contrast, as a multiple of the old one's size; 0 = off
    lesion_labels: tuple[int, int] = (2, 1)  # (lesion, host organ)
    paste_seed: int = -1  # seed of a lesion paste (ctseg.data.paste); -1 = none

    @property
    def is_spatial(self) -> bool:
        return self.rotation_deg != 0.0 or self.scale != 1.0 or self.elastic_alpha > 0.0


def make_params(rng: np.random.Generator, s: AugmentSettings) -> PatchParams:
    def chance(p: float) -> bool:
        return bool(rng.random() < p)

    return PatchParams(
        rotation_deg=float(rng.uniform(-s.rotate_degrees, s.rotate_degrees)) if chance(s.rotate_prob) else 0.0,
        scale=float(rng.uniform(*s.scale_range)) if chance(s.scale_prob) else 1.0,
        flips=tuple(a for a in s.flip_axes if chance(s.flip_prob)),
        brightness=float(rng.uniform(*s.brightness_range)) if chance(s.brightness_prob) else 1.0,
        shift=float(rng.normal(0.0, s.shift_std)) if chance(s.shift_prob) else 0.0,
        contrast=float(rng.uniform(*s.contrast_range)) if chance(s.contrast_prob) else 1.0,
        gamma=float(rng.uniform(*s.gamma_range)) if chance(s.gamma_prob) else 1.0,
        noise_std=float(rng.uniform(*s.noise_std)) if chance(s.noise_prob) else 0.0,
        noise_seed=int(rng.integers(2**31)),
        elastic_alpha=float(rng.uniform(*s.elastic_alpha)) if chance(s.elastic_prob) else 0.0,
        elastic_sigma=float(s.elastic_sigma),
        elastic_seed=int(rng.integers(2**31)),
        # drawn only when on, so that runs without it keep the random stream they always had
        lesion_contrast=float(rng.uniform(*s.lesion_contrast_scale)) if s.lesion_contrast_prob > 0 and chance(s.lesion_contrast_prob) else 0.0,
        lesion_labels=(int(s.lesion_labels[0]), int(s.lesion_labels[1])),
        paste_seed=int(rng.integers(2**31)) if s.lesion_paste_prob > 0 and chance(s.lesion_paste_prob) else -1,
    )


def elastic_displacement(shape: tuple[int, ...], alpha: float, sigma: float, seed: int) -> np.ndarray:
    """A smooth random displacement field (3, *shape) in voxels whose largest magnitude is ``alpha``
    (Gaussian-smoothed white noise, one field per axis; deterministic for ``seed``)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    fields = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect") for _ in shape])
    peak = float(np.sqrt((fields**2).sum(0)).max())
    return (fields * (alpha / peak if peak > 0 else 0.0)).astype(np.float32)


def apply_flips(image: np.ndarray, label: np.ndarray, params: PatchParams) -> tuple[np.ndarray, np.ndarray]:
    """Flip (C, X, Y, Z) image and (X, Y, Z) label along the recorded spatial axes."""
    for axis in params.flips:
        image = np.flip(image, axis=axis + 1)
        label = np.flip(label, axis=axis)
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def apply_lesion_contrast(image: np.ndarray, label: np.ndarray, params: PatchParams) -> np.ndarray:
    """Mirror the mean contrast of the lesion label to its host organ label (``params.lesion_labels``)
    in a (C, *spatial) patch.

    With ``delta`` the lesion's mean minus the organ's mean (per channel) and ``k`` =
    ``params.lesion_contrast``, the lesion's voxels move by ``-(1 + k) * delta``, so its mean sits
    ``k * |delta|`` on the other side of the organ's: a hypodense lesion becomes hyperdense and back,
    its texture, noise and darker core kept. The shift is weighted by the lesion mask blurred by
    half a voxel, as the scanner's partial volume blurs a real edge. A patch with fewer than 8
    voxels of either label is returned unchanged.
    """
    lesion, host = params.lesion_labels
    in_lesion, in_host = label == lesion, label == host
    if params.lesion_contrast <= 0.0 or in_lesion.sum() < 8 or in_host.sum() < 8:
        return image
    from scipy import ndimage

    weight = ndimage.gaussian_filter(in_lesion.astype(np.float32), 0.5, mode="nearest")
    out = image.astype(np.float32, copy=True)
    for c in range(out.shape[0]):
        delta = float(out[c][in_lesion].mean() - out[c][in_host].mean())
        out[c] -= (1.0 + params.lesion_contrast) * delta * weight
    return out


def apply_intensity(image: np.ndarray, params: PatchParams) -> np.ndarray:
    """Brightness (multiplicative), contrast about the mean, gamma on the min-max range, shift, noise."""
    out = image.astype(np.float32, copy=True)
    if params.brightness != 1.0:
        out *= params.brightness
    if params.contrast != 1.0:
        mean = out.mean()
        lo, hi = out.min(), out.max()
        out = np.clip((out - mean) * params.contrast + mean, lo, hi)
    if params.gamma != 1.0:
        lo, hi = out.min(), out.max()
        span = max(float(hi - lo), 1e-6)
        out = ((out - lo) / span) ** params.gamma * span + lo
    if params.shift != 0.0:
        out += params.shift
    if params.noise_std > 0.0:
        noise_rng = np.random.default_rng(params.noise_seed)
        out += noise_rng.normal(0.0, params.noise_std, size=out.shape).astype(np.float32)
    return out
