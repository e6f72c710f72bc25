"""Render the result store as Markdown tables beside published and peer numbers.

Per (dataset, protocol), one table per selection regime
(:mod:`ganad.bench.provenance`):

1. unsupervised (selection ``none`` / ``normal-only``): the headline, the only
   table beside the published unsupervised rows and the peer rows;
2. semi-supervised (``labelled:K``: a grid chosen on K labelled validation
   anomalies), beside the published rows of that regime;
3. test-informed (configurations settled after reading test AUROCs): never a
   headline.

one-class / one-anomalous tables: a row per (model, config, protocol options,
regime), a column per class with the mean AUROC over seeds (± the std over
seeds when there are several), then the mean over classes ± the std over
classes, the seed count, mean AUPRC and F1, and the mean fit/score seconds.
contamination: mean AUROC over the classes present per gamma, on the full
test split and on Berg et al.'s section 4.1.1 layout, and the drop from
gamma = 0.  ood: mean AUROC per out-of-distribution set.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .provenance import TEST_INFORMED, informed_rules, record_section, record_selection
from .store import SPEED_STORE, all_records, config_id
from .targets import PEERS, PUBLISHED, published_regime, published_section

SECTIONS = ("unsupervised", "semi-supervised", "test-informed")
TITLES = {
    "unsupervised": "Unsupervised (selection none / normal-only): the headline",
    "semi-supervised": "Semi-supervised (selection labelled:K)",
    "test-informed": "Test-informed (not a headline)",
}
NOTES = {
    "unsupervised": "Declared configurations: no validation anomaly was read (early stopping on held-out normal "
                    "training images counts as none). Published rows: papers that did not select on anomalies.",
    "semi-supervised": "Grids chosen on the validation AUROC of K labelled anomalies drawn from the training split "
                       "(the selection column gives K).",
    "test-informed": "Configurations settled after reading test AUROCs of earlier runs (the selection column says "
                     "which); shown for the record, not comparable with the tables above.",
}


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def _class_of(r: dict[str, Any]) -> int:
    return int(r["anomalous_class"] if r["protocol"] == "one-anomalous" else r["normal_class"])


def _options(r: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: v for k, v in (r.get("protocol_options", {}) or {}).items() if k not in drop}


def _label(r: dict[str, Any], drop: tuple[str, ...] = ()) -> str:
    params = r.get("config", {}).get("params", {})
    grid = r.get("config", {}).get("grid", {})
    extra = ", ".join(
        [f"{k}={v}" for k, v in sorted(params.items())]
        + [f"{k} in {{{', '.join(map(str, v))}}} on val" for k, v in sorted(grid.items()) if len(v) > 1]
    )
    opts = ", ".join(f"{k}={v}" for k, v in sorted(_options(r, drop).items()))
    return " ".join(x for x in (f"**{r['model']}**", f"({extra})" if extra else "", f"[{opts}]" if opts else "") if x)


def _selection_cell(r: dict[str, Any]) -> str:
    """The row's regime, and why it is test-informed when it is."""
    why = [rule.why for rule in informed_rules(str(r["model"]), r.get("config", {}) or {})]
    if r.get("test_informed") and not why:
        why = ["flagged test_informed"]
    return record_selection(r) + (f"; test-informed: {'; '.join(why)}" if why else "")


def _group_key(r: dict[str, Any], drop: tuple[str, ...] = ()) -> tuple:
    return (r["model"], config_id(r.get("config", {})), json.dumps(_options(r, drop), sort_keys=True, default=str),
            record_selection(r))


def _groups(records: list[dict[str, Any]], drop: tuple[str, ...] = ()) -> list[list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[_group_key(r, drop)].append(r)
    return [rs for _, rs in sorted(groups.items())]


def table(records: list[dict[str, Any]], dataset: str, protocol: str, section: str = "unsupervised") -> str:
    """The per-class table of ``records`` (all of them: the caller picks the section's),
    with the published rows of ``section`` and, for the unsupervised section, the peer rows."""
    published = [p for p in PUBLISHED.get((dataset, protocol), []) if published_section(p[0]) == section]
    peers = PEERS.get((dataset, protocol), []) if section == "unsupervised" else []
    classes = sorted({_class_of(r) for r in records} | {c for _, d, *_ in published for c in d}
                     | {c for _, d, _ in peers for c in d})
    head = ["method", "selection", *[str(c) for c in classes], "mean ± std (classes)", "seeds", "updates",
            "AUPRC", "F1", "fit s", "score s", "source"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rs in _groups(records):
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
            _label(rs[0]), _selection_cell(rs[0]), *cells,
            f"**{_fmt(np.mean(means))}** ± {np.std(means):.3f}{complete}", str(len(seeds)), updates_cell(rs),
            _fmt(np.mean([r["auprc"] for r in rs])), _fmt(np.mean([r["f1"] for r in rs])),
            f"{np.mean([r['fit_seconds'] for r in rs]):.1f}", f"{np.mean([r['score_seconds'] for r in rs]):.2f}",
            _source(rs),
        ]) + " |")
    for label, per, mean, source in published:
        cells = [_fmt(per[c]) if c in per else "" for c in classes]
        lines.append("| " + " | ".join([label, published_regime(label), *cells, _fmt(mean), "", "", "", "", "", "",
                                        f"published: {source}"]) + " |")
    for label, per, source in peers:
        cells = [_fmt(per[c]) if c in per else "" for c in classes]
        m = _fmt(np.mean(list(per.values()))) + ("" if len(per) == len(classes) else f" ({len(per)} classes)")
        lines.append("| " + " | ".join([label, "none", *cells, m, "1", "", "", "", "", "", f"peer: {source}"]) + " |")
    return "\n".join(lines)


