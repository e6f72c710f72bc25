"""Render the result store as Markdown tables beside published and peer numbers.

One table per (dataset, protocol): a row per (model, config), a column per
class with the mean AUROC over seeds (± the std over seeds when there are
several), then the mean over classes ± the std over classes, the seed count,
mean AUPRC and F1, and the mean fit/score seconds.  Published rows
(papers) and peer rows (other libraries on this machine) follow.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .store import SPEED_STORE, all_records, config_id
from .targets import PEERS, PUBLISHED


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def _class_of(r: dict[str, Any]) -> int:
    return int(r["anomalous_class"] if r["protocol"] == "one-anomalous" else r["normal_class"])


def _label(r: dict[str, Any]) -> str:
    params = r.get("config", {}).get("params", {})
    grid = r.get("config", {}).get("grid", {})
    extra = ", ".join(
        [f"{k}={v}" for k, v in sorted(params.items())]
        + [f"{k} in {{{', '.join(map(str, v))}}} on val" for k, v in sorted(grid.items()) if len(v) > 1]
    )
    opts = ", ".join(f"{k}={v}" for k, v in sorted(r.get("protocol_options", {}).items()))
    return " ".join(x for x in (f"**{r['model']}**", f"({extra})" if extra else "", f"[{opts}]" if opts else "") if x)


def table(records: list[dict[str, Any]], dataset: str, protocol: str) -> str:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["model"], config_id(r.get("config", {})), str(sorted(r.get("protocol_options", {}).items())))].append(r)
    classes = sorted({_class_of(r) for r in records} | {c for _, d, *_ in PUBLISHED.get((dataset, protocol), []) for c in d})
    head = ["method", *[str(c) for c in classes], "mean ± std (classes)", "seeds", "AUPRC", "F1", "fit s", "score s", "source"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, rs in sorted(groups.items()):
        per_class: dict[int, list[float]] = defaultdict(list)
        for r in rs:
            per_class[_class_of(r)].append(r["auroc"])
        cells = []
        for c in classes:
            v = per_class.get(c)
            if not v:
                cells.append("")
            elif len(v) == 1:
                cells.append(_fmt(v[0]))
            else:
                cells.append(f"{_fmt(np.mean(v))}±{np.std(v, ddof=1):.3f}")
        means = [np.mean(v) for v in per_class.values()]
        seeds = sorted({r["seed"] for r in rs})
        complete = "" if len(per_class) == len(classes) else f" ({len(per_class)} classes)"
        lines.append("| " + " | ".join([
            _label(rs[0]), *cells,
            f"**{_fmt(np.mean(means))}** ± {np.std(means):.3f}{complete}", str(len(seeds)),
            _fmt(np.mean([r["auprc"] for r in rs])), _fmt(np.mean([r["f1"] for r in rs])),
            f"{np.mean([r['fit_seconds'] for r in rs]):.1f}", f"{np.mean([r['score_seconds'] for r in rs]):.2f}",
            f"ours, {rs[0]['device'].split(':')[0]}, commit {rs[-1]['git_commit']}",
        ]) + " |")
    for label, per, mean, source in PUBLISHED.get((dataset, protocol), []):
        cells = [_fmt(per[c]) if c in per else "" for c in classes]
        lines.append("| " + " | ".join([label, *cells, _fmt(mean), "", "", "", "", "", f"published: {source}"]) + " |")
    for label, per, source in PEERS.get((dataset, protocol), []):
        cells = [_fmt(per[c]) if c in per else "" for c in classes]
        m = _fmt(np.mean(list(per.values()))) + ("" if len(per) == len(classes) else f" ({len(per)} classes)")
        lines.append("| " + " | ".join([label, *cells, m, "1", "", "", "", "", f"peer: {source}"]) + " |")
    return "\n".join(lines)


def parts_table(records: list[dict[str, Any]]) -> str:
    """Mean test AUROC of each stored score term (``part_auroc``) per (model, config):
    the papers' alternative scores and ablations of the same fitted models."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r.get("part_auroc"):
            groups[(r["model"], config_id(r.get("config", {})), str(sorted(r.get("protocol_options", {}).items())))].append(r)
    if not groups:
        return ""
    lines = ["| method | cells | score | score terms and variants (mean AUROC) |", "|---|---|---|---|"]
    for _, rs in sorted(groups.items()):
        names = sorted({k for r in rs for k in r["part_auroc"]})
        terms = ", ".join(
            f"{k} {_fmt(np.mean([r['part_auroc'][k] for r in rs if k in r['part_auroc']]))}" for k in names
        )
        lines.append(f"| {_label(rs[0])} | {len(rs)} | {_fmt(np.mean([r['auroc'] for r in rs]))} | {terms} |")
    return "\n".join(lines)


def speed_table(path: Path) -> str:
    """Throughput per (model, precision, threads) from ``benchmarks/speed.py`` records; the newest wins."""
    if not path.exists():
        return ""
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            rows[(r["model"], r["precision"], r["threads"])] = r
    if not rows:
        return ""
    lines = [
        "Measured by `python benchmarks/speed.py` (one run per row; the peaks are matmuls measured in the same run). "
        "GFLOP/s counts the training step's FLOPs (`torch.utils.flop_counter`).",
        "",
        "| model | width | precision | threads | train img/s | score img/s | train GFLOP/s | fp32 peak | bf16 peak | "
        "train / bf16 peak | AUROC class 0 | device | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (model, precision, threads), r in sorted(rows.items()):
        lines.append(
            f"| {model} | {r.get('width', '')} | {precision} | {threads} | {r['train_img_s']:.0f} | {r['score_img_s']:.0f} | "
            f"{r['train_gflop_s']:.1f} | {r['peak_fp32_gflop_s']:.0f} | {r['peak_bf16_gflop_s']:.0f} | "
            f"{r['train_gflop_s'] / r['peak_bf16_gflop_s']:.1%} | {_fmt(r.get('auroc'))} | {r['device']} | {r['commit']} |"
        )
    return "\n".join(lines)


def render(results_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> str:
    """Write ``RESULTS.md`` (default: beside the results folder) and return its text."""
    results_dir = Path(results_dir)
    records = list(all_records(results_dir))
    by_table: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_table[(r["dataset"], r["protocol"])].append(r)
    parts = [
        "# Benchmark results",
        "",
        "AUROC on the test split (anomaly = positive class), from the stored runs in "
        "`benchmarks/results/*.jsonl`; each row's command is in `benchmarks/README.md`. "
        "Hyper-parameters marked as a grid were chosen on the validation split "
        "(training-split images only), never on test labels. F1 is at the detector's "
        "own threshold: records written before 2026-12-01 took it as the 90% quantile of the "
        "in-sample training scores; later ones calibrate it on scores of held-out (neural models) "
        "or cross-fitted (classic models) training images.",
    ]
    for (dataset, protocol), rs in sorted(by_table.items()):
        parts += ["", f"## {dataset}, {protocol}", "", table(rs, dataset, protocol)]
        terms = parts_table(rs)
        if terms:
            parts += ["", "Score terms of the same fitted models (`score_parts`), mean test AUROC over the stored cells:", "", terms]
    speed = speed_table(results_dir / SPEED_STORE)
    if speed:
        parts += ["", "## Speed", "", speed]
    text = "\n".join(parts) + "\n"
    out_path = Path(out) if out else results_dir.parent / "RESULTS.md"
    out_path.write_text(text)
    return text
