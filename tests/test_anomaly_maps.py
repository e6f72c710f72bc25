"""``anomaly_map(X) -> (N, H, W)``: per-pixel residuals of the detectors that reconstruct their input.

Every map model gets a tiny fit on scikit-learn's 8x8 digits (settings from
:func:`ganad.bench.calibration.fast_params`); the checks: shape, dtype and sign
at the input's size (8x8, and 28x28 inputs the nets pad to 32), the map's image
mean tracking the score term it is the per-pixel form of, independence from
batch mates, and the clear error of the models without maps.  One behaviour
check needs a trained model: a bright square pasted into a normal digit lights
up a DCAE's map inside the square (an untrained one does not).
"""

import numpy as np
import pytest
import torch

import ganad
from ganad.data.transforms import resize
from ganad.exceptions import NoAnomalyMapError
from ganad.registry import get_class

from conftest import digit_case, tiny

torch.set_num_threads(1)

#: the score part each map is the per-pixel form of (its image mean or sum, up to a constant)
MAP_PART = {
    "ganomaly": "reconstruction", "skipganomaly": "reconstruction", "fanogan": "image", "anogan": "residual",
    "adgan": "reconstruction", "egbad": "residual", "alad": "l1", "dcae": "reconstruction",
    "vae": "reconstruction", "gaae": "residual", "ama": "l1", "berg": "l_n",
}
MAP_MODELS = sorted(MAP_PART)
NO_MAP = ["deepsvdd", "gmm", "iforest", "kde", "ocsvm", "typical"]  # typical: its base's map, when the base has one


@pytest.fixture(scope="module")
def train_x(digits_split):
    return digits_split.train.x  # uint8 8x8 images of digit 0


@pytest.fixture(scope="module")
def test_x(digits_split):
    return digits_split.test.x[:40]


def test_the_models_with_maps_are_the_reconstruction_models():
    names = ganad.available_models()
    assert sorted(n for n in names if get_class(n).has_anomaly_map) == MAP_MODELS
    assert sorted(n for n in names if not get_class(n).has_anomaly_map) == NO_MAP


@pytest.mark.parametrize("name", MAP_MODELS)
def test_map_is_per_pixel_at_the_input_size_and_tracks_the_reconstruction_term(name, fitted, test_x):
    det = fitted(name)
    m = det.anomaly_map(test_x)
    assert m.shape == (len(test_x), 8, 8) and m.dtype == np.float32
    assert np.isfinite(m).all() and (m >= 0).all()  # every map is a residual: |d|, d^2 or a BCE
    part = det.score_parts(test_x)[MAP_PART[name]]
    # at 8x8 the nets work at the input's size: the map's image mean is the term (x a constant)
    assert np.corrcoef(m.mean((1, 2)), part)[0, 1] > 0.99
    assert np.array_equal(det.anomaly_map(test_x[:, None]), m)  # (N, 1, H, W) is the same input


@pytest.mark.parametrize("name", MAP_MODELS)
def test_map_of_28x28_images_is_cropped_back_from_the_nets_32x32(name, train_x, test_x):
    untrained = {"epochs": 0, **({"encoder_epochs": 0} if name == "fanogan" else {})}  # the shapes need no training
    det = ganad.create(name, **tiny(name, **untrained)).fit(resize(train_x[:40], 28))
    assert det.image_size_ == 32
    x = resize(test_x[:6], 28)
    m = det.anomaly_map(x)
    assert m.shape == (6, 28, 28) and m.dtype == np.float32 and np.isfinite(m).all() and (m >= 0).all()


@pytest.mark.parametrize("name", MAP_MODELS)
def test_map_does_not_depend_on_batch_mates(name, fitted, test_x):
    det = fitted(name)
    together = det.anomaly_map(test_x)
    idx = [0, 17, len(test_x) - 1]
    alone = np.stack([det.anomaly_map(test_x[i : i + 1])[0] for i in idx])
    scale = float(together.max())
    np.testing.assert_allclose(alone, together[idx], rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(det.anomaly_map(test_x[::-1])[::-1], together, rtol=1e-5, atol=1e-6 * scale)


def _square_ratio(det, normal: np.ndarray, rows: slice, cols: slice) -> tuple[float, float]:
    """(median over images of map inside / outside the pasted square, how much pasting raised
    the map inside the square)."""
    pasted = normal.copy()
    pasted[:, rows, cols] = 255
    mask = np.zeros(normal.shape[1:], bool)
    mask[rows, cols] = True
    m, m_clean = det.anomaly_map(pasted), det.anomaly_map(normal)
    ratio = np.median(m[:, mask].mean(1) / m[:, ~mask].mean(1))
    return float(ratio), float(m[:, mask].mean() / m_clean[:, mask].mean())


def test_a_pasted_bright_square_lights_up_the_map_of_a_trained_model_only():
    # the hole of a "0" never has ink: a trained DCAE reconstructs it dark, so the pasted
    # square is where its residual is; an untrained net's residual is large everywhere
    # (measured: trained ratio >= 5.8 per image, median ~8, raised ~8x; untrained 1.4-1.6, 1.1x)
    x_train, x_test, y = digit_case(0, n_train=150)
    normal = x_test[y == 0]
    rows = cols = slice(3, 5)
    params = dict(width=16, nz=8, batch_size=32, device="cpu", random_state=0)
    trained = ganad.create("dcae", epochs=15, **params).fit(x_train)
    untrained = ganad.create("dcae", epochs=0, **params).fit(x_train)
    ratio, raised = _square_ratio(trained, normal, rows, cols)
    assert ratio > 3.0 and raised > 3.0, (ratio, raised)
    ratio0, raised0 = _square_ratio(untrained, normal, rows, cols)
    assert ratio0 < 3.0 and raised0 < 3.0, (ratio0, raised0)


@pytest.mark.parametrize("name", NO_MAP)
def test_models_without_maps_raise_a_clear_value_error(name):
    det = ganad.create(name)
    assert det.has_anomaly_map is False
    msg = rf"^{name} has no anomaly map: it does not reconstruct its input; models with maps: {', '.join(MAP_MODELS)}$"
    with pytest.raises(NoAnomalyMapError, match=msg) as info:
        det.anomaly_map(np.zeros((2, 8, 8), np.uint8))  # before fit too: the model kind decides
    assert isinstance(info.value, ValueError)


def test_map_keeps_the_scoring_contract(fitted, test_x, tmp_path):
    det = fitted("dcae")
    with pytest.raises(ganad.NotFittedError, match="fit"):
        ganad.create("dcae").anomaly_map(test_x)
    with pytest.raises(ValueError, match="16x16.*trained on 8x8"):
        det.anomaly_map(np.kron(test_x[:2], np.ones((2, 2), np.uint8)))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        det.anomaly_map(test_x[:2].astype(np.float32))
    np.testing.assert_allclose(det.anomaly_map(test_x.astype(np.float32) / 255), det.anomaly_map(test_x), rtol=1e-5)
    det.save(tmp_path / "dcae.pt")
    np.testing.assert_array_equal(ganad.load(tmp_path / "dcae.pt").anomaly_map(test_x), det.anomaly_map(test_x))
