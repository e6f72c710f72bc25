"""Latent-space figures (Berg et al. 2019, Figs. 2-3): encode(), the t-SNE and ||z|| PNGs,
the error for a detector without an encoder, and the "Latent space" section of `ganad fit`."""

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES
from PIL import Image

import ganad
from ganad.report import latent

N_SMALL = 120  # images of the figure tests (t-SNE cost)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny nets: one torch thread is faster than two on a busy machine (restored afterwards;
    `ganad fit` below sizes the pool itself, from OMP_NUM_THREADS or the affinity mask)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _small(split, n=N_SMALL):
    idx = np.sort(np.random.default_rng(0).choice(len(split.test.y), size=n, replace=False))
    return split.test.x[idx], split.test.y[idx]


@pytest.mark.parametrize("name", ["berg", "fanogan"])
def test_encode_gives_the_codes_of_l_o_independent_of_the_batch(fitted, digits_split, name):
    det = fitted(name)
    x = digits_split.test.x[:64]
    codes = latent.encode(det, x)
    assert codes.shape == (len(x), det.nz) and codes.dtype == np.float32
    assert np.isfinite(codes).all() and codes.std() > 0
    # one image at a time (BatchNorm in fanogan's E: eval mode, or a batch of 1 would differ)
    np.testing.assert_allclose(latent.encode(det, x, batch_size=1), codes, rtol=1e-4, atol=1e-5)
    # the code whose norm the model scores: l_o = -||z_hat||_2 / sqrt(nz) (Eq. 4)
    l_o = det.score_parts(x)["l_o"]
    np.testing.assert_allclose(-np.linalg.norm(codes, axis=1) / np.sqrt(det.nz), l_o, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["ganomaly", "egbad", "ama"])  # alad shares egbad's method
def test_the_other_encoders_give_batch_independent_codes(fitted, digits_split, name):
    det = fitted(name)
    x = digits_split.test.x[:40]
    codes = latent.encode(det, x)
    assert codes.shape == (len(x), det.nz) and np.isfinite(codes).all() and codes.std() > 0
    np.testing.assert_allclose(latent.encode(det, x, batch_size=1), codes, rtol=1e-4, atol=1e-5)


def _valid_png(path, min_side=200):
    assert path.is_file() and path.stat().st_size > 5000
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) >= min_side
        pix = np.asarray(im.convert("L"), dtype=np.float64)
    assert pix.std() > 5  # not a blank canvas


def test_latent_figures_write_two_valid_pngs(fitted, digits_split, tmp_path):
    x, y = _small(digits_split)
    paths = latent.latent_figures(fitted("berg"), x, y, tmp_path / "figs", "berg", max_points=80)
    assert [p.name for p in paths] == ["berg_tsne.png", "berg_norm.png"]
    for p in paths:
        _valid_png(p)


def test_tsne_subsample_is_seeded_and_keeps_both_labels(tmp_path):
    y = np.r_[np.zeros(180), np.ones(20)].astype(int)
    idx = latent._subsample(y, 50, 0)
    assert np.bincount(y[idx]).tolist() == [45, 5]  # in proportion to the labels
    np.testing.assert_array_equal(idx, latent._subsample(y, 50, 0))
    assert len(latent._subsample(y, 500, 0)) == 200
    rare = np.r_[np.zeros(398), np.ones(2)].astype(int)
    assert rare[latent._subsample(rare, 20, 0)].sum() == 1  # a rare label keeps one point
    codes = np.random.default_rng(0).normal(size=(200, 4)) + 3 * y[:, None]
    _valid_png(latent.tsne_png(codes, y, tmp_path / "t.png", max_points=50))
    with pytest.raises(ValueError, match="non-finite"):
        latent.norm_histogram_png(np.full((3, 2), np.nan), [0, 1, 0], tmp_path / "n.png")


def test_a_detector_without_an_encoder_is_a_clear_error(digits_split):
    kde = ganad.create("kde").fit(digits_split.train.x)
    with pytest.raises(ValueError, match="kde has no encoder") as err:
        latent.encode(kde, digits_split.test.x[:4])
    assert "berg" in str(err.value) and "fanogan" in str(err.value)
    assert {"berg", "fanogan"} <= set(latent.encoder_models()) and "kde" not in latent.encoder_models()
    assert latent.report_figures(kde, digits_split.test.x[:4], [0, 1, 0, 1], ".") == []


def test_fit_report_has_the_latent_space_section(tmp_path, monkeypatch):
    from ganad.cli import main

    monkeypatch.setattr(latent, "MAX_TSNE_POINTS", 100)  # t-SNE cost; the report still says "at most"
    params = [a for k, v in TINY_OVERRIDES["berg"].items() for a in ("--param", f"{k}={v}")]
    out = tmp_path / "run"
    args = ["fit", "berg", "--data", "digits", "--normal", "0", "--epochs", "1", "--quiet", "--out", str(out)]
    assert main(args + params) == 0
    report = out / "report"
    for name in ("latent_tsne.png", "latent_norm.png"):
        _valid_png(report / name)
    page = (report / "index.html").read_text()
    assert "<h2>Latent space</h2>" in page and 'src="latent_tsne.png"' in page and 'src="latent_norm.png"' in page
    # a model without an encoder gets no such section
    out2 = tmp_path / "kde"
    assert main(["fit", "kde", "--data", "digits", "--normal", "0", "--quiet", "--out", str(out2)]) == 0
    assert "Latent space" not in (out2 / "report" / "index.html").read_text()
    assert not (out2 / "report" / "latent_tsne.png").exists()
