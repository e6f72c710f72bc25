"""A self-contained static HTML report: PNG figures, a metrics table, top anomalies, scores.csv."""

from __future__ import annotations

import csv
import datetime as _dt
import html as _html
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .plots import (
    _as_images,
    _as_labels,
    _as_scores,
    extremes_grid_png,
    extremes_maps_png,
    pr_curve_png,
    rank_extremes,
    residual_heatmap_png,
    roc_curve_png,
    score_histogram_png,
)

__all__ = ["write_report", "write_score_report", "SORT_SCRIPT"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-family: monospace; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.88em; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.flagged td:first-child { border-left: 4px solid #c0392b; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.figs figure { flex: 1 1 30%; min-width: 260px; margin: 0; }
.figs figure img { width: 100%; }
.row { display: flex; flex-wrap: wrap; gap: 2.5em; align-items: flex-start; }
"""

#: Click a header of a ``table.sortable`` to sort by that column (again: reverse).
#: Cells sort by their ``data-v`` attribute (numbers) when they have one, else by text.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.title = "click to sort";
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (row) {
        var cell = row.cells[col];
        var v = cell.getAttribute("data-v");
        return v === null ? cell.textContent : parseFloat(v);
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), c;
        if (typeof x === "number" && typeof y === "number") { c = x - y; }
        else { c = String(x).localeCompare(String(y)); }
        return asc ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _fmt(v: Any) -> str:
    """Format a metric value for display (floats to 4 decimals)."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return str(f)
        if f == 0.0 or 1e-3 <= abs(f) < 1e5:
            return f"{f:.4f}"
        return f"{f:.4e}"
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool]) -> str:
    """HTML table; cell text is escaped."""
    head = "".join(f"<th>{_html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_html.escape(_fmt(c))}</td>' if num else f"<td>{_html.escape(_fmt(c))}</td>"
            for c, num in zip(row, numeric)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(src: str, caption: str) -> str:
    """An ``<img>`` referenced by relative path, with a caption."""
    e = _html.escape
    return f'<figure><img src="{e(src)}" alt="{e(caption)}"><figcaption>{e(caption)}</figcaption></figure>'


def _check_len(name: str, n_items: int, n: int) -> None:
    if n_items != n:
        raise ValueError(f"length mismatch: {name} has {n_items} entries but scores has {n}")


def write_report(
    out_dir: str | Path,
    scores: Sequence[float] | np.ndarray,
    images: np.ndarray | None = None,
    y: Sequence[int] | np.ndarray | None = None,
    threshold: float | None = None,
    metrics: Mapping[str, Any] | None = None,
    title: str = "ganad report",
    names: Sequence[str] | None = None,
    top: int = 16,
    *,
    reconstructions: np.ndarray | None = None,
    latent: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``index.html``, ``scores.csv`` and the applicable PNGs into ``out_dir``.

    Files: ``histogram.png`` always; ``roc.png`` if ``y`` has both classes;
    ``extremes.png`` if ``images`` is given; ``residuals.png`` if both ``images`` and
    ``reconstructions`` are given; ``latent``: ``(file name in out_dir, caption)`` of
    figures already written there, shown as a "Latent space" section
    (:func:`ganad.report.latent.report_figures`). ``metrics`` is shown as a table as given (nothing
    is computed here); with ``names``, the ``top`` most anomalous are listed.
    Returns the path of ``index.html``. Raises ValueError on length mismatches.
    """
    s = _as_scores(scores)
    n = s.size
    yy = None if y is None else _as_labels(y, n)
    x = None
    if images is not None:
        x = _as_images(images)
        _check_len("images", x.shape[0], n)
    if reconstructions is not None:
        if images is None:
            raise ValueError("reconstructions given without images")
        rec = _as_images(reconstructions, "reconstructions")
        if rec.shape[0] != n:
            raise ValueError(f"length mismatch: reconstructions has {rec.shape[0]} entries but scores has {n}")
    if names is not None:
        names = [str(v) for v in names]
        _check_len("names", len(names), n)
    if threshold is not None:
        threshold = float(threshold)
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
    if int(top) < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    top = int(top)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    e = _html.escape
    sections: list[str] = []

    # summary
    summary: list[tuple[str, Any]] = [("samples", n)]
    if yy is not None:
        summary.append(("labelled anomalies", int(yy.sum())))
    summary += [("score min", float(s.min())), ("score median", float(np.median(s))), ("score max", float(s.max()))]
    if threshold is not None:
        summary += [("threshold", threshold), ("flagged (score > threshold)", int(np.count_nonzero(s > threshold)))]
    sections.append("<h2>Summary</h2>" + _table(["quantity", "value"], summary, [False, True]))

    if metrics:
        rows = [(str(k), v) for k, v in metrics.items()]
        sections.append("<h2>Metrics</h2>" + _table(["metric", "value"], rows, [False, True]))

    # figures
    figs: list[str] = []
    if yy is not None and np.unique(yy).size == 2:
        roc_curve_png(yy, s, out / "roc.png", title="ROC curve")
        figs.append(_figure("roc.png", "ROC curve (chance diagonal dashed)"))
    score_histogram_png(s, out / "histogram.png", y=yy, threshold=threshold, title="Score distribution")
    figs.append(_figure("histogram.png", "Score histogram" + (" by label" if yy is not None else "")))
    if x is not None:
        extremes_grid_png(images, s, out / "extremes.png", k=top)
        figs.append(_figure("extremes.png", f"Top row: {min(top, n)} highest scores; bottom row: lowest"))
        if reconstructions is not None:
            residual_heatmap_png(images, reconstructions, out / "residuals.png", k=min(top, 8))
            figs.append(_figure("residuals.png", "Original / reconstruction / |difference|"))
    sections.append("<h2>Figures</h2>" + "\n".join(figs))
    if latent:
        sections.append('<h2>Latent space</h2><div class="figs">'
                        + "\n".join(_figure(src, cap) for src, cap in latent) + "</div>")

    if names is not None:
        idx, _ = rank_extremes(s, top)
        header = ["rank", "index", "name", "score"] + (["label"] if yy is not None else [])
        rows = [
            [r + 1, int(i), names[i], float(s[i])] + ([int(yy[i])] if yy is not None else [])
            for r, i in enumerate(idx)
        ]
        numeric = [True, True, False, True] + ([True] if yy is not None else [])
        sections.append(f"<h2>Top {len(idx)} most anomalous</h2>" + _table(header, rows, numeric))

    sections.append('<p class="meta">All scores: <a href="scores.csv">scores.csv</a></p>')

    # scores.csv, in input order
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "name", "score"] + (["label"] if yy is not None else []))
        for i in range(n):
            row = [i, names[i] if names is not None else "", repr(float(s[i]))]
            if yy is not None:
                row.append(int(yy[i]))
            w.writerow(row)

    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{e(title)}</h1>\n<p class=\"meta\">Generated {e(stamp)} by ganad. "
        "Scores: higher = more anomalous.</p>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _sortable_table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool],
                    row_class: Sequence[str] | None = None, table_id: str = "scores") -> str:
    """A ``table.sortable`` (see :data:`SORT_SCRIPT`): numeric cells carry their exact
    value in ``data-v`` so that sorting is by number, not by the rounded text."""
    e = _html.escape
    head = "".join(f'<th scope="col">{e(h)}</th>' for h in header)
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c, num in zip(row, numeric):
            if num and isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, bool):
                cells.append(f'<td class="num" data-v="{float(c)!r}">{e(_fmt(c))}</td>')
            else:
                cells.append(f"<td>{e(_fmt(c))}</td>")
        cls = f' class="{e(row_class[r])}"' if row_class is not None and row_class[r] else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (f'<table class="sortable" id="{e(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def page(title: str, body: str, *, script: str = "") -> str:
    """A whole self-contained HTML page (inline CSS and script, no external assets)."""
    e = _html.escape
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{e(title)}</h1>\n<p class=\"meta\">Generated {e(stamp)} by ganad.</p>\n{body}\n"
        + (f"<script>{script}</script>\n" if script else "") + "</body>\n</html>\n"
    )


def write_score_report(
    out_dir: str | Path,
    scores: Sequence[float] | np.ndarray,
    threshold: float,
    *,
    labels: Sequence[int] | np.ndarray | None = None,
    table_rows: Sequence[tuple[float, str, Mapping[str, float], int | None]] = (),
    part_names: Sequence[str] = (),
    top: tuple[Sequence[np.ndarray], Sequence[float], Sequence[str]] | None = None,
    bottom: tuple[Sequence[np.ndarray], Sequence[float], Sequence[str]] | None = None,
    top_maps: np.ndarray | None = None,
    bottom_maps: np.ndarray | None = None,
    title: str = "ganad score",
    skipped: int = 0,
    notes: Sequence[str] = (),
    csv_name: str = "scores.csv",
) -> Path:
    """The report of ``ganad score``: ``index.html`` plus ``histogram.png``,
    ``extremes.png`` (when images are given) and, with ``labels`` of both
    classes, ``roc.png`` and ``pr.png``.  ``scores.csv`` is written by the caller
    (row by row while scoring); here only what a page shows is needed:

    * ``scores`` of every image (histogram, summary) and their 0/1 ``labels``
      when known (AUROC, AUPRC, F1 at ``threshold``, confusion counts);
    * ``table_rows``: ``(score, path, parts, label)`` of the highest-scoring
      images, shown as a table sortable by any column;
    * ``top`` / ``bottom``: ``(images, scores, paths)`` of the most / least
      anomalous, with their anomaly maps (``top_maps`` / ``bottom_maps``) overlaid
      when the detector has them.

    Returns the path of ``index.html``.
    """
    from .. import metrics as M

    s = _as_scores(scores)
    n = s.size
    yy = None if labels is None else _as_labels(labels, n)
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    e = _html.escape
    sections: list[str] = []

    flagged = int(np.count_nonzero(s > threshold))
    summary: list[tuple[str, Any]] = [("images scored", n)]
    if skipped:
        summary.append(("unreadable files skipped", int(skipped)))
    summary += [("threshold (from training)", threshold),
                ("flagged anomalous (score > threshold)", f"{flagged} ({flagged / n:.1%})"),
                ("score min", float(s.min())), ("score median", float(np.median(s))), ("score max", float(s.max()))]
    sections.append("<h2>Summary</h2>" + _table(["quantity", "value"], summary, [False, True]))
    if notes:
        items = "".join(f"<li>{e(str(t))}</li>" for t in notes)
        sections.append(f"<details><summary>Notes ({len(notes)})</summary><ul>{items}</ul></details>")

    both = yy is not None and np.unique(yy).size == 2
    if yy is not None:
        c = M.confusion(yy, s, threshold)
        t = M.threshold_metrics(yy, s, threshold)
        rows: list[tuple[str, Any]] = [("labelled anomalies", f"{int(yy.sum())} of {n}")]
        if both:
            rows += [("AUROC", M.roc_auc(yy, s)), ("AUPRC", M.pr_auc(yy, s))]
        rows += [("F1 at the threshold", t["f1"]), ("precision", t["precision"]), ("recall", t["recall"]),
                 ("specificity", t["specificity"]), ("accuracy", t["accuracy"])]
        conf = [("actual anomalous", c["tp"], c["fn"]), ("actual normal", c["fp"], c["tn"])]
        sections.append(
            '<h2>Against the labels</h2><div class="row"><div>' + _table(["metric", "value"], rows, [False, True])
            + ("" if both else '<p class="meta">One class only: no ROC or PR curve.</p>')
            + '</div><div><h3>Confusion counts at the threshold</h3>'
            + _table(["", "flagged anomalous", "not flagged"], conf, [False, True, True]) + "</div></div>")

    figs: list[str] = []
    score_histogram_png(s, out / "histogram.png", y=yy, threshold=threshold, title="Score distribution")
    figs.append(_figure("histogram.png", "Score histogram" + (" by label" if yy is not None else "")
                        + "; the dashed line is the threshold"))
    if both:
        roc_curve_png(yy, s, out / "roc.png", title="ROC curve")
        figs.append(_figure("roc.png", "ROC curve (chance diagonal dashed)"))
        pr_curve_png(yy, s, out / "pr.png", title="Precision-recall curve")
        figs.append(_figure("pr.png", "Precision-recall curve (chance = share of anomalies)"))
    sections.append('<h2>Figures</h2><div class="figs">' + "\n".join(figs) + "</div>")

    if top is not None and len(top[0]):
        bot = bottom if bottom is not None else ([], [], [])
        extremes_maps_png(top[0], top[1], bot[0], bot[1], out / "extremes.png", top_maps=top_maps,
                          bottom_maps=bottom_maps if len(bot[0]) else None)
        with_maps = top_maps is not None
        listing = "; ".join(f"{i + 1}. {p}" for i, p in enumerate(top[2]))
        sections.append(
            "<h2>Most and least anomalous images</h2>"
            + _figure("extremes.png", f"Top row: the {len(top[0])} highest scores; bottom row: the {len(bot[0])} lowest"
                      + (" (heat maps: the detector's anomaly map)" if with_maps else ""))
            + f'<p class="meta">Top row, left to right: {e(listing)}</p>'
        )

    if table_rows:
        with_labels = any(r[3] is not None for r in table_rows)
        header = ["rank", "path", "score", "flag", *part_names] + (["label"] if with_labels else [])
        rows_out, classes = [], []
        for rank, (sc, path, parts, lab) in enumerate(table_rows, 1):
            flag = "anomalous" if sc > threshold else ""
            rows_out.append([rank, path, float(sc), flag, *(float(parts[k]) for k in part_names)]
                            + ([int(lab) if lab is not None else ""] if with_labels else []))
            classes.append("flagged" if flag else "")
        numeric = [True, False, True, False, *([True] * len(part_names))] + ([True] if with_labels else [])
        what = "every image" if len(table_rows) == n else f"the {len(table_rows)} highest scores of {n}"
        sections.append(f"<h2>Scores: {e(what)}</h2>"
                        '<p class="meta">Click a column header to sort by it; click again to reverse.</p>'
                        + _sortable_table(header, rows_out, numeric, classes))

    sections.append(f'<p class="meta">Every score, flag and score term: <a href="{e(csv_name)}">{e(csv_name)}</a>. '
                    "Higher scores = more anomalous.</p>")
    index = out / "index.html"
    index.write_text(page(title, "\n".join(sections), script=SORT_SCRIPT), encoding="utf-8")
    return index
