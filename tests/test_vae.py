"""VAE (negative-ELBO score, ADGAN section 4.2 baseline) on real data (8x8 digits).

The checks every model shares (save/load, batch independence, bad input, resume)
are in test_model_contract.py.
"""

import copy
import math

import numpy as np
import pytest
import torch

import ganad
from ganad.models.vae import VAE

from helpers import assert_parts, assert_separates, digits_fixture, fitted_fixture

torch.set_num_threads(1)
# calibration_fraction=0: these tests measure the method on all of its training images
# (their floors were set that way); threshold calibration is tested in test_calibration.py
SMALL = dict(calibration_fraction=0.0, width=16, nz=16, batch_size=16, epochs=15, device="cpu", random_state=0)
NORMAL = 5  # untrained nets score ~0.53 AUROC on this class (no "more ink" shortcut)
digits = digits_fixture(NORMAL)
fitted = fitted_fixture(VAE, SMALL)


def test_separates_held_out_fives_from_other_digits(fitted, digits):
    # Measured, seeds 0-4: trained 0.987-0.998 (seed 0: 0.998); untrained 0.526 for every seed
    # (an untrained decoder outputs ~0, so its score is the image's ink).  Bernoulli: 0.984-0.995.
    assert_separates(fitted, SMALL, digits, floor=0.95, margin=0.3)


def test_score_is_negative_elbo_with_parts(fitted, digits):
    parts = fitted.score_parts(digits[1][:9])
    assert_parts(parts, {"reconstruction", "kl", "elbo_pixel", "score"}, 9)
    np.testing.assert_allclose(parts["score"], parts["reconstruction"] + parts["kl"], rtol=1e-6)
    assert (parts["kl"] >= 0).all() and (parts["reconstruction"] > 0).all()
    h = fitted.history_
    assert h.epochs_run == 15 and {"neg_elbo", "reconstruction", "kl"} <= set(h.losses)
    assert h.losses["neg_elbo"][-1] < h.losses["neg_elbo"][0]  # the ELBO went up during training


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_reconstruction_term_matches_its_formula(digits, likelihood):
    det = VAE(**{**SMALL, "epochs": 2, "likelihood": likelihood, "sigma": 0.5}).fit(digits[0])
    x = digits[1][:5]
    parts = det.score_parts(x)
    p = det.reconstruct(x).astype(np.float64)  # decoder mean at the posterior mean, [0, 1]
    t = x[:, None].astype(np.float64) / 255
    if likelihood == "gaussian":  # in [-1, 1] pixel units, sigma = 0.5
        nll = (2 * t - 2 * p) ** 2 / (2 * 0.25) + math.log(0.5) + 0.5 * math.log(2 * math.pi)
    else:
        nll = -(t * np.log(p) + (1 - t) * np.log1p(-p))
    np.testing.assert_allclose(parts["reconstruction"], nll.reshape(5, -1).sum(1), rtol=1e-4)


def test_sampled_scores_are_deterministic_and_batch_independent(fitted, digits):
    det = copy.deepcopy(fitted).set_params(n_samples=8)
    x = digits[1][:40]
    a, b = det.score_parts(x), det.score_parts(x)
    np.testing.assert_array_equal(a["score"], b["score"])  # fixed, seeded draws
    alone = np.array([det.decision_function(x[i : i + 1])[0] for i in (0, 21, 39)])
    np.testing.assert_allclose(alone, a["score"][[0, 21, 39]], rtol=1e-5)
    np.testing.assert_array_equal(a["kl"], fitted.score_parts(x)["kl"])  # KL is exact either way
    assert not np.allclose(a["reconstruction"], fitted.score_parts(x)["reconstruction"])  # samples, not the mean


@pytest.mark.parametrize(
    "bad",
    [dict(nz=0), dict(likelihood="poisson"), dict(sigma=0.0), dict(n_samples=-1), dict(lr=-1e-3), dict(batch_size=0)],
)
def test_invalid_parameters(bad, digits):
    with pytest.raises(ValueError):
        VAE(**{**SMALL, **bad}).fit(digits[0])


def test_registry_and_defaults():
    v = ganad.create("vae")
    assert isinstance(v, VAE)
    assert (v.nz, v.width, v.lr, v.likelihood, v.n_samples) == (32, 32, 1e-3, "gaussian", 0)


def test_elbo_pixel_score_is_a_score_only_parameter(fitted, digits):

    det = copy.deepcopy(fitted).set_params(score="elbo_pixel")
    parts = fitted.score_parts(digits[1][:9])
    np.testing.assert_allclose(det.decision_function(digits[1][:9]), parts["elbo_pixel"], rtol=1e-6)
    # -log N(x; y, s_p^2) summed over pixels, + KL: differs from the fixed-sigma -ELBO
    assert not np.allclose(parts["elbo_pixel"], parts["score"])
    with pytest.raises(ValueError, match="score"):
        VAE(**{**SMALL, "score": "nope"}).fit(digits[0])


def test_gaussian_pixel_likelihood_trains_and_scores_with_the_pixel_scales(digits):
    det = VAE(**{**SMALL, "epochs": 3, "likelihood": "gaussian_pixel"}).fit(digits[0])
    parts = det.score_parts(digits[1][:9])
    # trained and scored with the same per-pixel likelihood: the -ELBO is elbo_pixel
    np.testing.assert_allclose(parts["score"], parts["elbo_pixel"], rtol=1e-6)
    train = digits[0][:, None].astype(np.float64) / 255 * 2 - 1
    np.testing.assert_allclose(det.pixel_scale_.numpy(), train.std(0) + 0.1, rtol=1e-4)
