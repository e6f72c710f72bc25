"""Hyper-parameter choice on the validation split, never on test labels.

The ADGAN paper (section 4.2) picks the PCA dimension of the classic
baselines "for which best performance on a small holdout set was attained".
Here the hold-out set is the protocol's validation subset: normal images held
out of the training class plus anomalies drawn from the *training* split's
other classes.  The test split is not read.

Choosing on labelled anomalies is semi-supervised, so the benchmark has two
regimes (``ganad bench --selection``, recorded as ``selection``, see
:mod:`ganad.bench.provenance`):

* ``none`` (the default): the declared configuration is fitted (the model's
  defaults with the benchmark's parameters; grids are not searched) and the
  validation anomalies are never drawn nor read (:func:`normal_only_validation`);
* ``labelled`` with K (default 50): the protocol draws exactly K validation
  anomalies from the training split (all held-out normals are kept) and the
  grid is chosen on their validation AUROC; recorded as ``labelled:K``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .. import metrics
from ..data.protocols import Split, Subset
from ..registry import create, get_class

SELECTIONS = ("none", "labelled")
DEFAULT_LABELLED = 50  # labelled validation anomalies of the labelled regime


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """{"a": [1, 2], "b": [3]} -> [{"a": 1, "b": 3}, {"a": 2, "b": 3}]."""
    if not grid:
        return [{}]
    names = sorted(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def is_grid(grid: dict[str, list[Any]]) -> bool:
    """More than one point to choose from."""
    return len(expand_grid(grid)) > 1


def declared_grid(grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """What the ``none`` regime keeps of a grid: its one-value entries (fixed values)."""
    return {k: list(v) for k, v in grid.items() if len(v) == 1}


def regime(selection: str, grid: dict[str, list[Any]], labelled: int = DEFAULT_LABELLED) -> str:
    """The recorded regime of a cell: ``"none"`` unless ``selection == "labelled"`` and
    there is a grid to choose from, then ``"labelled:<labelled>"``."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}; got {selection!r}")
    if selection == "none" or not is_grid(grid):
        return "none"
    if int(labelled) < 1:
        raise ValueError(f"--labelled must be >= 1; got {labelled}")
    return f"labelled:{int(labelled)}"


def normal_only_validation(split: Split) -> Split:
    """``split`` with the validation anomalies removed (the ``none`` regime reads none)."""
    keep = split.val.y == 0
    if not keep.all():
        v = split.val
        split.val = Subset(v.x[keep], v.y[keep], v.labels[keep])
    return split


def fit_declared(model: str, params: dict[str, Any], grid: dict[str, list[Any]], split: Split) -> Any:
    """The ``none`` regime: fit the declared configuration on ``split.train`` (no validation read)."""
    fixed = {k: v[0] for k, v in declared_grid(grid).items()}
    return create(model, **params, **fixed).fit(split.train.x)


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
