#!/bin/sh
# The speed figures of the speed and engine issues, in one run on an otherwise idle
# machine (stop the benchmark lanes first: every figure is a throughput).  Each
# script appends its rows, with the machine load, to benchmarks/results/:
#   speed.jsonl             train / score img/s, GFLOP/s and matmul peaks, fp32 and bf16
#   distributed-speed.jsonl 1 vs 2 processes (torchrun, gloo), same global batch
#   conv-kernels.jsonl      GFLOP/s of GANomaly's conv layers, fwd + bwd, per precision and layout
#   search-speed.jsonl      AnoGAN / ADGAN latent-search throughput per precision
#   sh benchmarks/speed_suite.sh
set -e
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1
$PY benchmarks/speed.py --models ganomaly dcae egbad --width 64 --threads 1
$PY benchmarks/speed.py --models ganomaly --width 32 --threads 2 --score-only --score-images 8192
$PY benchmarks/distributed_speed.py --model ganomaly --width 32 --nproc 1 2
$PY benchmarks/conv_kernels.py
$PY benchmarks/adgan_speed.py --throughput --images 4 --precisions fp32 bf16 --store benchmarks/results/search-speed.jsonl
