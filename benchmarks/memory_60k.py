"""Peak memory of fitting each GAN detector on all 60,000 Fashion-MNIST training images.

    python benchmarks/memory_60k.py                      # ganomaly skipganomaly egbad alad fanogan
    python benchmarks/memory_60k.py --models ganomaly --steps 20

Issue 3 asks that fitting any detector on the whole training set peaks below
2 GB RSS.  What can grow with the data set is what a detector holds for all
images (the uint8 array, any full-set conversion, per-pixel statistics) and
the scoring pass over every training image that sets ``threshold_``; the
training step itself only ever sees one batch.  So each model is fitted in
its own process (a fresh high-water mark) on the full 60,000-image uint8
array with the benchmark's parameters (:mod:`ganad.bench.configs`), with the
training loop cut to ``--steps`` batches per epoch (a view of the first
rows, not a copy), and then the full post-fit pass over all 60,000 images.
Reported: peak RSS (VmHWM) and the seconds each part took.  Results go to
``benchmarks/memory/memory-60k.jsonl``; models already stored are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_MODELS = ["ganomaly", "skipganomaly", "egbad", "alad", "fanogan"]
STORE = Path(__file__).resolve().parent / "memory" / "memory-60k.jsonl"  # not in results/: the bench store reads every *.jsonl there


def _stored() -> set[str]:
    if not STORE.exists():
        return set()
    return {json.loads(line)["model"] for line in STORE.read_text().splitlines() if line.strip()}


def _one(model: str, steps: int) -> dict:
    import torch

    import ganad.models.fanogan as fanogan_module
    import ganad.train as train
    from ganad.bench import configs
    from ganad.bench.runner import git_commit, peak_rss_mb
    from ganad.datasets import load_arrays
    from ganad.registry import create

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    x_train = load_arrays("fashion-mnist")[0]  # (60000, 28, 28) uint8
    full_loop = train.fit_loop

    def cut_loop(step, data, *args, batch_size: int, **kw):  # same loop, first `steps` batches of the array
        return full_loop(step, data[: steps * batch_size], *args, batch_size=batch_size, **kw)

    train.fit_loop = cut_loop  # torch_base imports it at call time
    fanogan_module.fit_loop = cut_loop  # f-AnoGAN imported it at module load
    params = configs.params_for(model)
    det = create(model, random_state=0, **params)
    t0 = time.perf_counter()
    det.fit(x_train)
    seconds = time.perf_counter() - t0
    return {
        "model": model,
        "n_train": int(len(x_train)),
        "train_steps_per_epoch": steps,
        "params": params,
        "fit_seconds_incl_full_threshold_pass": round(seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--steps", type=int, default=20, help="training batches per epoch")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args.steps)))
        return
    done = _stored()
    STORE.parent.mkdir(parents=True, exist_ok=True)
    for model in args.models:
        if model in done:
            print(f"{model}: stored, skipped")
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--one", model, "--steps", str(args.steps)],
            capture_output=True, text=True, check=False,
        )
        if out.returncode != 0:
            print(f"{model}: failed\n{out.stderr[-2000:]}")
            continue
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        with STORE.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(f"{model}: peak RSS {rec['peak_rss_mb']:.0f} MB, fit {rec['fit_seconds_incl_full_threshold_pass']} s")


if __name__ == "__main__":
    main()
