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
import time

import numpy as np
import torch

from ganad.datasets import make_split
from ganad.registry import create
from val_probe import emit, parse_params, part_aurocs  # same folder (run as a script)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--klass", type=int, default=0)
    ap.add_argument("--epochs", type=int, nargs="+", default=[10, 60])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--search", nargs="+", default=["8,5,1", "64,5,1"],
                    help="n_seed,k,adapt triples")
    ap.add_argument("--val-images", type=int, default=300)
    ap.add_argument("--param", action="append", default=[], help="KEY=VALUE (as ganad bench --param)")
    ap.add_argument("--out", default=None, help="append JSON lines here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    split = make_split("fashion-mnist", "one-class", normal_class=args.klass, random_state=0)
    idx = np.random.default_rng(0).choice(len(split.val), min(args.val_images, len(split.val)), replace=False)
    val_x, val_y = split.val.x[np.sort(idx)], split.val.y[np.sort(idx)]
    extra = parse_params(args.param)
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
            emit({"class": args.klass, "epochs": epochs, "width": args.width, **extra,
                  "n_seed": n_seed, "k": k, "adapt": bool(adapt), "fit_s": round(fit_s, 1),
                  "val_images": len(val_y), "score_img_per_s": round(len(val_y) / score_s, 2),
                  **part_aurocs(val_y, parts)}, args.out)


if __name__ == "__main__":
    main()
