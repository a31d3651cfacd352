"""The comparison tables and chart of ``ctseg compare`` from hand-made rows (known answers)."""

from __future__ import annotations

import csv
import io
import math

import matplotlib.image

from ctseg.reporting.comparison import (
    COMPARE_COLUMNS,
    _chart_figure,
    comparison_chart,
    comparison_csv,
    comparison_markdown,
)


def _row(entry: str, model: str, name: str, label: int, dice: float | None, hd95: float | None, hd95_n: int) -> dict:
    return {
        "entry": entry, "preset": entry.split("/")[0], "model": model, "class": name, "label": label, "cases": 3,
        "dice": dice, "dice_n": 0 if dice is None else 3, "jaccard": None if dice is None else dice / (2 - dice), "jaccard_n": 0 if dice is None else 3,
        "hd95_mm": hd95, "hd95_n": hd95_n, "asd_mm": None if hd95 is None else hd95 / 3, "asd_n": hd95_n,
        "parameters": 1234567 if model == "unet" else 89, "train_seconds": 61.5, "iterations": 400, "epochs": 8,
        "infer_seconds_per_case": 2.345 if model == "unet" else 0.5,
    }  # fmt: skip


ROWS = [
    _row("a", "unet", "liver", 1, 0.9512, 3.25, 3),
    _row("a", "unet", "tumour", 2, 0.4, 12.5, 2),
    _row("a/fcn", "fcn", "liver", 1, 0.8, 7.0, 3),
    _row("a/fcn", "fcn", "tumour", 2, None, None, 0),
]
SETTINGS = {"dataset": "Task (3 test cases)", "training budget per entry": "5 min"}


def test_csv_columns_and_values() -> None:
    rows = list(csv.DictReader(io.StringIO(comparison_csv(ROWS))))
    assert tuple(rows[0]) == COMPARE_COLUMNS and len(rows) == 4
    assert rows[0]["dice"] == "0.9512" and rows[1]["hd95_n"] == "2"
    assert rows[3]["dice"] == "nan" and rows[3]["hd95_mm"] == "nan" and rows[3]["dice_n"] == "0"
    assert math.isclose(float(rows[1]["jaccard"]), 0.4 / 1.6)


def test_markdown_summary_and_detail_rows() -> None:
    text = comparison_markdown(ROWS, SETTINGS, title="Comparison on Task")
    lines = text.splitlines()
    assert lines[0] == "# Comparison on Task" and "- training budget per entry: 5 min" in lines
    assert "| a | unet | 1,234,567 | 62 s | 400 | 2.35 s | 0.951 | 0.400 | 3.25 | 12.50 (2/3) |" in lines
    assert "| a/fcn | fcn | 89 | 62 s | 400 | 0.50 s | 0.800 | - (0/3) | 7.00 | - (0/3) |" in lines
    assert "| a | tumour | 0.4000 | 0.2500 | 12.50 (2/3) | 4.17 (2/3) |" in lines
    summary = [x for x in lines if x.startswith("| a")]
    assert len(summary) == 2 + 4  # one per entry, then one per entry x class


def test_chart_is_a_png() -> None:
    png = comparison_chart(ROWS)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[1] > image.shape[0] > 200


def test_many_entries_stand_labels_up_and_far_apart_times_go_on_a_log_axis() -> None:
    import matplotlib.pyplot as plt

    fig = _chart_figure(ROWS)
    assert fig.axes[2].get_yscale() == "linear"  # 0.5 s and 2.3 s: a plain axis
    assert all(t.get_rotation() == 0 for t in fig.axes[0].texts)
    plt.close(fig)
    many = []
    for e, seconds in enumerate([5.8, 129.0, 34.0, 11.0, 18.0, 1338.0]):
        for row in (_row(f"p{e}", "unet", "liver", 1, 0.5, 9.0, 3), _row(f"p{e}", "unet", "tumour", 2, 0.1, 20.0, 3)):
            many.append({**row, "infer_seconds_per_case": seconds})
    fig = _chart_figure(many)
    assert fig.axes[2].get_yscale() == "log" and "log scale" in fig.axes[2].get_title()
    assert fig.axes[0].texts and all(t.get_rotation() == 90 for t in fig.axes[0].texts)
    plt.close(fig)
