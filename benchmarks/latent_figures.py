"""Berg et al. 2019's latent-space figures (section 4.2.1, Figs. 2-3) for berg and fanogan.

For each model and training contamination gamma: fit the model's benchmark
configuration (``ganad.bench.configs.params_for``) on the contamination split of
one Fashion-MNIST class (protocol "contamination", Berg et al. section 4.1.2;
gamma 0 is the one-class training set), encode the validation and test images
(z_hat = E(x), eval mode) and write, per split part,

* ``<model>_class<c>_gamma<g>_<part>_tsne.png``: t-SNE of the codes, perplexity 30,
  at most 2,000 codes (a seeded subsample stratified by label), as Fig. 2;
* ``<model>_class<c>_gamma<g>_<part>_norm.png``: ||z_hat||_2 of normals vs anomalies,
  with the AUROC of -||z_hat|| (the ranking of L_o, Eq. 4) in the title (Fig. 3
  plots the code coefficients; the norm is what L_o scores);

and appends a line per (model, gamma, part) to ``summary.jsonl`` (AUROC of -||z||, mean
norms, fit time).  The paper's figures are of KTH-Cellvideos validation images
(and a 512-channel pGAN); these are Fashion-MNIST at the CPU benchmark widths.

    OMP_NUM_THREADS=1 python benchmarks/latent_figures.py --normal 0 --gammas 0 0.02 \\
        --out benchmarks/figures/latent
    python benchmarks/latent_figures.py --tiny --out /tmp/latent-smoke     # a smoke run (tiny nets, ~1 min)

The full run fits berg (~6 min per fit on one thread at the benchmark setting)
and fanogan once per gamma.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ganad import metrics
from ganad.bench.configs import params_for
from ganad.datasets import make_split
from ganad.registry import create
from ganad.report.latent import encode, norm_histogram_png, tsne_png

#: --tiny: nets and data small enough for a smoke run of the whole script
TINY_PARAMS = {
    "berg": {"width": 8, "nz": 8, "batch_size": 16, "images_per_stage": 16, "epochs": 1, "device": "cpu"},
    "fanogan": {"width": 8, "nz": 8, "batch_size": 32, "epochs": 1, "encoder_epochs": 1, "device": "cpu"},
}
TINY_IMAGES = 300  # --tiny: training, validation and test images per part (seeded subsets)
TINY_TSNE_POINTS = 150


def _cap(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subset of at most ``n`` images (all when ``n`` is None)."""
    if n is None or len(y) <= n:
        return x, y
    idx = np.sort(np.random.default_rng([seed, 0x1A7]).choice(len(y), size=n, replace=False))
    return x[idx], y[idx]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["berg", "fanogan"])
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--normal", type=int, default=0, help="the normal class c")
    ap.add_argument("--gammas", type=float, nargs="+", default=[0.0, 0.02], help="training contamination shares")
    ap.add_argument("--parts", nargs="+", default=["val", "test"], choices=["val", "test"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perplexity", type=float, default=30.0)
    ap.add_argument("--out", default="benchmarks/figures/latent")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--tiny", action="store_true",
                    help=f"smoke run: tiny nets, {TINY_IMAGES} images per part, t-SNE of {TINY_TSNE_POINTS} codes")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cap = TINY_IMAGES if args.tiny else None
    for gamma in args.gammas:
        split = make_split(args.data, "contamination", normal_class=args.normal, gamma=gamma, random_state=args.seed,
                           train_subset=cap, test_subset=cap)
        for model in args.models:
            tiny = TINY_PARAMS.get(model, {}) if args.tiny else {}
            params = {**params_for(model), **tiny, "random_state": args.seed}
            det = create(model, **params)
            t0 = time.perf_counter()
            det.fit(split.train.x)
            fit_s = time.perf_counter() - t0
            for part in args.parts:
                sub = getattr(split, part)
                x, y = _cap(sub.x, sub.y, cap, args.seed)
                codes = encode(det, x)
                stem = f"{model}_class{args.normal}_gamma{gamma:g}_{part}"
                what = f"{model}, {args.data} class {args.normal}, gamma {gamma:g}, {part}"
                tsne_png(codes, y, out / f"{stem}_tsne.png", title=f"t-SNE of z_hat = E(x): {what}",
                         perplexity=args.perplexity, random_state=args.seed,
                         max_points=TINY_TSNE_POINTS if args.tiny else None)
                norm_histogram_png(codes, y, out / f"{stem}_norm.png", title=f"||z_hat||_2: {what}")
                norms = np.linalg.norm(codes.astype(np.float64), axis=1)
                rec = {"model": model, "data": args.data, "normal_class": args.normal, "gamma": gamma, "part": part,
                       "seed": args.seed, "tiny": bool(args.tiny), "n": len(y), "n_anomalous": int(y.sum()),
                       "nz": int(codes.shape[1]), "auroc_neg_norm": round(metrics.roc_auc(y, -norms), 4),
                       "mean_norm_normal": round(float(norms[y == 0].mean()), 4),
                       "mean_norm_anomalous": round(float(norms[y == 1].mean()), 4),
                       "fit_s": round(fit_s, 1), "params": params, "figures": [f"{stem}_tsne.png", f"{stem}_norm.png"]}
                print(json.dumps(rec), flush=True)
                with open(out / "summary.jsonl", "a") as fh:
                    fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
