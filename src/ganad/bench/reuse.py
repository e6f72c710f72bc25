"""One fit for the benchmark cells that share a training set, one score per image.

The ``ood`` protocol's cells differ only in their anomalies: the training and
validation images, and the in-distribution test normals, are the same for every
out-of-distribution set (:func:`ganad.data.protocols.ood`).  Refitting and
rescoring them per set would cost five fits where one is the same experiment.
:class:`FitReuse` keeps the last fitted detector under a key of what decides the
fit (model, parameters, seed, regime, data options other than the anomaly
source, and a digest of the training images), and :func:`score_blocks` scores
the normal and anomalous test images as two blocks, each remembered by the
digest of its images.  Every detector's scores are batch-independent (the
contract suite checks a batch of 1 against a batch of 64), so scoring a block
apart from the rest gives the scores a single call would.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

from ..run_identity import data_fingerprint


def digest(x: np.ndarray) -> str:
    """A content key of an image array: the fingerprint checkpoints use for their data."""
    return json.dumps(data_fingerprint(x), sort_keys=True)


class FitReuse:
    """The last fitted detector with the key it was fitted under (one kept: cells that
    share a fit are planned next to each other), and the scores it gave, per image block."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._det: Any = None
        self._scores: dict[tuple[str, str], Any] = {}

    @staticmethod
    def key(record: dict[str, Any], train_x: np.ndarray, drop: tuple[str, ...] = ("other",)) -> str:
        rec = dict(record)
        rec["protocol_options"] = {k: v for k, v in (rec.get("protocol_options") or {}).items() if k not in drop}
        return json.dumps(rec, sort_keys=True, default=str) + digest(train_x)

    def get(self, key: str) -> Any:
        return self._det if key == self._key else None

    def put(self, key: str, det: Any) -> None:
        self._key, self._det, self._scores = key, det, {}

    def scores(self, what: str, x: np.ndarray, compute: Callable[[np.ndarray], Any]) -> tuple[Any, bool]:
        """``compute(x)`` for the kept detector, remembered by (``what``, digest of ``x``);
        returns (value, reused)."""
        k = (what, digest(x))
        if k in self._scores:
            return self._scores[k], True
        value = compute(x)
        self._scores[k] = value
        return value, False


def score_blocks(
    x: np.ndarray, y: np.ndarray, what: str, compute: Callable[[np.ndarray], Any], reuse: FitReuse | None
) -> tuple[Any, int]:
    """``compute(x)`` assembled from its normal (``y == 0``) and anomalous blocks, each
    remembered by ``reuse`` (``None``: one plain call).  ``compute`` returns an array or a
    dict of arrays, one value per image.  Returns (value, images actually scored)."""
    if reuse is None:
        return compute(x), len(x)
    blocks = [np.flatnonzero(y == v) for v in (0, 1)]
    values, scored = [], 0
    for idx in blocks:
        if len(idx) == 0:
            values.append(None)
            continue
        value, reused = reuse.scores(what, x[idx], compute)
        values.append(value)
        scored += 0 if reused else len(idx)
    first = next(v for v in values if v is not None)

    def assemble(parts: list[np.ndarray | None]) -> np.ndarray:
        out = np.empty(len(x), dtype=np.asarray(next(p for p in parts if p is not None)).dtype)
        for idx, p in zip(blocks, parts):
            if p is not None:
                out[idx] = np.asarray(p)
        return out

    if isinstance(first, dict):
        return {k: assemble([None if v is None else v[k] for v in values]) for k in first}, scored
    return assemble(values), scored
