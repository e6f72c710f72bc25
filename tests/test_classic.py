"""Classic baselines: real separation on digits, agreement with references.

The checks every model shares (save/load, batch independence, bad input, resume)
are in test_model_contract.py.
"""

import numpy as np
import pytest
from scipy.special import logsumexp

import ganad
from ganad import metrics
from ganad.models.classic import KDE_BANDWIDTHS, evangelista_gamma, gaussian_kde_logpdf

CLASSIC = ["kde", "ocsvm", "iforest", "gmm"]


@pytest.mark.parametrize("name", CLASSIC)
def test_separates_digit_from_the_rest(name, digits_split):
    # digit 3: the class where random features do worst (ink amount does not separate it)
    from ganad import datasets

    s = datasets.digits(protocol="one-class", normal_class=3, random_state=0)
    det = ganad.create(name, n_components=20).fit(s.train.x)
    auroc = metrics.roc_auc(s.test.y, det.decision_function(s.test.x))
    assert auroc > 0.90, f"{name}: AUROC {auroc:.3f}"


def test_kde_logpdf_is_exact(rng):
    data, query = rng.normal(size=(200, 10)), rng.normal(size=(30, 10)) * 2
    for h in (0.5, 1.0, 3.0):
        d2 = ((query[:, None] - data[None]) ** 2).sum(-1)
        ref = logsumexp(-d2 / (2 * h * h), axis=1) - np.log(200) - 5 * np.log(2 * np.pi * h * h)
        assert np.allclose(gaussian_kde_logpdf(query, data, h), ref, atol=1e-9)


def test_kde_bandwidth_cross_validation_picks_a_wide_kernel_for_wide_data(rng):
    det = ganad.create("kde", n_components=None)
    wide = (rng.normal(size=(300, 4)) * 8.0).astype(np.float32)
    det.fit(wide)
    assert det.bandwidth_ in KDE_BANDWIDTHS and det.bandwidth_ > 1.0
    narrow = ganad.create("kde", n_components=None).fit(rng.normal(size=(300, 4)).astype(np.float32) * 0.2)
    assert narrow.bandwidth_ == 1.0


def test_evangelista_gamma_scales_with_data(rng):
    f = rng.normal(size=(300, 5))
    g1, g2 = evangelista_gamma(f), evangelista_gamma(f * 10)
    assert g1 / g2 == pytest.approx(100, rel=0.15)


def test_gmm_chooses_components_by_bic(rng):
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    x = np.concatenate([c + rng.normal(size=(100, 2)) for c in centres]).astype(np.float32)
    det = ganad.create("gmm", n_components=None, mixture_components=list(range(2, 7))).fit(x)
    assert det.k_ == 3


def test_tabular_input_works(rng):
    x = rng.normal(size=(200, 6)).astype(np.float32)
    det = ganad.create("iforest").fit(x)
    far = np.full((5, 6), 6.0, np.float32)
    assert det.decision_function(far).min() > np.quantile(det.decision_scores_, 0.95)


@pytest.mark.parametrize("name", ["kde", "ocsvm", "gmm"])
def test_the_threshold_of_a_small_training_set_flags_about_the_contamination_of_new_normals(name):
    """With fewer images than PCA axes the cross-fit folds kept fewer axes than the
    full fit, and kde's threshold (a log-density on another scale) flagged every new
    normal: the folds and the full fit now share one PCA size."""
    from ganad import datasets

    s = datasets.digits(protocol="one-class", normal_class=3, random_state=0)
    train = s.train.x[:48]
    new_normals = np.concatenate([s.train.x[48:], s.val.x[s.val.y == 0], s.test.x[s.test.y == 0]])
    det = ganad.create(name, n_components=50).fit(train)
    assert det.components_.shape[0] == 37  # 48 - ceil(48 / 5) - 1: the smallest fold's rank
    flagged = float(det.predict(new_normals).mean())
    assert flagged <= 0.4, f"{name} flagged {flagged:.2f} of {len(new_normals)} new normals (contamination 0.1)"
