#!/bin/sh
# The out-of-distribution table (AMA's Table 1 setting: anomalies 20% of the
# normals): every registered model trained on 6,000 Fashion-MNIST training
# images (all classes), tested on 8,333 Fashion-MNIST test images plus 1,667
# images of each other set; one fit per model serves all five sets.  Each
# record also carries the same fit's A-score AUROC.  The store resumes: rerun
# the same command after an interruption.  One lane per core:
#   sh benchmarks/ood_table.sh main    # every model but ama and adgan
#   sh benchmarks/ood_table.sh ama     # ama and its ablations (Table 1, lower half; Table 3)
#   sh benchmarks/ood_table.sh adgan   # 5,000 test images (its search costs ~0.07 s per image)
set -e
GANAD=${GANAD:-.venv/bin/ganad}
RESULTS=${RESULTS:-benchmarks/results}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
SETS="digits uniform-noise gaussian-noise fashion-mnist-vflip fashion-mnist-invert"
ood() { $GANAD bench --data fashion-mnist --protocol ood --train-subset 6000 --other $SETS --selection none --quiet --results "$RESULTS" "$@"; }
case "${1:-main}" in
main)
  ood --test-subset 10000 --models iforest kde ocsvm gmm typical dcae vae deepsvdd ganomaly skipganomaly gaae \
      alad egbad fanogan anogan berg ;;
ama)
  ood --test-subset 10000 --models ama
  for ablation in mirrored=false interpolation=false atypical=none atypical=sipple; do
    ood --test-subset 10000 --models ama --param "ama.$ablation"
  done
  # Table 3's other column: Sipple's negatives without simplex interpolation
  ood --test-subset 10000 --models ama --param ama.atypical=sipple --param ama.interpolation=false ;;
adgan)
  ood --test-subset 5000 --models adgan ;;
*) echo "usage: $0 main|ama|adgan" >&2; exit 2 ;;
esac
