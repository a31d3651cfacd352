"""The training loop: patches -> network -> Dice+CE -> optimiser, with validation, checkpoints,
exact resume, a time budget and progress bars."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from .._fileio import read_json, write_json, write_text
from ..config import Config, TrainSettings, read_run_config
from ..data import PatchSampler, SliceSampler
from ..data.paste import check_paste_scale
from ..errors import DatasetError, InputError, RunFolderError
from ..losses import DeepSupervisionLoss, create_loss
from ..models import model_info
from ..models.persist import build_model, model_spec, save_model
from ..models.runtime import as_logits
from ..preprocessing import LOCATOR_DIR, load_preprocessed
from .cascade import locator_config, share_fingerprint
from .checkpoint import capture_rng, load_state, restore_rng, save_state
from .curves import plot_history
from .determinism import deterministic_mode, seed_everything
from .logging import open_tensorboard
from .mining import mine_cases
from .optim import check_optim_settings, create_optimizer, scheduled_lr, set_lr
from .run import RunFolder, prepare_run
from .validation import ValidationSet

__all__ = ["train", "TrainResult", "Trainer"]


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    epochs: int
    iterations: int
    seconds: float
    best_val_dice: float
    history: list[dict[str, Any]]


def _load_cases(run: RunFolder, ids: list[str]) -> list[dict[str, Any]]:
    cases = []
    for case_id in ids:
        case = load_preprocessed(run.preprocessed, case_id, mmap=False)
        case["pad_value"] = float(case["image"].min())
        cases.append(case)
    return cases


def _check_model_dims(name: str, spatial_dims: int) -> None:
    try:
        allowed = model_info(name).spatial_dims
    except ValueError as exc:
        raise InputError(f"model.name: {exc}") from None
    if spatial_dims not in allowed:
        raise InputError(f"model {name!r} is {' or '.join(f'{d}D' for d in allowed)} only but the plan is {spatial_dims}D (plan.spatial_dims); choose a model that takes {spatial_dims}D, e.g. unet")


def _memory_format(spatial_dims: int, device: torch.device) -> torch.memory_format:
    """oneDNN's channels-last layout on the CPU (3D or 2D), the default layout elsewhere."""
    if device.type != "cpu":
        return torch.contiguous_format
    return torch.channels_last_3d if spatial_dims == 3 else torch.channels_last


def _make_sampler(run: RunFolder, t: TrainSettings) -> PatchSampler | SliceSampler:
    """The training sampler: 3D patches, or axial slices for a 2D plan."""
    cases = _load_cases(run, run.train_ids)
    if run.plan.spatial_dims == 3:  # its settings were checked (_check_settings)
        return PatchSampler(cases, run.plan.patch_size, t.batch_size, t.foreground_fraction, t.augment, by_component=t.sample_by_component, hard_fraction=t.hard_negative_fraction)  # type: ignore[arg-type]
    try:
        return SliceSampler(cases, run.plan.patch_size, t.batch_size, t.foreground_fraction, t.augment, drop_empty=t.drop_empty_slices, by_component=t.sample_by_component)  # type: ignore[arg-type]
    except ValueError as exc:
        raise DatasetError(f"{run.path}: {exc}; turn it off (train.drop_empty_slices=false) or check the labels") from None


def _check_settings(t: TrainSettings) -> None:
    """Refuse training settings that cannot work before the run folder is written (verifying,
    fingerprinting and preprocessing a dataset take minutes)."""
    check_optim_settings(t)
    if not 0.0 < t.small_patch_scale <= 1.0:
        raise InputError(f"train.small_patch_scale {t.small_patch_scale:g}: give a fraction of the plan's patch in (0, 1] (1 = off)")
    if not 0.0 <= t.small_patch_until <= 1.0:
        raise InputError(f"train.small_patch_until {t.small_patch_until:g}: give the fraction of training in [0, 1] that uses the small patches (0 = off)")
    if not 0.0 <= t.average_from < 1.0:
        raise InputError(f"train.average_from {t.average_from:g}: give the fraction of training in [0, 1) from which the weights are averaged (0 = off)")
    if t.augment is not None and t.augment.lesion_paste_prob > 0:
        try:
            check_paste_scale(t.augment.lesion_paste_scale)
        except ValueError as exc:
            raise InputError(f"train.augment.{exc}") from None


