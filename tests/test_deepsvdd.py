"""Deep SVDD (Ruff et al. 2018) on real data (8x8 digits), its preprocessing and nets.

The checks every model shares (save/load, batch independence, bad input, resume)
are in test_model_contract.py.
"""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import ganad
from ganad.models.deepsvdd import DeepSVDD, global_contrast_normalization
from ganad.nets.lenet import LeNetDecoder, LeNetEncoder, has_bias, lenet_pair

from conftest import digit_case

torch.set_num_threads(1)
# The reference's lr 1e-4 needs ~150 epochs of a 6000-image class; 120 images get 1e-3 instead.
# calibration_fraction=0: these tests measure the method on all of its training images
# (their floors were set that way); threshold calibration is tested in test_calibration.py
SMALL = dict(calibration_fraction=0.0, epochs=30, pretrain_epochs=30, batch_size=32, lr=1e-3, pretrain_lr=1e-3,
             lr_milestones=(), pretrain_lr_milestones=(), device="cpu", random_state=0)
UNTRAINED = dict(epochs=0, pretrain_epochs=0)
NORMAL = 5


@pytest.fixture(scope="module")
def digits():
    return digit_case(NORMAL)


@pytest.fixture(scope="module")
def fitted(digits):
    return {
        "one-class": DeepSVDD(**SMALL).fit(digits[0]),
        "soft-boundary": DeepSVDD(**SMALL, objective="soft-boundary", nu=0.1).fit(digits[0]),
    }


@pytest.mark.parametrize("objective", ["one-class", "soft-boundary"])
def test_separates_held_out_fives_from_other_digits(fitted, digits, objective):
    # Measured (one-class), seeds 0-4: trained 0.907-0.974 (seed 0: 0.974); the same-seed
    # untrained net (random phi, c from it) 0.39-0.81 (seed 0: 0.670); margin >= 0.15.
    # Soft-boundary, seed 0: 0.978.
    train, test, labels = digits
    auroc = roc_auc_score(labels, fitted[objective].decision_function(test))
    base = roc_auc_score(labels, DeepSVDD(**{**SMALL, **UNTRAINED}).fit(train).decision_function(test))
    assert auroc >= 0.88, f"{objective}: AUROC {auroc:.3f}"
    assert auroc >= base + 0.1, f"{objective}: AUROC {auroc:.3f} vs {base:.3f} untrained"


@pytest.mark.parametrize("objective", ["one-class", "soft-boundary"])
def test_no_hypersphere_collapse(fitted, digits, objective):
    # Measured, seed 0: score std 0.16-0.18 (mean 0.2), every score distinct, per-unit std of
    # phi 0.02-0.06.  A collapsed phi (constant output) gives std 0 and one unique value.
    det = fitted[objective]
    s = det.decision_function(digits[1])
    assert s.std() > 0.02 and s.std() > 0.1 * abs(s.mean())
    assert len(np.unique(s)) > 0.9 * len(s)
    phi = det.nets_["phi"].eval()
    with torch.no_grad():
        out = phi(det._to_input(digits[1]))
    assert out.std(0).min() > 1e-3  # every output unit still varies across images


def test_score_parts_and_radius(fitted, digits):
    oc, sb = fitted["one-class"], fitted["soft-boundary"]
    p = oc.score_parts(digits[1][:9])
    assert set(p) == {"distance", "score"}
    np.testing.assert_array_equal(p["score"], p["distance"])
    assert oc.radius_ == 0.0
    q = sb.score_parts(digits[1][:9])
    assert sb.radius_ > 0  # set after the 10 warm-up epochs
    np.testing.assert_allclose(q["score"], q["distance"] - sb.radius_**2, rtol=1e-5, atol=1e-6)
    # R is the (1 - nu) quantile of a batch's distances: about nu of the training points lie outside
    outside = float((sb.decision_scores_ > 0).mean())
    assert 0.0 < outside < 0.5
    assert sb.history_.losses["radius"][-1] > 0 and sb.history_.losses["radius"][0] == 0


def test_centre_is_kept_away_from_zero(fitted):
    c = fitted["one-class"].center_
    assert c.shape == (32,) and (np.abs(c) >= 0.1 - 1e-7).all()


def test_preprocessing_uses_training_constants_only(fitted, digits):
    det = fitted["one-class"]
    train = digits[0].astype(np.float64) / 255
    g = train - train.mean(axis=(1, 2), keepdims=True)
    g = g / np.abs(g).mean(axis=(1, 2), keepdims=True)
    assert det.data_min_ == pytest.approx(g.min(), rel=1e-5)
    assert det.data_max_ == pytest.approx(g.max(), rel=1e-5)
    t = det._to_input(digits[0]).numpy()
    assert t.min() == pytest.approx(0.0, abs=1e-6) and t.max() == pytest.approx(1.0, abs=1e-6)
    det.decision_function(digits[1])  # scoring other data never refits the constants
    assert det.data_min_ == pytest.approx(g.min(), rel=1e-5)


