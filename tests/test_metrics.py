import numpy as np
import pytest
from sklearn import metrics as skm

from ganad import metrics


@pytest.fixture
def labelled(rng):
    y = (rng.random(500) < 0.3).astype(int)
    s = rng.normal(size=500) + 1.5 * y
    return y, s


def test_auroc_auprc_match_sklearn(labelled):
    y, s = labelled
    assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
    assert metrics.pr_auc(y, s) == pytest.approx(skm.average_precision_score(y, s))
    assert 0.8 < metrics.roc_auc(y, s) < 0.95


def test_anomaly_is_positive_class():
    y = np.array([0, 0, 1, 1])
    assert metrics.roc_auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.roc_auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0


def test_threshold_metrics_match_sklearn(labelled):
    y, s = labelled
    t = 0.7
    pred = (s > t).astype(int)
    m = metrics.threshold_metrics(y, s, t)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["sensitivity"] == m["recall"]
    assert m["specificity"] == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))


def test_best_f1_threshold_is_optimal_on_validation(labelled):
    y, s = labelled
    t = metrics.best_f1_threshold(y, s)
    best = metrics.threshold_metrics(y, s, t)["f1"]
    for cand in np.quantile(s, np.linspace(0.01, 0.99, 50)):
        assert metrics.threshold_metrics(y, s, cand)["f1"] <= best + 1e-12


def test_contamination_threshold_flags_that_share(rng):
    s = rng.normal(size=1000)
    t = metrics.contamination_threshold(s, 0.1)
    assert np.mean(s > t) == pytest.approx(0.1, abs=0.002)


def test_roc_curve_points(labelled):
    y, s = labelled
    fpr, tpr, _ = metrics.roc_curve(y, s)
    assert fpr[0] == 0 and tpr[-1] == 1 and np.all(np.diff(fpr) >= 0)


def test_evaluate_and_summaries(labelled):
    y, s = labelled
    r = metrics.evaluate(y, s, threshold=0.5)
    assert {"auroc", "auprc", "f1", "specificity", "threshold"} <= set(r)
    mean, std = metrics.mean_std([0.8, 0.9, 1.0])
    assert mean == pytest.approx(0.9) and std == pytest.approx(0.1)
    assert metrics.mean_std([0.5]) == (0.5, 0.0)
    summ = metrics.summarize([{"auroc": 0.8}, {"auroc": 1.0}])
    assert summ["auroc"][0] == pytest.approx(0.9)


@pytest.mark.parametrize(
    "y,s,msg",
    [
        ([0, 1], [0.1], "labels"),
        ([0, 0], [0.1, 0.2], "both"),
        ([0, 2], [0.1, 0.2], "0 \\(normal\\) or 1"),
        ([0, 1], [0.1, np.nan], "NaN"),
        ([], [], "empty"),
    ],
)
def test_bad_metric_input(y, s, msg):
    with pytest.raises(ValueError, match=msg):
        metrics.roc_auc(y, s)
