"""Measure how well ``threshold_`` is calibrated: the share of *new* normal images flagged.

A detector fitted with ``contamination=c`` should flag about a share c of
normal images it has not seen.  :func:`flagged_share` fits a model on normal
training images and returns the share of held-out normal test images above
its threshold, both with the calibrated threshold (the default) and with the
old rule (a quantile of the in-sample training scores), so that the two can
be compared.  ``FAST`` holds short settings per model: calibration does not
depend on how well a model separates, only on the scores being computed on
data the model did not train on.

    python -m ganad.bench.calibration --data digits fashion-mnist
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

import ganad

_NET = dict(width=8, nz=8, batch_size=32, epochs=1, device="cpu")
FAST: dict[str, dict[str, Any]] = {
    "kde": {}, "ocsvm": {}, "iforest": {}, "gmm": {"mixture_components": [2, 4]},
    "ganomaly": _NET, "skipganomaly": _NET, "egbad": _NET, "alad": _NET, "dcae": _NET, "vae": _NET, "gaae": _NET,
    "fanogan": {**_NET, "encoder_epochs": 1},
    "anogan": {**_NET, "search_steps": 2},
    "adgan": {**_NET, "n_seed": 2, "k": 2},
    "deepsvdd": {"epochs": 1, "pretrain_epochs": 1, "batch_size": 32, "device": "cpu"},
    "ama": {"nz": 8, "enc_width": 4, "gen_width": 8, "critic_width": 8, "batch_size": 32, "epochs": 1, "device": "cpu"},
    "berg": {"width": 8, "nz": 8, "batch_size": 16, "images_per_stage": 16, "epochs": 1, "device": "cpu"},
}


def fast_params(name: str) -> dict[str, Any]:
    """Short settings for ``name``; models not listed get their defaults with 1 epoch."""
    cls = ganad.registry.get_class(name)
    params = dict(FAST.get(name, {"epochs": 1}))
    return {k: v for k, v in params.items() if k in cls._param_names()}


def flagged_share(name: str, x_train: np.ndarray, x_normal_test: np.ndarray, **params: Any) -> dict[str, float]:
    """{"calibrated": share flagged by ``threshold_``, "in_sample": share flagged by the
    (1 - contamination) quantile of the training scores} on ``x_normal_test``."""
    det = ganad.create(name, **{**fast_params(name), **params}).fit(x_train)
    s = det.decision_function(x_normal_test)
    in_sample = float(np.quantile(det.decision_scores_, 1.0 - det.contamination))
    return {"calibrated": float(np.mean(s > det.threshold_)), "in_sample": float(np.mean(s > in_sample))}


def main(argv: list[str] | None = None) -> None:
    from .. import datasets

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["digits"])
    p.add_argument("--classes", type=int, nargs="+", default=[0, 3, 7])
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--train-subset", type=int, default=1000)
    args = p.parse_args(argv)
    for data in args.data:
        for name in args.models or ganad.available_models():
            rows = []
            for c in args.classes:
                kw = {} if data == "digits" else {"train_subset": args.train_subset}
                split = datasets.make_split(data, "one-class", normal_class=c, random_state=0, **kw)
                rows.append(flagged_share(name, split.train.x, split.test.x[split.test.y == 0]))
            out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            print(json.dumps({"data": data, "model": name, "classes": args.classes, **out}), flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