def test_gcn_l1():
    x = torch.rand(3, 2, 5, 5)
    y = global_contrast_normalization(x)
    assert torch.allclose(y.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-6)
    assert torch.allclose(y.abs().mean(dim=(1, 2, 3)), torch.ones(3), atol=1e-5)
    assert torch.equal(global_contrast_normalization(torch.full((1, 1, 4, 4), 0.3)), torch.zeros(1, 1, 4, 4))


def test_soft_boundary_save_load_keeps_the_radius(fitted, digits, tmp_path):
    # the default (one-class) model's round trip is in test_model_contract.py
    det = fitted["soft-boundary"]
    det.save(tmp_path / "svdd.pt")
    back = ganad.load(tmp_path / "svdd.pt")
    assert type(back) is DeepSVDD and back.get_params() == det.get_params()
    np.testing.assert_array_equal(back.decision_function(digits[1]), det.decision_function(digits[1]))
    np.testing.assert_array_equal(back.center_, det.center_)
    assert (back.radius_, back.data_min_, back.data_max_) == (det.radius_, det.data_min_, det.data_max_)


def test_checkpoints_each_phase_and_resumes(digits, tmp_path):
    ck = tmp_path / "ck.pt"
    kw = {**SMALL, "epochs": 2, "pretrain_epochs": 2, "checkpoint": str(ck)}
    a = DeepSVDD(**kw).fit(digits[0][:64])
    assert ck.exists() and (tmp_path / "ck.pt.pretrain").exists()
    with pytest.raises(ValueError, match="random_state 0 != 1"):  # another seed is another run
        DeepSVDD(**{**kw, "random_state": 1}).fit(digits[0][:64])
    b = DeepSVDD(**kw).fit(digits[0][:64])  # the same run again: its finished checkpoints are loaded
    np.testing.assert_array_equal(a.decision_function(digits[1][:9]), b.decision_function(digits[1][:9]))
    assert b.history_.resumed_from == 2 and b.pretrain_history_.resumed_from == 2


def test_lr_milestones():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1.0)
    for epoch, want in [(0, 1e-4), (29, 1e-4), (30, 1e-5), (80, 1e-6)]:
        DeepSVDD._set_lr(opt, 1e-4, epoch, (30, 80))
        assert opt.param_groups[0]["lr"] == pytest.approx(want)


def test_lenet_presets_are_bias_free_and_match_the_reference_sizes():
    enc, dec = lenet_pair("mnist", 1, 28)
    assert not has_bias(enc) and not has_bias(dec)
    assert sum(p.numel() for p in enc.parameters()) == 200 + 800 + 196 * 32  # conv 1-8, conv 8-4, FC 196-32
    assert dec(enc(torch.rand(2, 1, 28, 28))).shape == (2, 1, 28, 28)
    enc, dec = lenet_pair("cifar", 3, 32)
    assert not has_bias(enc) and not has_bias(dec)
    assert enc.fc.in_features == 2048 and enc.rep_dim == 128
    assert dec(enc(torch.rand(2, 3, 32, 32))).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError):
        LeNetEncoder(1, 30, (8, 4), 32)  # 30 is not divisible by 4
    with pytest.raises(ValueError):
        LeNetDecoder(1, 28, (8, 4), 20)  # the code reshapes to (rep_dim/16, 4, 4)


def test_odd_sizes_are_padded(digits):
    x = np.random.RandomState(0).randint(0, 256, size=(20, 3, 30, 30), dtype=np.uint8)
    det = DeepSVDD(**{**SMALL, "epochs": 1, "pretrain_epochs": 1}).fit(x)
    assert det.preset_ == "cifar" and det._padded_hw() == (32, 32)
    assert det.decision_function(x[:3]).shape == (3,)


@pytest.mark.parametrize(
    "bad",
    [dict(objective="hard"), dict(nu=0.0), dict(nu=1.5), dict(net="resnet"), dict(rep_dim=20),
     dict(eps=0.0), dict(lr=0), dict(pretrain_epochs=-1), dict(lr_milestones=(0,)), dict(weight_decay=-1.0)],
)
def test_invalid_parameters(bad, digits):
    with pytest.raises(ValueError):
        DeepSVDD(**{**SMALL, **bad}).fit(digits[0])


def test_registry_and_defaults():
    d = ganad.create("deepsvdd")
    assert isinstance(d, DeepSVDD)
    assert (d.objective, d.nu, d.lr, d.weight_decay, d.batch_size, d.eps) == ("one-class", 0.1, 1e-4, 5e-7, 200, 0.1)
    assert (d.epochs, d.pretrain_epochs, d.warm_up_epochs) == (50, 50, 10)
