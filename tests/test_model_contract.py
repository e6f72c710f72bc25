"""The detector contract, checked for every model in ``ganad.available_models()``.

One suite instead of the same checks written again in each model's test file:
a tiny fit on real data (scikit-learn's 8x8 digits, uint8), save/load equality,
batch independence, the bad-input errors, seeded determinism, resume equals an
uninterrupted run (models with a ``checkpoint``), and the parameter API.  The
per-model files keep only what is specific to a method (separation floors on
real data, paper-specific behaviour, score variants, phase checkpoints).

Settings come from one place, :func:`ganad.bench.calibration.fast_params`
(short settings per model); ``conftest.TINY_OVERRIDES`` is the only per-model tuning.
Fitted models are shared across checks through module-scoped caches keyed by
model name; no check may change a shared model (copy it first).
"""

import copy

import numpy as np
import pytest
import torch

import ganad
from ganad import train
from ganad.base import RUN_ONLY_PARAMS
from ganad.models.torch_base import TorchDetector
from ganad.registry import get_class

from conftest import tiny
from ganad.train import History

torch.set_num_threads(1)
NAMES = ganad.available_models()
#: models trained by ganad's epoch loop: they take ``checkpoint`` / ``resume``
CHECKPOINTED = [n for n in NAMES if "checkpoint" in get_class(n)._param_names()]

#: the first, "interrupted" run of the resume check, where ``epochs=1`` alone is not an
#: interruption of the 2-epoch run: f-AnoGAN's encoder phase trains on the finished GAN,
#: so a run stopped during its GAN phase has not started the encoder phase yet
INTERRUPTED: dict[str, dict] = {"fanogan": {"encoder_epochs": 0}}

#: contract violations found by this suite; the owner removes an entry with the fix
#: (strict: the test fails once the model keeps the contract, so the entry cannot go stale)
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


def _case(check: str, names=NAMES):
    """``names`` as pytest params, the known violations of ``check`` marked xfail(strict)."""
    return [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN_VIOLATIONS[(n, check)]))
        if (n, check) in KNOWN_VIOLATIONS else n
        for n in names
    ]


def _close(a, b, rtol: float, what: str = "") -> None:
    # rtol on the score's own scale; atol only for scores at 0 (e.g. min-max scaled ones)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2, err_msg=what)


# ------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def train_x(digits_split):
    return digits_split.train.x  # 80 uint8 8x8 images of digit 0


@pytest.fixture(scope="module")
def test_x(digits_split):
    return digits_split.test.x[:40]  # mixed digits (0 is the normal class)


@pytest.fixture(scope="module")
def straight_run(train_x, tmp_path_factory):
    """``straight_run(name, test)``: (scores, threshold) of an uninterrupted 2-epoch run
    with a checkpoint, checked once to equal the same run without one."""
    cache: dict[str, tuple] = {}

    def get(name: str, test: np.ndarray):
        if name not in cache:
            ck = tmp_path_factory.mktemp(f"straight-{name}") / "ck.pt"
            det = ganad.create(name, **tiny(name, epochs=2, checkpoint=str(ck))).fit(train_x)
            plain = ganad.create(name, **tiny(name, epochs=2)).fit(train_x)
            np.testing.assert_array_equal(det.decision_function(test), plain.decision_function(test),
                                          err_msg="writing checkpoints changed the run")
            cache[name] = (det.decision_function(test), det.threshold_)
        return cache[name]

    return get


# ------------------------------------------------------------ 1. tiny fit
@pytest.mark.parametrize("name", _case("fit"))
def test_tiny_fit_on_real_data_sets_the_fitted_attributes(name, train_x, test_x):
    det = ganad.create(name, **tiny(name))
    params = copy.deepcopy(det.get_params())
    assert det.fit(train_x) is det
    assert det.get_params() == params  # fit leaves the hyper-parameters as given
    assert isinstance(det.threshold_, float) and np.isfinite(det.threshold_)
    assert det.input_shape_ == (1, 8, 8)
    ds = det.decision_scores_
    assert isinstance(ds, np.ndarray) and ds.dtype == np.float64 and ds.ndim == 1 and 0 < len(ds) <= len(train_x)
    assert np.isfinite(ds).all()
    s = det.decision_function(test_x)
    assert s.shape == (len(test_x),) and s.dtype == np.float64 and np.isfinite(s).all()
    parts = det.score_parts(test_x)
    assert "score" in parts
    assert all(v.shape == (len(test_x),) and v.dtype == np.float64 for v in parts.values()), sorted(parts)
    _close(parts["score"], s, 1e-6, "score_parts['score'] != decision_function")
    pred = det.predict(test_x)
    np.testing.assert_array_equal(pred, (s > det.threshold_).astype(int))
    p = det.predict_proba(test_x)
    assert p.shape == (len(test_x), 2) and np.allclose(p.sum(1), 1) and (p >= 0).all() and (p <= 1).all()
    if isinstance(det, TorchDetector):  # the training budget per network, for the benchmark records
        assert det.updates_ and all(isinstance(v, int) and v >= 0 for v in det.updates_.values())
        assert sum(det.updates_.values()) > 0, det.updates_


