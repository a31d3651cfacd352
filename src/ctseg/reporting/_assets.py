"""Inline CSS and JavaScript of the HTML report (no network, no external files)."""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
:root { --fg: #1d232a; --muted: #5f6b76; --line: #d9dee3; --head: #f1f4f7; --accent: #1f6feb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fafbfc; }
header { padding: 18px 28px 10px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 21px; }
header .meta { color: var(--muted); font-size: 12.5px; }
nav { margin-top: 8px; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; font-weight: 500; }
main { padding: 8px 28px 40px; max-width: 1500px; }
section { margin-top: 22px; }
h2 { font-size: 17px; margin: 0 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.note { color: var(--muted); font-size: 12.5px; margin: 4px 0 10px; }
.warn { color: #9a4b00; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: var(--head); font-weight: 600; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
table.sortable th[data-type] { cursor: pointer; user-select: none; }
table.sortable th[data-type]:hover { background: #e3e9ef; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
td.undef { color: #9aa4ad; }
tbody tr:hover { background: #f5f9ff; }
img.thumb { display: block; height: 84px; cursor: zoom-in; border-radius: 3px; }
.tabs { margin: 6px 0 8px; }
.tabs button { font: inherit; padding: 4px 12px; margin-right: 4px; border: 1px solid var(--line); background: #fff; border-radius: 4px; cursor: pointer; }
.tabs button.active { background: var(--accent); color: #fff; border-color: var(--accent); }
.panel[hidden] { display: none; }
figure { margin: 0; }
img.plot { max-width: 100%; background: #fff; border: 1px solid var(--line); }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 6px 0; font-size: 13px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
#overlay-modal { position: fixed; inset: 0; background: rgba(10, 12, 14, 0.86); display: flex; align-items: center; justify-content: center; z-index: 10; }
#overlay-modal[hidden] { display: none; }
#overlay-modal figure { text-align: center; }
#overlay-modal img { max-width: 96vw; max-height: 86vh; border: 1px solid #444; }
#overlay-modal figcaption { color: #eee; margin-top: 8px; font-size: 13px; }
#overlay-modal button { position: absolute; top: 12px; right: 18px; font-size: 26px; color: #fff; background: none; border: 0; cursor: pointer; }
"""

SCRIPT = """
(function () {
  "use strict";
  var store = JSON.parse(document.getElementById("overlay-data").textContent || "{}");
  document.querySelectorAll("img.thumb").forEach(function (img) {
    var item = store[img.dataset.case];
    if (item) { img.src = item.thumb; }
  });

  function cellValue(cell, numeric) {
    if (!numeric) { return cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent.trim(); }
    var v = parseFloat(cell.dataset.v);
    if (cell.dataset.v === "inf") { v = Infinity; }
    if (cell.dataset.v === "-inf") { v = -Infinity; }
    return v;
  }

  function sortBy(th) {
    var table = th.closest("table");
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.dataset.type === "num";
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    table.querySelectorAll("th[aria-sort]").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = dir === "ascending" ? 1 : -1;
    rows.sort(function (a, b) {
      var x = cellValue(a.cells[index], numeric), y = cellValue(b.cells[index], numeric);
      if (numeric) {
        var xn = isNaN(x), yn = isNaN(y);
        if (xn || yn) { return xn === yn ? 0 : (xn ? 1 : -1); }  /* undefined values last */
        return x === y ? 0 : (x < y ? -sign : sign);
      }
      return sign * String(x).localeCompare(String(y), undefined, { numeric: true });
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  document.querySelectorAll("table.sortable th[data-type]").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
    th.title = th.title || "click to sort";
  });

  document.querySelectorAll(".tabs").forEach(function (bar) {
    bar.querySelectorAll("button").forEach(function (button) {
      button.addEventListener("click", function () {
        bar.querySelectorAll("button").forEach(function (b) { b.classList.toggle("active", b === button); });
        document.querySelectorAll(bar.dataset.panels).forEach(function (p) { p.hidden = p.id !== button.dataset.target; });
      });
    });
  });

  var modal = document.getElementById("overlay-modal");
  var full = document.getElementById("overlay-full");
  var caption = document.getElementById("overlay-caption");
  function closeModal() { modal.hidden = true; full.removeAttribute("src"); }
  document.querySelectorAll("img.thumb").forEach(function (img) {
    img.addEventListener("click", function () {
      var item = store[img.dataset.case];
      if (!item) { return; }
      full.src = item.full;
      caption.textContent = item.caption;
      modal.hidden = false;
    });
  });
  modal.addEventListener("click", function (event) { if (event.target !== full) { closeModal(); } });
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") { closeModal(); } });
})();
"""
