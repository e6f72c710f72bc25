"""The detector contract (:mod:`ganad.base`): input validation, thresholds, registry, save/load."""

import numpy as np
import pytest
import torch

import ganad
from ganad.data.arrays import as_array


@pytest.fixture(scope="module")
def fitted(digits_split):
    return ganad.create("ocsvm", n_components=20).fit(digits_split.train.x)


def test_registry_lists_lowercase_names():
    names = ganad.available_models()
    assert {"kde", "ocsvm", "iforest", "gmm"} <= set(names)
    assert all(n == n.lower() for n in names)
    with pytest.raises(ValueError, match="unknown model"):
        ganad.create("nope")
    with pytest.raises(ValueError, match="kde"):
        ganad.create("kde", not_a_param=1)


def test_fit_returns_self_and_sets_attributes(digits_split):
    det = ganad.create("kde", n_components=20)
    assert det.fit(digits_split.train.x) is det
    assert det.decision_scores_.shape == (len(digits_split.train),)
    assert det.calibration_scores_.shape == (len(digits_split.train),)  # cross-fitted: out-of-fold scores


def test_predict_and_proba(fitted, digits_split):
    x = digits_split.test.x
    s = fitted.decision_function(x)
    pred = fitted.predict(x)
    assert set(np.unique(pred)) <= {0, 1} and np.array_equal(pred, (s > fitted.threshold_).astype(int))
    p = fitted.predict_proba(x)
    assert p.shape == (len(x), 2) and np.allclose(p.sum(1), 1) and (p >= 0).all() and (p <= 1).all()
    # more anomalous -> higher probability of being anomalous
    order = np.argsort(s)
    assert np.all(np.diff(p[order, 1]) >= -1e-12)


def test_score_parts_has_score(fitted, digits_split):
    parts = fitted.score_parts(digits_split.test.x[:10])
    assert np.array_equal(parts["score"], fitted.decision_function(digits_split.test.x[:10]))


def test_not_fitted_error(digits_split):
    det = ganad.create("kde")
    with pytest.raises(ganad.NotFittedError, match="fit"):
        det.decision_function(digits_split.test.x)
    with pytest.raises(ValueError):
        det.save("/tmp/never.pt")


@pytest.mark.parametrize(
    "bad,msg",
    [
        (np.zeros((0, 8, 8)), "empty"),
        (np.zeros((5,)), "shape"),
        (np.zeros((2, 1, 1, 8, 8)), "5 dimension"),
        (np.full((3, 8, 8), np.nan), "NaN"),
        (np.full((3, 8, 8), np.inf), "NaN or infinite"),
        (np.array([["a"] * 8] * 3), "numbers"),
        ("/no/such/folder", "no such|does not exist|not found"),
        ({"a": 1}, "numpy array"),
    ],
)
def test_bad_input_is_a_clear_value_error(fitted, bad, msg):
    with pytest.raises(ValueError, match=msg):
        fitted.decision_function(bad)


def test_channel_and_size_mismatch(fitted):
    with pytest.raises(ValueError, match="3 channel"):
        fitted.decision_function(np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="16x16"):
        fitted.decision_function(np.zeros((2, 16, 16), np.uint8))


def test_accepts_tensor_dataset_and_nchw(fitted, digits_split):
    x = digits_split.test.x[:20]
    ref = fitted.decision_function(x)
    assert np.allclose(fitted.decision_function(x[:, None]), ref)
    assert np.allclose(fitted.decision_function(torch.from_numpy(x)), ref)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.zeros(20))
    assert np.allclose(fitted.decision_function(ds), ref)


def test_params_validation():
    with pytest.raises(ValueError, match="contamination"):
        ganad.create("kde", contamination=0.9).fit(np.zeros((10, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="n_components"):
        ganad.create("kde", n_components=0).fit(np.zeros((10, 8, 8), np.uint8))


def test_get_set_params_roundtrip():
    det = ganad.create("ocsvm", nu=0.2)
    assert det.get_params()["nu"] == 0.2
    det.set_params(nu=0.3)
    assert det.nu == 0.3
    with pytest.raises(ValueError, match="no parameter"):
        det.set_params(bogus=1)


def test_load_rejects_foreign_files(tmp_path):
    bad = tmp_path / "x.pt"
    torch.save({"hello": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a ganad model"):
        ganad.load(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a ganad model"):
        ganad.load(junk)
    with pytest.raises(ValueError, match="no such"):
        ganad.load(tmp_path / "missing.pt")


def test_as_array_keeps_uint8():
    x = np.zeros((4, 8, 8), np.uint8)
    assert as_array(x).dtype == np.uint8
