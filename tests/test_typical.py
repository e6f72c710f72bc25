"""The A-score wrapper ``typical`` (AMA, section 3.4): its Gaussian, the two-sided effect on real data.

The checks every model shares (save/load, batch independence, bad input, the
parameter API) run in test_model_contract.py (with a tiny DCAE as the base,
see conftest.TINY_OVERRIDES); this file checks what is specific to the wrapper.

"Too typical" inputs are blends: the pixel mean of 8 random training images of
the normal digit (rounded to uint8).  A density or an autoencoder trained on
that digit scores them *below* nearly every real normal image (smooth, central
images: near the density's mode, easy to reconstruct), yet no real digit
looks like them.  Measured on the ten digit classes (blends of 3 seeds):
AUROC of blends vs. test normals by the base's score R 0.000-0.006 (kde; digit
1: 0.15) and 0.000-0.001 (dcae); by the A-score 0.81-1.00 (kde; 0.96 on
digit 3) and 0.985-1.000 (dcae; 1.000 on digit 3).
"""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import ganad
from ganad import datasets
from ganad.exceptions import NoAnomalyMapError
from ganad.models.typical import SIGMA_FLOOR_REL, Typical, a_score, gaussian

torch.set_num_threads(1)

TINY_DCAE = {"width": 8, "nz": 8, "batch_size": 32, "epochs": 1, "device": "cpu"}
#: trained enough to reconstruct digit 3 (and blends of it)
DCAE = {"width": 16, "nz": 8, "batch_size": 16, "epochs": 15, "device": "cpu"}
BASES = {"kde": {}, "dcae": DCAE}


@pytest.fixture(scope="module")
def digit3():
    return datasets.digits(protocol="one-class", normal_class=3, random_state=0)


@pytest.fixture(scope="module")
def wrapped(digit3):
    """``wrapped(base)``: typical(base) fitted on digit 3, once per module."""
    cache: dict = {}

    def get(base: str):
        if base not in cache:
            det = ganad.create("typical", base=base, base_params=BASES[base], random_state=0)
            cache[base] = det.fit(digit3.train.x)
        return cache[base]

    return get


