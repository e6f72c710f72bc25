"""GAN-augmented autoencoder (Rafiee & Fevens) on real data (8x8 digits), weight sharing, ablations.

The checks every model shares (save/load, batch independence, bad input, resume)
are in test_model_contract.py.
"""

import copy

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize

import ganad
from ganad.models.gaae import GAAE

from helpers import assert_parts, assert_scoring_leaves_nets_alone, assert_separates, digits_fixture, fitted_fixture

torch.set_num_threads(1)
# calibration_fraction=0: these tests measure the method on all of its training images
# (their floors were set that way); threshold calibration is tested in test_calibration.py
SMALL = dict(calibration_fraction=0.0, width=16, nz=16, batch_size=16, epochs=15, device="cpu", random_state=0)
NORMAL = 5  # untrained nets of seeds 0-4 score 0.46-0.55 AUROC on this class
digits = digits_fixture(NORMAL)
fitted = fitted_fixture(GAAE, SMALL)


def test_separates_held_out_fives_from_other_digits(fitted, digits):
    # Measured, seeds 0-4: trained 0.954-0.97 (seed 0: 0.962); untrained 0.46-0.55.
    assert_separates(fitted, SMALL, digits, floor=0.9, margin=0.25)


def test_decoder_is_the_generator(fitted, digits, tmp_path):
    det = copy.deepcopy(fitted)
    assert det.decoder_ is det.generator_ is det.nets_["generator"]
    # one set of parameters: nothing is duplicated across the nets
    n_unique = len({id(p) for p in det.nets_.parameters()})
    assert n_unique == sum(1 for m in ("encoder", "generator", "critic") for _ in det.nets_[m].parameters())
    assert not any("decoder" in k for k in det.nets_.state_dict())
    x = digits[1][:6]
    rec0, gen0 = det.reconstruct(x), det.generate(6)
    with torch.no_grad():  # modify the decoder in place -> the generator changes, and vice versa
        det.decoder_.net[0].weight.mul_(-1.5)
    rec1, gen1 = det.reconstruct(x), det.generate(6)
    assert not np.allclose(gen0, gen1) and not np.allclose(rec0, rec1)
    with torch.no_grad():
        det.generator_.net[0].weight.div_(-1.5)
    np.testing.assert_allclose(det.reconstruct(x), rec0, atol=1e-5)
    det.save(tmp_path / "g.pt")  # the sharing survives save/load
    back = ganad.load(tmp_path / "g.pt")
    assert back.decoder_ is back.generator_


def test_score_is_eq7_of_the_parts(fitted, digits):
    parts = fitted.score_parts(digits[1][:9])
    assert_parts(parts, {"discrimination", "residual", "latent", "raw", "eq3", "score"}, 9, non_negative=True)
    assert fitted.beta_ == 0.5  # grayscale -> the paper's MNIST value
    want = 0.8 * parts["discrimination"] + 0.2 * parts["residual"] + 0.5 * parts["latent"]
    np.testing.assert_allclose(parts["score"], want, rtol=1e-5)
    # eq. 3, the beta = 0 ablation, of the same model
    np.testing.assert_allclose(parts["eq3"], want - 0.5 * parts["latent"], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(parts["score"], parts["raw"])  # no normalisation by default
    # residual is eq. 5's sum |x - G(E(x))| over the pixels
    x = digits[1][:9, None].astype(np.float64) / 255 * 2 - 1
    rec = fitted.reconstruct(digits[1][:9]) * 2 - 1
    np.testing.assert_allclose(np.abs(x - rec).reshape(9, -1).sum(1), parts["residual"], rtol=1e-4)
    h = fitted.history_
    assert h.epochs_run == 15 and {"ae", "g", "d"} <= set(h.losses)
    assert h.losses["ae"][-1] < h.losses["ae"][0]


def test_architecture_follows_the_paper(fitted):
    enc, critic = fitted.encoder_, fitted.critic_
    drops = lambda m: [x.p for x in m.modules() if isinstance(x, torch.nn.Dropout)]  # noqa: E731
    assert drops(enc) and all(p == 0.2 for p in drops(enc))
    assert drops(critic) and all(p == 0.2 for p in drops(critic))
    assert not drops(fitted.generator_)
    convs = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(parametrize.is_parametrized(m, "weight") for m in convs)  # spectral norm on every layer
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())


def test_scoring_is_eval_mode_and_deterministic(fitted, digits):
    assert_scoring_leaves_nets_alone(fitted, digits[1])  # dropout off


def test_ablations_and_term_normalisation(fitted, digits, tmp_path):
    x = digits[1][:20]
    no_latent = copy.deepcopy(fitted).set_params(beta=0.0)  # Table 6: eq. 3, without L_L
    p = no_latent.score_parts(x)
    np.testing.assert_allclose(p["score"], 0.8 * p["discrimination"] + 0.2 * p["residual"], rtol=1e-6)

    det = GAAE(**{**SMALL, "epochs": 2, "gan_loss": "sgan", "score_norm": "zscore"}).fit(digits[0])
    z = det.score_parts(digits[0])  # the training images: the normaliser was fitted on them
    for k in ("discrimination", "residual", "latent"):
        assert abs(z[k].mean()) < 1e-4 and z[k].std() == pytest.approx(1.0, rel=1e-3)
    det.save(tmp_path / "z.pt")  # the fitted normaliser travels with the model
    back = ganad.load(tmp_path / "z.pt")
    np.testing.assert_array_equal(back.decision_function(x), det.decision_function(x))
    assert set(det.history_.losses) >= {"ae", "g", "d"}


def test_colour_images_use_beta_one():
    x = np.random.RandomState(0).randint(0, 256, size=(8, 3, 28, 28), dtype=np.uint8)
    det = GAAE(width=4, nz=8, epochs=1, batch_size=4, device="cpu").fit(x)
    assert det.beta_ == 1.0 and det.image_size_ == 32
    assert det.reconstruct(x[:2]).shape == (2, 3, 28, 28) and det.decision_function(x[:3]).shape == (3,)


@pytest.mark.parametrize(
    "bad",
    [dict(gan_loss="wgan"), dict(lam=1.5), dict(beta=-1.0), dict(dropout=1.0), dict(reduction="max"),
     dict(score_norm="minmax"), dict(latent_norm="batch"), dict(nz=0), dict(lr=0.0), dict(weight_decay=-0.1)],
)
def test_invalid_parameters(bad, digits):
    with pytest.raises(ValueError):
        GAAE(**{**SMALL, **bad}).fit(digits[0])


def test_registry_and_defaults():
    g = ganad.create("gaae")
    assert isinstance(g, GAAE)
    assert (g.nz, g.lr, g.batch_size, g.dropout, g.lam, g.beta, g.gan_loss) == (100, 1e-4, 64, 0.2, 0.8, None, "rsgan")
    assert (g.weight_decay, g.beta1, g.reduction, g.score_norm) == (1e-2, 0.5, "sum", "none")