# --------------------------------------------------------- 2. save / load
@pytest.mark.parametrize("name", _case("save_load"))
def test_save_load_gives_the_same_model(name, fitted, test_x, tmp_path):
    det = fitted(name)
    path = tmp_path / f"{name}.pt"
    det.save(path)
    back = ganad.load(path)
    assert type(back) is type(det)
    run_only = lambda p: {k: v for k, v in p.items() if k not in RUN_ONLY_PARAMS}  # noqa: E731
    assert run_only(back.get_params()) == run_only(det.get_params())
    assert back.threshold_ == det.threshold_ and back.input_shape_ == det.input_shape_
    np.testing.assert_array_equal(back.decision_scores_, det.decision_scores_)
    _close(back.decision_function(test_x), det.decision_function(test_x), 1e-6, "decision_function")
    a, b = back.score_parts(test_x), det.score_parts(test_x)
    assert set(a) == set(b)
    for k in a:
        _close(a[k], b[k], 1e-6, k)
    np.testing.assert_array_equal(back.predict(test_x), det.predict(test_x))


# ------------------------------------------------- 3. batch independence
@pytest.mark.parametrize("name", _case("batch"))
def test_score_does_not_depend_on_batch_mates(name, fitted, test_x):
    # the latent-search models (AnoGAN, ADGAN) seed each image's search from the image itself
    det = fitted(name)
    together = det.decision_function(test_x)
    idx = [0, 17, len(test_x) - 1]
    alone = np.array([det.decision_function(test_x[i : i + 1])[0] for i in idx])
    _close(alone, together[idx], 1e-5, "alone vs in a batch")
    _close(det.decision_function(test_x[::-1])[::-1], together, 1e-5, "batch order")


@pytest.mark.parametrize("name", _case("input_forms"))
def test_equivalent_inputs_score_the_same(name, fitted, test_x):
    # uint8 (N, H, W) = (N, 1, H, W) = a tensor = a Dataset of (image, label)
    det = fitted(name)
    ref = det.decision_function(test_x)
    _close(det.decision_function(test_x[:, None]), ref, 1e-6, "(N, 1, H, W)")
    _close(det.decision_function(torch.from_numpy(test_x)), ref, 1e-6, "tensor")
    ds = torch.utils.data.TensorDataset(torch.from_numpy(test_x), torch.zeros(len(test_x)))
    _close(det.decision_function(ds), ref, 1e-6, "Dataset")


@pytest.mark.parametrize("name", _case("float_input"))
def test_float_images_in_0_1_score_as_the_uint8_ones(name, fitted, test_x):
    # the one input convention: uint8 in [0, 255] and float in [0, 1] are the same images
    det = fitted(name)
    _close(det.decision_function(test_x.astype(np.float32) / 255), det.decision_function(test_x), 1e-5)


