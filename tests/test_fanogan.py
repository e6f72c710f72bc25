"""f-AnoGAN on real data (scikit-learn's 8x8 digits): two phases, two checkpoints.

The checks every model shares (save/load, batch independence, bad input, resume)
are in test_model_contract.py.
"""

import copy
import os

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import ganad
from ganad.models.fanogan import FAnoGAN, FAnoGANCritic, FAnoGANEncoder, FAnoGANGenerator
from ganad.train import load_checkpoint

from helpers import assert_parts, digits_fixture, fitted_fixture

torch.set_num_threads(1)
NORMAL = 2  # untrained nets score digit 2 at chance (AUROC 0.48), unlike digit 0 (more ink)
# lr 1e-3 instead of the paper's 1e-4: 30 epochs of 7 critic batches give G only 42 updates
# calibration_fraction=0: these tests measure the method on all of its training images
# (their floors were set that way); threshold calibration is tested in test_calibration.py
SMALL = dict(calibration_fraction=0.0, width=8, nz=16, batch_size=16, lr=1e-3, epochs=30, encoder_epochs=15, device="cpu", random_state=0)
TINY = dict(width=4, nz=4, batch_size=8, epochs=1, encoder_epochs=1, device="cpu", random_state=0)
digits = digits_fixture(NORMAL)
fitted = fitted_fixture(FAnoGAN, SMALL)


@pytest.fixture(scope="module")
def untrained(digits):
    return FAnoGAN(**{**SMALL, "epochs": 0, "encoder_epochs": 0}).fit(digits[0])


def test_separates_held_out_normals_from_other_digits(fitted, untrained, digits):
    # Measured (digit 2 normal, 30 GAN epochs + 15 encoder epochs), seeds 0 / 1 / 2:
    # score 0.988 / 0.922 / 0.960 (image 0.984 / 0.905 / 0.940, feature 0.978 / 0.931 /
    # 0.953); the same nets untrained (neither phase run): 0.48.
    _, test, labels = digits
    parts = fitted.score_parts(test)
    auroc = roc_auc_score(labels, parts["score"])
    base = roc_auc_score(labels, untrained.decision_function(test))
    assert auroc >= 0.95, f"AUROC {auroc:.3f}"
    assert auroc >= base + 0.3, f"AUROC {auroc:.3f} vs {base:.3f} untrained"
    assert roc_auc_score(labels, parts["image"]) >= 0.93 and roc_auc_score(labels, parts["feature"]) >= 0.93