def _small_patch(run: RunFolder, t: TrainSettings, divisor: Sequence[int]) -> tuple[int, ...] | None:
    """Progressive training's early patch: the plan's times ``train.small_patch_scale`` per axis,
    rounded down to a multiple of the network's ``divisor`` along it (its total downsampling, so
    that every stage halves it exactly; at least one divisor); None when off, for a 2D plan, or
    when it equals the plan's."""
    scale, plan = float(t.small_patch_scale), run.plan  # its range was checked (_check_settings)
    if scale == 1.0 or t.small_patch_until <= 0 or plan.spatial_dims != 3:  # a 2D run (e.g. of the cpu preset) trains without, as without mining
        return None
    small = tuple(int(max(d, (int(p * scale) // d) * d)) for p, d in zip(plan.patch_size, divisor))
    if math.prod(n // d for n, d in zip(small, divisor)) == 1:
        raise InputError(f"train.small_patch_scale {scale:g}: the plan's patch {list(plan.patch_size)} becomes {list(small)}, a single voxel at the network's coarsest level (its downsampling is {list(divisor)}); use a larger scale or 1 (off)")
    return None if list(small) == list(plan.patch_size) else small


def _divisor(model: nn.Module, plan_strides: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """What every input size of ``model`` must be a multiple of: its own account where it gives
    one (ctseg's networks), else the product of the plan's strides."""
    if hasattr(model, "required_divisor"):
        return tuple(int(d) for d in model.required_divisor())
    strides = np.asarray(plan_strides, dtype=int).reshape(-1, 3)
    return tuple(int(d) for d in strides.prod(axis=0)) if len(strides) else (1, 1, 1)


def _val_patch(run: RunFolder, t: TrainSettings) -> tuple[int, ...]:
    patch = tuple(t.val_patch_size or run.plan.patch_size)
    if len(patch) != run.plan.spatial_dims:
        raise InputError(f"train.val_patch_size {list(patch)} has {len(patch)} values but the plan is {run.plan.spatial_dims}D; give {run.plan.spatial_dims} sizes")
    return patch


class Trainer:
    """Holds the model, optimiser and counters of one run; ``fit`` trains until done or out of time."""

    def __init__(self, run: RunFolder, device: str = "cpu", progress: bool = True) -> None:
        self.run, self.cfg, self.progress = run, run.config, progress
        self.device = torch.device(device)
        t = self.cfg.train
        if t.num_threads > 0:
            torch.set_num_threads(t.num_threads)
        seed_everything(t.seed)
        self.rng = np.random.default_rng(t.seed)
        plan = run.plan
        self.labels = plan.labels
        _check_model_dims(self.cfg.model.name, plan.spatial_dims)
        self.spec = model_spec(plan.network, plan.num_classes, self.cfg.model.name, deep_supervision=self.cfg.model.deep_supervision, dropout=self.cfg.model.dropout, spatial_dims=plan.spatial_dims, overrides=self.cfg.model.kwargs)
        self.model = build_model(self.spec).to(self.device)
        # channels-last: oneDNN's faster layout on CPU (a 64^3 step: 1.17 s -> 0.71 s on 2 cores)
        self.memory_format = _memory_format(plan.spatial_dims, self.device)
        self.model = self.model.to(memory_format=self.memory_format)
        self.optimizer = create_optimizer(self.model.parameters(), t)
        base = create_loss(t.loss, **t.loss_kwargs)
        self.loss_fn = DeepSupervisionLoss(base) if self.cfg.model.deep_supervision else base
        _check_settings(t)  # again, for a Trainer built without train()
        self.small_patch = _small_patch(run, t, _divisor(self.model, (plan.network or {}).get("strides", [])))
        self.sampler = _make_sampler(run, t)
        if t.augment is not None and t.augment.lesion_paste_prob > 0 and progress:
            bank = getattr(self.sampler, "bank", None)
            tqdm.write("lesion copy-paste: 3D patches only, off for this 2D run" if bank is None else f"lesion copy-paste: {len(bank)} lesion components of {len(self.sampler.cases)} training cases in the bank")
        # no more voxels per validation call than a training batch holds (which also keeps gradients)
        max_voxels = t.batch_size * int(np.prod(plan.patch_size))
        self.validation = ValidationSet(_load_cases(run, run.val_ids), _val_patch(run, t), t.val_patches_per_case, plan.labels, seed=t.seed, drop_empty=t.drop_empty_slices, max_voxels=max_voxels)
        self.epoch, self.iteration, self.elapsed = 0, 0, 0.0
        self.epoch_step, self.epoch_losses = 0, list[float]()  # position inside the current epoch (mid-epoch resume)
        self.best, self.ema = -1.0, None
        self.history: list[dict[str, Any]] = []
        self._last_tick = self._last_plot = time.perf_counter()
        self.averaged: AveragedModel | None = None  # see _average
        self.tensorboard = open_tensorboard(run)  # None when train.tensorboard is off

    # --- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "elapsed": self.elapsed,
            "best": self.best,
            "ema": -1.0 if self.ema is None else self.ema,
            "rng": capture_rng(self.rng),
            "epoch_step": self.epoch_step,
            "epoch_losses": torch.tensor(self.epoch_losses, dtype=torch.float64),
            "history": json.dumps(self.history),
            "averaged": None if self.averaged is None else self.averaged.state_dict(),
            "hard": None if not self._mined else [{k: torch.from_numpy(v) for k, v in case["hard"].items()} for case in self.sampler.cases],
        }

    def load(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise RunFolderError(f"{self.run.path}: checkpoint does not match this run's network ({str(exc)[:160]})") from None
        self.epoch, self.iteration = int(state["epoch"]), int(state["iteration"])
        self.elapsed, self.best = float(state["elapsed"]), float(state["best"])
        self.ema = None if state["ema"] < 0 else float(state["ema"])
        restore_rng(self.rng, state["rng"])
        self.epoch_step = int(state.get("epoch_step", 0))
        self.epoch_losses = [float(v) for v in state.get("epoch_losses", torch.zeros(0)).tolist()]
        if state.get("averaged") is not None:
            self.averaged = AveragedModel(self.model, use_buffers=True)
            self.averaged.load_state_dict(state["averaged"])
        if state.get("hard") is not None:
            for case, hard in zip(self.sampler.cases, state["hard"]):
                case["hard"] = {k: v.numpy() for k, v in hard.items()}
        hist = self.run.path / "history.json"
        if "history" in state:  # the checkpoint's own copy: history.json may lag a kill
            self.history = json.loads(state["history"])
        else:
            self.history = read_json(hist) if hist.is_file() else []

    @property
    def _mined(self) -> bool:
        """Whether the training cases hold mined voxels (``case["hard"]``, see :meth:`_mine`)."""
        return any("hard" in case for case in self.sampler.cases)

    def _mine(self) -> None:
        """Once, when training is ``train.hard_negative_after`` of the way through: the training
        cases' background that the network calls foreground, for the sampler's hard patches (3D
        plans; a 2D run, e.g. of the cpu preset, trains without)."""
        t = self.cfg.train
        if t.hard_negative_fraction <= 0 or self.run.plan.spatial_dims != 3 or self._mined:
            return
        if self.epoch_step > 0 or self._progress_fraction() < t.hard_negative_after:  # at an epoch's start (a resumed run mines where the uninterrupted one did)
            return
        started = time.perf_counter()
        counts = mine_cases(self.sampler.cases, self.model, self.run.plan.patch_size, self.rng, batch_size=t.batch_size * 2, device=self.device, memory_format=self.memory_format)
        self._tick()
        mined = [case["hard"] for case in self.sampler.cases]
        per = []
        for k in sorted({k for hard in mined for k in hard}):
            found = [len(hard[k]) for hard in mined if k in hard]
            per.append(f"{self.run.plan.labels.get(int(k), k)} in {len(found)} ({sum(found)} voxels kept)")
        line = f"hard negatives of {sum(c > 0 for c in counts)} of {len(counts)} training cases, background called {', '.join(per) or 'nothing'}; {time.perf_counter() - started:.0f} s"
        if self.progress:
            tqdm.write(line)

    def _average(self) -> None:
        """At an epoch's end, once training is ``train.average_from`` of the way through: add the
        weights to their running average (kept in the checkpoint; model_final.pt is written from it)."""
        t = self.cfg.train
        if t.average_from <= 0 or self._progress_fraction() < t.average_from:
            return
        if self.averaged is None:
            self.averaged = AveragedModel(self.model, use_buffers=True)
        self.averaged.update_parameters(self.model)  # the first call copies, later ones average

    def save(self) -> None:
        save_state(self.run.path / "checkpoint_last.pt", self.state())
        write_json(self.run.path / "history.json", self.history)

    # --- loop ------------------------------------------------------------------------------
    def _progress_fraction(self) -> float:
        t = self.cfg.train
        frac = self.iteration / max(1, t.epochs * t.iterations_per_epoch)
        if t.time_budget_minutes:
            frac = max(frac, self.elapsed / (60.0 * t.time_budget_minutes))
        return frac

    def _step(self) -> float:
        t = self.cfg.train
        progress = self._progress_fraction()
        set_lr(self.optimizer, scheduled_lr(progress, t))
        small = self.small_patch is not None and progress < t.small_patch_until
        images, labels = self.sampler.sample(self.rng, self.small_patch) if small else self.sampler.sample(self.rng)
        x = torch.from_numpy(images).to(self.device).contiguous(memory_format=self.memory_format)
        y = torch.from_numpy(labels).to(self.device)
        self.model.train()
        # bfloat16 autocast on CUDA: no loss scaling needed (float16 without a GradScaler underflows)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            out = as_logits(self.model, self.model(x))  # a probability head gives logits back
            loss = self.loss_fn(out, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 12.0)
        self.optimizer.step()
        self.iteration += 1
        return float(loss.detach())

    def _out_of_time(self) -> bool:
        budget = self.cfg.train.time_budget_minutes
        return bool(budget) and self.elapsed >= 60.0 * budget

    def _tick(self) -> None:
        """Add the wall time since the last tick to ``elapsed`` (training, validation, saving)."""
        now = time.perf_counter()
        self.elapsed += now - self._last_tick
        self._last_tick = now

    def _epoch(self) -> dict[str, Any]:
        t = self.cfg.train
        losses = self.epoch_losses  # non-empty when resuming mid-epoch
        start = min(self.epoch_step, t.iterations_per_epoch)
        bar = tqdm(range(start, t.iterations_per_epoch), desc=f"epoch {self.epoch + 1}/{t.epochs}", unit="it", leave=False, disable=not self.progress)
        last_ckpt = time.perf_counter()
        for _ in bar:
            losses.append(self._step())
            self.epoch_step += 1
            self._tick()
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if self._last_tick - last_ckpt > 60 * t.checkpoint_minutes:
                self.save()
                last_ckpt = self._last_tick
            if self._out_of_time():
                break
        bar.close()
        val = self.validation.evaluate(self.model, self.device)
        self.epoch += 1
        self.epoch_step, self.epoch_losses = 0, []
        return {"epoch": self.epoch, "iteration": self.iteration, "train_loss": float(np.mean(losses)), "val_loss": val["loss"], "val_dice": val["dice"], "lr": self.optimizer.param_groups[0]["lr"], "elapsed_s": round(self.elapsed, 1)}

    def _after_epoch(self, record: dict[str, Any]) -> None:
        fg = [v for v in record["val_dice"].values() if not math.isnan(v)]
        mean = float(np.mean(fg)) if fg else 0.0
        self.ema = mean if self.ema is None else 0.8 * self.ema + 0.2 * mean
        record["val_dice_mean"], record["val_dice_ema"] = mean, self.ema
        self.history.append(record)
        self._average()
        if self.ema > self.best:
            self.best = self.ema
            save_model(self.model, self.spec, self.run.path / "model_best.pt")
        self.save()
        if time.perf_counter() - self._last_plot > 30.0:  # a plot costs ~1 s: not every epoch
            plot_history(self.history, self.labels, self.run.path / "training_curves.png")
            self._last_plot = time.perf_counter()
        if self.tensorboard is not None:
            self.tensorboard.log_epoch(self.history, self.model, self.device)
        self._tick()
        dice = " ".join(f"{k}={v:.3f}" for k, v in record["val_dice"].items())
        line = f"epoch {record['epoch']:>4}  loss {record['train_loss']:.4f}  val {record['val_loss']:.4f}  dice {dice}  lr {record['lr']:.2e}  {record['elapsed_s']:.0f}s"
        log = self.run.path / "train_log.txt"  # rewritten whole (atomic): a kill never leaves half a line
        write_text(log, (log.read_text(encoding="utf-8") if log.is_file() else "") + line + "\n")
        if self.progress:
            tqdm.write(line)
            sys.stdout.flush()

    def fit(self) -> TrainResult:
        t = self.cfg.train
        self._last_tick = self._last_plot = time.perf_counter()
        while self.epoch < t.epochs and not self._out_of_time():
            self._mine()
            self._after_epoch(self._epoch())
        if self.tensorboard is not None:
            self.tensorboard.close()
        plot_history(self.history, self.labels, self.run.path / "training_curves.png")
        save_model(self.model if self.averaged is None else self.averaged.module, self.spec, self.run.path / "model_final.pt")
        if self.averaged is not None and self.progress:
            tqdm.write(f"model_final.pt: the average of the last {int(self.averaged.n_averaged)} epochs' weights (train.average_from {t.average_from:g})")
        if not (self.run.path / "model_best.pt").is_file():
            save_model(self.model, self.spec, self.run.path / "model_best.pt")
        self.save()
        return TrainResult(self.run.path, self.epoch, self.iteration, self.elapsed, self.best, self.history)


def train(
    dataset_dir: str | Path,
    run_dir: str | Path,
    config: Config | None = None,
    *,
    resume: bool = False,
    device: str = "cpu",
    progress: bool = True,
    workers: int | None = None,
    overrides: dict[str, Any] | None = None,
    skip_bad: bool = False,
) -> TrainResult:
    """Train a model on a dataset (MSD, nnU-Net raw, LiTS or plain layout); the run folder then
    serves ``ctseg predict -m``. The dataset is verified first; ``skip_bad`` leaves out the cases
    with problems instead of refusing the dataset.

    With ``resume`` the run folder's saved config is used (``overrides`` such as a new epoch
    count or time budget still apply) and training continues from ``checkpoint_last.pt``.
    """
    run_dir = Path(run_dir)
    last = run_dir / "checkpoint_last.pt"
    if resume:
        config = read_run_config(run_dir)
    elif last.is_file():
        raise RunFolderError(f"{run_dir}: already holds a training run; pass --resume to continue it or choose another -o folder")
    config = (config or Config()).merged(overrides or {})
    _check_settings(config.train)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if config.cascade.enabled:  # the locator first (a run folder of its own inside this one)
        locator = run_dir / LOCATOR_DIR
        if not (locator / "model_final.pt").is_file():
            started = (locator / "checkpoint_last.pt").is_file()  # resumes with its own saved settings
            train(dataset_dir, locator, None if started else locator_config(config), resume=started, device=device, progress=progress, workers=workers, skip_bad=skip_bad)
        share_fingerprint(locator, run_dir)
    run = prepare_run(dataset_dir, run_dir, config, progress=progress, workers=workers, skip_bad=skip_bad)
    with deterministic_mode(config.train.deterministic, config.train.num_threads):
        trainer = Trainer(run, device=device, progress=progress)
        if resume and last.is_file():
            trainer.load(load_state(last))
        return trainer.fit()