# ------------------------------------------------------ 4. bad input
BAD_INPUT = {  # name -> (input, message)
    "empty": (lambda x: x[:0], "empty"),
    "rank 1": (lambda x: x[0, 0], r"shape \(N, D\), \(N, H, W\) or \(N, C, H, W\); got 1 dimension"),
    "rank 5": (lambda x: x[:, None, None], "5 dimension"),
    "nan": (lambda x: np.where(np.arange(64).reshape(8, 8) == 5, np.nan, x / 255.0), "NaN"),
    "channels": (lambda x: np.repeat(x[:, None], 3, axis=1), "3 channel"),
    "size": (lambda x: np.kron(x, np.ones((2, 2), np.uint8)), "16x16.*trained on 8x8"),
    "float 0-255": (lambda x: x.astype(np.float32), r"\[0, 255\].*x / 255"),
    "one HxW image": (lambda x: x[0], r"x\[None\]"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
@pytest.mark.parametrize("name", _case("bad_input"))
def test_bad_input_to_a_fitted_model_is_a_clear_value_error(name, case, fitted, test_x):
    make, msg = BAD_INPUT[case]
    with pytest.raises(ValueError, match=msg):
        fitted(name).decision_function(make(test_x[:5]))


BAD_TRAINING = {
    **{k: BAD_INPUT[k] for k in ("empty", "rank 1", "rank 5", "nan", "float 0-255")},
    "one sample": (lambda x: x[:1], "at least"),
}


@pytest.mark.parametrize("case", list(BAD_TRAINING))
@pytest.mark.parametrize("name", _case("bad_fit_input"))
def test_bad_training_input_is_a_clear_value_error(name, case, train_x):
    make, msg = BAD_TRAINING[case]
    det = ganad.create(name, **tiny(name))
    with pytest.raises(ValueError, match=msg):
        det.fit(make(train_x))
    assert not hasattr(det, "threshold_")


@pytest.mark.parametrize("name", _case("not_fitted"))
def test_scoring_or_saving_before_fit_is_not_fitted_error(name, test_x, tmp_path):
    det = ganad.create(name, **tiny(name))
    for method in (det.decision_function, det.score_parts, det.predict, det.predict_proba):
        with pytest.raises(ganad.NotFittedError, match="fit"):
            method(test_x)
    with pytest.raises(ValueError, match="fit"):
        det.save(tmp_path / "never.pt")
    assert not (tmp_path / "never.pt").exists()


# ------------------------------------------------ 5. seeded determinism
@pytest.mark.parametrize("name", _case("determinism"))
def test_same_random_state_gives_identical_scores(name, fitted, train_x, test_x):
    again = ganad.create(name, **tiny(name)).fit(train_x)
    ref = fitted(name)
    np.testing.assert_array_equal(again.decision_function(test_x), ref.decision_function(test_x))
    np.testing.assert_array_equal(again.decision_scores_, ref.decision_scores_)
    assert again.threshold_ == ref.threshold_


# --------------------------------------------- 6. resume = uninterrupted
def _resumed_phases(det) -> list[int]:
    return [h.resumed_from for h in vars(det).values() if isinstance(h, History)]


@pytest.mark.parametrize("name", _case("resume", CHECKPOINTED))
def test_extending_a_finished_run_equals_an_uninterrupted_run(name, train_x, test_x, straight_run, tmp_path):
    want, threshold = straight_run(name, test_x)
    ck = str(tmp_path / "ck.pt")
    ganad.create(name, **tiny(name, epochs=1, checkpoint=ck, **INTERRUPTED.get(name, {}))).fit(train_x)
    det = ganad.create(name, **tiny(name, epochs=2, checkpoint=ck)).fit(train_x)  # the loop extends the run
    assert 1 in _resumed_phases(det)
    np.testing.assert_array_equal(det.decision_function(test_x), want)
    assert det.threshold_ == threshold


@pytest.mark.parametrize("name", _case("resume_after_kill", CHECKPOINTED))
def test_resume_after_a_kill_equals_an_uninterrupted_run(name, train_x, test_x, straight_run, tmp_path, monkeypatch):
    want, threshold = straight_run(name, test_x)
    ck = str(tmp_path / "ck.pt")
    real_save = train._save_checkpoint

    def save_then_die(path, payload):
        real_save(path, payload)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(train, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        ganad.create(name, **tiny(name, epochs=2, checkpoint=ck)).fit(train_x)
    monkeypatch.setattr(train, "_save_checkpoint", real_save)
    det = ganad.create(name, **tiny(name, epochs=2, checkpoint=ck)).fit(train_x)
    assert 1 in _resumed_phases(det)
    np.testing.assert_array_equal(det.decision_function(test_x), want)
    assert det.threshold_ == threshold


# ------------------------------------------------------ 7. parameters
@pytest.mark.parametrize("name", _case("params"))
def test_get_set_params_round_trip_and_unknown_parameters(name):
    det = ganad.create(name, **tiny(name))
    params = det.get_params()
    assert list(params) == get_class(name)._param_names()
    assert {"contamination", "random_state", "value_range"} <= set(params)
    assert all(params[k] == v for k, v in tiny(name).items())
    assert ganad.create(name, **params).get_params() == params
    other = ganad.create(name)
    assert other.set_params(**params) is other and other.get_params() == params
    assert other.set_params(contamination=0.2).contamination == 0.2
    with pytest.raises(ValueError, match="no parameter 'bogus'"):
        other.set_params(bogus=1)
    with pytest.raises(ValueError, match=name):
        ganad.create(name, bogus=1)
    assert repr(det).startswith(type(det).__name__ + "(")


# ------------------------------------------------------- 8. labels
def test_only_models_that_declare_label_support_take_y(train_x, test_x):
    # fit(X, y) is for the detectors with ``supports_labels`` (y = 1: known anomalies); every other
    # one refuses any y, even all zeros, before training
    y = np.zeros(len(train_x), dtype=np.int64)
    takers = [n for n in NAMES if get_class(n).supports_labels]
    assert takers == ["ama"]
    for name in NAMES:
        if name in takers:
            continue
        det = ganad.create(name, **tiny(name))
        with pytest.raises(ValueError, match=rf"^{name} is unsupervised: fit\(X\) takes no labels.*: ama$"):
            det.fit(train_x, y)
        assert not hasattr(det, "threshold_")
        with pytest.raises(ValueError, match="unsupervised"):
            det.fit_predict(train_x, y)
    y[:8] = 1  # eight of the training zeros marked as known anomalies
    for name in takers:
        det = ganad.create(name, **tiny(name)).fit(train_x, y)
        assert np.isfinite(det.decision_function(test_x)).all() and np.isfinite(det.threshold_)
        assert len(det.calibration_scores_) > 0 and len(det.decision_scores_) + len(det.calibration_scores_) == len(train_x)
        with pytest.raises(ValueError, match="one label per sample"):
            ganad.create(name, **tiny(name)).fit(train_x, y[:-1])


def test_every_registered_model_is_covered():
    assert len(NAMES) == len(set(NAMES)) >= 15
    assert set(CHECKPOINTED) < set(NAMES) and {"kde", "ocsvm", "iforest", "gmm"}.isdisjoint(CHECKPOINTED)
    for name in NAMES:
        assert isinstance(ganad.create(name), ganad.BaseDetector) and ganad.create(name).name == name
