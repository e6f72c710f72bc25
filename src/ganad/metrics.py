"""Metrics with the anomaly as the positive class (label 1, higher score = more anomalous).

Headline numbers are threshold-free: AUROC and AUPRC (average precision).
Thresholded metrics (F1, precision, recall = sensitivity, specificity,
accuracy) need an explicit threshold, which must come from training or
validation data only: :func:`contamination_threshold` (a quantile of the
training scores) or :func:`best_f1_threshold` on a *validation* split.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
from sklearn import metrics as skm


def _check(y_true: Iterable, scores: Iterable) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(y) != len(s):
        raise ValueError(f"y_true has {len(y)} labels but scores has {len(s)} values")
    if len(y) == 0:
        raise ValueError("empty input")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (normal) or 1 (anomalous)")
    return y.astype(np.int64), s


def _both_classes(y: np.ndarray) -> None:
    if y.min() == y.max():
        raise ValueError("AUROC/AUPRC need both normal (0) and anomalous (1) samples")


def roc_auc(y_true: Iterable, scores: Iterable) -> float:
    """Area under the ROC curve (probability an anomaly outscores a normal sample)."""
    y, s = _check(y_true, scores)
    _both_classes(y)
    return float(skm.roc_auc_score(y, s))


def pr_auc(y_true: Iterable, scores: Iterable) -> float:
    """Area under the precision-recall curve as average precision, anomalies positive."""
    y, s = _check(y_true, scores)
    _both_classes(y)
    return float(skm.average_precision_score(y, s))


def roc_curve(y_true: Iterable, scores: Iterable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds)."""
    y, s = _check(y_true, scores)
    _both_classes(y)
    return skm.roc_curve(y, s)


def confusion(y_true: Iterable, scores: Iterable, threshold: float) -> dict[str, int]:
    """Counts with ``score > threshold`` predicted anomalous."""
    y, s = _check(y_true, scores)
    pred = s > threshold
    return {
        "tp": int(np.sum(pred & (y == 1))),
        "fp": int(np.sum(pred & (y == 0))),
        "tn": int(np.sum(~pred & (y == 0))),
        "fn": int(np.sum(~pred & (y == 1))),
    }


def _ratio(a: int, b: int) -> float:
    return float(a / b) if b else 0.0


def threshold_metrics(y_true: Iterable, scores: Iterable, threshold: float) -> dict[str, float]:
    """Precision, recall (= sensitivity), specificity, F1 and accuracy at ``threshold``."""
    c = confusion(y_true, scores, threshold)
    precision = _ratio(c["tp"], c["tp"] + c["fp"])
    recall = _ratio(c["tp"], c["tp"] + c["fn"])
    f1 = _ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "sensitivity": recall,
        "specificity": _ratio(c["tn"], c["tn"] + c["fp"]),
        "f1": f1,
        "accuracy": _ratio(c["tp"] + c["tn"], sum(c.values())),
    }


def contamination_threshold(train_scores: Iterable, contamination: float = 0.1) -> float:
    """The ``1 - contamination`` quantile of the (normal) training scores."""
    s = np.asarray(train_scores, dtype=np.float64)
    if not 0 < contamination < 1:
        raise ValueError(f"contamination must be in (0, 1); got {contamination}")
    return float(np.quantile(s, 1.0 - contamination))


def best_f1_threshold(y_val: Iterable, val_scores: Iterable) -> float:
    """Threshold maximising F1 on a labelled *validation* split (never the test split)."""
    y, s = _check(y_val, val_scores)
    _both_classes(y)
    precision, recall, thresholds = skm.precision_recall_curve(y, s)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    best = int(np.argmax(f1[:-1]))  # the last point has no threshold
    # sklearn predicts positive for s >= t; our rule is s > threshold
    return float(np.nextafter(thresholds[best], -np.inf))


def evaluate(
    y_true: Iterable, scores: Iterable, threshold: float | None = None
) -> dict[str, float]:
    """AUROC and AUPRC, plus thresholded metrics when a threshold is given."""
    out = {"auroc": roc_auc(y_true, scores), "auprc": pr_auc(y_true, scores)}
    if threshold is not None:
        out.update(threshold_metrics(y_true, scores, threshold))
        out["threshold"] = float(threshold)
    return out


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value), e.g. over seeds."""
    v = np.asarray(list(values), dtype=np.float64)
    if len(v) == 0:
        raise ValueError("no values")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def summarize(runs: Iterable[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and std of every metric over several runs (seeds or classes)."""
    runs = list(runs)
    keys = sorted(set().union(*runs)) if runs else []
    return {k: mean_std(r[k] for r in runs if k in r) for k in keys}
