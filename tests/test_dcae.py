"""DCAE (ADGAN section 4.2 baseline) on real data (scikit-learn's 8x8 digits).

The checks every model shares (save/load, batch independence, bad input, resume)
are in test_model_contract.py.
"""

import copy

import numpy as np
import pytest
import torch

import ganad
from ganad.models.dcae import DCAE, ConvEncoder

from helpers import assert_parts, assert_separates, digits_fixture, fitted_fixture

torch.set_num_threads(1)
# calibration_fraction=0: these tests measure the method on all of its training images
# (their floors were set that way); threshold calibration is tested in test_calibration.py
SMALL = dict(calibration_fraction=0.0, width=16, nz=16, batch_size=16, epochs=15, device="cpu", random_state=0)
NORMAL = 5  # untrained nets of seeds 0-4 score 0.43-0.53 AUROC on this class (no "more ink" shortcut)
digits = digits_fixture(NORMAL)
fitted = fitted_fixture(DCAE, SMALL)


def test_separates_held_out_fives_from_other_digits(fitted, digits):
    # Measured, seeds 0-4: trained 0.993-0.998 (seed 0: 0.993); untrained 0.43-0.53.
    assert_separates(fitted, SMALL, digits, floor=0.95, margin=0.3)


def test_score_parts(fitted, digits):
    parts = fitted.score_parts(digits[1][:7])
    assert_parts(parts, {"reconstruction", "l1", "standardized", "score"}, 7)
    np.testing.assert_array_equal(parts["score"], parts["reconstruction"])
    rec = fitted.reconstruct(digits[1][:7])  # [0, 1], input layout
    assert rec.shape == (7, 1, 8, 8) and rec.min() >= 0 and rec.max() <= 1
    x = digits[1][:7, None].astype(np.float64) / 255 * 2 - 1
    np.testing.assert_allclose(((x - (rec * 2 - 1)) ** 2).reshape(7, -1).mean(1), parts["score"], rtol=1e-4, atol=1e-6)
    assert fitted.history_.epochs_run == 15 and "mse" in fitted.history_.losses
    # standardized: the same errors divided by the training images' per-pixel std + 0.1
    train = digits[0][:, None].astype(np.float64) / 255 * 2 - 1
    scale = train.std(0) + 0.1
    want = (((x - (rec * 2 - 1)) / scale) ** 2).reshape(7, -1).mean(1)
    np.testing.assert_allclose(parts["standardized"], want, rtol=1e-3, atol=1e-5)


def test_standardized_score_is_a_score_only_parameter(fitted, digits, tmp_path):
    det = copy.deepcopy(fitted).set_params(score="standardized")
    np.testing.assert_allclose(det.decision_function(digits[1][:9]), fitted.score_parts(digits[1][:9])["standardized"], rtol=1e-6)
    det.rescore_training(digits[0])
    np.testing.assert_allclose(det.decision_scores_, fitted.score_parts(digits[0])["standardized"], rtol=1e-6)
    det.save(tmp_path / "s.pt")
    np.testing.assert_array_equal(ganad.load(tmp_path / "s.pt").decision_function(digits[1]), det.decision_function(digits[1]))
    with pytest.raises(ValueError, match="score"):
        DCAE(**{**SMALL, "score": "nope"}).fit(digits[0])


def test_fashion_mnist_size_is_padded_and_scored_on_original_pixels():
    x = np.random.RandomState(0).randint(0, 256, size=(8, 28, 28), dtype=np.uint8)
    det = DCAE(width=4, nz=8, epochs=1, batch_size=4, device="cpu").fit(x)
    assert det.image_size_ == 32
    assert det.reconstruct(x[:2]).shape == (2, 1, 28, 28) and det.decision_function(x[:3]).shape == (3,)


def test_encoder_has_batchnorm_and_relu_in_every_layer():
    enc = ConvEncoder(32, 3, 10, width=8)
    kinds = [type(m).__name__ for m in enc.body]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"] * 3
    assert enc(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(
    "bad", [dict(nz=0), dict(width=-1), dict(lr=0.0), dict(beta1=1.0), dict(weight_decay=-1.0), dict(epochs=-1)]
)
def test_invalid_parameters(bad, digits):
    with pytest.raises(ValueError):
        DCAE(**{**SMALL, **bad}).fit(digits[0])


def test_registry_and_defaults():
    d = ganad.create("dcae")
    assert isinstance(d, DCAE)
    assert (d.nz, d.width, d.lr, d.beta1, d.epochs, d.batch_size) == (64, 32, 1e-3, 0.9, 15, 64)
