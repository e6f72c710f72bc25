"""Fit tiny detectors on the 8x8 digits and save what tests/test_distributed.py compares.

Run under torchrun (``python -m torch.distributed.run --standalone --nproc-per-node 2
tests/dist_worker.py OUT [NAME...]``) or imported and called in one process
(:func:`run`): the same code, the same global batch and seed.  For each model
it writes ``OUT/<name>.rank<r>.pt``: the nets' weights, the loss history, the
scores of a large array (gathered under torchrun) and, on rank 0, the scores
of the same array computed by this process alone; rank 0 also saves the model.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import torch

#: tiny configurations; batch_size is the global batch
CONFIGS: dict[str, dict[str, Any]] = {
    "ganomaly": dict(width=4, nz=4, min_steps=0),
    "egbad": dict(width=4, nz=4),
    "fanogan": dict(width=4, nz=8, n_critic=2, encoder_epochs=2),
    "deepsvdd": dict(objective="soft-boundary", warm_up_epochs=1, pretrain_epochs=2, rep_dim=16),
}
COMMON = dict(batch_size=32, epochs=2, device="cpu", random_state=0)
#: the `ganad fit` run of the kill / resume test (add --out, and --nproc 2 outside torchrun)
CLI_ARGS = ["fit", "egbad", "--data", "digits", "--normal", "0", "--epochs", "4", "--quiet",
            "--param", "width=4", "--param", "nz=4", "--param", "batch_size=32", "--param", "device=cpu"]


def data() -> tuple[np.ndarray, np.ndarray]:
    """(256 training digits, all 1797 digits twice: 3594 images, 15 scoring batches)."""
    from sklearn.datasets import load_digits

    x = (load_digits().images * 255 / 16).round().astype(np.uint8)
    return x[:256], np.concatenate([x, x[::-1]])


def make(name: str, sync_batchnorm: bool = True) -> Any:
    import ganad

    cls = ganad.registry.get_class(name)
    params = {k: v for k, v in {**COMMON, **CONFIGS[name]}.items() if k in cls._param_names()}
    return ganad.create(name, sync_batchnorm=sync_batchnorm, **params)


def _alone(det: Any, x: np.ndarray) -> np.ndarray:
    """Scores computed by this process alone (no sharding, no gather)."""
    from ganad import distributed

    shard, gather = distributed.score_shard, distributed.gather_parts
    distributed.score_shard = lambda n, bs: (0, n)  # type: ignore[assignment]
    distributed.gather_parts = lambda parts, n: parts  # type: ignore[assignment]
    try:
        return det.decision_function(x)
    finally:
        distributed.score_shard, distributed.gather_parts = shard, gather


def run(out: str, names: list[str], sync_batchnorm: bool = True) -> None:
    from ganad import distributed

    x_train, x_score = data()
    os.makedirs(out, exist_ok=True)
    for name in names:
        det = make(name, sync_batchnorm).fit(x_train)
        r = distributed.rank()
        record = {
            "state": {k: v.detach().clone() for k, v in det.nets_.state_dict().items()},
            "losses": {k: list(v) for k, v in det.history_.losses.items()},
            "scores": det.decision_function(x_score),
            "threshold": det.threshold_,
            "world": distributed.world_size(),
        }
        if r == 0:
            record["scores_alone"] = _alone(det, x_score)
            det.save(os.path.join(out, f"{name}.model.pt"))
        torch.save(record, os.path.join(out, f"{name}.rank{r}.pt"))
        distributed.barrier()


if __name__ == "__main__":
    args = sys.argv[1:]
    sync = "--per-rank-bn" not in args
    cli = "--cli" in args  # also the uninterrupted `ganad fit` run of the kill test, into OUT/cli
    args = [a for a in args if a not in ("--per-rank-bn", "--cli")]
    run(args[0], args[1:] or list(CONFIGS), sync_batchnorm=sync)
    if cli:
        from ganad.cli import main

        sys.exit(main([*CLI_ARGS, "--out", os.path.join(args[0], "cli")]))