def _source(rs: list[dict[str, Any]]) -> str:
    """Where a row's cells come from: the device, the commit(s) that fitted them, and how many
    were recorded from their contamination gamma-0 twin (:mod:`ganad.bench.twins`)."""
    commits = list(dict.fromkeys(str(r["git_commit"]) for r in rs))
    text = f"ours, {rs[0]['device'].split(':')[0]}, commit {commits[-1]}"
    if len(commits) > 1:
        text += f" and {len(commits) - 1} earlier"
    twins = sum(1 for r in rs if r.get("same_fit_as"))
    return text + (f"; {twins} of {len(rs)} cells shared with contamination γ = 0" if twins else "")


def updates_cell(rs: list[dict[str, Any]]) -> str:
    """The optimiser steps per network of a row's fits (median over its records, "opt_"
    dropped: "g 420, d 420"); "n/r" when no record stored them (runs before they were
    counted), "(k of n cells)" when only some did, "" for models without a training loop."""
    counted = [r["updates"] for r in rs if r.get("updates")]
    if not counted:
        return "" if all("updates" in r for r in rs) else "n/r"
    names = list(dict.fromkeys(k for u in counted for k in u))
    med = {k: int(np.median([u.get(k, 0) for u in counted])) for k in names}
    text = ", ".join(f"{k.replace('opt_', '').replace('/opt', '') or k} {v}" for k, v in med.items())
    return text + (f" ({len(counted)} of {len(rs)} cells)" if len(counted) < len(rs) else "")


def _gamma(r: dict[str, Any]) -> float | None:
    g = r.get("gamma", (r.get("protocol_options", {}) or {}).get("gamma"))
    return None if g is None else float(g)


