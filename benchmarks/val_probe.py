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
from ganad.registry import create


def parse_params(pairs: list[str]) -> dict:
    out = {}
    for kv in pairs:
        k, v = kv.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


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
        rec = {"model": args.model, "class": klass, **params, "fit_s": round(fit_s, 1),
               **{f"val_auroc_{p}": round(metrics.roc_auc(split.val.y, v), 4)
                  for p, v in parts.items() if np.isfinite(v).all()}}
        print(json.dumps(rec), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
