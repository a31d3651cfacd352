"""Typed, frozen settings; presets in YAML; every field overridable; a hash names a configuration.

A :class:`Config` has four sections: ``plan`` (how the dataset fingerprint becomes a plan),
``model``, ``train`` and ``predict``. Presets live in ``ctseg/configs/presets/<name>.yaml`` and hold
only the fields they change; unknown keys are refused with the list of valid ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, RunFolderError

__all__ = [
    "PlanSettings",
    "ModelSettings",
    "AugmentSettings",
    "TrainSettings",
    "PredictSettings",
    "CascadeSettings",
    "Config",
    "load_config",
    "list_presets",
    "parse_override",
    "read_run_config",
    "deep_merge",
]


@dataclass(frozen=True)
class PlanSettings:
    """How a dataset fingerprint becomes a plan (spacing, patch, normalisation, network)."""

    target_spacing: tuple[float, float, float] | None = None  # mm; None: from the fingerprint
    max_median_voxels: float | None = None  # coarsen spacing until the median case fits
    patch_size: tuple[int, ...] | None = None  # voxels (2 values in 2D); None: from the median shape
    max_patch_voxels: int = 128 * 128 * 128  # pixels per slice in 2D
    # 2: a 2D network on axial slices (the cranio-caudal axis keeps its native spacing)
    spatial_dims: int = 3
    # 2D only: resample each slice's body box to fit this in-plane matrix (square pixels)
    slice_size: tuple[int, int] | None = None
    normalization: str = "foreground"  # "foreground" (clip p0.5..p99.5, z-score), "window", or "window_zscore" (clip to the window, z-score by the foreground)
    window: tuple[float, float] = (-135.0, 250.0)  # HU, used by "window" and "window_zscore"
    histogram_equalization: bool = False  # after clipping, equalise each volume's histogram
    crop_threshold_hu: float = -500.0  # body = largest component above this HU
    max_stages: int = 6
    base_features: int = 32
    max_features: int = 320
    roi_margin_mm: float = 20.0  # cascade fine stage: margin around the organ box (mm)


@dataclass(frozen=True)
class ModelSettings:
    """The network: a registry name (``ctseg.models.list_models()``) and its settings."""

    name: str = "unet"
    deep_supervision: bool = True  # ignored by networks without it
    dropout: float = 0.0
    # Any further constructor argument of the model, e.g. {features: [64, 128, 256, 512, 1024]};
    # setting features/strides/kernel_sizes replaces the plan's network for unet/default.
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AugmentSettings:
    """Probabilities and ranges of the training augmentations (applied per patch)."""

    flip_prob: float = 0.5
    flip_axes: tuple[int, ...] = (0, 1, 2)  # a 2D run flips only the in-plane axes 0 and 1
    rotate_prob: float = 0.2
    rotate_degrees: float = 15.0  # about the cranio-caudal axis
    scale_prob: float = 0.2
    scale_range: tuple[float, float] = (0.85, 1.2)
    brightness_prob: float = 0.15
    brightness_range: tuple[float, float] = (0.75, 1.25)
    shift_prob: float = 0.15
    shift_std: float = 0.1  # in normalised units
    contrast_prob: float = 0.15
    contrast_range: tuple[float, float] = (0.75, 1.25)
    gamma_prob: float = 0.1
    gamma_range: tuple[float, float] = (0.7, 1.5)
    noise_prob: float = 0.1
    noise_std: tuple[float, float] = (0.0, 0.1)
    elastic_prob: float = 0.0  # smooth random deformation (as batchgenerators / the UPC pipeline)
    elastic_alpha: tuple[float, float] = (2.0, 6.0)  # largest displacement, voxels
    elastic_sigma: float = 6.0  # smoothness of the displacement field, voxels
    # label-aware: mirror a lesion's mean contrast to its host organ (hypodense <-> hyperdense),
    # texture kept, for lesions whose rarer appearance the training cases hold too few of
    lesion_contrast_prob: float = 0.0
    lesion_contrast_scale: tuple[float, float] = (0.6, 1.4)  # |new contrast| / |old contrast|
    lesion_labels: tuple[int, int] = (2, 1)  # (lesion label, host organ label)
    # label-aware: paste a lesion cut from a training case (rescaled, flipped) into the host organ
    # of the patch (3D patches; see ctseg.data.paste)
    lesion_paste_prob: float = 0.0
    lesion_paste_scale: tuple[float, float] = (0.3, 1.0)  # linear size of the copy, drawn log-uniform
    lesion_paste_mirror: float = 0.0  # chance that a copy's contrast to the organ is mirrored (dark <-> bright)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 1000
    iterations_per_epoch: int = 250
    batch_size: int = 2
    optimizer: str = "sgd"  # "sgd", "adam", "adamw"
    lr: float = 0.01
    weight_decay: float = 3e-5  # L2 (sgd, adam) or decoupled (adamw)
    momentum: float = 0.99  # sgd
    nesterov: bool = True  # sgd
    betas: tuple[float, float] = (0.9, 0.999)  # adam, adamw
    schedule: str = "poly"  # "poly", "cosine", "step", "constant"
    poly_power: float = 0.9  # poly: lr * (1 - progress) ** poly_power
    lr_milestones: tuple[float, ...] = (0.5, 0.75)  # step: fractions of training
    lr_gamma: float = 0.1  # step: factor at each milestone
    warmup_fraction: float = 0.0  # linear warm-up over this fraction of training, any schedule
    loss: str = "dice_ce"
    loss_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {class_weights: [1, 1, 5]}
    foreground_fraction: float = 0.33  # share of patches centred on a foreground class
    sample_by_component: bool = False  # ... on a uniformly drawn connected component of that class
    # hard negatives: once training is hard_negative_after of the way through, the network labels
    # every training case (tiles side by side) and this share of patches is then centred on the
    # background it called foreground (a stomach or pancreas beside the liver called tumour); 0 = off.
    # 3D plans only (a 2D run trains without)
    hard_negative_fraction: float = 0.0
    hard_negative_after: float = 0.5
    # weight averaging (stochastic weight averaging, torch.optim.swa_utils): from this fraction of
    # training on, the weights at the end of every epoch are averaged, and model_final.pt holds the
    # average (model_best.pt and validation stay the live weights); 0 = off
    average_from: float = 0.0
    # progressive patches (3D): until this fraction of training, patches of the plan's size times
    # ``small_patch_scale`` per axis (rounded down to a multiple of the network's total stride), so
    # that the first part takes several times the steps; then the plan's patch, which validation and
    # prediction always use. 1 or small_patch_until 0: off
    small_patch_scale: float = 1.0
    small_patch_until: float = 0.0
    drop_empty_slices: bool = False  # 2D: never sample an axial slice without foreground
    val_fraction: float = 0.2
    stratify_split: bool = False  # validation cases drawn per set of labels present (tumour-free cases in both parts)
    val_patches_per_case: int = 4
    val_patch_size: tuple[int, ...] | None = None  # voxels (2 values in 2D); None: the plan's patch
    time_budget_minutes: float | None = None
    seed: int = 0
    num_threads: int = 0  # 0: all cores
    deterministic: bool = False  # bit-identical reruns: deterministic kernels, fixed threads (1 when num_threads is 0)
    checkpoint_minutes: float = 10.0
    tensorboard: bool = True  # scalars + a sample overlay in RUN/tensorboard/
    tensorboard_image_epochs: int = 5  # sample overlay every N epochs (and after the first)
    augment: AugmentSettings = field(default_factory=AugmentSettings)


@dataclass(frozen=True)
class PredictSettings:
    step: float = 0.5  # fraction of the patch between tiles
    tta: bool = False  # mirror test-time augmentation
    batch_size: int = 4  # tiles per network call
    checkpoint: str = "final"  # "final" or "best"
    keep_largest_component: bool = False  # one organ per case: drop foreground away from it
    # {label: fraction}: drop regions of the label whose one-voxel shell lies less than this on
    # other foreground labels (a tumour that must lie in its organ: {2: 0.5}); empty = off
    min_contact: dict[int, float] = field(default_factory=dict)
    # {label: probability}: drop regions of the label whose mean probability of it is under this
    # (false lesions in organ texture are often barely the argmax: {2: 0.7}); empty = off
    min_confidence: dict[int, float] = field(default_factory=dict)
    tile_grid: str = "spread"  # "spread": starts spread over the body's box; "monai": MONAI's starts on the whole volume, tiles off the body skipped
    # "auto": bfloat16 autocast on CUDA and on CPUs that multiply bfloat16 in hardware (AVX-512 BF16,
    # AMX), float32 elsewhere; or "float32" / "bfloat16" (see ctseg.inference.backends)
    precision: str = "auto"
    # a second pass on the image with intensities just above the host organ's median mirrored below
    # it; lesions found there that are brighter than the organ are added (hyperdense lesions, which
    # a run trained on mostly hypodense ones misses). Labels: train.augment.lesion_labels; 3D only
    polarity_tta: bool = False
    polarity_band_hu: float = 50.0  # mirrored: the organ's median up to this many HU above it
    polarity_min_contrast_hu: float = 10.0  # an added region is this much brighter than the organ
    polarity_min_ml: float = 1.0  # smaller regions found by the second pass are not added
    # nor regions more than this many times as long as they are wide (vessel rims); 0 = no limit
    polarity_max_elongation: float = 2.0


@dataclass(frozen=True)
class CascadeSettings:
    """Two stages (as nnU-Net's cascade, by region): a coarse locator finds the organ on the whole
    body, a fine stage segments organ and tumours inside the organ's box plus a margin."""

    enabled: bool = False
    locator_max_median_voxels: float = 300_000  # the locator's plan budget (about 4 mm)
    locator_time_fraction: float = 0.3  # share of the time budget (and epochs) for the locator


@dataclass(frozen=True)
class Config:
    plan: PlanSettings = field(default_factory=PlanSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    predict: PredictSettings = field(default_factory=PredictSettings)
    cascade: CascadeSettings = field(default_factory=CascadeSettings)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    def hash(self) -> str:
        """Short stable hash of every setting: names runs and caches."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Config:
        return _build(cls, data or {}, "config")

    def merged(self, overrides: dict[str, Any]) -> Config:
        """A copy with ``overrides`` (a nested dict, possibly partial) applied on top."""
        return Config.from_dict(deep_merge(self.to_dict(), overrides))


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in recursively (``extra`` wins); neither is modified."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping, found {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(f"{where}: unknown setting(s) {unknown}; valid: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        f = known[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        else:
            kwargs[name] = _coerce(value, default, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(value: Any, default: Any, where: str) -> Any:
    if value is None:
        return None
    if isinstance(default, dict) and not isinstance(value, dict):
        raise InputError(f"{where}: expected a mapping of name: value, found {value!r}")
    if isinstance(value, list):
        return tuple(value)
    if isinstance(default, bool) and not isinstance(value, bool):
        raise InputError(f"{where}: expected true/false, found {value!r}")
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (int, float)) and isinstance(value, str):
        raise InputError(f"{where}: expected a number, found {value!r}")
    return value


def _preset_dir() -> Any:
    return resources.files("ctseg") / "configs" / "presets"


def list_presets() -> list[str]:
    return sorted(p.name[:-5] for p in _preset_dir().iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping of settings")
    return data


def parse_override(text: str) -> dict[str, Any]:
    """``"train.lr=0.001"`` -> ``{"train": {"lr": 0.001}}`` (value parsed as YAML)."""
    if "=" not in text:
        raise InputError(f"override {text!r}: expected KEY=VALUE, e.g. train.lr=0.001")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw)
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(
    preset: str | None = "default",
    config_file: str | Path | None = None,
    overrides: list[dict[str, Any]] | None = None,
) -> Config:
    """Resolve a configuration: defaults <- preset <- config file <- overrides (later wins)."""
    cfg = Config()
    if preset:
        path = _preset_dir() / f"{preset}.yaml"
        if not path.is_file():
            raise InputError(f"unknown preset {preset!r}; available: {', '.join(list_presets())}")
        cfg = cfg.merged(_read_yaml(path.read_text(), f"preset {preset}"))
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise InputError(f"{path}: config file not found")
        cfg = cfg.merged(_read_yaml(path.read_text(), str(path)))
    for item in overrides or []:
        cfg = cfg.merged(item)
    return cfg


def read_run_config(run_dir: str | Path) -> Config:
    """The resolved configuration saved in a run folder (``config.yaml``)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise RunFolderError(f"{run_dir}: not a ctseg run folder (no config.yaml); give the folder `ctseg train -o` wrote")
    return Config.from_dict(_read_yaml(path.read_text(), str(path)))
