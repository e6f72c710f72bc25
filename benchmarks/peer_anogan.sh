#!/usr/bin/env bash
# AnoGAN with the real per-image latent search beside PyOD 2.1's AnoGAN (an MLP,
# no search at test time; measured by the peer harness: AUROC 0.608 on
# class 0 after 621 s of fitting), Fashion-MNIST one-class, class 0, all
# 10,000 test images, 2 threads, on an otherwise idle machine.  Stored in the
# result store like every cell; fit_seconds + score_seconds is the total time.
#   bash benchmarks/peer_anogan.sh > benchmarks/logs/peer-anogan.log 2>&1
# Sizes for the CPU budget: DCGAN width 16, 5 epochs, 100 search steps (the
# paper's 500 cost 5x the scoring time); threshold from 1,000 training images.
set -eu
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2
.venv/bin/ganad bench --models anogan --data fashion-mnist --protocol one-class --classes 0 --seeds 1 \
  --param anogan.width=16 --param anogan.epochs=5 --param anogan.search_steps=100 --no-progress
.venv/bin/python benchmarks/summary.py | grep -A1 anogan
