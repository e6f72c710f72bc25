"""``ganad report``: the benchmark store as one HTML page and its PNG figures.

Reads ``<results>/*.jsonl`` (:func:`ganad.bench.store.all_records`), the
published and peer numbers of :mod:`ganad.bench.targets`, and the speed store
``<results>/speed.jsonl`` when there is one.  Per (dataset, protocol):

* a bar chart of the mean AUROC over classes of each model (and config),
  beside the published and peer means (``bars-<dataset>-<protocol>.png``);
* a per-class table with background colours (AUROC 0.5 red .. 1.0 green);
* for the ``contamination`` protocol, AUROC against the training contamination
  gamma, a line per model, with a second panel on Berg et al.'s section 4.1.1
  test layout when the records carry it (``contamination-<dataset>.png``,
  :func:`ganad.report.plots.auroc_vs_gamma_png`);
* for the ``ood`` protocol, a table of mean AUROC per model and
  out-of-distribution data set;

then the speed table.  Everything lands in ``out`` (default
``benchmarks/report/``): ``index.html`` and the PNGs, no external assets.

>>> from ganad.report.bench_report import write_bench_report
>>> write_bench_report("benchmarks/results", "benchmarks/report")
"""

from __future__ import annotations

import html as _html
import json
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .html import SORT_SCRIPT, _figure, _sortable_table, page
from .plots import _save, plt

__all__ = ["write_bench_report", "load_speed"]