def _per_gamma_class(rs: list[dict[str, Any]], key: str) -> dict[float, dict[int, float]]:
    """gamma -> class -> mean of ``key`` over seeds."""
    acc: dict[float, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rs:
        g, v = _gamma(r), r.get(key)
        if g is not None and v is not None and np.isfinite(v):
            acc[g][int(r["normal_class"])].append(float(v))
    return {g: {c: float(np.mean(v)) for c, v in per.items()} for g, per in acc.items()}


def contamination_tables(records: list[dict[str, Any]]) -> str:
    """Berg et al. section 4.1.2: rows (model, config), columns gamma; a cell is the mean
    AUROC over the classes present (their count in brackets), on the full test split and
    on Berg et al.'s section 4.1.1 layout; then the drop from gamma = 0, over the classes
    present at both gammas."""
    groups = _groups(records, drop=("gamma",))
    gammas = sorted({g for r in records if (g := _gamma(r)) is not None})
    if not groups or not gammas:
        return ""
    out = []
    tables = {"auroc": "Full test split (every other class anomalous):",
              "auroc_berg_layout": "Berg et al. section 4.1.1 layout (the class's test images plus as many random "
                                   "other-class test images, seeded by the cell seed), same scores:"}
    data = {key: [(rs, _per_gamma_class(rs, key)) for rs in groups] for key in tables}
    for key, title in tables.items():
        if not any(per for _, per in data[key]):
            continue
        head = ["method", "selection", *[f"γ = {g:g}" for g in gammas], "seeds"]
        lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for rs, per in data[key]:
            cells = [f"{np.mean(list(per[g].values())):.3f} ({len(per[g])})" if per.get(g) else "" for g in gammas]
            lines.append("| " + " | ".join([_label(rs[0], ("gamma",)), _selection_cell(rs[0]), *cells,
                                            str(len({r['seed'] for r in rs}))]) + " |")
        out.append("\n".join(lines))
    later = [g for g in gammas if g > 0]
    if 0.0 in gammas and later:
        head = ["method", "selection", *[f"γ = {g:g}" for g in later]]
        lines = [("Drop from γ = 0 (AUROC at γ minus AUROC at 0, mean over the classes present at both; "
                  "full test split / Berg layout, class count in brackets):"), "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for (rs, full), (_, berg) in zip(data["auroc"], data["auroc_berg_layout"]):
            cells = []
            for g in later:
                parts = []
                for per in (full, berg):
                    common = sorted(set(per.get(0.0, {})) & set(per.get(g, {})))
                    parts.append((np.mean([per[g][c] - per[0.0][c] for c in common]), len(common)) if common else None)
                if parts[0] is None:
                    cells.append("")
                    continue
                berg_text = f"{parts[1][0]:+.3f}" if parts[1] is not None else "n/a"
                cells.append(f"{parts[0][0]:+.3f} / {berg_text} ({parts[0][1]})")
            lines.append("| " + " | ".join([_label(rs[0], ("gamma",)), _selection_cell(rs[0]), *cells]) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _other(r: dict[str, Any]) -> str:
    return str(r.get("other", (r.get("protocol_options", {}) or {}).get("other")))


def ood_table(records: list[dict[str, Any]]) -> str:
    """AMA Table 1 setting: rows (model, config), columns out-of-distribution set; a cell is
    the mean test AUROC over seeds (± the std over seeds when there are several).  Under
    each row, its A-score row: the same fit's score made two-sided by the Gaussian of
    its held-out normal scores (``auroc_typical``)."""
    groups = _groups(records, drop=("other",))
    cols = sorted({_other(r) for r in records})
    if not groups:
        return ""
    head = ["method", "selection", *[f"vs {c}" for c in cols], "seeds", "n test"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rs in groups:
        n_test = sorted({int(r["n_test"]) for r in rs if r.get("n_test") is not None})
        tail = [str(len({r["seed"] for r in rs})), "/".join(map(str, n_test))]
        for key, suffix in (("auroc", ""), ("auroc_typical", " A-score")):
            cells = []
            for c in cols:
                v = [float(r[key]) for r in rs if _other(r) == c and r.get(key) is not None]
                cells.append("" if not v else _fmt(v[0]) if len(v) == 1 else f"{np.mean(v):.3f}±{np.std(v, ddof=1):.3f}")
            if key == "auroc" or any(cells):
                lines.append("| " + " | ".join([_label(rs[0], ("other",)) + suffix, _selection_cell(rs[0]), *cells,
                                                *tail]) + " |")
    return "\n".join(lines)


def parts_table(records: list[dict[str, Any]]) -> str:
    """Mean test AUROC of each stored score term (``part_auroc``) per (model, config):
    the papers' alternative scores and ablations of the same fitted models."""
    with_parts = [r for r in records if r.get("part_auroc")]
    if not with_parts:
        return ""
    lines = ["| method | selection | cells | score | score terms and variants (mean AUROC) |", "|---|---|---|---|---|"]
    for rs in _groups(with_parts):
        names = sorted({k for r in rs for k in r["part_auroc"]})
        terms = ", ".join(
            f"{k} {_fmt(np.mean([r['part_auroc'][k] for r in rs if k in r['part_auroc']]))}" for k in names
        )
        lines.append(f"| {_label(rs[0])} | {_selection_cell(rs[0])} | {len(rs)} | "
                     f"{_fmt(np.mean([r['auroc'] for r in rs]))} | {terms} |")
    return "\n".join(lines)


def speed_table(path: Path) -> str:
    """Throughput per (model, width, precision, threads, scoring only or not) from
    ``benchmarks/speed.py`` records; the newest wins."""
    if not path.exists():
        return ""
    rows: dict[tuple[str, int, str, int, bool], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            rows[(r["model"], int(r.get("width") or 0), r["precision"], r["threads"], r.get("train_img_s") is None)] = r
    if not rows:
        return ""

    def num(v: float | None, fmt: str) -> str:
        return "" if v is None else format(v, fmt)

    lines = [
        "Measured by `python benchmarks/speed.py` (one run per row; the peaks are matmuls measured in the same run). "
        "GFLOP/s counts the training step's FLOPs (`torch.utils.flop_counter`); load: the 1-minute load average "
        "at the end of the row's run (2 = both cores busy).",
        "",
        "| model | width | precision | threads | train img/s | score img/s | train GFLOP/s | fp32 peak | bf16 peak | "
        "train / bf16 peak | AUROC class 0 | load | device | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (model, width, precision, threads, _), r in sorted(rows.items()):
        gf = r.get("train_gflop_s")
        share = "" if gf is None else f"{gf / r['peak_bf16_gflop_s']:.1%}"
        lines.append(
            f"| {model} | {width or ''} | {precision} | {threads} | {num(r.get('train_img_s'), '.0f')} | "
            f"{r['score_img_s']:.0f} | {num(gf, '.1f')} | {r['peak_fp32_gflop_s']:.0f} | {r['peak_bf16_gflop_s']:.0f} | "
            f"{share} | {_fmt(r.get('auroc'))} | "
            f"{num(r.get('loadavg_1m'), '.1f')} | {r['device']} | {r['commit']} |"
        )
    return "\n".join(lines)


def contamination_figure(records: list[dict[str, Any]], folder: Path, dataset: str) -> Path | None:
    """AUROC against gamma, a line per model (the report module's plot), written to
    ``folder/contamination-<dataset>.png`` for RESULTS.md; None without gamma records."""
    from ..report.bench_report import contamination_png

    return contamination_png(records, folder / f"contamination-{dataset}.png",
                             f"{dataset}: AUROC against training contamination")


def _section_body(rs: list[dict[str, Any]], dataset: str, protocol: str, section: str) -> str:
    if protocol == "contamination":
        return contamination_tables(rs) if rs else ""
    if protocol == "ood":
        return ood_table(rs) if rs else ""
    has_reference = any(published_section(p[0]) == section for p in PUBLISHED.get((dataset, protocol), [])) or (
        section == "unsupervised" and PEERS.get((dataset, protocol)))
    return table(rs, dataset, protocol, section) if rs or has_reference else ""


INTRO = (
    "AUROC on the test split (anomaly = positive class), from the stored runs in "
    "`benchmarks/results/*.jsonl`; each row's command is in `benchmarks/README.md`. "
    "Each (dataset, protocol) has one table per selection regime (the `selection` column): "
    "**unsupervised** (`none`: the declared configuration, no validation anomaly read; `normal-only`: "
    "chosen on normal data only) is the headline and the only table beside the published unsupervised "
    "rows and the peers; **semi-supervised** (`labelled:K`: grids chosen on the validation AUROC of K "
    "labelled anomalies drawn from the training split, never on test labels); **test-informed** "
    "configurations (settled after reading test AUROCs: {rules}) are never in a headline table. "
    "Records written before the regime was stored are read as `labelled:<validation anomalies>` when "
    "their config searched a grid on a validation split with anomalies (one-class: as many anomalies as "
    "held-out normals, 600 for Fashion-MNIST), else `none`. F1 is at the detector's "
    "own threshold: records written before 2026-12-01 took it as the 90% quantile of the "
    "in-sample training scores; later ones calibrate it on scores of held-out (neural models) "
    "or cross-fitted (classic models) training images. An unsupervised one-class cell whose source says "
    "\"shared with contamination γ = 0\" is the same fit as that contamination cell: with no validation "
    "anomaly drawn the two splits hold the same images (`ganad.bench.twins`). A cell run again "
    "(`ganad bench --refresh`) shows its last record."
)


def render(results_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> str:
    """Write ``RESULTS.md`` (default: beside the results folder) and return its text."""
    results_dir = Path(results_dir)
    records = list(all_records(results_dir))
    by_table: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_table[(r["dataset"], r["protocol"])].append(r)
    rules = "; ".join(f"{rule.model}: {rule.why}" for rule in sorted(TEST_INFORMED, key=lambda x: (x.model, x.why)))
    parts = ["# Benchmark results", "", INTRO.format(rules=rules)]
    out_path = Path(out) if out else results_dir.parent / "RESULTS.md"
    for (dataset, protocol), rs in sorted(by_table.items()):
        parts += ["", f"## {dataset}, {protocol}"]
        by_section: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rs:
            by_section[record_section(r)].append(r)
        for section in SECTIONS:
            body = _section_body(by_section.get(section, []), dataset, protocol, section)
            if body:
                n = len(by_section.get(section, []))
                parts += ["", f"### {TITLES[section]}", "", f"{NOTES[section]} Stored cells: {n}.", "", body]
        if protocol == "contamination":
            png = contamination_figure(rs, out_path.parent, dataset)
            if png is not None:
                parts += ["", f"![{dataset}: AUROC against the training contamination gamma]({png.name})"]
        terms = parts_table(rs)
        if terms:
            parts += ["", "Score terms of the same fitted models (`score_parts`), mean test AUROC over the stored cells:", "", terms]
    speed = speed_table(results_dir / SPEED_STORE)
    if speed:
        parts += ["", "## Speed", "", speed]
    text = "\n".join(parts) + "\n"
    out_path.write_text(text)
    return text
