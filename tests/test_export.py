"""ONNX export (:mod:`ganad.export`, ``ganad export``): onnxruntime parity for every exportable model.

Each exportable model gets a tiny fit (``fast_params``) and one export (Skip-GANomaly's
through ``ganad export``, at 28x28); the
graph run by onnxruntime on a batch of another size than the export's example
must give the detector's ``decision_function`` and ``anomaly_map`` within

    |onnx - torch| <= RTOL * |torch| + ATOL_SHARE * max |torch|     (RTOL 1e-4, ATOL_SHARE 1e-5)

(measured: at most ~5e-6 relative on scores and ~1e-6 of the map's scale).
Search-based and classic models are refused with a one-line ``ValueError``,
and ``ganad export`` exits 2 with it.  Needs onnx, onnxscript and onnxruntime
(the ``[test]`` extra).
"""

import json

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[test]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install -e '.[test]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install -e '.[test]')")

import ganad  # noqa: E402
from ganad import cli  # noqa: E402
from ganad.bench.calibration import fast_params  # noqa: E402
from ganad.data.transforms import resize  # noqa: E402
from ganad.export import exportable_models, read_metadata, to_onnx  # noqa: E402
from ganad.registry import get_class  # noqa: E402

torch.set_num_threads(1)

EXPORTABLE = ["alad", "ama", "berg", "dcae", "deepsvdd", "egbad", "fanogan", "gaae", "ganomaly", "skipganomaly", "vae"]
REFUSED = {  # name -> what the one-line reason says
    "anogan": "latent search", "adgan": "search", "kde": "not a neural network", "ocsvm": "not a neural network",
    "iforest": "not a neural network", "gmm": "not a neural network", "typical": "not a neural network",
}
RTOL, ATOL_SHARE = 1e-4, 1e-5
#: no min_steps epochs on tiny data; the VAE with fixed test-time draws (they become graph constants)
OVERRIDES = {"ganomaly": {"min_steps": 0}, "skipganomaly": {"min_steps": 0}, "vae": {"n_samples": 2}}


def tiny(name: str, **extra) -> dict:
    takes = get_class(name)._param_names()
    return {**fast_params(name), "random_state": 0, **{k: v for k, v in OVERRIDES.get(name, {}).items() if k in takes},
            **extra}


def _close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL_SHARE * float(np.abs(want).max()), err_msg=what)


def _run(path, x: np.ndarray) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"images": x})))


@pytest.fixture(scope="module")
def exported(digits_split, tmp_path_factory):
    """``exported(name)``: (the tiny fitted detector, the path of its ONNX file), once per module."""
    cache: dict[str, tuple] = {}
    folder = tmp_path_factory.mktemp("onnx")

    def get(name: str):
        if name not in cache:
            det = ganad.create(name, **tiny(name)).fit(digits_split.train.x)
            to_onnx(det, folder / f"{name}.onnx")
            cache[name] = det, folder / f"{name}.onnx"
        return cache[name]

    return get


def test_the_exportable_models_are_the_single_pass_ones():
    assert exportable_models() == EXPORTABLE
    assert sorted(set(ganad.available_models()) - set(EXPORTABLE)) == sorted(REFUSED)


#: Skip-GANomaly's parity is checked through the CLI at 28x28 (one export fewer: each costs seconds)
@pytest.mark.parametrize("name", [n for n in EXPORTABLE if n != "skipganomaly"])
def test_onnx_graph_gives_the_detectors_scores_and_maps(name, exported, digits_split):
    det, path = exported(name)
    x = digits_split.test.x[:37, None]  # uint8 (N, 1, 8, 8); N is not the export example's 2
    out = _run(path, x)
    assert list(out) == (["score", "anomaly_map"] if det.has_anomaly_map else ["score"])
    assert out["score"].shape == (37,) and out["score"].dtype == np.float32
    _close(out["score"], det.decision_function(x), "score")
    if det.has_anomaly_map:
        assert out["anomaly_map"].shape == (37, 8, 8)
        _close(out["anomaly_map"], det.anomaly_map(x), "anomaly_map")


def test_threshold_and_input_convention_travel_as_metadata(exported, digits_split):
    det, path = exported("dcae")
    meta = read_metadata(path)
    assert meta["model"] == "dcae" and meta["threshold"] == det.threshold_
    assert (meta["input_dtype"], meta["input_layout"], meta["input_shape"], meta["value_range"]) == (
        "uint8", "NCHW", [1, 8, 8], [0, 255])
    assert meta["outputs"] == ["score", "anomaly_map"] and meta["precision"] == "fp32"
    assert meta["params"]["width"] == det.width
    x = digits_split.test.x[:, None]
    flagged = (_run(path, x)["score"] > meta["threshold"]).astype(np.int64)
    at_threshold = np.abs(det.decision_function(x) - det.threshold_) <= RTOL * abs(det.threshold_)
    assert ((flagged == det.predict(x)) | at_threshold).all()  # only scores within rounding of it may flip


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_search_based_and_classic_models_are_refused_in_one_line(name, tmp_path):
    with pytest.raises(ValueError, match=f"^cannot export {name} to ONNX: .*{REFUSED[name]}") as info:
        to_onnx(ganad.create(name), tmp_path / "m.onnx")
    assert "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())


def test_legacy_batchnorm_scoring_and_unfitted_models_are_refused(tmp_path):
    with pytest.raises(ValueError, match="bn_mode='legacy_train'.*batch mates"):
        to_onnx(ganad.create("ganomaly", bn_mode="legacy_train"), tmp_path / "m.onnx")
    with pytest.raises(ganad.NotFittedError, match="fit"):
        to_onnx(ganad.create("dcae"), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_cli_exports_a_run_with_28x28_images_padded_inside_the_graph(digits_split, tmp_path, capsys):
    # 28x28 -> the nets' 32x32: padding (input) and cropping (map) are part of the graph;
    # Skip-GANomaly's min-max normaliser, fitted on the training scores, is a graph constant
    det = ganad.create("skipganomaly", **tiny("skipganomaly")).fit(resize(digits_split.train.x, 28))
    run = tmp_path / "run"
    det.save(run / "model.pt")
    assert cli.main(["export", str(run), str(tmp_path / "m.onnx")]) == 0
    assert "exported skipganomaly" in capsys.readouterr().out
    x = resize(digits_split.test.x[:9], 28)[:, None]
    out = _run(tmp_path / "m.onnx", x)
    _close(out["score"], det.decision_function(x), "score")
    _close(out["anomaly_map"], det.anomaly_map(x), "anomaly_map")
    assert out["anomaly_map"].shape == (9, 28, 28)
    assert json.loads(json.dumps(read_metadata(tmp_path / "m.onnx")))["input_shape"] == [1, 28, 28]


def test_cli_refuses_a_search_model_with_exit_2_and_one_line(digits_split, tmp_path, capsys):
    det = ganad.create("anogan", **tiny("anogan")).fit(digits_split.train.x)
    det.save(tmp_path / "anogan.pt")
    assert cli.main(["export", str(tmp_path / "anogan.pt"), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganad export: error: cannot export anogan to ONNX: anogan scores each image by a latent search")
    assert "\n" not in err and not (tmp_path / "m.onnx").exists()