_OURS, _PUBLISHED, _PEER = "tab:blue", "tab:gray", "tab:orange"
_LO, _HI = 0.5, 1.0  # the heat map's colour range (AUROC)
_CSS_EXTRA = """
table.heat-table { font-size: 0.78em; }
table.heat-table td:first-child { max-width: 26em; }
td.heat { text-align: right; font-family: monospace; }
td.kind { color: #555; font-size: 0.85em; }
.legend span { display: inline-block; padding: 0.1em 0.6em; margin-right: 0.3em; font-family: monospace; }
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def _class_of(r: dict[str, Any]) -> int | None:
    v = r.get("anomalous_class") if r.get("protocol") == "one-anomalous" else r.get("normal_class")
    return None if v is None else int(v)


def _label(r: dict[str, Any], with_options: bool = True) -> str:
    """model (params, grids searched on val) [protocol options], as plain text."""
    params = r.get("config", {}).get("params", {})
    grid = r.get("config", {}).get("grid", {})
    extra = ", ".join(
        [f"{k}={v}" for k, v in sorted(params.items())]
        + [f"{k} in {{{', '.join(map(str, v))}}} on val" for k, v in sorted(grid.items()) if len(v) > 1]
    )
    opts = ", ".join(f"{k}={v}" for k, v in sorted(r.get("protocol_options", {}).items())) if with_options else ""
    return " ".join(x for x in (str(r["model"]), f"({extra})" if extra else "", f"[{opts}]" if opts else "") if x)


def _group_key(r: dict[str, Any], with_options: bool = True) -> tuple:
    from ..bench.store import config_id

    opts = json.dumps(r.get("protocol_options", {}), sort_keys=True) if with_options else ""
    return (str(r["model"]), config_id(r.get("config", {})), opts)


def _mean(values: Iterable[float]) -> float | None:
    v = [float(x) for x in values if x is not None and np.isfinite(float(x))]
    return float(np.mean(v)) if v else None


def _heat(v: float | None) -> str:
    """A table cell coloured by AUROC (red at 0.5 and below, yellow about 0.75, green at 1)."""
    if v is None:
        return '<td class="heat"></td>'
    import matplotlib

    t = min(max((v - _LO) / (_HI - _LO), 0.0), 1.0)
    colour = matplotlib.colors.to_hex(matplotlib.colormaps["RdYlGn"](0.05 + 0.85 * t))
    return f'<td class="heat" data-v="{v!r}" style="background-color:{colour}">{v:.3f}</td>'


def _swatch(v: float) -> str:
    return _heat(v).replace("<td", "<span", 1).replace("</td>", "</span>")


def load_speed(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of ``benchmarks/speed.py``; the newest per (model, precision, threads) wins."""
    path = Path(path)
    if not path.exists():
        return []
    rows: dict[tuple, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:  # a line cut by a crash
            continue
        if isinstance(r, dict) and "model" in r:
            rows[(r["model"], r.get("precision"), r.get("threads"))] = r
    return [rows[k] for k in sorted(rows, key=lambda k: tuple(str(x) for x in k))]


# ------------------------------------------------------------------ one (dataset, protocol)
def _summaries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per (model, config, protocol options): per-class mean AUROC over seeds,
    their mean and std over classes, seeds, mean AUPRC and F1."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[_group_key(r)].append(r)
    out = []
    for key, rs in sorted(groups.items()):
        per: dict[int, list[float]] = defaultdict(list)
        for r in rs:
            c = _class_of(r)
            if c is not None and r.get("auroc") is not None:
                per[c].append(float(r["auroc"]))
        means = {c: float(np.mean(v)) for c, v in per.items()}
        vals = list(means.values())
        out.append({
            "label": _label(rs[0]), "model": str(rs[0]["model"]), "key": key, "per_class": means,
            "mean": float(np.mean(vals)) if vals else _mean(r.get("auroc") for r in rs),
            "std": float(np.std(vals)) if len(vals) > 1 else 0.0,
            "seeds": len({r.get("seed") for r in rs}), "cells": len(rs),
            "auprc": _mean(r.get("auprc") for r in rs), "f1": _mean(r.get("f1") for r in rs),
            "fit_s": _mean(r.get("fit_seconds") for r in rs),
        })
    return out


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _bar_chart(rows: list[tuple[str, float, float, str]], path: Path, title: str) -> Path:
    """Horizontal bars (label, mean, std, colour), highest at the top."""
    rows = sorted(rows, key=lambda r: r[1])
    fig, ax = plt.subplots(figsize=(9.0, 0.9 + 0.26 * len(rows)))
    y = np.arange(len(rows))
    ax.barh(y, [r[1] for r in rows], xerr=[r[2] for r in rows], color=[r[3] for r in rows],
            error_kw={"lw": 0.8, "capsize": 2, "ecolor": "#333"}, height=0.7)
    ax.set_yticks(y, [_short(r[0]) for r in rows], fontsize=7)
    lo = min(0.4, min(r[1] for r in rows) - 0.05)
    ax.set_xlim(max(0.0, lo), 1.0)
    ax.axvline(0.5, color="#999", lw=0.8, ls=":")
    ax.set_xlabel("mean AUROC over classes (error bar: std over classes)")
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_title(title, fontsize=10, pad=22)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=_OURS, label="ganad (stored runs)"), Patch(color=_PUBLISHED, label="published"),
                       Patch(color=_PEER, label="peer library, this machine")], loc="lower center",
              bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=7, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def contamination_png(records: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Mean AUROC against gamma, a line per (model, config, selection regime): per gamma the
    mean over classes (the classes stored at every gamma of the line; their count in the
    label when under 10) of the mean over seeds; a second panel on Berg et al.'s section 4.1.1
    layout when the records carry ``auroc_berg_layout``."""
    from ..bench.provenance import record_selection
    from .plots import auroc_vs_gamma_png

    acc: dict[str, dict[tuple, dict[float, dict[Any, list[float]]]]] = {
        "auroc": defaultdict(lambda: defaultdict(lambda: defaultdict(list))),
        "auroc_berg_layout": defaultdict(lambda: defaultdict(lambda: defaultdict(list))),
    }
    labels: dict[tuple, str] = {}
    for r in records:
        gamma = r.get("gamma", r.get("protocol_options", {}).get("gamma"))
        if gamma is None:
            continue
        opts = {k: v for k, v in r.get("protocol_options", {}).items() if k != "gamma"}
        k = (*_group_key(r, with_options=False), json.dumps(opts, sort_keys=True), record_selection(r))
        for key in acc:
            if r.get(key) is not None:
                acc[key][k][float(gamma)][_class_of(r)].append(float(r[key]))
        regime = record_selection(r)
        labels[k] = ("" if regime == "none" else f"[{regime}] ") + _label({**r, "protocol_options": opts})

    def curves(key: str) -> dict[str, dict[float, float]]:
        # a line averages the same classes at every gamma (those stored at all of its gammas),
        # so a partly run study draws no drop that is only a change of classes
        out: dict[str, dict[float, float]] = {}
        for k, pts in acc[key].items():
            common = set.intersection(*(set(per) for per in pts.values()))
            if not common:
                continue
            name = labels[k] + ("" if len(common) >= 10 else f" ({len(common)} cl.)")
            out[name] = {g: float(np.mean([np.mean(per[c]) for c in common])) for g, per in pts.items()}
        return out

    full = curves("auroc")
    if not full:
        return None
    return auroc_vs_gamma_png(full, path, title, berg_curves=curves("auroc_berg_layout") or None)


def _ood_table(records: list[dict[str, Any]]) -> str:
    cols = sorted({str(r.get("protocol_options", {}).get("other")) for r in records})
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    labels: dict[tuple, str] = {}
    for r in records:
        if r.get("auroc") is None:
            continue
        k = _group_key(r, with_options=False)
        groups[k][str(r.get("protocol_options", {}).get("other"))].append(float(r["auroc"]))
        labels[k] = _label(r, with_options=False)
    e = _html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in ["method", *[f"vs {c}" for c in cols]])
    body = "".join(
        f"<tr><td>{e(labels[k])}</td>" + "".join(_heat(_mean(per.get(c, []))) for c in cols) + "</tr>"
        for k, per in sorted(groups.items())
    )
    return f'<table class="sortable heat-table" id="ood"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _heat_table(dataset: str, protocol: str, summaries: list[dict[str, Any]], table_id: str) -> str:
    from ..bench.targets import PEERS, PUBLISHED

    classes = sorted({c for s in summaries for c in s["per_class"]}
                     | {c for _, d, *_ in PUBLISHED.get((dataset, protocol), []) for c in d}
                     | {c for _, d, _ in PEERS.get((dataset, protocol), []) for c in d})
    e = _html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in ["method", "kind", *map(str, classes), "mean", "classes", "seeds",
                                                   "AUPRC", "F1", "fit s"])
    rows = []

    def num(v: float | None, f: str = "{:.3f}") -> str:
        return f'<td class="num" data-v="{v!r}">{f.format(v)}</td>' if v is not None else "<td></td>"

    for s in summaries:
        rows.append(f"<tr><td>{e(s['label'])}</td><td class=\"kind\">ganad</td>"
                    + "".join(_heat(s["per_class"].get(c)) for c in classes) + _heat(s["mean"])
                    + num(len(s["per_class"]), "{}") + num(s["seeds"], "{}") + num(s["auprc"]) + num(s["f1"])
                    + num(s["fit_s"], "{:.1f}") + "</tr>")
    for label, per, mean, source in PUBLISHED.get((dataset, protocol), []):
        rows.append(f"<tr><td>{e(label)}</td><td class=\"kind\" title=\"{e(source)}\">published</td>"
                    + "".join(_heat(per.get(c)) for c in classes) + _heat(mean)
                    + num(len(per), "{}") + "<td></td>" * 4 + "</tr>")
    for label, per, source in PEERS.get((dataset, protocol), []):
        rows.append(f"<tr><td>{e(label)}</td><td class=\"kind\" title=\"{e(source)}\">peer</td>"
                    + "".join(_heat(per.get(c)) for c in classes) + _heat(_mean(per.values()))
                    + num(len(per), "{}") + "<td></td>" * 4 + "</tr>")
    return (f'<table class="sortable heat-table" id="{e(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _speed_table(rows: list[dict[str, Any]]) -> str:
    cols = [("model", "model", False), ("width", "width", True), ("precision", "precision", False),
            ("threads", "threads", True), ("train img/s", "train_img_s", True), ("score img/s", "score_img_s", True),
            ("train GFLOP/s", "train_gflop_s", True), ("fp32 peak GFLOP/s", "peak_fp32_gflop_s", True),
            ("bf16 peak GFLOP/s", "peak_bf16_gflop_s", True), ("AUROC class 0", "auroc", True),
            ("device", "device", False), ("commit", "commit", False)]
    def cell(v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, float):
            return round(v) if abs(v) >= 100 else round(v, 3)
        return v

    body = [[cell(r.get(k)) for _, k, _ in cols] for r in rows]
    return _sortable_table([h for h, _, _ in cols], body, [n for _, _, n in cols], table_id="speed")


# ------------------------------------------------------------------ the page
def write_bench_report(results_dir: str | os.PathLike = "benchmarks/results",
                       out_dir: str | os.PathLike = "benchmarks/report") -> Path:
    """Write ``index.html`` and its PNGs into ``out_dir``; return the path of ``index.html``.

    Raises ValueError when ``results_dir`` holds neither benchmark records nor speed records.
    """
    from ..bench.store import SPEED_STORE, all_records
    from ..bench.targets import PEERS, PUBLISHED

    results_dir, out = Path(results_dir), Path(out_dir)
    if not results_dir.is_dir():
        raise ValueError(f"--results {results_dir}: no such folder")
    records = [r for r in all_records(results_dir) if isinstance(r, dict) and {"model", "dataset", "protocol"} <= set(r)]
    speed = load_speed(results_dir / SPEED_STORE)
    if not records and not speed:
        raise ValueError(f"--results {results_dir}: no benchmark records (*.jsonl) and no {SPEED_STORE}")
    out.mkdir(parents=True, exist_ok=True)
    e = _html.escape
    by_table: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_table[(str(r["dataset"]), str(r["protocol"]))].append(r)

    toc, sections = [], []
    for n, ((dataset, protocol), rs) in enumerate(sorted(by_table.items())):
        anchor = f"{_slug(dataset)}-{_slug(protocol)}"
        toc.append(f'<li><a href="#{anchor}">{e(dataset)}, {e(protocol)}</a> ({len(rs)} cells)</li>')
        summaries = _summaries(rs)
        bars = [(s["label"] + ("" if len(s["per_class"]) >= 10 else f" ({len(s['per_class'])} cl.)"),
                 s["mean"], s["std"], _OURS) for s in summaries if s["mean"] is not None]
        bars += [(label, mean, 0.0, _PUBLISHED) for label, _, mean, _ in PUBLISHED.get((dataset, protocol), [])]
        bars += [(label, float(np.mean(list(per.values()))), float(np.std(list(per.values()))), _PEER)
                 for label, per, _ in PEERS.get((dataset, protocol), []) if per]
        part = [f'<h2 id="{anchor}">{e(dataset)}, {e(protocol)}</h2>',
                f'<p class="meta">{len(rs)} stored cells, {len(summaries)} model configurations.</p>']
        if bars:
            png = f"bars-{anchor}.png"
            _bar_chart(bars, out / png, f"{dataset}, {protocol}: mean AUROC")
            part.append(_figure(png, "Mean AUROC over classes per model and configuration, beside published "
                                     "and peer numbers (blue: ours; grey: published; orange: peers)"))
        part.append("<h3>AUROC per class</h3>"
                    f'<p class="meta legend">Colour: {_swatch(0.5)}{_swatch(0.75)}{_swatch(1.0)}'
                    " &middot; click a header to sort</p>" + _heat_table(dataset, protocol, summaries, f"heat-{n}"))
        if protocol == "contamination":
            png = f"contamination-{_slug(dataset)}.png"
            if contamination_png(rs, out / png, f"{dataset}: AUROC against training contamination") is not None:
                part.append("<h3>Contamination</h3>" + _figure(png, "Mean test AUROC (classes and seeds) against "
                                                                   "the share gamma of anomalies in training"))
        if protocol == "ood":
            part.append("<h3>Out-of-distribution data sets</h3>"
                        '<p class="meta">Mean AUROC: test normals of the data set against images of another.</p>'
                        + _ood_table(rs))
        sections.append("\n".join(part))
    if speed:
        toc.append('<li><a href="#speed">speed</a></li>')
        sections.append('<h2 id="speed">Speed</h2><p class="meta">From <code>benchmarks/speed.py</code> '
                        f"({e(SPEED_STORE)}); the newest record per model, precision and threads.</p>"
                        + _speed_table(speed))
    body = (f'<p class="meta">From {e(str(results_dir))}: {len(records)} benchmark records. AUROC on the test '
            "split, anomaly = positive class.</p>" + f"<ul>{''.join(toc)}</ul>" + "\n".join(sections))
    html_text = page("ganad benchmark report", body, script=SORT_SCRIPT).replace("</style>", _CSS_EXTRA + "</style>", 1)
    index = out / "index.html"
    index.write_text(html_text, encoding="utf-8")
    return index