def test_the_gan_phase_learns_the_normal_images(fitted, untrained, digits):
    # samples G(z) move toward the data: the mean generated image approaches the mean
    # training image (0.82 -> 0.29 mean absolute difference in [-1, 1] pixels, seed 0)
    target = fitted._to_input(digits[0]).mean(0)
    z = torch.randn(256, SMALL["nz"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        dist = [(det.nets_["g"].eval()(z).mean(0) - target).abs().mean().item() for det in (fitted, untrained)]
    assert dist[0] < 0.6 * dist[1], dist
    h = fitted.gan_history_
    assert h.epochs_run == 30 and {"d", "d_wasserstein", "d_gp", "g"} == set(h.losses)
    assert h.losses["d_wasserstein"][-1] > 0  # the critic separates real from generated
    assert fitted.history_.epochs_run == 15 and {"e", "e_image", "e_feature"} == set(fitted.history_.losses)


def test_score_is_image_plus_kappa_feature_residual(fitted, digits):
    x = digits[1][:9]
    parts = fitted.score_parts(x)
    assert_parts(parts, {"image", "feature", "score", "l_r", "l_n", "l_o"}, 9)  # l_*: Berg et al.'s Table 2 rows
    assert all((v >= 0).all() for k, v in parts.items() if k != "l_o") and (parts["l_o"] <= 0).all()
    np.testing.assert_allclose(parts["score"], parts["image"] + 1.0 * parts["feature"], rtol=1e-6)
    only_image = copy.deepcopy(fitted).set_params(kappa=0.0).score_parts(x)
    np.testing.assert_array_equal(only_image["score"], parts["image"])
    with torch.no_grad():
        z = fitted.nets_["e"](fitted._to_input(x))
    assert z.abs().max() < 1  # tanh_fc: codes within the +-1 sigma box of the prior


def test_critic_has_no_batchnorm_and_generator_and_critic_stay_frozen(digits, tmp_path):
    ck = tmp_path / "run.pt"
    det = FAnoGAN(**{**TINY, "checkpoint": str(ck)}).fit(digits[0][:32])
    bn = torch.nn.modules.batchnorm._BatchNorm
    assert not any(isinstance(m, bn) for m in det.nets_["d"].modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in det.nets_["d"].modules())  # layer norm over (C, H, W)
    assert any(isinstance(m, bn) for m in det.nets_["e"].modules())
    assert os.path.exists(f"{ck}.gan") and os.path.exists(f"{ck}.enc") and not ck.exists()
    gan = load_checkpoint(f"{ck}.gan")["state"]
    for name in ("g", "d"):  # phase 2 changed neither the weights nor G's BatchNorm statistics
        for k, v in det.nets_[name].state_dict().items():
            assert torch.equal(v, gan[name][k]), (name, k)
    assert all(p.requires_grad for p in det.nets_.parameters())


def test_each_phase_resumes_from_its_own_checkpoint(digits, tmp_path):
    x, test = digits[0][:32], digits[1][:9]
    kw = {**TINY, "epochs": 2, "encoder_epochs": 2}
    straight = FAnoGAN(**kw).fit(x).decision_function(test)
    # killed during phase 1 (after GAN epoch 1), then during phase 2 (after encoder epoch 1)
    ck = str(tmp_path / "a.pt")
    FAnoGAN(**{**kw, "epochs": 1, "encoder_epochs": 0, "checkpoint": ck}).fit(x)
    FAnoGAN(**{**kw, "encoder_epochs": 1, "checkpoint": ck}).fit(x)
    det = FAnoGAN(**{**kw, "checkpoint": ck}).fit(x)
    assert det.gan_history_.resumed_from == 2 and det.history_.resumed_from == 1
    np.testing.assert_array_equal(det.decision_function(test), straight)


def test_early_stopping_watches_the_encoder_phase_only(digits):
    det = FAnoGAN(**{**TINY, "epochs": 2, "encoder_epochs": 3, "validation_fraction": 0.25, "patience": 1}).fit(digits[0][:32])
    assert det.gan_history_.val_losses == [] and len(det.history_.val_losses) >= 2


def test_nets_at_32px_follow_the_toolkit_adaptation():
    g, d, e = FAnoGANGenerator(32, 1, 128, 64), FAnoGANCritic(32, 1, 64), FAnoGANEncoder(32, 1, 128, 64)
    assert [(b.conv1.in_channels, b.conv2.out_channels) for b in g.blocks] == [(512, 256), (256, 128), (128, 64)]
    assert [(b.conv1.in_channels, b.conv2.out_channels) for b in d.blocks] == [(64, 128), (128, 256), (256, 512)]
    assert d.feature_dim == 512 * 4 * 4 and e.head.out_features == 128
    g64 = FAnoGANGenerator(64, 1, 128, 64)  # the reference's 64 px plan: 8D -> 8D -> 4D -> 2D -> D
    assert [b.conv2.out_channels for b in g64.blocks] == [512, 256, 128, 64]
    with torch.no_grad():
        x = g.eval()(torch.randn(2, 128))
        assert x.shape == (2, 1, 32, 32) and x.abs().max() <= 1
        assert d(x).shape == (2,) and e.eval()(x).shape == (2, 128)
    raw = np.random.RandomState(0).randint(0, 256, size=(4, 28, 28), dtype=np.uint8)
    det = FAnoGAN(width=8, epochs=0, device="cpu").fit(raw)
    assert det.image_size_ == 32 and det.decision_function(raw).shape == (4,)


def test_registry_defaults_and_parameter_checks(digits):
    d = ganad.create("fanogan")
    assert isinstance(d, FAnoGAN)
    assert (d.nz, d.width, d.lr, d.beta1, d.beta2, d.batch_size) == (128, 64, 1e-4, 0.0, 0.9, 64)
    assert (d.n_critic, d.gp_weight, d.encoder_lr, d.kappa, d.z_reg, d.encoder_epochs) == (5, 10.0, 5e-5, 1.0, "tanh", None)
    assert FAnoGAN(**{**TINY, "z_reg": "none"}).fit(digits[0][:16]).nets_["e"].z_reg == "none"
    bad = [
        ("z_reg", "clip"), ("n_critic", 0), ("gp_weight", -1.0), ("kappa", float("nan")), ("encoder_epochs", -1),
        ("encoder_lr", 0.0), ("beta2", 1.0), ("width", 0), ("nz", 2.5),
    ]
    for name, value in bad:
        with pytest.raises(ValueError, match=name):
            FAnoGAN(**{**TINY, name: value}).fit(digits[0][:16])
