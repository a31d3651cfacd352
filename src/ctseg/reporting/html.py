"""``ctseg report``: one self-contained HTML page from an evaluation folder.

The page holds summary statistics, a per-case table for each label (click a header to sort),
thumbnails that open the full three-plane overlays, box plots per metric and, given the run
folder, the training curves. Images are embedded as base64 PNG; CSS and JavaScript are inline;
nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from .._fileio import read_json, write_text
from ..errors import CtsegError, InputError
from ..types import PathLike_
from ._assets import CSS, SCRIPT
from .inputs import CaseFiles, locate_case_files
from .plots import metric_boxplots
from .tables import EvaluationTable, lower_is_better, metric_stats, read_evaluation
from .views import OverlayStyle, case_montage, png_bytes, save_png, thumbnail

__all__ = ["build_report", "ReportResult"]

_MAX_LESION_ROWS = 2000
_FRACTION_METRICS = ("dice", "jaccard", "precision", "recall", "nsd", "f1")


@dataclass
class ReportResult:
    """What :func:`build_report` wrote: the page, the cases with overlays and notes on the rest."""

    path: Path
    overlays: list[str]
    notes: list[str] = field(default_factory=list)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(value: float, metric: str) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if any(m in metric for m in _FRACTION_METRICS):
        return f"{value:.3f}"
    return f"{value:.2f}"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


# ----------------------------------------------------------------------------- overlays


def _read_case(found: CaseFiles) -> tuple[Any, Any, Any]:
    from ..io.nifti import read_nifti

    ct = read_nifti(found.image) if found.image is not None else None
    ref = read_nifti(found.ref, label=True) if found.ref is not None else None
    pred = read_nifti(found.pred, label=True) if found.pred is not None else None
    return ct, ref, pred


def _overlays(table: EvaluationTable, files: dict[str, CaseFiles], style: OverlayStyle, png_dir: Path | None, notes: list[str]) -> dict[str, dict[str, str]]:
    """Montage, thumbnail and caption of each case with label files; the next case's files are
    read in a background thread while the current one is drawn (gzip reading dominates)."""
    from concurrent.futures import Future, ThreadPoolExecutor

    todo = [(c, files[c]) for c in table.cases if c in files and (files[c].ref is not None or files[c].pred is not None)]
    out: dict[str, dict[str, str]] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future | None = pool.submit(_read_case, todo[0][1]) if todo else None
        for n, (case, _) in enumerate(todo):
            current, pending = pending, (pool.submit(_read_case, todo[n + 1][1]) if n + 1 < len(todo) else None)
            try:
                ct, ref, pred = current.result()  # type: ignore[union-attr]
                labels = table.label_values or _labels_in(ref, pred)
                rgb = case_montage(ct, ref, pred, labels, title=_case_title(table, case), style=style)
            except CtsegError as exc:
                notes.append(f"{case}: no overlay ({exc})")
                continue
            if png_dir is not None:
                save_png(rgb, png_dir / f"{case}.png")
            caption = _case_title(table, case) + ("" if ct is not None else " (no CT found: contours only)")
            out[case] = {"thumb": _data_uri(png_bytes(thumbnail(rgb))), "full": _data_uri(png_bytes(rgb)), "caption": caption}
    return out


def _labels_in(*maps: Any) -> dict[int, str]:
    import numpy as np

    values: set[int] = set()
    for m in maps:
        if m is not None:
            values |= {int(v) for v in np.unique(m.array) if v > 0}
    return {v: f"label_{v}" for v in sorted(values)}


def _case_title(table: EvaluationTable, case: str) -> str:
    if "dice" not in table.metrics:
        return case
    parts = [f"{name} {_fmt(table.values[name].get(case, {}).get('dice', math.nan), 'dice')}" for name in table.names]
    return f"{case}   Dice: " + ", ".join(parts)


# ----------------------------------------------------------------------------- sections


def _summary_section(table: EvaluationTable) -> str:
    head = "".join(f'<th colspan="3" class="text">{_esc(n)}</th>' for n in table.names)
    sub = "<th>mean ± std</th><th>median [IQR]</th><th>undef.</th>" * len(table.names)
    body = []
    for metric in table.metrics:
        cells = []
        for name in table.names:
            s = metric_stats(table.column(name, metric))
            if s["n"]:
                cells.append(f"<td>{_fmt(s['mean'], metric)} ± {_fmt(s['std'], metric)}</td>"  # type: ignore[arg-type]
                             f"<td>{_fmt(s['median'], metric)} [{_fmt(s['q1'], metric)}, {_fmt(s['q3'], metric)}]</td>")  # type: ignore[arg-type]
            else:
                cells.append('<td class="undef">–</td><td class="undef">–</td>')
            cells.append(f"<td>{s['n_undefined']}</td>")
        arrow = " ↓" if lower_is_better(metric) else ""
        body.append(f'<tr><td class="text">{_esc(metric)}{arrow}</td>{"".join(cells)}</tr>')
    for key in _pooled_keys(table):
        cells = []
        for name in table.names:
            value = (table.summary.get("labels", {}).get(name) or {}).get(key)
            text = _fmt(float(value), key) if isinstance(value, (int, float)) else "–"
            cells.append(f'<td colspan="3">{text}</td>')
        body.append(f'<tr><td class="text" title="from summary.json">{_esc(key)}</td>{"".join(cells)}</tr>')
    n_cases = len(table.cases)
    return (
        f'<section id="summary"><h2>Summary over {n_cases} case{"s" if n_cases != 1 else ""}</h2>'
        '<p class="note">Statistics over the finite values; "undef." counts cases where the metric is '
        "undefined (nan: both masks empty; ∞: exactly one empty). ↓: lower is better.</p>"
        f'<div class="scroll"><table><thead><tr><th class="text" rowspan="2">metric</th>{head}</tr><tr>{sub}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{_conventions(table.summary)}</section>"
    )


def _pooled_keys(table: EvaluationTable) -> list[str]:
    """Scalar numbers stored per label in summary.json (e.g. the pooled/global Dice)."""
    keys: dict[str, None] = {}
    for entry in (table.summary.get("labels") or {}).values():
        if isinstance(entry, Mapping):
            keys.update({k: None for k, v in entry.items() if k != "label" and isinstance(v, (int, float)) and not isinstance(v, bool)})
    return list(keys)


def _conventions(summary: Mapping[str, Any]) -> str:
    conventions = summary.get("conventions")
    if not isinstance(conventions, Mapping) or not conventions:
        return ""
    items = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in conventions.items())
    return f'<details><summary class="note">conventions</summary><dl class="facts">{items}</dl></details>'


def _metric_header(metric: str) -> str:
    hint = "lower is better" if lower_is_better(metric) else "higher is better"
    return f'<th data-type="num" data-metric="{_esc(metric)}" title="{hint}; click to sort">{_esc(metric)}</th>'


def _case_tables(table: EvaluationTable, overlays: Mapping[str, Any]) -> str:
    tabs, panels = [], []
    for n, name in enumerate(table.names):
        pid = f"cases-{n}"
        tabs.append(f'<button type="button" data-target="{pid}"{" class=active" if n == 0 else ""}>{_esc(name)}</button>')
        metrics = [m for m in table.metrics if not all(math.isnan(v) for v in table.column(name, m))]  # e.g. lesion metrics of an organ
        head = '<th class="text" data-type="text">case</th><th class="text">overlay</th>'
        head += "".join(_metric_header(m) for m in metrics)
        rows = []
        for case in table.cases:
            values = table.values[name].get(case, {})
            thumb = f'<img class="thumb" data-case="{_esc(case)}" alt="overlay of {_esc(case)}">' if case in overlays else "–"
            cells = []
            for m in metrics:
                v = values.get(m, math.nan)
                raw = "nan" if math.isnan(v) else ("inf" if v == math.inf else ("-inf" if v == -math.inf else repr(v)))
                cls = ' class="undef"' if not math.isfinite(v) else ""
                cells.append(f'<td data-v="{raw}"{cls}>{_fmt(v, m)}</td>')
            rows.append(f'<tr data-case="{_esc(case)}"><td class="text" data-v="{_esc(case)}">{_esc(case)}</td><td class="text">{thumb}</td>{"".join(cells)}</tr>')
        hidden = "" if n == 0 else " hidden"
        panels.append(f'<div class="panel case-panel" id="{pid}" data-name="{_esc(name)}"{hidden}><div class="scroll"><table class="sortable cases">'
                      f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></div>")
    note = "Click a column header to sort (again to reverse); click a thumbnail for the full axial / sagittal / coronal overlay."
    return (f'<section id="cases"><h2>Per case</h2><p class="note">{note}</p>'
            f'<div class="tabs" data-panels=".case-panel">{"".join(tabs)}</div>{"".join(panels)}</section>')


def _boxplot_section(table: EvaluationTable) -> str:
    png = metric_boxplots(table, [m for m in table.metrics if not m.startswith("lesions_") and not m.endswith("_volume_ml")])  # not counts
    if png is None:
        return ""
    return f'<section id="boxplots"><h2>Distributions</h2><figure><img class="plot" alt="box plots per metric" src="{_data_uri(png)}"></figure></section>'


def _training_section(run_dir: Path | None, notes: list[str]) -> str:
    if run_dir is None:
        return ""
    curves, history_path = run_dir / "training_curves.png", run_dir / "history.json"
    history = read_json(history_path) if history_path.is_file() else []
    if not curves.is_file() and history:
        from ..training.curves import plot_history

        names = {i + 1: n for i, n in enumerate(history[-1].get("val_dice", {}))}
        plot_history(history, names, curves)
    facts = [("run folder", str(run_dir))]
    if history:
        last = history[-1]
        facts += [("epochs", last.get("epoch")), ("iterations", last.get("iteration")), ("training time", f"{float(last.get('elapsed_s', 0)) / 60:.1f} min")]
        facts += [(f"final validation Dice: {k}", _fmt(float("nan") if v is None else float(v), "dice")) for k, v in last.get("val_dice", {}).items()]
    if (run_dir / "tensorboard").is_dir():
        facts.append(("TensorBoard", f"tensorboard --logdir {run_dir / 'tensorboard'}"))
    items = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts)
    figure = ""
    if curves.is_file():
        figure = f'<figure><img class="plot" alt="training curves" src="{_data_uri(curves.read_bytes())}"></figure>'
    else:
        notes.append(f"run folder {run_dir}: no training_curves.png or history.json")
    return f'<section id="training"><h2>Training</h2><dl class="facts">{items}</dl>{figure}</section>'


def _lesion_section(table: EvaluationTable) -> str:
    parts = []
    for fname, rows in table.lesion_tables.items():
        if not rows:
            continue
        columns = list(rows[0].keys())
        head = "".join(f'<th data-type="text" class="text">{_esc(c)}</th>' for c in columns)
        body = "".join("<tr>" + "".join(f'<td class="text">{_esc(r.get(c, ""))}</td>' for c in columns) + "</tr>" for r in rows[:_MAX_LESION_ROWS])
        more = f" (first {_MAX_LESION_ROWS} of {len(rows)} rows)" if len(rows) > _MAX_LESION_ROWS else f" ({len(rows)} rows)"
        parts.append(f'<details><summary>{_esc(fname)}{more}</summary><div class="scroll"><table class="sortable">'
                     f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></details>")
    return f'<section id="lesions"><h2>Lesions</h2>{"".join(parts)}</section>' if parts else ""


# ----------------------------------------------------------------------------- the page


def _page(title: str, meta: str, sections: list[str], overlays: Mapping[str, Any], notes: list[str]) -> str:
    nav = "".join(f'<a href="#{sid}">{label}</a>' for sid, label in (("summary", "Summary"), ("cases", "Cases"), ("boxplots", "Distributions"), ("training", "Training"), ("lesions", "Lesions")) if any(f'id="{sid}"' in s for s in sections))
    notes_html = "".join(f'<p class="note warn">{_esc(n)}</p>' for n in notes)
    data = json.dumps(overlays).replace("</", "<\\/")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{_esc(title)}</h1><div class="meta">{meta}</div><nav>{nav}</nav></header>'
        f"<main>{notes_html}{''.join(sections)}</main>"
        '<div id="overlay-modal" hidden><button type="button" aria-label="close">×</button>'
        '<figure><img id="overlay-full" alt="three-plane overlay"><figcaption id="overlay-caption"></figcaption></figure></div>'
        f'<script type="application/json" id="overlay-data">{data}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def build_report(
    eval_dir: PathLike_,
    out_html: PathLike_,
    *,
    run_dir: PathLike_ | None = None,
    images: PathLike_ | None = None,
    pred: PathLike_ | None = None,
    ref: PathLike_ | None = None,
    png_dir: PathLike_ | None = None,
    style: OverlayStyle | None = None,
    overlays: bool = True,
) -> ReportResult:
    """Write a self-contained HTML report of an evaluation folder.

    Args:
        eval_dir: the output folder of ``ctseg evaluate`` (``metrics.csv``; ``summary.json`` and
            ``*lesion*.csv`` are used when present).
        out_html: the page to write (atomically).
        run_dir: a training run folder: its ``training_curves.png`` (drawn from ``history.json``
            when missing) and facts are shown.
        images: the CT images: a folder of NIfTI files or an MSD dataset folder (``imagesTs`` and
            ``imagesTr`` are searched); default: recorded by evaluate, else the ``imagesXx`` beside
            a ``labelsXx`` reference folder.
        pred, ref: prediction and reference folders; default: those recorded in summary.json.
        png_dir: also write each case's overlay montage as ``<case>.png`` there.
        style: overlay colours, window and size.
        overlays: False leaves the pictures out (tables and plots only).

    Cases whose files cannot be found or read get no overlay and a note on the page.

    Raises:
        InputError: the evaluation folder has no readable metrics.csv, or ``run_dir`` is not a folder.
    """
    table = read_evaluation(eval_dir)
    if run_dir is not None and not Path(run_dir).is_dir():
        raise InputError(f"--run {run_dir}: not a folder; give the run folder `ctseg train -o` wrote")
    notes: list[str] = []
    drawn: dict[str, dict[str, str]] = {}
    if overlays:
        files = locate_case_files(table.cases, table.summary, images=images, pred=pred, ref=ref, notes=notes)
        drawn = _overlays(table, files, style or OverlayStyle(), Path(png_dir) if png_dir else None, notes)
    sections = [_summary_section(table), _case_tables(table, drawn), _boxplot_section(table), _training_section(Path(run_dir) if run_dir else None, notes), _lesion_section(table)]
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    meta = f"evaluation folder {_esc(Path(eval_dir).resolve())} · {len(table.cases)} cases · ctseg {__version__} · {when}"
    page = _page("ctseg evaluation report", meta, [s for s in sections if s], drawn, notes)
    out = Path(out_html)
    write_text(out, page)
    return ReportResult(out, sorted(drawn), notes)
