"""Convolution kernels at the DCGAN shapes of GANomaly (width 64, batch 64, 32x32 input):
GFLOP/s of forward + backward (data and weights) per layer, fp32 and bf16, default and
channels-last layout, beside the bf16 / fp32 matmul peaks of the same run.  The variant
"bf16 autocast, ganad layers" runs ganad's own ``Conv2d`` / ``ConvTranspose2d``
(``ganad.nets.gemm_conv``: the backward as GEMMs where the smaller map is 4x4); the two
widest layers are the 512-channel levels of wider nets.

    python benchmarks/conv_kernels.py            # one thread; rows to benchmarks/results/conv-kernels.jsonl

Why a layer-level figure: a training step's time is mostly these kernels (torch.profiler on a
GANomaly fit: convolution forward and backward ~80% of the self time), so the bf16 speed-up
of training is bounded by theirs.  A benchmark, not a test: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

STORE = Path(__file__).resolve().parent / "results" / "conv-kernels.jsonl"
# (kind, in channels, out channels, input side): E1/E2/D's stride-2 convs, the decoder's transposed ones
LAYERS = [("conv", 1, 64, 32), ("conv", 64, 128, 16), ("conv", 128, 256, 8),
          ("convT", 256, 128, 4), ("convT", 128, 64, 8), ("convT", 64, 1, 16),
          ("conv", 256, 512, 8), ("convT", 512, 256, 4)]


def _time(f, reps: int) -> float:
    f()
    f()  # oneDNN primitive creation and weight reorders happen in the first calls
    t = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t) / reps


def matmul_peak(dtype: torch.dtype, n: int = 2048) -> float:
    a = torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / _time(lambda: a @ a, 5) / 1e9


def layer(kind: str, cin: int, cout: int, side: int, batch: int, dtype: torch.dtype, channels_last: bool,
          autocast: bool, reps: int, ganad_layers: bool = False) -> dict:
    from ganad.nets import gemm_conv

    convs = (gemm_conv.Conv2d, gemm_conv.ConvTranspose2d) if ganad_layers else (nn.Conv2d, nn.ConvTranspose2d)
    mod = convs[kind != "conv"](cin, cout, 4, 2, 1, bias=False)
    x = torch.randn(batch, cin, side, side)
    if not autocast:
        mod, x = mod.to(dtype), x.to(dtype)
    if channels_last:
        mod, x = mod.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    out_side = side // 2 if kind == "conv" else side * 2
    macs = batch * cin * cout * 16 * (out_side if kind == "conv" else side) ** 2
    flops = 3 * 2 * macs  # forward, backward data, backward weights

    def step() -> None:
        mod.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = mod(x)
        y.float().sum().backward()

    sec = _time(step, reps)
    return {"layer": f"{kind} {cin}->{cout} at {side}x{side}", "gflop": flops / 1e9, "ms": sec * 1e3,
            "gflop_s": flops / sec / 1e9}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--store", default=str(STORE), help="JSON lines file ('' = print only)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    variants = [("fp32", False, False), ("fp32", True, False), ("bf16 autocast", False, True),
                ("bf16 autocast", True, True), ("bf16 weights", True, False),
                ("bf16 autocast, ganad layers", True, True)]
    print(f"matmul peaks: fp32 {peaks['fp32']:.0f}, bf16 {peaks['bf16']:.0f} GFLOP/s ({args.threads} thread(s))")
    for kind, cin, cout, side in LAYERS:
        for name, cl, ac in variants:
            dtype = torch.float32 if name == "fp32" else torch.bfloat16
            r = layer(kind, cin, cout, side, args.batch, dtype, cl, ac, args.reps, ganad_layers="ganad" in name)
            r.update(variant=name, layout="channels_last" if cl else "nchw", threads=args.threads, batch=args.batch,
                     peak_fp32_gflop_s=peaks["fp32"], peak_bf16_gflop_s=peaks["bf16"],
                     share_of_bf16_peak=r["gflop_s"] / peaks["bf16"], loadavg_1m=os.getloadavg()[0],
                     torch=torch.__version__, commit=commit, time=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            print(f"{r['layer']:<26} {name:<28} {r['layout']:<13} {r['ms']:7.1f} ms {r['gflop_s']:6.0f} GFLOP/s "
                  f"({r['share_of_bf16_peak']:.0%} of the bf16 peak)", flush=True)
            if args.store:
                with open(args.store, "a") as fh:
                    fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
