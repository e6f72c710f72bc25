#!/usr/bin/env bash
# The CPU benchmark plan of this 2-core machine as two queues, one per core
# (torch and BLAS on one thread each).  Every bench resumes: cells already in
# benchmarks/results/ are skipped, so rerunning a queue after a crash or a
# cut-off session continues where it stopped.  Sizes: ganad.bench.configs.PARAMS.
#   nohup bash benchmarks/cpu_queue.sh a > benchmarks/logs/queue-a.log 2>&1 &
#   nohup bash benchmarks/cpu_queue.sh b > benchmarks/logs/queue-b.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
bench() { .venv/bin/ganad bench --data fashion-mnist --no-progress "$@" || echo "bench failed: $*"; }
case "${1:-}" in
  a)  # issue 2 (GMM), then the encoder GANs of issue 3
    bench --models gmm --protocol one-class --seeds 1
    bench --models ganomaly egbad alad --protocol one-class --seeds 1
    bench --models dcae vae --protocol one-class --seeds 1
    bench --models ganomaly egbad --protocol one-anomalous --seeds 1 --train-subset 6000
    bench --models skipganomaly fanogan --protocol one-class --seeds 1
    ;;
  b)  # issue 5: the reference detectors, then the GAN-augmented autoencoder
    bench --models deepsvdd --protocol one-class --seeds 1
    # seed 0 of both protocols first, then seeds 1 and 2
    bench --models gaae --protocol one-class --seeds 1
    bench --models gaae --protocol one-anomalous --seeds 1 --train-subset 6000
    bench --models gaae --protocol one-class --seed 1 --seeds 2
    bench --models gaae --protocol one-anomalous --seed 1 --seeds 2 --train-subset 6000
    ;;
  *) echo "usage: $0 a|b" >&2; exit 2 ;;
esac
