"""Tests for ganad.report: PNG figures and the static HTML report."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganad.report import (
    extremes_grid_png,
    image_grid_png,
    rank_extremes,
    residual_heatmap_png,
    roc_curve_png,
    score_histogram_png,
    write_report,
)

N = 20


@pytest.fixture()
def data() -> dict:
    """20 synthetic 8x8 uint8 images; the last 5 are anomalous and score higher."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, 8, 8), dtype=np.uint8)
    y = np.r_[np.zeros(15, dtype=int), np.ones(5, dtype=int)]
    scores = rng.normal(size=N) + 2.0 * y
    return {"images": images, "y": y, "scores": scores, "names": [f"img_{i:02d}.png" for i in range(N)]}


def assert_png(path: Path) -> tuple[int, int]:
    """The file exists, is a real non-empty PNG; return its pixel size."""
    path = Path(path)
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
    assert w > 0 and h > 0
    return w, h


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- rank_extremes


def test_rank_extremes_orders_highest_and_lowest() -> None:
    scores = np.array([0.3, 5.0, -1.0, 2.0, 0.0, 4.0])
    top, bottom = rank_extremes(scores, 3)
    assert top.tolist() == [1, 5, 3]  # highest first, descending
    assert bottom.tolist() == [2, 4, 0]  # lowest first, ascending
    assert np.all(np.diff(scores[top]) <= 0) and np.all(np.diff(scores[bottom]) >= 0)


