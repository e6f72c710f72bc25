"""Hyper-parameter choice on the validation split, never on test labels.

The ADGAN paper (section 4.2) picks the PCA dimension of the classic
baselines "for which best performance on a small holdout set was attained".
Here the hold-out set is the protocol's validation subset: normal images held
out of the training class plus anomalies drawn from the *training* split's
other classes.  The test split is not read.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .. import metrics
from ..data.protocols import Split
from ..registry import create, get_class


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """{"a": [1, 2], "b": [3]} -> [{"a": 1, "b": 3}, {"a": 2, "b": 3}]."""
    if not grid:
        return [{}]
    names = sorted(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def select_on_validation(
    model: str, params: dict[str, Any], grid: dict[str, list[Any]], split: Split
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """Fit one detector per grid point on ``split.train``; keep the best validation AUROC.

    Points that differ only in the model's ``score_params`` share one fit.

    Returns (fitted detector, chosen grid values, [{**point, "val_auroc": v}]).
    With a one-point grid or a validation set of one class, the first point is
    used without scoring.
    """
    points = expand_grid(grid)
    can_score = len(np.unique(split.val.y)) == 2
    if len(points) == 1 or not can_score:
        det = create(model, **params, **points[0]).fit(split.train.x)
        return det, points[0], []
    # Grid values that only change scoring (the model's ``score_params``) share one fit.
    score_only = set(getattr(get_class(model), "score_params", ()))
    best, trials, fits = None, [], {}
    for point in points:
        train_key = tuple(sorted((k, repr(v)) for k, v in point.items() if k not in score_only))
        if train_key in fits:
            det = fits[train_key].set_params(**{k: v for k, v in point.items() if k in score_only})
        else:
            det = fits[train_key] = create(model, **params, **point).fit(split.train.x)
        v = metrics.roc_auc(split.val.y, det.decision_function(split.val.x))
        trials.append({**point, "val_auroc": v})
        if best is None or v > best[0]:
            best = (v, train_key, point)
    assert best is not None
    det = fits[best[1]].set_params(**best[2])
    if len(fits) < len(points):  # the shared fit's threshold must follow the chosen score
        det.rescore_training(split.train.x)
    return det, best[2], trials
