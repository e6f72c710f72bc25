"""The training-contamination summary table of benchmarks/README.md, from the store.

    python benchmarks/contamination_summary.py [--results benchmarks/results] [--dataset fashion-mnist]

Per model (seed 0, the unsupervised regime): the mean test AUROC per gamma over
the classes stored at gamma 0 and at the largest gamma stored (a middle gamma is
shown once it covers them all, so a row's columns compare the same classes), and
the drops from gamma = 0; rows sorted by the drop to the largest gamma.  RESULTS.md has the per-gamma tables over all
stored classes, the Berg-layout AUROCs and the plot.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from ganad.bench.provenance import record_section
from ganad.bench.store import ResultStore, latest_per_cell, store_path

GAMMAS = (0.0, 0.02, 0.05, 0.1)


def summary(results: str, dataset: str, seed: int = 0) -> list[dict]:
    auroc: dict[str, dict[tuple[int, float], float]] = defaultdict(dict)
    for r in latest_per_cell(ResultStore(store_path(results, dataset, "contamination")).records()):
        if r["seed"] == seed and record_section(r) == "unsupervised":
            auroc[r["model"]][(int(r["normal_class"]), float(r["gamma"]))] = float(r["auroc"])
    rows = []
    for model, cells in auroc.items():
        # the extremes fix the classes (the drop from gamma 0 to the largest is the study's
        # question); a middle gamma is shown only once it covers those classes
        stored = [g for g in GAMMAS if any(k[1] == g for k in cells)]
        if 0.0 not in stored:
            continue
        ends = [0.0] + ([max(stored)] if max(stored) > 0 else [])
        classes = sorted(c for c in range(10) if all((c, g) in cells for g in ends))
        if not classes:
            continue
        gammas = [g for g in stored if g in ends or all((c, g) in cells for c in classes)]
        mean = {g: float(np.mean([cells[(c, g)] for c in classes])) for g in gammas}
        rows.append({"model": model, "classes": classes, "mean": mean,
                     "drop": {g: mean[g] - mean[0.0] for g in gammas if g > 0}})
    return sorted(rows, key=lambda r: -(r["drop"][max(r["drop"])] if r["drop"] else 0.0))


def markdown(rows: list[dict]) -> str:
    lines = ["| model | classes | " + " | ".join(f"γ = {g:g}" for g in GAMMAS)
             + " | drop 0 -> 0.02 | drop 0 -> 0.1 |", "|---|---|" + "---|" * (len(GAMMAS) + 2)]
    for r in rows:
        cs = r["classes"]
        which = str(len(cs)) if len(cs) == 10 else f"{len(cs)} ({', '.join(map(str, cs))})"
        means = [f"{r['mean'][g]:.3f}" if g in r["mean"] else "" for g in GAMMAS]
        drops = [f"{r['drop'][g]:+.3f}" if g in r["drop"] else "" for g in (0.02, 0.1)]
        lines.append(f"| {r['model']} | {which} | " + " | ".join(means + drops) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="benchmarks/results")
    ap.add_argument("--dataset", default="fashion-mnist")
    args = ap.parse_args()
    print(markdown(summary(args.results, args.dataset)))


if __name__ == "__main__":
    main()
