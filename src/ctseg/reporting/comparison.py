"""Tables and a chart of a comparison of trained runs (``ctseg compare``): CSV, Markdown, PNG.

Everything here works on plain rows, one per entry x class, with the keys of
:data:`COMPARE_COLUMNS` (metric means over the test cases of the finite values; ``*_n`` counts the
cases with a finite value, ``cases`` all scored cases). The CSV, the Markdown tables and the chart
are drawn from the same rows.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._fileio import csv_text

__all__ = ["COMPARE_COLUMNS", "comparison_csv", "comparison_markdown", "comparison_chart"]

#: Columns of ``compare.csv``, in order. Distances in mm, times in seconds.
COMPARE_COLUMNS = (
    "entry",
    "preset",
    "model",
    "class",
    "label",
    "cases",
    "dice",
    "dice_n",
    "jaccard",
    "jaccard_n",
    "hd95_mm",
    "hd95_n",
    "asd_mm",
    "asd_n",
    "parameters",
    "train_seconds",
    "iterations",
    "epochs",
    "infer_seconds_per_case",
)

_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _cell(value: Any) -> str:
    if value is None:
        return "nan"
    if isinstance(value, float):
        return repr(value)  # 'nan', 'inf' or the shortest exact decimal
    return str(value)


def comparison_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV text with the header :data:`COMPARE_COLUMNS` (a metric with no finite value
    over the cases is written ``nan``)."""
    return csv_text(rows, COMPARE_COLUMNS, _cell)


def _entries(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows grouped by entry, in row order."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row["entry"]), []).append(row)
    return groups


def _classes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(r["class"]) for r in rows))


def _metric(row: Mapping[str, Any] | None, key: str, digits: int) -> str:
    """``0.812``; ``4.10 (2/3)`` when only 2 of 3 cases had a finite value; ``-`` for none."""
    if row is None:
        return ""
    value, n, cases = row.get(key), row.get(f"{key.removesuffix('_mm')}_n"), row.get("cases")
    if value is None or not math.isfinite(float(value)):
        return f"- (0/{cases})" if cases else "-"
    text = f"{float(value):.{digits}f}"
    return text + (f" ({n}/{cases})" if n is not None and cases is not None and n < cases else "")


