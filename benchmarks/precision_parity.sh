#!/bin/sh
# bf16 vs fp32 AUROC parity (the speed issue): GANomaly, DCAE and EGBAD at their
# benchmark configurations (ganad.bench.configs), Fashion-MNIST one-class classes
# 0, 1 and 8, seed 0, the declared defaults (--selection none), one store per
# precision (a cell is keyed by model, class and seed, not by precision).  The
# store resumes; rerun after an interruption.
#   sh benchmarks/precision_parity.sh
set -e
GANAD=${GANAD:-.venv/bin/ganad}
OUT=${OUT:-benchmarks/results/precision}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for p in bf16 fp32; do
  $GANAD bench --models ganomaly dcae egbad --data fashion-mnist --protocol one-class --selection none \
    --classes 0 1 8 --param precision=$p --quiet --results "$OUT/$p" --render-to "$OUT/$p/RESULTS.md"
done
