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
    rank_extremes,
    residual_heatmap_png,
    roc_curve_png,
    score_histogram_png,
)

__all__ = ["write_report"]

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
) -> Path:
    """Write ``index.html``, ``scores.csv`` and the applicable PNGs into ``out_dir``.

    Files: ``histogram.png`` always; ``roc.png`` if ``y`` has both classes;
    ``extremes.png`` if ``images`` is given; ``residuals.png`` if both ``images`` and
    ``reconstructions`` are given. ``metrics`` is shown as a table as given (nothing
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
