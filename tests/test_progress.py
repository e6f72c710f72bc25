"""Progress bars (tqdm, images/s on stderr) on the long loops; none with verbose=False or --quiet."""

import numpy as np
import pytest
from PIL import Image

import ganad
from ganad.cli import build_parser, main


@pytest.fixture(scope="module")
def tiny():
    """A fitted 1-epoch DCAE on 200 digits (uint8 8x8), and 40 other digits to score."""
    from ganad.datasets import digits_arrays

    x_tr, _, x_te, _ = digits_arrays()
    det = ganad.create("dcae", epochs=1, width=8, nz=8, batch_size=32, device="cpu", calibration_fraction=0.0)
    return det.fit(x_tr[:200]), x_te[:40]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny):
    """A saved model (run folder layout) and a folder of 6 PNGs."""
    det, x = tiny
    root = tmp_path_factory.mktemp("progress")
    (root / "run").mkdir()
    det.save(root / "run" / "model.pt")
    folder = root / "imgs"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(x[i]).save(folder / f"img{i}.png")
    return root


def test_helper_disabled_is_a_no_op(capfd):
    from ganad.progress import NoProgress, progress

    with progress(10, "x", enabled=False) as bar:
        assert isinstance(bar, NoProgress)
        bar.update(5)
        bar.set_postfix(a=1)
    assert capfd.readouterr().err == ""
    with progress(10, "work", enabled=True) as bar:
        bar.update(10)
    assert "img/s" in capfd.readouterr().err


def test_verbose_torch_detector_shows_images_per_second(tiny, capfd):
    det, x = tiny
    capfd.readouterr()
    det.verbose = False
    quiet = det.decision_function(x)
    assert capfd.readouterr().err == ""
    det.verbose = True
    try:
        loud = det.decision_function(x)
    finally:
        det.verbose = False
    err = capfd.readouterr().err
    assert "img/s" in err and "dcae score" in err
    np.testing.assert_array_equal(quiet, loud)


@pytest.mark.parametrize(
    "name, params",
    [
        ("anogan", {"nz": 8, "width": 8, "search_steps": 3, "threshold_images": 20}),
        ("adgan", {"nz": 8, "width": 8, "n_seed": 2, "k": 1, "threshold_images": 20}),
    ],
)
def test_latent_search_shows_images_per_second(name, params, capfd):
    from ganad.datasets import digits_arrays

    x_tr, _, x_te, _ = digits_arrays()
    det = ganad.create(name, epochs=1, batch_size=32, device="cpu", **params).fit(x_tr[:100])
    capfd.readouterr()
    quiet = det.decision_function(x_te[:30])
    assert capfd.readouterr().err == ""
    det.verbose = True
    loud = det.decision_function(x_te[:30])
    err = capfd.readouterr().err
    assert "img/s" in err and f"{name} search" in err
    np.testing.assert_allclose(quiet, loud, rtol=1e-5)  # the bar does not change the scores


def test_score_cli_bar_unless_quiet(run_dir, capfd):
    args = ["score", str(run_dir / "run"), "--images", str(run_dir / "imgs"), "--top", "3", "--out", str(run_dir / "rep")]
    capfd.readouterr()
    assert main(args) == 0
    loud = capfd.readouterr()
    assert "img/s" in loud.err
    assert main([*args, "--quiet"]) == 0
    quiet = capfd.readouterr()
    assert "img/s" not in quiet.err and "%|" not in quiet.err
    assert quiet.out == loud.out  # the ranked list on stdout is the same either way
    assert len(quiet.out.splitlines()) == 4 and quiet.out.splitlines()[0].split()[0] == "1"


def test_fit_and_bench_quiet(tmp_path, capfd):
    fit = ["fit", "dcae", "--data", "digits", "--normal", "1", "--epochs", "1", "--out", str(tmp_path / "run"),
           "--param", "width=8", "--param", "nz=8", "--param", "device=cpu"]
    capfd.readouterr()
    assert main([*fit, "--quiet"]) == 0
    err = capfd.readouterr().err
    assert "it/s" not in err and "img/s" not in err and "%|" not in err
    assert ganad.load(tmp_path / "run" / "model.pt").verbose is False
    fit[fit.index("--out") + 1] = str(tmp_path / "run2")
    assert main(fit) == 0
    assert "img/s" in capfd.readouterr().err  # scoring the test split
    bench = ["bench", "--models", "ocsvm", "--data", "digits", "--classes", "2", "--results", str(tmp_path / "res")]
    assert main([*bench, "--quiet"]) == 0
    assert "cell" not in capfd.readouterr().err
    assert build_parser().parse_args(["demo", "--quiet"]).quiet is True