def test_rank_extremes_clips_k_and_rejects_bad_input() -> None:
    top, bottom = rank_extremes([1.0, 3.0, 2.0], 10)
    assert top.tolist() == [1, 2, 0] and bottom.tolist() == [0, 2, 1]
    with pytest.raises(ValueError):
        rank_extremes([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="non-finite"):
        rank_extremes([1.0, np.nan], 1)


def test_rank_extremes_matches_random_argmax(data: dict) -> None:
    top, bottom = rank_extremes(data["scores"], 16)
    assert top[0] == int(np.argmax(data["scores"]))
    assert bottom[0] == int(np.argmin(data["scores"]))
    assert len(top) == len(bottom) == 16


# ---------------------------------------------------------------- individual plots


def test_roc_and_histogram_pngs(tmp_path: Path, data: dict) -> None:
    p = roc_curve_png(data["y"], data["scores"], tmp_path / "roc.png", title="t")
    assert p == tmp_path / "roc.png"
    assert_png(p)
    assert_png(score_histogram_png(data["scores"], tmp_path / "h1.png"))
    assert_png(score_histogram_png(data["scores"], tmp_path / "sub" / "h2.png", y=data["y"], threshold=0.5))


def test_roc_requires_both_classes(tmp_path: Path, data: dict) -> None:
    with pytest.raises(ValueError, match="both classes"):
        roc_curve_png(np.zeros(N, dtype=int), data["scores"], tmp_path / "roc.png")
    with pytest.raises(ValueError, match="length mismatch"):
        roc_curve_png(data["y"][:-1], data["scores"], tmp_path / "roc.png")
    with pytest.raises(ValueError):
        roc_curve_png(np.full(N, 2), data["scores"], tmp_path / "roc.png")
    assert not (tmp_path / "roc.png").exists()


@pytest.mark.parametrize(
    "images",
    [
        np.random.default_rng(1).integers(0, 256, (N, 8, 8), dtype=np.uint8),  # (N, H, W) uint8
        np.random.default_rng(2).random((N, 1, 8, 8)),  # (N, 1, H, W) float
        np.random.default_rng(3).random((N, 3, 8, 8)).astype(np.float32),  # (N, 3, H, W) float RGB
    ],
    ids=["gray-uint8", "gray-float-c1", "rgb-float"],
)
def test_image_grid_shapes_and_dtypes(tmp_path: Path, images: np.ndarray) -> None:
    w, h = assert_png(image_grid_png(images, tmp_path / "g.png", ncols=8, captions=[f"{i}" for i in range(N)]))
    assert w > h  # 8 columns, 3 rows of small panels
    w1, _ = assert_png(image_grid_png(images[:3], tmp_path / "g3.png", ncols=1, title="one column"))
    assert w1 < w


def test_image_grid_uses_fixed_gray_range(tmp_path: Path) -> None:
    """Dark images stay dark gray: no per-image autoscaling to their own min/max."""
    dark = np.full((2, 8, 8), 10, dtype=np.uint8)
    dark[:, 0, 0] = 20  # autoscaling would map 10 -> black and 20 -> white
    p = image_grid_png(dark, tmp_path / "dark.png", ncols=2)
    with Image.open(p) as im:
        px = np.asarray(im.convert("L")).astype(int)
    assert px.min() >= 7  # nothing rendered pure black
    values, counts = np.unique(px[px < 128], return_counts=True)
    assert abs(int(values[np.argmax(counts)]) - 10) <= 2  # panels drawn at gray level ~10
    # float images on the same scale: 10/255 renders identically
    p2 = image_grid_png(dark.astype(np.float32) / 255.0, tmp_path / "dark_f.png", ncols=2)
    with Image.open(p2) as im:
        px2 = np.asarray(im.convert("L")).astype(int)
    assert np.abs(px2 - px).max() <= 2


def test_image_grid_rejects_bad_input(tmp_path: Path) -> None:
    x = np.zeros((4, 8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="captions"):
        image_grid_png(x, tmp_path / "g.png", captions=["a"])
    with pytest.raises(ValueError):
        image_grid_png(np.zeros((4, 2, 8, 8)), tmp_path / "g.png")  # C=2
    with pytest.raises(ValueError):
        image_grid_png(np.zeros((8, 8)), tmp_path / "g.png")  # no batch axis


def test_extremes_grid_puts_highest_first(tmp_path: Path) -> None:
    """The highest-scored image (pure red) is drawn top-left, the lowest (pure green) bottom-left."""
    n = 6
    images = np.full((n, 3, 8, 8), 0, dtype=np.uint8)
    images[:, 2] = 255  # blue by default
    scores = np.array([0.3, 0.9, -2.0, 5.0, 0.1, 1.0])
    images[3] = 0
    images[3, 0] = 255  # highest score -> red
    images[2] = 0
    images[2, 1] = 255  # lowest score -> green
    top, bottom = rank_extremes(scores, 3)
    assert top[0] == 3 and bottom[0] == 2
    p = extremes_grid_png(images, scores, tmp_path / "ext.png", k=3)
    w, h = assert_png(p)
    with Image.open(p) as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    ys, xs = np.nonzero((r > 200) & (g < 50) & (b < 50))
    assert ys.size > 0 and ys.max() < h // 2 and xs.max() < w // 2  # red: first panel, top row
    ys, xs = np.nonzero((g > 200) & (r < 50) & (b < 50))
    assert ys.size > 0 and ys.min() > h // 2 and xs.max() < w // 2  # green: first panel, bottom row
    with pytest.raises(ValueError, match="length mismatch"):
        extremes_grid_png(images, scores[:-1], tmp_path / "bad.png")


def test_residual_heatmap(tmp_path: Path, data: dict) -> None:
    rec = data["images"].astype(np.float32) / 255.0  # float reconstruction of uint8 input
    assert_png(residual_heatmap_png(data["images"], rec, tmp_path / "res.png", k=4))
    rgb = np.random.default_rng(0).random((3, 3, 8, 8))
    assert_png(residual_heatmap_png(rgb, rgb[::-1], tmp_path / "res_rgb.png", k=8))
    with pytest.raises(ValueError, match="length mismatch"):
        residual_heatmap_png(data["images"], rec[:5], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="shape mismatch"):
        residual_heatmap_png(data["images"], rec[:, :4, :4], tmp_path / "bad.png")


# ---------------------------------------------------------------- write_report


def test_write_report_with_labels(tmp_path: Path, data: dict) -> None:
    out = tmp_path / "rep"
    index = write_report(
        out,
        data["scores"],
        images=data["images"],
        y=data["y"],
        threshold=1.0,
        metrics={"auroc": 0.8765, "ap": 0.5},
        title="digits <test>",
        names=data["names"],
        top=5,
    )
    assert index == out / "index.html"
    assert sorted(p.name for p in out.iterdir()) == [
        "extremes.png",
        "histogram.png",
        "index.html",
        "roc.png",
        "scores.csv",
    ]
    for name in ("extremes.png", "histogram.png", "roc.png"):
        assert_png(out / name)

    page = index.read_text(encoding="utf-8")
    assert "0.8765" in page and "auroc" in page
    assert "digits &lt;test&gt;" in page  # title is escaped
    for name in ("roc.png", "histogram.png", "extremes.png", "scores.csv"):
        assert f'"{name}"' in page  # relative references
    assert str(tmp_path) not in page
    # the top-5 table lists exactly the 5 highest-scored names, the highest first
    order = np.argsort(-data["scores"])
    top_names = [data["names"][i] for i in order[:5]]
    positions = [page.index(n) for n in top_names]
    assert positions == sorted(positions)
    assert data["names"][order[5]] not in page

    rows = read_csv(out / "scores.csv")
    assert len(rows) == N
    assert list(rows[0].keys()) == ["index", "name", "score", "label"]
    assert [int(r["index"]) for r in rows] == list(range(N))
    assert [r["name"] for r in rows] == data["names"]
    np.testing.assert_allclose([float(r["score"]) for r in rows], data["scores"], rtol=0, atol=0)
    assert [int(r["label"]) for r in rows] == data["y"].tolist()


def test_write_report_without_labels_or_images(tmp_path: Path, data: dict) -> None:
    out = tmp_path / "nolabels"
    index = write_report(out, data["scores"])
    assert sorted(p.name for p in out.iterdir()) == ["histogram.png", "index.html", "scores.csv"]
    assert "roc.png" not in index.read_text(encoding="utf-8")
    rows = read_csv(out / "scores.csv")
    assert len(rows) == N and list(rows[0].keys()) == ["index", "name", "score"]
    assert all(r["name"] == "" for r in rows)


def test_write_report_single_class_labels_skip_roc(tmp_path: Path, data: dict) -> None:
    out = tmp_path / "oneclass"
    write_report(out, data["scores"], images=data["images"], y=np.zeros(N, dtype=int))
    assert sorted(p.name for p in out.iterdir()) == ["extremes.png", "histogram.png", "index.html", "scores.csv"]


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"images": np.zeros((N - 1, 8, 8), dtype=np.uint8)}, "images"),
        ({"y": np.zeros(N + 1, dtype=int)}, "y"),
        ({"names": ["a"] * 3}, "names"),
    ],
)
def test_write_report_length_mismatch(tmp_path: Path, data: dict, kwargs: dict, word: str) -> None:
    out = tmp_path / "bad"
    with pytest.raises(ValueError, match=rf"{word} has \d+ entries"):
        write_report(out, data["scores"], **kwargs)
    assert not (out / "index.html").exists()


def test_write_report_rejects_nonfinite_scores(tmp_path: Path, data: dict) -> None:
    s = data["scores"].copy()
    s[3] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        write_report(tmp_path / "bad", s)
