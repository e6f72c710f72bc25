"""Training throughput of 1 vs N processes (torchrun, gloo) on this machine.

    python benchmarks/distributed_speed.py --model ganomaly --width 32 --nproc 1 2
    python benchmarks/distributed_speed.py --model egbad --width 32 --batch-size 128 --nproc 1 2
    python benchmarks/distributed_speed.py --model ganomaly --width 32 --nproc 1 2 --threads 1

Every run fits the same model on the same ``--images`` Fashion-MNIST class-0
training images (the embedded 8x8 digits without the data set) with the same
global batch, seed and epochs; the machine's cores are split evenly
(``OMP_NUM_THREADS`` = cores // N per process, so 1 process gets all of them).
Reported: training images/s (``history_.images_per_second`` of rank 0: the
global batch's images over the time inside training steps, communication
included) and the wall time of ``fit``.  A benchmark, not a test: the numbers
depend on the machine and its load, so each run appends one JSON line per process
count to ``benchmarks/results/distributed-speed.jsonl`` (``--store``) with the
machine, its 1-minute load average before the run, the torch version and the commit.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = os.path.abspath(__file__)
STORE = Path(HERE).parent / "results" / "distributed-speed.jsonl"


def _data(n: int):
    from ganad import datasets

    try:
        x = datasets.make_split("fashion-mnist", "one-class", normal_class=0, random_state=0).train.x
    except (ValueError, FileNotFoundError, OSError):
        x = datasets.make_split("digits", "one-class", normal_class=0, random_state=0).train.x
    return x[:n]


def worker(args: argparse.Namespace) -> None:
    import ganad
    from ganad import distributed

    x = _data(args.images)
    det = ganad.create(args.model, width=args.width, batch_size=args.batch_size, epochs=args.epochs,
                       device="cpu", random_state=0, calibration_fraction=0.0,
                       **({"min_steps": 0} if "min_steps" in ganad.registry.get_class(args.model)._param_names() else {}))
    t = time.perf_counter()
    det.fit(x)
    wall = time.perf_counter() - t
    if distributed.is_main():
        h = det.history_
        print("RESULT " + json.dumps({"images": len(x), "train_img_s": h.images_per_second, "fit_s": wall,
                                      "world": distributed.world_size(), "threads": int(os.environ["OMP_NUM_THREADS"])}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="ganomaly")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=None,
                   help="threads per process (default: cores // N; on a loaded machine 1 avoids OpenMP oversubscription)")
    p.add_argument("--store", default=str(STORE), help="JSON lines file the rows are appended to ('' = none)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    same = ["--model", args.model, "--width", str(args.width), "--batch-size", str(args.batch_size),
            "--images", str(args.images), "--epochs", str(args.epochs), "--worker"]
    rows = []
    load_before = os.getloadavg()[0]
    for n in args.nproc:
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads or max(1, cores // n))}
        launch = [sys.executable] if n == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                  f"--nproc-per-node={n}"]
        r = subprocess.run([*launch, HERE, *same], capture_output=True, text=True, env=env)
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if r.returncode != 0 or line is None:
            sys.exit(f"{n} process(es) failed:\n{r.stderr[-3000:]}")
        rows.append(json.loads(line[len("RESULT "):]))
    print(f"{args.model} width {args.width}, {rows[0]['images']} images, global batch {args.batch_size}, "
          f"{args.epochs} epochs, {cores} cores")
    print(f"{'processes':>9} {'threads each':>12} {'train img/s':>12} {'fit s':>7} {'speed-up':>8}")
    for row in rows:
        print(f"{row['world']:>9} {row['threads']:>12} {row['train_img_s']:>12.0f} {row['fit_s']:>7.1f} "
              f"{row['train_img_s'] / rows[0]['train_img_s']:>8.2f}")
    if args.store:
        _store(Path(args.store), args, rows, cores, load_before)


def _store(path: Path, args: argparse.Namespace, rows: list[dict], cores: int, load_before: float) -> None:
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(HERE)).stdout.strip() or None
    except OSError:
        commit = None
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for row in rows:
            fh.write(json.dumps({
                "model": args.model, "width": args.width, "global_batch": args.batch_size, "epochs": args.epochs,
                **row, "speedup_vs_first": row["train_img_s"] / rows[0]["train_img_s"], "cores": cores,
                "loadavg_1m_before": load_before, "device": "cpu", "torch": torch.__version__, "commit": commit,
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            }) + "\n")
    print(f"stored: {path}")


if __name__ == "__main__":
    main()
