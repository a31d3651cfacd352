"""TensorBoard logging during training: scalars every epoch, a sample overlay every few epochs.

Written to ``RUN/tensorboard/`` (watch it with ``tensorboard --logdir RUN/tensorboard``). Scalars:

* ``loss/train`` (Dice + CE, mean over the epoch), ``loss/validation`` (CE on validation patches);
* ``val_dice/<label name>`` per foreground class, ``val_dice/mean`` and ``val_dice/ema``;
* ``lr``; ``throughput/patches_per_s`` (patches trained per second of the epoch's wall time,
  validation and checkpointing included).

Image ``validation/overlay``: the middle axial slice of one patch (a 2D run: its slice patch) of a
fixed validation case (soft-tissue window), the reference contours on the left half and the
prediction on the right, shown from the feet (patient right on the image left, anterior up). The
run's arrays are RAS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import PatchParams, extract_patch, slice_patch
from ..models.runtime import forward
from ..preprocessing import Plan, load_preprocessed
from .run import RunFolder

__all__ = ["TensorBoardLogger", "overlay_rgb", "open_tensorboard"]

_WINDOW_HU = (-160.0, 240.0)  # W400/L40
_REF_COLOURS = np.array([[0, 224, 0], [255, 224, 0], [0, 200, 255], [255, 150, 0]], np.uint8)
_PRED_COLOURS = np.array([[255, 32, 32], [255, 48, 255], [48, 96, 255], [255, 128, 128]], np.uint8)


def _edges(mask: np.ndarray) -> np.ndarray:
    """Pixels of a 2D mask with a 4-neighbour outside it (outside the image counts as outside)."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def overlay_rgb(hu: np.ndarray, labels: np.ndarray, colours: np.ndarray, window: tuple[float, float] = _WINDOW_HU) -> np.ndarray:
    """A windowed grey CT slice (H, W) in HU with the outline of each label value painted.

    Label value ``v`` gets ``colours[(v - 1) % len(colours)]``; returns (H, W, 3) uint8.
    """
    low, high = window
    grey = np.clip((hu - low) / (high - low), 0.0, 1.0)
    rgb = np.repeat((grey * 255).round().astype(np.uint8)[..., None], 3, axis=-1)
    for value in np.unique(labels):
        if value > 0:
            rgb[_edges(labels == value)] = colours[(int(value) - 1) % len(colours)]
    return rgb


def _axial_display(slice_xy: np.ndarray) -> np.ndarray:
    """(i, j) slice of an RAS volume -> rows anterior..posterior, columns right..left."""
    return np.ascontiguousarray(slice_xy.T[::-1, ::-1])


class TensorBoardLogger:
    """Writes one run's TensorBoard events (see the module docstring for the tags)."""

    def __init__(self, log_dir: Path, plan: Plan, batch_size: int, image_every: int, sample: dict[str, Any] | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.plan, self.batch_size, self.image_every = plan, batch_size, max(1, int(image_every))
        self.sample = sample

    def log_epoch(self, history: list[dict[str, Any]], model: torch.nn.Module, device: torch.device) -> None:
        """Log the last record of ``history`` (as the trainer writes it) at its epoch number."""
        record, previous = history[-1], (history[-2] if len(history) > 1 else {"iteration": 0, "elapsed_s": 0.0})
        epoch, w = int(record["epoch"]), self.writer
        w.add_scalar("loss/train", record["train_loss"], epoch)
        w.add_scalar("loss/validation", record["val_loss"], epoch)
        for name, value in record["val_dice"].items():
            w.add_scalar(f"val_dice/{name}", value, epoch)
        for key in ("val_dice_mean", "val_dice_ema"):
            if key in record:
                w.add_scalar(f"val_dice/{key[9:]}", record[key], epoch)
        w.add_scalar("lr", record["lr"], epoch)
        seconds = float(record["elapsed_s"]) - float(previous["elapsed_s"])
        if seconds > 0:
            patches = (int(record["iteration"]) - int(previous["iteration"])) * self.batch_size
            w.add_scalar("throughput/patches_per_s", patches / seconds, epoch)
        if self.sample is not None and (epoch == 1 or epoch % self.image_every == 0):
            w.add_image("validation/overlay", self.sample_image(model, device), epoch, dataformats="HWC")
        w.flush()

    @torch.inference_mode()
    def sample_image(self, model: torch.nn.Module, device: torch.device) -> np.ndarray:
        """Reference | prediction overlays of the sample patch's middle axial slice, (H, W, 3) uint8."""
        if self.sample is None:
            raise RuntimeError("this run has no validation case to draw")
        image, seg = self.sample["image"], self.sample["seg"]
        model.eval()
        logits = forward(model, torch.from_numpy(image[None]).to(device))
        pred = logits.argmax(1)[0].cpu().numpy()
        axial, ref = image[0], seg
        if image.ndim == 4:  # a 3D patch: its middle axial slice (a 2D run's sample is one already)
            z = image.shape[-1] // 2
            axial, ref, pred = image[0, :, :, z], seg[:, :, z], pred[:, :, z]
        norm = self.plan.normalization
        hu = axial * float(norm["std"]) + float(norm["mean"])
        panels = [
            overlay_rgb(_axial_display(hu), _axial_display(ref), _REF_COLOURS),
            overlay_rgb(_axial_display(hu), _axial_display(pred), _PRED_COLOURS),
        ]
        gap = np.full((panels[0].shape[0], 2, 3), 255, np.uint8)
        rgb = np.concatenate([panels[0], gap, panels[1]], axis=1)
        si, sj = self.plan.spacing[0], self.plan.spacing[1]
        base = max(1, int(np.ceil(256 / rgb.shape[1])))  # at least 256 pixels wide, pixels to scale
        rows, cols = max(1, round(base * sj / min(si, sj))), max(1, round(base * si / min(si, sj)))
        return np.repeat(np.repeat(rgb, rows, axis=0), cols, axis=1)

    def close(self) -> None:
        self.writer.close()


def _sample_patch(run_preprocessed: Path, case_id: str, patch: tuple[int, ...]) -> dict[str, Any]:
    """A fixed patch of one preprocessed case, centred on its rarest foreground class (highest
    label value present, usually the tumour), else on the middle of the volume; for a 2D
    ``patch``, the in-plane patch of the axial slice through that centre."""
    case = load_preprocessed(run_preprocessed, case_id, mmap=True)
    locations = {c: v for c, v in case["locations"].items() if len(v)}
    if locations:
        points = locations[max(locations)].astype(np.float64)
        centre = points[int(np.argmin(((points - points.mean(0)) ** 2).sum(1)))].astype(np.int64)
    else:
        centre = np.array(case["image"].shape[1:]) // 2
    image, seg = np.asarray(case["image"]), np.asarray(case["seg"])
    if len(patch) == 2:
        img, lab = slice_patch({"image": image, "seg": seg}, int(centre[2]), centre[:2], patch, PatchParams(), float(image.min()))
    else:
        img, lab = extract_patch(image, seg, centre, patch, PatchParams(), float(image.min()))
    return {"case_id": case_id, "image": np.ascontiguousarray(img, dtype=np.float32), "seg": lab}


def open_tensorboard(run: RunFolder) -> TensorBoardLogger | None:
    """The logger of a run folder when ``train.tensorboard`` is on (else None)."""
    settings = run.config.train
    if not settings.tensorboard:
        return None
    sample = _sample_patch(run.preprocessed, run.val_ids[0], run.plan.patch_size) if run.val_ids else None
    return TensorBoardLogger(run.path / "tensorboard", run.plan, settings.batch_size, settings.tensorboard_image_epochs, sample)
