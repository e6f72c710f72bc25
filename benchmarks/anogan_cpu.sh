#!/usr/bin/env bash
# AnoGAN on all 10 Fashion-MNIST classes, one CPU thread, all 10,000 test images
# (resumes: stored cells are skipped; class 0 is the peer comparison's cell,
# benchmarks/peer_anogan.sh, same parameters).  Sizes: DCGAN width 16, 5 epochs,
# 100 search steps per image (the paper's 500 cost 5x the scoring time).
#   nohup bash benchmarks/anogan_cpu.sh > benchmarks/logs/anogan-cpu.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
.venv/bin/ganad bench --models anogan --data fashion-mnist --protocol one-class --seeds 1 --no-progress \
  --param anogan.width=16 --param anogan.epochs=5 --param anogan.search_steps=100 "$@"
