#!/usr/bin/env bash
# GANomaly beside anomalib 2.7's at the same budgets, in one run, on an otherwise
# idle machine (both use 2 threads): Fashion-MNIST one-class, class 0.
#   bash benchmarks/peer_ganomaly.sh > benchmarks/logs/peer-ganomaly.log 2>&1
# anomalib: 1 epoch (~30 s of fitting) and 20 epochs (~594 s), with a peer
# harness kept outside this repository (PEERS=<its folder>; its set-up builds
# /tmp/anomalib-venv).
# Ours: the benchmark's GANomaly (width 32) at 2 epochs (the ~30 s budget) and
# 5 epochs (the stored one-class configuration), stored in the result store.
set -eu
cd "$(dirname "$0")/.."
PEERS=${PEERS:?set PEERS to the folder of the peer harness (setup_anomalib.sh)}
mkdir -p benchmarks/peers benchmarks/logs
bash "$PEERS/setup_anomalib.sh"
for e in 1 20; do
  /tmp/anomalib-venv/bin/python "$PEERS/run_anomalib_ganomaly.py" --classes 0 --epochs "$e" \
    --threads 2 --out benchmarks/peers/anomalib-ganomaly.jsonl
done
export OMP_NUM_THREADS=2
for e in 2 5; do
  .venv/bin/ganad bench --models ganomaly --data fashion-mnist --protocol one-class --classes 0 --seeds 1 \
    --param ganomaly.epochs="$e" --no-progress
done
.venv/bin/python benchmarks/summary.py | grep ganomaly
