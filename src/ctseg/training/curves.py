"""Training curves as a PNG: loss, validation Dice per class, learning rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._fileio import atomic_path

__all__ = ["plot_history"]


def plot_history(history: list[dict[str, Any]], labels: dict[int, str], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    epochs = [h["epoch"] for h in history]
    style = {"marker": "o", "markersize": 3} if len(epochs) < 30 else {}  # a lone epoch still shows
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epochs, [h["train_loss"] for h in history], label="train (Dice + CE)", **style)
    if "val_loss" in history[0]:
        axes[0].plot(epochs, [h["val_loss"] for h in history], label="validation (CE)", **style)
    axes[0].set(title="loss", xlabel="epoch")
    axes[0].legend()
    for key, name in labels.items():
        if key == 0:
            continue
        axes[1].plot(epochs, [h["val_dice"].get(name, float("nan")) for h in history], label=name, **style)
    axes[1].set(title="validation Dice (patches)", xlabel="epoch", ylim=(0, 1))
    axes[1].legend()
    axes[2].plot(epochs, [h["lr"] for h in history], **style)
    axes[2].set(title="learning rate", xlabel="epoch")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