def _blends(x: np.ndarray, n: int = 30, k: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = [x[rng.choice(len(x), k, replace=False)].astype(np.float64).mean(0) for _ in range(n)]
    return np.stack(means).round().astype(np.uint8)


def _auroc(normal: np.ndarray, other: np.ndarray) -> float:
    return roc_auc_score(np.r_[np.zeros(len(normal)), np.ones(len(other))], np.r_[normal, other])


# ------------------------------------------------------------- the Gaussian
@pytest.mark.parametrize("base,params", [("kde", {}), ("dcae", TINY_DCAE)])
def test_gaussian_is_fitted_on_held_out_scores_of_a_base_fitted_on_the_rest(base, params, digits_split):
    x, test = digits_split.train.x, digits_split.test.x[:50]
    det = ganad.create("typical", base=base, base_params=params, holdout_fraction=0.25, random_state=3).fit(x)
    fit_part, cal = det._calibration_split(x)
    base_part, held = det._gaussian_split(fit_part)
    assert (len(cal), len(held), len(base_part)) == (20, 15, 45)  # 80 -> 20 calibrate, 15 Gaussian, 45 base
    # the base was fitted on base_part alone (random_state follows the wrapper's): a fresh
    # base fitted on it scores as the wrapper's does
    alone = ganad.create(base, **params, random_state=3).fit(base_part)
    np.testing.assert_array_equal(det.base_.decision_function(test), alone.decision_function(test))
    r_held = alone.decision_function(held)
    mu, sigma = det.mu_, det.sigma_
    assert mu == pytest.approx(np.mean(r_held), rel=1e-12) and sigma == pytest.approx(np.std(r_held), rel=1e-12)
    assert sigma > SIGMA_FLOOR_REL * abs(mu)  # the floor is not what set it
    # A = (R - mu)^2 / sigma^2, and scoring other data changes neither mu nor sigma
    parts = det.score_parts(test)
    np.testing.assert_allclose(parts["score"], (alone.decision_function(test) - mu) ** 2 / sigma**2, rtol=1e-9)
    np.testing.assert_array_equal(parts["a_score"], parts["score"])
    np.testing.assert_array_equal(parts["base"], alone.decision_function(test))
    det.decision_function(digits_split.test.x)
    det.score_parts(x)
    assert (det.mu_, det.sigma_) == (mu, sigma)
    # the threshold comes from A-scores of the calibration samples, which neither the base nor the Gaussian saw
    np.testing.assert_allclose(det.calibration_scores_, det.decision_function(cal), rtol=1e-12)
    assert det.threshold_ in det.calibration_scores_


def test_gaussian_on_train_is_the_papers_rule_the_base_fits_all_and_its_own_scores_make_it(digits_split):
    x = digits_split.train.x
    det = ganad.create("typical", base="kde", gaussian_on="train").fit(x)
    fit_part, _ = det._calibration_split(x)
    alone = ganad.create("kde", random_state=0).fit(fit_part)
    r = alone.decision_function(fit_part)
    np.testing.assert_array_equal(det.base_.decision_function(x), alone.decision_function(x))
    assert det.mu_ == pytest.approx(r.mean(), rel=1e-12) and det.sigma_ == pytest.approx(r.std(), rel=1e-12)
    held = ganad.create("typical", base="kde").fit(x)
    assert held.mu_ != det.mu_


def test_sigma_is_floored_for_a_constant_score():
    mu, sigma = gaussian(np.full(10, 5.0))
    assert mu == 5.0 and sigma == SIGMA_FLOOR_REL * 5.0
    assert gaussian(np.zeros(4))[1] > 0
    assert np.isfinite(a_score(np.array([5.0, 6.0]), mu, sigma)).all()


# --------------------------------------------------------- the two-sided effect
@pytest.mark.parametrize("base", list(BASES))
def test_too_typical_inputs_are_normal_to_the_base_and_anomalous_to_the_wrapper(base, wrapped, digit3):
    det = wrapped(base)
    normal = digit3.test.x[digit3.test.y == 0]
    blends = _blends(digit3.train.x)
    pn, pb = det.score_parts(normal), det.score_parts(blends)
    # the base: the blends score below nearly every real normal image (most normal of all)
    assert _auroc(pn["base"], pb["base"]) < 0.02
    assert np.median(pb["base"]) < np.quantile(pn["base"], 0.05) and np.median(pb["base"]) < det.mu_ - det.sigma_
    # the wrapper: they are anomalous (measured 0.96 kde, 1.000 dcae), and its threshold flags most
    assert _auroc(pn["score"], pb["score"]) > 0.9
    assert det.predict(blends).mean() >= 0.8
    assert det.predict(normal).mean() <= 0.3  # ... while flagging few new normals (measured 0.14 / 0.00)


def test_ordinary_anomalies_are_still_separated(wrapped, digit3):
    # measured: A 0.978 / R 0.986 (kde); a constant or random score gives 0.5
    det = wrapped("kde")
    parts = det.score_parts(digit3.test.x)
    auroc = roc_auc_score(digit3.test.y, parts["score"])
    assert auroc > 0.93, auroc
    assert auroc > roc_auc_score(digit3.test.y, parts["base"]) - 0.05


def test_score_parts_carry_the_bases_terms(wrapped, digit3):
    det = wrapped("dcae")
    parts = det.score_parts(digit3.test.x[:20])
    own = det.base_.score_parts(digit3.test.x[:20])
    assert set(parts) == {"score", "a_score", "base"} | {f"base_{k}" for k in own if k != "score"}
    for k in own:
        np.testing.assert_array_equal(parts["base" if k == "score" else f"base_{k}"], own[k])


# ----------------------------------------------------------------- persistence
def test_save_load_round_trip_scores_identically(wrapped, digit3, tmp_path):
    det = wrapped("kde")
    det.save(tmp_path / "t.pt")
    back = ganad.load(tmp_path / "t.pt")
    assert type(back) is Typical and type(back.base_) is type(det.base_) and back.base_.name == "kde"
    assert (back.mu_, back.sigma_, back.threshold_) == (det.mu_, det.sigma_, det.threshold_)
    assert back.get_params() == det.get_params()
    x = digit3.test.x
    np.testing.assert_array_equal(back.decision_function(x), det.decision_function(x))
    a, b = back.score_parts(x), det.score_parts(x)
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_file_whose_base_does_not_match_is_refused(wrapped, tmp_path):
    path = tmp_path / "t.pt"
    wrapped("kde").save(path)
    payload = torch.load(path, weights_only=True)
    payload["state"]["base"]["model"] = "gmm"
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="invalid model file.*saved base model is 'gmm'"):
        ganad.load(tmp_path / "bad.pt")
    payload["state"]["base"]["model"] = "kde"
    del payload["state"]["base"]["state"]
    torch.save(payload, tmp_path / "bad2.pt")
    with pytest.raises(ValueError, match="invalid model file.*base model: no 'state'"):
        ganad.load(tmp_path / "bad2.pt")


