"""Training and scoring throughput per model and precision, against the machine's measured peaks.

    python benchmarks/speed.py --models ganomaly dcae egbad --width 64 --threads 1
    python benchmarks/speed.py --models ganomaly --width 32 --threads 2 --score-only
    python benchmarks/speed.py --models ganomaly --auroc --epochs 15     # + Fashion-MNIST class 0 AUROC

For each (model, precision, threads), in one process: train img/s (``fit_loop``'s
images over time inside steps, 1 epoch on ``--train-images`` Fashion-MNIST images
after a warm-up), score img/s (``decision_function`` on ``--score-images``),
the FLOPs of one training epoch (``torch.utils.flop_counter.FlopCounterMode``) over
its time, and the fp32 and bf16 matmul peaks (2048^3) measured in the same run.
One JSON line each goes to ``benchmarks/results/speed.jsonl`` with the device,
torch version and commit; ``ganad.bench.render`` puts them in RESULTS.md.
With ``--auroc``, the model is also fitted on all of class 0's training images
(``--epochs``) and scored on the full test split, in each precision.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import ganad
from ganad import datasets
from ganad.bench.render import render

ROOT = Path(__file__).resolve().parent
STORE = ROOT / "results" / "speed.jsonl"


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up: kernel selection, packing
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def device_name() -> str:
    """The CPU's model name and its bf16 matrix units, from /proc/cpuinfo (or the platform)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "cpu")
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    return name + (" (AMX-BF16)" if "amx_bf16" in flags else "") + f", {os.cpu_count()} cores"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def measure(name: str, precision: str, width: int, x_train: np.ndarray, x_score: np.ndarray, batch_size: int,
            score_only: bool = False) -> dict:
    """Train img/s (one epoch on ``x_train``, timed without the FLOP counter), the FLOPs of a
    training step (counted on a separate 4-batch fit: the counter's dispatch would slow the
    timed one) and score img/s on ``x_score``.  ``score_only``: a 2-batch fit, then scoring."""
    kw = dict(epochs=1, width=width, device="cpu", precision=precision, calibration_fraction=0.0, batch_size=batch_size)
    kw = {k: v for k, v in kw.items() if k in ganad.registry.get_class(name)._param_names()}
    if "min_steps" in ganad.registry.get_class(name)._param_names():
        kw["min_steps"] = 0  # exactly one epoch
    ganad.create(name, **kw).fit(x_train[: 2 * batch_size])  # warm-up (oneDNN primitives)
    out: dict = {"train_img_s": None, "train_gflop_s": None, "train_seconds": None}
    det = ganad.create(name, **kw)
    if score_only:
        det.fit(x_train[: 2 * batch_size])
    else:
        counted = ganad.create(name, **kw)
        xc = counted._validate(x_train[: 4 * batch_size], fitting=True)
        with FlopCounterMode(display=False) as fc:
            counted._fit(xc)
        flop_per_image = fc.get_total_flops() / counted.history_.images
        x = det._validate(x_train, fitting=True)
        det._fit(x)
        train_s = det.history_.train_seconds
        img_s = det.history_.images / train_s
        out = {"train_img_s": img_s, "train_gflop_s": flop_per_image * img_s / 1e9, "train_seconds": train_s}
    x_s = det._validate(x_score, fitting=False)
    det._score(x_s[: 2 * batch_size])  # warm-up of the scoring layout
    t = time.perf_counter()
    det._score(x_s)
    return {**out, "score_img_s": len(x_score) / (time.perf_counter() - t)}


def auroc_run(name: str, precision: str, width: int, epochs: int) -> float:
    from ganad.metrics import roc_auc

    split = datasets.fashion_mnist(protocol="one-class", normal_class=0, random_state=0)
    det = ganad.create(name, width=width, epochs=epochs, device="cpu", precision=precision).fit(split.train.x)
    return roc_auc(split.test.y, det.decision_function(split.test.x))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["ganomaly", "dcae", "egbad"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train-images", type=int, default=1024)
    p.add_argument("--score-images", type=int, default=2048)
    p.add_argument("--score-only", action="store_true", help="time scoring only (a 2-batch fit first)")
    p.add_argument("--auroc", action="store_true")
    p.add_argument("--epochs", type=int, default=15, help="epochs of the --auroc fits")
    p.add_argument("--store", type=Path, default=STORE, help="JSONL file the records are appended to")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x_tr, _, x_te, _ = datasets.load_arrays("fashion-mnist")
    x_train, x_score = x_tr[: args.train_images], x_te[: args.score_images]
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    args.store.parent.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        for precision in args.precisions:
            rec = {
                "model": name, "precision": precision, "threads": args.threads, "width": args.width,
                "batch_size": args.batch_size, **measure(name, precision, args.width, x_train, x_score, args.batch_size, args.score_only),
                "peak_fp32_gflop_s": peak32, "peak_bf16_gflop_s": peak16,
                "auroc": auroc_run(name, precision, args.width, args.epochs) if args.auroc else None,
                "device": device_name(), "torch": torch.__version__, "commit": _commit(),
                "loadavg_1m": os.getloadavg()[0], "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            print(json.dumps(rec), flush=True)
            with open(args.store, "a") as f:
                f.write(json.dumps(rec) + "\n")
    if args.store == STORE:
        render(ROOT / "results")


if __name__ == "__main__":
    main()
