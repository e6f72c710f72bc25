"""Benchmark settings per model: fixed parameters and the grids chosen on validation.

Grids follow the papers: the classic baselines' PCA dimension from
{20, 40, ..., 100} (ADGAN section 4.2); Isolation Forest's grid adds raw
pixels (``None``), see :mod:`ganad.models.classic`.  Neural models train with
their paper defaults unless a parameter is given on the command line.
"""

from __future__ import annotations

from typing import Any

PCA_DIMS = [20, 40, 60, 80, 100]

GRIDS: dict[str, dict[str, list[Any]]] = {
    "kde": {"n_components": PCA_DIMS},
    "ocsvm": {"n_components": PCA_DIMS},
    "gmm": {"n_components": PCA_DIMS},
    "iforest": {"n_components": [None, *PCA_DIMS]},
}

# Parameters the benchmark passes unless overridden (sizes for this 2-core CPU go here).
PARAMS: dict[str, dict[str, Any]] = {}


def grid_for(model: str) -> dict[str, list[Any]]:
    return dict(GRIDS.get(model, {}))


def params_for(model: str) -> dict[str, Any]:
    return dict(PARAMS.get(model, {}))
