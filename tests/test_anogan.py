"""AnoGAN on real data (scikit-learn's 8x8 digits), the batched latent search.

The checks every model shares (save/load, batch independence, bad input, resume)
are in test_model_contract.py.
"""

import numpy as np
import pytest
import torch

import ganad
from ganad.latent_search import per_image_normal, piecewise_lr, search_latent
from ganad.models.anogan import AnoGAN

from helpers import assert_parts, assert_scoring_leaves_nets_alone, assert_separates, digits_fixture, fitted_fixture

torch.set_num_threads(1)
# calibration_fraction=0: these tests measure the method on all of its training images
# (their floors were set that way); threshold calibration is tested in test_calibration.py
SMALL = dict(calibration_fraction=0.0, width=16, nz=16, batch_size=16, epochs=40, search_steps=100, device="cpu", random_state=0)
# Digit 4 is normal: untrained nets score it like the other digits (AUROC ~0.4),
# unlike digit 0, which has more ink than most digits (~0.86 untrained).
digits = digits_fixture(4)
fitted = fitted_fixture(AnoGAN, SMALL)


def test_separates_held_out_fours_from_other_digits(fitted, digits):
    # Measured (100 search steps, 40 epochs): seeds 0-3 give 0.963 / 0.972 / 0.946 / 0.970;
    # the same seeds untrained give 0.39-0.40.
    assert_separates(fitted, SMALL, digits, floor=0.9, margin=0.3)


def test_search_lowers_the_loss(fitted, digits):
    x = digits[1][:40]
    searched = fitted.score_parts(x)
    start = fitted.set_params(search_steps=0).score_parts(x)  # the loss at z_0
    fitted.set_params(search_steps=SMALL["search_steps"])
    assert np.all(searched["score"] < start["score"])
    assert np.mean(searched["score"]) < 0.9 * np.mean(start["score"])  # measured: 0.85


def test_score_parts_are_the_weighted_terms(fitted, digits):
    parts = fitted.score_parts(digits[1][:7])
    assert_parts(parts, {"residual", "feature", "score"}, 7)
    np.testing.assert_allclose(parts["score"], 0.9 * parts["residual"] + 0.1 * parts["feature"], rtol=1e-5)
    assert {"d", "g"} <= set(fitted.history_.losses) and fitted.history_.epochs_run == 40


def test_search_leaves_the_nets_alone(fitted, digits):
    assert_scoring_leaves_nets_alone(fitted, digits[1][:20])


def test_initial_latents_are_a_function_of_each_image(fitted, digits):
    x = digits[1][:10]
    z = fitted.initial_latents(x)
    assert z.shape == (10, SMALL["nz"])
    torch.testing.assert_close(fitted.initial_latents(x[[3, 3, 7]]), z[[3, 3, 7]])
    assert not torch.allclose(z[0], z[1])
    # another base seed gives other draws
    assert not torch.allclose(per_image_normal(x, (16,), fitted.search_seed_ + 1), z)


def test_batched_search_equals_one_search_per_row():
    torch.manual_seed(0)
    target = torch.randn(6, 5)
    weight = torch.randn(6, 5).abs() + 0.1

    def objective(z):  # a different quadratic per row
        return (weight * (z - target).pow(2)).sum(1) + z.pow(4).sum(1) * 0.01

    z0 = torch.randn(6, 5)
    together = search_latent(objective, z0, 50, piecewise_lr(0.1, 50))
    for i in (0, 4):
        alone = search_latent(lambda z, i=i: (weight[i] * (z - target[i]).pow(2)).sum(1) + z.pow(4).sum(1) * 0.01,
                              z0[i : i + 1], 50, piecewise_lr(0.1, 50))
        torch.testing.assert_close(alone[0], together[i])
    assert (objective(together) < objective(z0)).all()
    assert piecewise_lr(0.01, 500)(199) == 0.01 and piecewise_lr(0.01, 500)(200) == pytest.approx(1e-3)
    assert piecewise_lr(0.01, 500)(300) == pytest.approx(5e-4)


def test_registry_defaults_and_parameter_checks(digits):
    d = ganad.create("anogan")
    assert isinstance(d, AnoGAN)
    assert (d.nz, d.width, d.lr, d.beta1, d.lam) == (100, 64, 2e-4, 0.5, 0.1)
    assert (d.search_steps, d.search_lr, d.search_schedule) == (500, 0.01, "piecewise")
    bad = [
        {"lam": 1.5}, {"search_steps": -1}, {"search_steps": 2.5}, {"search_lr": 0.0},
        {"search_schedule": "cosine"}, {"nz": 0}, {"width": "8"}, {"lr": -1.0}, {"beta1": 1.0},
    ]
    for params in bad:
        with pytest.raises(ValueError):
            AnoGAN(**{**SMALL, "epochs": 0, **params}).fit(digits[0][:4])


def test_threshold_comes_from_a_seeded_held_out_subset_of_training_images(digits):
    train = digits[0]
    kw = {**SMALL, "epochs": 1, "search_steps": 3, "calibration_fraction": 0.1}
    a = AnoGAN(threshold_images=5, **kw).fit(train)
    assert a.decision_scores_.shape == (5,)  # the held-out 10% (12 images), capped at 5
    assert np.isfinite(a.threshold_)
    b = AnoGAN(threshold_images=5, **kw).fit(train)
    np.testing.assert_allclose(a.decision_scores_, b.decision_scores_)  # the same subset, the same scores
    assert AnoGAN(threshold_images=None, **kw).fit(train).decision_scores_.shape == (12,)
    # calibration_fraction=0: an in-sample subset of the training images, as before
    assert AnoGAN(threshold_images=50, **{**kw, "calibration_fraction": 0.0}).fit(train).decision_scores_.shape == (50,)
    with pytest.raises(ValueError, match="threshold_images"):
        AnoGAN(threshold_images=0, **kw).fit(train)
