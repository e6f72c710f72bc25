#!/bin/sh
# The training-contamination table (Berg et al. section 4.1.2): Fashion-MNIST
# one-class with a share gamma of unlabelled other-class images mixed into
# training, gamma in {0, 0.02, 0.05, 0.1}, all 10 classes, seed 0, the
# declared defaults (--selection none).  Each record carries the AUROC on the
# full test split and on Berg's section 4.1.1 layout (auroc_berg_layout).
# Two lanes, one per core; the store resumes, so rerun a lane after an
# interruption:
#   sh benchmarks/contamination_table.sh a   # classic four, dcae, deepsvdd, egbad, alad, gmm, vae
#   sh benchmarks/contamination_table.sh b   # ganomaly, fanogan, berg
#   sh benchmarks/contamination_table.sh seeds   # berg and fanogan, seeds 1 and 2
set -e
GANAD=${GANAD:-.venv/bin/ganad}
RESULTS=${RESULTS:-benchmarks/results}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cont() { $GANAD bench --data fashion-mnist --protocol contamination --selection none --quiet --results "$RESULTS" "$@"; }
case "${1:-a}" in
a)
  cont --models iforest kde ocsvm dcae deepsvdd --gamma 0 0.02 0.05 0.1
  # the extremes first (the drop from gamma 0 to 0.1 is the study's question), then the middle;
  # ALAD without its test-informed early stopping (the unsupervised configuration)
  cont --models egbad --gamma 0 0.1
  cont --models alad --param alad.validation_fraction=0 --param alad.patience=null --gamma 0 0.1
  cont --models gmm vae --gamma 0 0.02 0.05 0.1
  cont --models egbad --gamma 0.02 0.05
  cont --models alad --param alad.validation_fraction=0 --param alad.patience=null --gamma 0.02 0.05 ;;
b)
  cont --models ganomaly fanogan --gamma 0 0.1
  cont --models berg --gamma 0 0.1
  cont --models berg --gamma 0.02 0.05
  cont --models ganomaly fanogan --gamma 0.02 0.05 ;;
seeds)
  cont --models fanogan berg --seed 1 --seeds 2 --gamma 0 0.02 0.05 0.1 ;;
*) echo "usage: $0 a|b|seeds" >&2; exit 2 ;;
esac
