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
from ..registry import create


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

    Returns (fitted detector, chosen grid values, [{**point, "val_auroc": v}]).
    With a one-point grid or a validation set of one class, the first point is
    used without scoring.
    """
    points = expand_grid(grid)
    can_score = len(np.unique(split.val.y)) == 2
    if len(points) == 1 or not can_score:
        det = create(model, **params, **points[0]).fit(split.train.x)
        return det, points[0], []
    best, trials = None, []
    for point in points:
        det = create(model, **params, **point).fit(split.train.x)
        v = metrics.roc_auc(split.val.y, det.decision_function(split.val.x))
        trials.append({**point, "val_auroc": v})
        if best is None or v > best[0]:
            best = (v, det, point)
    assert best is not None
    return best[1], best[2], trials