# ------------------------------------------------------------------ parameters
@pytest.mark.parametrize(
    "params,msg",
    [
        ({"base": "nosuchmodel"},
         r"base must be the name of a registered model other than 'typical' \(.*kde.*\); got 'nosuchmodel'"),
        ({"base": "typical"}, r"base must be the name of a registered model other than 'typical'.*; got 'typical'"),
        ({"base_params": {"bogus": 1}}, "base_params for kde: .*bogus"),
        ({"base_params": {"bandwidth": -1.0}}, "base_params for kde: bandwidth must be"),
        ({"base_params": [1]}, "base_params must be a dict"),
        ({"holdout_fraction": 0.0}, r"holdout_fraction must be a number in \(0, 0.5\]"),
        ({"gaussian_on": "test"}, "gaussian_on must be one of 'heldout', 'train'"),
        ({"value_range": (0, 255), "base_params": {"value_range": (0, 1)}}, "disagree"),
    ],
)
def test_bad_parameters_are_a_clear_value_error_before_any_work(params, msg, digits_split):
    det = ganad.create("typical", **params)
    with pytest.raises(ValueError, match=msg):
        det.fit(digits_split.train.x)
    assert not hasattr(det, "threshold_") and not hasattr(det, "base_")


def test_the_common_parameters_follow_the_wrapper_unless_base_params_sets_them(digits_split):
    x = digits_split.train.x.astype(np.float32)  # floats in [0, 255]
    det = ganad.create("typical", random_state=5, value_range=(0, 255)).fit(x)
    assert det.base_.random_state == 5 and tuple(det.base_.value_range) == (0, 255)
    as_uint8 = det.decision_function(digits_split.train.x[:10])
    np.testing.assert_allclose(det.decision_function(x[:10]), as_uint8, rtol=1e-9)
    own = ganad.create("typical", random_state=5, base_params={"random_state": 1}).fit(digits_split.train.x)
    assert own.base_.random_state == 1


def test_min_samples_is_exact_for_the_base(digits_split):
    det = ganad.create("typical")  # kde needs 10 samples: 15 -> 3 calibrate, 2 Gaussian, 10 base
    assert det.min_samples == 15
    det.fit(digits_split.train.x[:15])
    assert len(det.base_.decision_scores_) == 10
    with pytest.raises(ValueError, match="at least 15"):
        ganad.create("typical").fit(digits_split.train.x[:14])
    assert ganad.create("typical", base="dcae").min_samples < 15


def test_input_rules_are_the_bases(rng):
    feats = rng.normal(size=(120, 6)).astype(np.float32)
    det = ganad.create("typical", base="kde", base_params={"n_components": None}).fit(feats)
    assert det.input_kind == "any" and det.decision_function(feats[:5]).shape == (5,)
    assert ganad.create("typical", base="dcae").input_kind == "image" and Typical.input_kind == "any"
    with pytest.raises(ValueError, match="dcae works on images"):
        ganad.create("typical", base="dcae", base_params=TINY_DCAE).fit(feats)


def test_anomaly_map_is_the_bases(wrapped, digit3):
    det = wrapped("dcae")
    x = digit3.test.x[:10]
    assert det.has_anomaly_map and not Typical.has_anomaly_map
    np.testing.assert_array_equal(det.anomaly_map(x), det.base_.anomaly_map(x))
    kde = wrapped("kde")
    assert kde.has_anomaly_map is False
    with pytest.raises(NoAnomalyMapError, match="^typical has no anomaly map: it does not reconstruct its input"):
        kde.anomaly_map(x)
