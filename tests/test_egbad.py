"""EGBAD (BiGAN) on real data (scikit-learn's 8x8 digits), its score variants.

The checks every model shares (save/load, batch independence, bad input, resume)
are in test_model_contract.py.
"""

import copy

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch.nn.utils.parametrize import is_parametrized

import ganad
from ganad.models.egbad import EGBAD
from ganad.nets.joint import ALADEncoder, XZDiscriminator, ZenatiMNISTDiscriminator, ZenatiMNISTEncoder

from helpers import assert_parts, assert_separates, digits_fixture, fitted_fixture

torch.set_num_threads(1)
NORMAL = 2  # untrained nets score digit 2 at chance (AUROC ~0.47), unlike digit 0 (~0.86: more ink)
# calibration_fraction=0: these tests measure the method on all of its training images
# (their floors were set that way); threshold calibration is tested in test_calibration.py
SMALL = dict(calibration_fraction=0.0, width=16, nz=16, batch_size=16, lr=2e-4, epochs=60, device="cpu", random_state=0)
TINY = dict(width=4, nz=4, batch_size=8, lr=2e-4, epochs=1, device="cpu", random_state=0)
digits = digits_fixture(NORMAL)
fitted = fitted_fixture(EGBAD, SMALL)


def test_separates_held_out_normals_from_other_digits(fitted, digits):
    # Measured (digit 2 normal, 60 epochs = 420 steps): score 0.903 / 0.830 / 0.961 for
    # seeds 0 / 1 / 2, residual term 0.973 / 0.970 / 0.986; the same nets untrained: 0.47.  A score
    # with the wrong sign or an untrained model cannot pass.  The feature-matching term
    # alone is still inverted this early in training (~0.2: D separates real pairs of the
    # normal class from reconstructions better than any pair of an unseen digit).
    _, test, labels = digits
    assert_separates(fitted, SMALL, digits, floor=0.85, margin=0.25, part="score")
    assert roc_auc_score(labels, fitted.score_parts(test)["residual"]) >= 0.93


def test_score_is_the_papers_combination(fitted, digits):
    x = digits[1][:9]
    parts = fitted.score_parts(x)
    assert_parts(parts, {"residual", "discriminator", "fm", "ce", "ce_real", "score"}, 9)
    np.testing.assert_array_equal(parts["discriminator"], parts["fm"])
    np.testing.assert_allclose(parts["score"], 0.9 * parts["residual"] + 0.1 * parts["fm"], rtol=1e-5)
    assert (parts["ce"] > 0).all() and (parts["residual"] > 0).all()
    # the survey's test-time variants come from the same model
    ce = copy.deepcopy(fitted).set_params(score_method="ce", lam=0.5).score_parts(x)
    np.testing.assert_allclose(ce["score"], 0.5 * parts["residual"] + 0.5 * parts["ce"], rtol=1e-5)
    h = fitted.history_
    assert h.epochs_run == 60 and {"d", "g", "e"} == set(h.losses)


def test_scores_come_from_the_moving_average(fitted, digits):
    live = {k: m for k, m in fitted.nets_.items() if k != "ema"}
    ema = fitted.nets_["ema"]
    assert set(live) == set(ema) == {"e", "g", "d"}
    w_live, w_ema = live["e"].fc.weight, ema["e"].fc.weight
    assert not torch.equal(w_live, w_ema) and not w_ema.requires_grad
    # BatchNorm statistics are shared (copied), not averaged
    torch.testing.assert_close(live["g"].fc[1].running_mean, ema["g"].fc[1].running_mean)
    raw = EGBAD(**{**TINY, "ema_decay": 0.0}).fit(digits[0][:32])
    assert "ema" not in raw.nets_ and raw.decision_function(digits[1][:3]).shape == (3,)


@pytest.mark.parametrize("train_adv", ["bce", "fm"])
@pytest.mark.parametrize("train_residual", [0.0, 1.0])
def test_survey_table1_training_configurations(digits, train_adv, train_residual):
    det = EGBAD(**{**TINY, "train_adv": train_adv, "train_residual": train_residual}).fit(digits[0][:32])
    losses = det.history_.losses
    assert ("e_residual" in losses) == bool(train_residual)
    assert np.isfinite(det.decision_function(digits[1][:5])).all()


def test_nets_at_32px_follow_the_references():
    x = np.random.RandomState(0).randint(0, 256, size=(4, 28, 28), dtype=np.uint8)
    det = EGBAD(nz=200, epochs=0, device="cpu").fit(x)  # arch="auto" -> EGBAD's MNIST nets
    assert det.image_size_ == 32 and det.resolved_arch() == "mnist" and det.width is None
    e, g, d = det.nets_["e"], det.nets_["g"], det.nets_["d"]
    assert isinstance(e, ZenatiMNISTEncoder) and isinstance(d, ZenatiMNISTDiscriminator)
    assert [m.out_channels for m in e.modules() if isinstance(m, torch.nn.Conv2d)] == [32, 64, 128]
    assert e.fc.in_features == 128 * 8 * 8 and e.fc.out_features == 200
    with torch.no_grad():
        assert g.eval()(torch.zeros(2, 200)).shape == (2, 1, 32, 32)
    assert d.joint[0].out_features == 1024 and d.z_path[0].out_features == 512
    assert isinstance(d.x_path[2], torch.nn.Dropout) and d.x_path[2].p == 0.5
    rgb = np.random.RandomState(0).randint(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    det = EGBAD(nz=100, width=16, epochs=0, device="cpu").fit(rgb)  # ALAD's CIFAR nets, no SN
    assert det.resolved_arch() == "cifar"
    assert isinstance(det.nets_["e"], ALADEncoder) and isinstance(det.nets_["d"], XZDiscriminator)
    assert not any(is_parametrized(m) for m in det.nets_.modules())
    assert [m.out_channels for m in det.nets_["e"].body if isinstance(m, torch.nn.Conv2d)] == [16, 32, 64]
    assert det.decision_function(rgb).shape == (4,)


def test_registry_defaults_and_parameter_checks(digits):
    d = ganad.create("egbad")
    assert isinstance(d, EGBAD)
    assert (d.nz, d.lr, d.beta1, d.batch_size, d.ema_decay, d.lam) == (200, 1e-5, 0.5, 100, 0.999, 0.1)
    assert (d.train_adv, d.train_residual, d.score_method, d.arch) == ("bce", 0.0, "fm", "auto")
    bad = [
        ("arch", "resnet"), ("train_adv", "wgan"), ("score_method", "l2"), ("lam", 1.5),
        ("train_residual", -1.0), ("ema_decay", 1.0), ("nz", 0), ("width", 1), ("lr", 0.0), ("beta1", 1.0),
    ]
    for name, value in bad:
        with pytest.raises(ValueError, match=name):
            EGBAD(**{**TINY, name: value}).fit(digits[0][:16])


def test_validation_keeps_the_epoch_with_the_best_normal_reconstruction(digits):
    det = EGBAD(**{**TINY, "epochs": 3, "validation_fraction": 0.2, "patience": 3}).fit(digits[0])
    h = det.history_
    assert len(h.val_losses) == 3 and h.best_epoch == int(np.argmin(h.val_losses))
    # the criterion is the mean L1 cycle error of held-out normals, with the scoring (EMA) nets
    _, held_out = det._holdout(digits[0])
    l1 = det.score_parts(held_out)["residual"].mean()
    assert det._val_loss(held_out) == pytest.approx(l1, rel=1e-5)
