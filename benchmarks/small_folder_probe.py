"""Small folders, the CLI's use case: every model at its defaults, trained on a few hundred images.

Cells are (dataset, normal class, n_train):

* Fashion-MNIST: ``n_train`` images of the normal class drawn (seeded) from the
  training split; scored on 100 normals + 100 images of the other classes drawn
  from the *test* split;
* scikit-learn digits: the one-class protocol's training split of the class
  (~80 images; ``datasets.digits(protocol="one-class", normal_class=c)``),
  scored on its whole test split (~89 normals, ~810 others).

``--split val`` measures on a validation set instead, never reading the test
split: Fashion-MNIST: ``n_train`` normals + 100 *other* held-out normals of the
training split + 100 training images of the other classes; digits: the
class's training images minus 20 held-out normals, + 80 training images of the
other digits.  Choices of defaults are made on ``--split val``; the test
numbers are reported, not selected on.

Each (model config, cell) appends one JSON line to ``--out`` with the AUROC of
``score`` and of every ``score_parts`` term, fit and scoring seconds and the
number of optimisation steps; cells already stored are skipped (reruns resume).

    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/small_folder_probe.py > /tmp/small_probe.log 2>&1 &
    .venv/bin/python benchmarks/small_folder_probe.py --table      # the README table from the store
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ganad
from ganad import datasets, metrics

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "probes" / "small-folder.jsonl"

# (label, registry name, params): defaults unless stated.  GANomaly's default trains at
# least min_steps = 150 steps; "-s0" trains exactly ``epochs`` (15, or 3 with "-e3");
# "-before" also leaves the BatchNorm statistics as training's running averages: the
# code before the fix, kept as a diagnostic.
CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("ganomaly", "ganomaly", {}),
    ("ganomaly-s0", "ganomaly", {"min_steps": 0}),
    ("ganomaly-e3-s0", "ganomaly", {"epochs": 3, "min_steps": 0}),
    ("ganomaly-before", "ganomaly", {"min_steps": 0}),
    ("ganomaly-e3-before", "ganomaly", {"epochs": 3, "min_steps": 0}),
    ("skipganomaly", "skipganomaly", {}),
    ("dcae", "dcae", {}),
    ("vae", "vae", {}),
    ("deepsvdd", "deepsvdd", {}),
    ("egbad", "egbad", {}),
    ("ocsvm", "ocsvm", {}),
    ("kde", "kde", {}),
    ("iforest", "iforest", {}),
    ("gmm", "gmm", {}),
]

FMNIST_CLASSES = (0, 1, 7, 8)
FMNIST_SIZES = (200, 1000)
DIGITS_CLASSES = (0, 3, 7)
N_EVAL = 100  # Fashion-MNIST: normals and others each
# configs that equal another one on large cells (15 epochs of >= 700 images make >= 150 steps)
SAME_AS_DEFAULT_FROM = {"ganomaly-s0": 700}


def cells(fm_classes=FMNIST_CLASSES, sizes=FMNIST_SIZES, digit_classes=DIGITS_CLASSES) -> list[tuple[str, int, int | None]]:
    out: list[tuple[str, int, int | None]] = [("digits", c, None) for c in digit_classes]
    out += [("fashion-mnist", c, n) for n in sizes for c in fm_classes]
    return out


_ARRAYS: dict[str, Any] = {}


def _arrays(name: str):
    if name not in _ARRAYS:
        _ARRAYS[name] = datasets.load_arrays(name)
    return _ARRAYS[name]


def make_cell(dataset: str, c: int, n_train: int | None, split: str, seed: int = 0):
    """(x_train, x_eval, y_eval) with y = 1 for anomalies."""
    if dataset == "digits":
        if split == "test":
            s = datasets.digits(protocol="one-class", normal_class=c, random_state=seed)
            return s.train.x, s.test.x, s.test.y
        x_tr, y_tr, _, _ = _arrays("digits")
        rng = np.random.default_rng([seed, c, 0xD161])
        norm = rng.permutation(np.flatnonzero(y_tr == c))
        others = rng.choice(np.flatnonzero(y_tr != c), 80, replace=False)
        x_ev = np.concatenate([x_tr[norm[:20]], x_tr[others]])
        return x_tr[norm[20:]], x_ev, np.r_[np.zeros(20), np.ones(80)].astype(np.int64)
    x_tr, y_tr, x_te, y_te = _arrays(dataset)
    rng = np.random.default_rng([seed, c, int(n_train)])
    norm = rng.permutation(np.flatnonzero(y_tr == c))
    train = x_tr[np.sort(norm[:n_train])]
    if split == "test":
        a = rng.choice(np.flatnonzero(y_te == c), N_EVAL, replace=False)
        b = rng.choice(np.flatnonzero(y_te != c), N_EVAL, replace=False)
        x_ev = np.concatenate([x_te[a], x_te[b]])
    else:  # held-out normals and other classes, all from the training split
        rng_v = np.random.default_rng([seed, c, int(n_train), 0x7A1])
        b = rng_v.choice(np.flatnonzero(y_tr != c), N_EVAL, replace=False)
        x_ev = np.concatenate([x_tr[norm[n_train : n_train + N_EVAL]], x_tr[b]])
    return train, x_ev, np.r_[np.zeros(N_EVAL), np.ones(N_EVAL)].astype(np.int64)


def _git() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, timeout=5, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=HERE, capture_output=True, text=True, timeout=5, check=False)
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except Exception:  # noqa: BLE001
        return "unknown"


def _key(r: dict[str, Any]) -> tuple:
    return (r["label"], json.dumps(r["params"], sort_keys=True), r["dataset"], r["normal_class"], r["n_train"],
            r["seed"], r["split"])


def stored(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_one(label: str, name: str, params: dict[str, Any], dataset: str, c: int, n_train: int | None, split: str,
            seed: int) -> dict[str, Any]:
    x_train, x_ev, y_ev = make_cell(dataset, c, n_train, split, seed)
    kw: dict[str, Any] = dict(params, random_state=seed)
    cls = ganad.registry.get_class(name)
    if "device" in cls._param_names():
        kw["device"] = "cpu"
    det = ganad.create(name, **kw)
    if label.endswith("-before"):
        det._recompute_bn_stats = lambda x: None  # the behaviour before the fix
    t0 = time.perf_counter()
    det.fit(x_train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    parts = det.score_parts(x_ev)
    score_s = time.perf_counter() - t0
    hist = getattr(det, "history_", None)
    n_fit = _n_fit(det, x_train)
    steps = None  # optimisation steps of the (last) training phase
    if hist is not None and getattr(hist, "images", 0):
        steps = int(round(hist.images / min(int(det.get_params().get("batch_size", 1)), n_fit)))
    return {
        "label": label, "model": name, "params": params, "dataset": dataset, "normal_class": c,
        "n_train": len(x_train) if n_train is None else int(n_train), "n_fit": n_fit,
        "seed": seed, "split": split, "n_eval": len(y_ev), "n_eval_anomalous": int(y_ev.sum()),
        "auroc": round(metrics.roc_auc(y_ev, parts["score"]), 4),
        "part_auroc": {k: round(metrics.roc_auc(y_ev, v), 4) for k, v in parts.items() if np.isfinite(v).all()},
        "fit_s": round(fit_s, 2), "score_s": round(score_s, 2), "steps": steps,
        "threads": torch.get_num_threads(), "loadavg_1m": round(os.getloadavg()[0], 2), "git": _git(),
        "torch": torch.__version__,
    }


def _n_fit(det: Any, x: np.ndarray) -> int:
    try:
        return len(det._calibration_split(x)[0])
    except Exception:  # noqa: BLE001 - detectors without a calibration hold-out
        return len(x)


def table(records: list[dict[str, Any]], split: str = "test") -> str:
    recs = [r for r in records if r["split"] == split]
    labels = [lab for lab, _, _ in CONFIGS if any(r["label"] == lab for r in recs)]
    groups = [("digits", None), ("fashion-mnist", 200), ("fashion-mnist", 1000)]
    head = "| model | digits (3 classes) | F-MNIST 200 (4) | F-MNIST 1000 (4) | all cells | min | fit s (200 / 1000) |"
    lines = [head, "|" + "---|" * 7]
    for lab in labels:
        mine = [r for r in recs if r["label"] == lab]
        cols = []
        for ds, n in groups:
            v = [r["auroc"] for r in mine if r["dataset"] == ds and (n is None or r["n_train"] == n)]
            cols.append(f"{np.mean(v):.3f}" if v else "")
        allv = [r["auroc"] for r in mine]
        fits = [np.mean([r["fit_s"] for r in mine if r["dataset"] == "fashion-mnist" and r["n_train"] == n] or [np.nan])
                for n in (200, 1000)]
        lines.append(f"| {lab} | {' | '.join(cols)} | {np.mean(allv):.3f} ({len(allv)}) | {np.min(allv):.3f} | "
                     f"{fits[0]:.1f} / {fits[1]:.1f} |")
    return "\n".join(lines)


def per_cell(records: list[dict[str, Any]], split: str = "test") -> str:
    recs = [r for r in records if r["split"] == split]
    labels = [lab for lab, _, _ in CONFIGS if any(r["label"] == lab for r in recs)]
    cl = sorted({(r["dataset"], r["n_train"] if r["dataset"] != "digits" else 0, r["normal_class"]) for r in recs})
    names = [f"{'D' if d == 'digits' else 'F'}{c}" + ("" if d == "digits" else f"/{n}") for d, n, c in cl]
    lines = ["| model | " + " | ".join(names) + " |", "|" + "---|" * (len(cl) + 1)]
    for lab in labels:
        row = []
        for d, n, c in cl:
            v = [r["auroc"] for r in recs if r["label"] == lab and r["dataset"] == d and r["normal_class"] == c
                 and (d == "digits" or r["n_train"] == n)]
            row.append(f"{v[0]:.2f}" if v else "")
        lines.append(f"| {lab} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def trace_steps(dataset: str, c: int, n_train: int | None, split: str, seed: int, checkpoints: list[int],
                out: Path, params: dict[str, Any] | None = None) -> None:
    """GANomaly's part AUROCs after each of ``checkpoints`` optimisation steps of one fit,
    scored with training's running BatchNorm averages ("ema") and with the statistics
    recomputed under the current weights ("precise", what ``fit`` now ends with)."""
    from scipy.stats import spearmanr

    from ganad.models.ganomaly import GANomaly

    x_train, x_ev, y_ev = make_cell(dataset, c, n_train, split, seed)
    ink = x_ev.reshape(len(x_ev), -1).mean(1)
    params = dict(params or {})
    want = sorted(set(checkpoints))

    class Traced(GANomaly):
        def _train(self, x):
            self._probe_x = x  # the fitted images (after the calibration hold-out)
            super()._train(x)

        def _step(self, g, d, opt_g, opt_d):
            step, x = super()._step(g, d, opt_g, opt_d), self._probe_x
            done = [0]

            def probe() -> None:
                saved = {k: v.clone() for k, v in self.nets_.state_dict().items()}
                rec: dict[str, Any] = {"kind": "steps", "dataset": dataset, "normal_class": c, "seed": seed,
                                       "split": split, "n_train": len(x_train), "n_fit": len(x),
                                       "params": params, "step": done[0]}
                for mode in ("ema", "precise"):
                    if mode == "precise":
                        self._recompute_bn_stats(x)
                    self.nets_.eval()
                    parts = super(GANomaly, self)._score_parts(x_ev)  # eval mode, no threshold needed
                    rec[mode] = {k: round(metrics.roc_auc(y_ev, v), 4) for k, v in parts.items() if k != "score"}
                    rec[f"rho_latent_ink_{mode}"] = round(float(spearmanr(parts["latent"], ink)[0]), 3)
                self.nets_.load_state_dict(saved)
                self.nets_.train()
                with open(out, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)

            def traced(xb, gs):
                losses = step(xb, gs)
                done[0] += 1
                if done[0] in want:
                    probe()
                return losses

            if 0 in want:
                probe()
            return traced

    det = Traced(device="cpu", random_state=seed, **params)
    n_fit = len(det._calibration_split(det._validate(x_train, fitting=True))[0])
    per_epoch = max(1, n_fit // min(det.batch_size, n_fit))
    det.set_params(epochs=-(-max(want) // per_epoch)).fit(x_train)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=None, help="labels of CONFIGS (default: all)")
    ap.add_argument("--classes", type=int, nargs="*", default=list(FMNIST_CLASSES), help="Fashion-MNIST classes")
    ap.add_argument("--sizes", type=int, nargs="*", default=list(FMNIST_SIZES))
    ap.add_argument("--digits", type=int, nargs="*", default=list(DIGITS_CLASSES))
    ap.add_argument("--split", choices=("test", "val"), default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--param", action="append", default=[], help="LABEL:KEY=VALUE, a new config LABEL of its model")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--table", action="store_true", help="print the tables from the store and exit")
    ap.add_argument("--trace-steps", type=int, nargs="*", default=None,
                    help="instead: trace GANomaly's AUROC at these step counts (to probes/small-folder-steps.jsonl)")
    args = ap.parse_args()
    out = Path(args.out)
    if args.trace_steps is not None:
        torch.set_num_threads(1)
        steps_out = out.with_name("small-folder-steps.jsonl") if args.out == str(DEFAULT_OUT) else out
        for dataset, c, n in cells(args.classes, args.sizes, args.digits):
            trace_steps(dataset, c, n, args.split, args.seed, args.trace_steps, steps_out)
        return
    if args.table:
        print(table(stored(out), args.split) + "\n\n" + per_cell(stored(out), args.split))
        return
    torch.set_num_threads(1)
    configs = list(CONFIGS)
    for spec in args.param:  # e.g. ganomaly-s300:min_steps=300 -> a config of ganomaly (label's first word)
        label, kv = spec.split(":", 1)
        k, v = kv.split("=", 1)
        from ganad.bench.runner import parse_value

        base = next((c for c in configs if c[0] == label), None)
        if base is None:
            base = (label, label.split("-")[0], {})
            configs.append(base)
        configs[configs.index(base)] = (label, base[1], {**base[2], k: parse_value(v)})
    if args.models is not None:
        configs = [c for c in configs if c[0] in args.models]
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {_key(r) for r in stored(out)}
    for dataset, c, n in cells(args.classes, args.sizes, args.digits):
        for label, name, params in configs:
            n_key = n if n is not None else len(make_cell(dataset, c, n, args.split, args.seed)[0])
            if n_key >= SAME_AS_DEFAULT_FROM.get(label, 10**9):
                continue
            key = (label, json.dumps(params, sort_keys=True), dataset, c, n_key, args.seed, args.split)
            if key in done:
                continue
            rec = run_one(label, name, params, dataset, c, n, args.split, args.seed)
            with open(out, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            done.add(key)
            print(f"{label:22s} {dataset:14s} c={c} n={rec['n_train']:5d} {args.split} AUROC {rec['auroc']:.3f} "
                  f"parts {rec['part_auroc']} fit {rec['fit_s']:.1f}s", flush=True)


if __name__ == "__main__":
    main()