def _seconds(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "-"
    value = float(value)
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s" if value < 600 else f"{value / 60:.1f} min"


def _table(header: list[str], align: list[str], lines: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return out + ["| " + " | ".join(cells) + " |" for cells in lines]


def comparison_markdown(rows: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], *, title: str = "Comparison") -> str:
    """A Markdown page: the settings as a list, one summary row per entry (parameters, training
    time and iterations, inference time per case, Dice and HD95 per class), then every entry x
    class with Dice, Jaccard, HD95 and ASD. ``(k/n)`` after a mean: only k of the n test cases had
    a finite value (an empty prediction or reference gives an undefined distance or Dice)."""
    classes = _classes(rows)
    groups = _entries(rows)
    lines = [f"# {title}", ""]
    lines += [f"- {key}: {value}" for key, value in settings.items()]
    lines += ["", "Means over the test cases; `(k/n)`: only k of the n cases had a finite value (the others were undefined: an empty prediction or reference).", ""]
    header = ["entry", "model", "parameters", "training", "iterations", "inference / case"]
    header += [f"Dice {c}" for c in classes] + [f"HD95 {c} (mm)" for c in classes]
    summary = []
    for entry, group in groups.items():
        first, by_class = group[0], {str(r["class"]): r for r in group}
        cells = [entry, str(first["model"]), f"{int(first['parameters']):,}", _seconds(first["train_seconds"]), str(first["iterations"]), _seconds(first["infer_seconds_per_case"])]
        cells += [_metric(by_class.get(c), "dice", 3) for c in classes]
        cells += [_metric(by_class.get(c), "hd95_mm", 2) for c in classes]
        summary.append(cells)
    lines += _table(header, ["---"] * 2 + ["---:"] * (len(header) - 2), summary)
    lines += ["", "## Per class", ""]
    detail = [[str(r["entry"]), str(r["class"]), _metric(r, "dice", 4), _metric(r, "jaccard", 4), _metric(r, "hd95_mm", 2), _metric(r, "asd_mm", 2)] for r in rows]
    lines += _table(["entry", "class", "Dice", "Jaccard", "HD95 (mm)", "ASD (mm)"], ["---", "---", "---:", "---:", "---:", "---:"], detail)
    return "\n".join(lines) + "\n"


def _bar_text(row: Mapping[str, Any] | None, key: str) -> str:
    """A bar's label: the mean, ``n/a`` when undefined, ``(k/n)`` when some cases were."""
    if row is None:
        return ""
    text = _metric(row, key, 2)
    return "n/a" if text.startswith("-") else text.replace(" (", "\n(")


def comparison_chart(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """PNG bytes of three panels: mean Dice per class (one bar per entry), mean HD95 per class
    in mm (a mean over the finite values; ``(k/n)`` when only k of n cases had one, ``n/a`` when none) and inference seconds per case
    per entry (on a log axis when the slowest entry takes over 50 times the fastest's time; with
    more than four entries the bar labels stand upright). Uses matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = _chart_figure(rows)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _chart_figure(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The matplotlib figure :func:`comparison_chart` renders (the caller closes it)."""
    import matplotlib.pyplot as plt

    classes, groups = _classes(rows), _entries(rows)
    names = list(groups)
    width = max(11.0, 2.2 + 0.45 * len(names) * max(1, len(classes)) * 2 + 0.5 * len(names))
    fig, axes = plt.subplots(1, 3, figsize=(width, 4.4), gridspec_kw={"width_ratios": [len(classes), len(classes), max(1.0, 0.6 * len(names))]})
    bar = 0.8 / max(1, len(names))
    upright = 90 if len(names) > 4 else 0  # narrow bars: labels stand up instead of running together
    for ax, key, title in ((axes[0], "dice", "Dice (mean over test cases)"), (axes[1], "hd95_mm", "HD95 (mm, mean over test cases)")):
        for e, name in enumerate(names):
            by_class = {str(r["class"]): r for r in groups[name]}
            xs = [c + (e - (len(names) - 1) / 2) * bar for c in range(len(classes))]
            values = [by_class[c].get(key) if c in by_class else None for c in classes]
            heights = [float(v) if v is not None and math.isfinite(float(v)) else 0.0 for v in values]
            bars = ax.bar(xs, heights, bar * 0.95, color=_COLOURS[e % len(_COLOURS)], label=name)
            texts = [_bar_text(by_class.get(c), key) for c in classes]
            ax.bar_label(bars, texts, fontsize=7, padding=1, rotation=upright)
        ax.set_xticks(range(len(classes)), classes, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(0, 1.25 if upright else 1.08)
    axes[1].margins(y=0.25 if upright else 0.12)
    times = [float(groups[n][0].get("infer_seconds_per_case") or 0.0) for n in names]
    bars = axes[2].bar(range(len(names)), times, 0.7, color=[_COLOURS[e % len(_COLOURS)] for e in range(len(names))])
    axes[2].bar_label(bars, [f"{t:.2f}" for t in times], fontsize=7, padding=1)
    axes[2].set_xticks(range(len(names)), names, rotation=30 if len(names) > 2 else 0, ha="right" if len(names) > 2 else "center", fontsize=8)
    positive = [t for t in times if t > 0]
    spread = bool(positive) and len(positive) == len(times) and max(positive) > 50 * min(positive)
    if spread:  # seconds to tens of minutes: a log axis keeps the fast entries visible
        axes[2].set_yscale("log")
    axes[2].set_title("inference (s per case, log scale)" if spread else "inference (s per case)", fontsize=10)
    axes[2].margins(y=0.12)
    axes[2].grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(names), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
