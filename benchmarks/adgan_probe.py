"""ADGAN cost/quality probe on the *validation* split (never the test split).

Fits ADGAN generators for several WGAN epoch budgets on one Fashion-MNIST
class and scores a seeded subset of the one-class validation split (held-out
normals plus anomalies from the training split's other classes) with several
(n_seed, k, adapt) search settings, printing validation AUROC and time.
Used to pick the benchmark's training budget and search knobs without reading
test labels.

    OMP_NUM_THREADS=1 python benchmarks/adgan_probe.py --klass 0 --epochs 10 60 \
        --search 8,5,1 64,5,1 --val-images 300
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--klass", type=int, default=0)
    ap.add_argument("--epochs", type=int, nargs="+", default=[10, 60])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--search", nargs="+", default=["8,5,1", "64,5,1"],
                    help="n_seed,k,adapt triples")
    ap.add_argument("--val-images", type=int, default=300)
    ap.add_argument("--param", action="append", default=[], help="KEY=VALUE (floats/ints/str)")
    ap.add_argument("--out", default=None, help="append JSON lines here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    split = make_split("fashion-mnist", "one-class", normal_class=args.klass, random_state=0)
    idx = np.random.default_rng(0).choice(len(split.val), min(args.val_images, len(split.val)), replace=False)
    val_x, val_y = split.val.x[np.sort(idx)], split.val.y[np.sort(idx)]
    extra = {}
    for kv in args.param:
        k, v = kv.split("=", 1)
        try:
            extra[k] = json.loads(v)
        except json.JSONDecodeError:
            extra[k] = v
    for epochs in args.epochs:
        det = create("adgan", width=args.width, epochs=epochs, threshold_images=20,
                     random_state=0, **extra)
        t0 = time.perf_counter()
        det.fit(split.train.x)
        fit_s = time.perf_counter() - t0
        for spec in args.search:
            n_seed, k, adapt = (int(v) for v in spec.split(","))
            det.set_params(n_seed=n_seed, k=k, adapt_generator=bool(adapt))
            t0 = time.perf_counter()
            parts = det.score_parts(val_x)
            score_s = time.perf_counter() - t0
            rec = {"class": args.klass, "epochs": epochs, "width": args.width, **extra,
                   "n_seed": n_seed, "k": k, "adapt": bool(adapt), "fit_s": round(fit_s, 1),
                   "val_images": len(val_y), "score_img_per_s": round(len(val_y) / score_s, 2),
                   **{f"val_auroc_{p}": round(metrics.roc_auc(val_y, v), 4) for p, v in parts.items()}}
            print(json.dumps(rec), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
