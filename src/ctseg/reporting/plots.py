"""Box plots of per-case metrics (matplotlib, Agg only)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from .tables import EvaluationTable

__all__ = ["metric_boxplots", "metric_groups"]

_LABEL_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
_FRACTIONS = ("dice", "jaccard", "precision", "recall", "nsd", "f1", "lesion_recall", "lesion_precision")


def metric_groups(metrics: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Metrics sorted into panels that share a unit: overlap in [0, 1], distances in mm, volume
    errors in mL and %, then any other metric alone."""
    groups: dict[str, list[str]] = {"overlap (0-1)": [], "surface distance (mm)": [], "volume error (mL)": [], "volume error (%)": []}
    others: list[tuple[str, list[str]]] = []
    for m in metrics:
        if any(m == f or m.endswith("_" + f) or m.startswith(f + "_") for f in _FRACTIONS):
            groups["overlap (0-1)"].append(m)
        elif m.startswith(("hd", "asd", "assd", "masd")):
            groups["surface distance (mm)"].append(m)
        elif m.endswith("_ml") and "error" in m:
            groups["volume error (mL)"].append(m)
        elif m.endswith("_pct"):
            groups["volume error (%)"].append(m)
        else:
            others.append((m, [m]))
    return [(title, ms) for title, ms in groups.items() if ms] + others


def metric_boxplots(table: EvaluationTable, metrics: Sequence[str] | None = None) -> bytes | None:
    """A box per metric and label name (finite values only, cases as dots), metrics of one unit
    sharing a panel (see :func:`metric_groups`), as PNG bytes.

    Undefined values (nan: both masks empty; inf: one empty) are left out of the boxes; their
    counts per label follow the metric name ("undef. 0/2/0"). Returns None when there is nothing
    to plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    groups = metric_groups(list(metrics if metrics is not None else table.metrics))
    if not groups or not table.names:
        return None
    n_labels = len(table.names)
    rows: list[list[tuple[str, list[str]]]] = []
    for group in groups:  # wide panels get a row; narrow ones share a row two by two
        if len(group[1]) <= 3 and rows and len(rows[-1]) == 1 and len(rows[-1][0][1]) <= 3:
            rows[-1].append(group)
        else:
            rows.append([group])
    fig = plt.figure(figsize=(11.0, 2.5 * len(rows) + 0.3))
    grid = fig.add_gridspec(len(rows), 2, left=0.06, right=0.99, bottom=0.5 / (2.5 * len(rows) + 0.3), top=1 - 0.55 / (2.5 * len(rows) + 0.3), hspace=0.75, wspace=0.15)
    rng = np.random.default_rng(0)
    for r, row in enumerate(rows):
        for c, (title, names) in enumerate(row):
            wide = len(names) > 3
            ax = fig.add_subplot(grid[r, :] if wide else grid[r, c])
            _panel(ax, table, title, names, rng)
    handles = [Patch(facecolor=_LABEL_COLOURS[i % len(_LABEL_COLOURS)], alpha=0.5, label=name) for i, name in enumerate(table.names)]
    fig.legend(handles=handles, loc="upper right", fontsize=7, ncol=n_labels, frameon=False)  # no tight_layout: +1 s
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=85)
    plt.close(fig)
    return buffer.getvalue()


def _panel(ax: Any, table: EvaluationTable, title: str, names: list[str], rng: np.random.Generator) -> None:
    """Boxes of ``names`` x label names on one axes (one boxplot call for speed)."""
    n_labels = len(table.names)
    data, positions, colours = [], [], []
    undefined: list[list[int]] = [[] for _ in names]
    for m_index, metric in enumerate(names):
        for l_index, label in enumerate(table.names):
            column = table.column(label, metric)
            finite = column[np.isfinite(column)]
            pos = m_index * (n_labels + 1) + l_index
            colour = _LABEL_COLOURS[l_index % len(_LABEL_COLOURS)]
            if finite.size:
                data.append(finite)
                positions.append(pos)
                colours.append(colour)
                ax.scatter(pos + rng.uniform(-0.18, 0.18, finite.size), finite, s=7, color=colour, zorder=3, linewidths=0)
            undefined[m_index].append(column.size - finite.size)
    if data:
        parts = ax.boxplot(data, positions=positions, widths=0.7, showfliers=False, patch_artist=True)
        for i, colour in enumerate(colours):
            parts["boxes"][i].set(facecolor=colour, alpha=0.35, edgecolor=colour)
            parts["medians"][i].set(color=colour, linewidth=2)
            for line in parts["whiskers"][2 * i : 2 * i + 2] + parts["caps"][2 * i : 2 * i + 2]:
                line.set_color(colour)
    centres = [m * (n_labels + 1) + (n_labels - 1) / 2 for m in range(len(names))]
    ticks = [name + ("\nundef. " + "/".join(map(str, u)) if any(u) else "") for name, u in zip(names, undefined)]
    ax.set_xticks(centres, ticks, fontsize=7)
    ax.set_xlim(-1, len(names) * (n_labels + 1) - 1)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)
