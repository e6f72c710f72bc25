"""Validation-only probe: fit one detector configuration on a one-class split and
print the *validation* AUROC of each score part (the test split is never read).

Used to choose benchmark settings and grids (benchmarks/README.md) without
test labels:

    OMP_NUM_THREADS=1 python benchmarks/val_probe.py skipganomaly --classes 0 6 8 \
        --param width=32 --param epochs=1 --out benchmarks/probes/skip.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from ganad import metrics
from ganad.datasets import make_split
from ganad.bench.runner import parse_value
from ganad.registry import create


def parse_params(pairs: list[str]) -> dict:
    """KEY=VALUE pairs, values parsed as ``ganad bench --param`` parses them."""
    return {k: parse_value(v) for k, v in (kv.split("=", 1) for kv in pairs)}


def part_aurocs(y: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, float]:
    """Validation AUROC of every finite score part, keyed ``val_auroc_<part>``."""
    return {f"val_auroc_{p}": round(metrics.roc_auc(y, v), 4) for p, v in parts.items() if np.isfinite(v).all()}


def emit(rec: dict, out: str | None) -> None:
    """Print a probe record and append it to ``out`` (JSON lines) when given."""
    print(json.dumps(rec), flush=True)
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--classes", type=int, nargs="+", default=[0])
    ap.add_argument("--param", action="append", default=[], help="KEY=VALUE (JSON values)")
    ap.add_argument("--out", default=None, help="append one JSON line per class here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = parse_params(args.param)
    for klass in args.classes:
        split = make_split("fashion-mnist", "one-class", normal_class=klass, random_state=0)
        det = create(args.model, random_state=0, **params)
        t0 = time.perf_counter()
        det.fit(split.train.x)
        fit_s = time.perf_counter() - t0
        parts = det.score_parts(split.val.x)
        emit({"model": args.model, "class": klass, **params, "fit_s": round(fit_s, 1),
              **part_aurocs(split.val.y, parts)}, args.out)


if __name__ == "__main__":
    main()
