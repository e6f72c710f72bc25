"""`ganad score` streams a folder: same scores as in memory, labels, --labels, --skip-bad, the report."""

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganad
from ganad import metrics
from ganad.cli import main
from ganad.data import stream
from ganad.data.readers import read_any
from ganad.scoring import anomaly_maps, score_stream


def read_scores(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, digits_split):
    """An OC-SVM fitted on the digit 0 (8x8 grey), saved as a run folder."""
    out = tmp_path_factory.mktemp("run")
    det = ganad.create("ocsvm", n_components=5).fit(digits_split.train.x)
    det.save(out / "model.pt")
    return out


def make_labelled_folder(root: Path, digits_split, n_normal: int = 25, n_anomalous: int = 15) -> Path:
    """normal/ (test zeros) and anomalous/ (other digits) subfolders of 8x8 PNGs."""
    x, y = digits_split.test.x, digits_split.test.y
    for sub, label, n in (("normal", 0, n_normal), ("anomalous", 1, n_anomalous)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(y == label)[:n]:
            Image.fromarray(x[i]).save(root / sub / f"{i:04d}.png")
    return root


def make_score_report(tmp_path: Path, model_dir: Path, digits_split, *extra: str) -> Path:
    folder = make_labelled_folder(tmp_path / "imgs", digits_split)
    out = tmp_path / "rep"
    assert main(["score", str(model_dir), "--images", str(folder), "--out", str(out), "--quiet", "--batch-size", "7",
                 *extra]) == 0
    return out


def test_streamed_scores_equal_in_memory_scores(tmp_path, model_dir, digits_split, capsys):
    folder = make_labelled_folder(tmp_path / "imgs", digits_split)
    det = ganad.load(model_dir / "model.pt")
    x, names = read_any(folder, size=(8, 8), mode="L")
    expected = dict(zip(names, det.decision_function(x)))
    parts = det.score_parts(x)
    for workers in ("0", "2"):
        out = tmp_path / f"rep{workers}"
        assert main(["score", str(model_dir), "--images", str(folder), "--out", str(out), "--quiet",
                     "--batch-size", "7", "--workers", workers, "--top", "3"]) == 0
        rows = read_scores(out / "scores.csv")
        assert list(rows) == names  # every file once, in file order
        got = np.array([float(rows[n]["score"]) for n in names])
        np.testing.assert_allclose(got, [expected[n] for n in names], rtol=1e-9, atol=1e-12)
        assert all(int(rows[n]["flag"]) == int(expected[n] > det.threshold_) for n in names)
        for k in set(parts) - {"score"}:  # every score_parts term is a column
            np.testing.assert_allclose([float(rows[n][k]) for n in names], parts[k], rtol=1e-9)
    printed = capsys.readouterr().out.splitlines()  # both runs: the 3 highest, then the report path
    best = max(expected, key=expected.get)
    assert printed[0].split()[2] == best and printed[:3] == printed[4:7] and printed[3].startswith("report:")


def test_labelled_folder_gives_auroc_in_the_report(tmp_path, model_dir, digits_split):
    out = make_score_report(tmp_path, model_dir, digits_split)
    for name in ("index.html", "scores.csv", "histogram.png", "roc.png", "pr.png", "extremes.png"):
        assert (out / name).stat().st_size > 0, name
    rows = read_scores(out / "scores.csv")
    y = np.array([int(r["label"]) for r in rows.values()])
    s = np.array([float(r["score"]) for r in rows.values()])
    assert y.sum() == 15 and (y == 0).sum() == 25
    page = (out / "index.html").read_text()
    auroc = metrics.roc_auc(y, s)
    assert "AUROC" in page and f"{auroc:.4f}" in page and "AUPRC" in page and "F1 at the threshold" in page
    c = metrics.confusion(y, s, ganad.load(model_dir / "model.pt").threshold_)
    assert f">{c['tp']}<" in page and f">{c['fp']}<" in page and f">{c['tn']}<" in page  # the confusion counts


def test_labels_csv(tmp_path, model_dir, digits_split, capsys):
    src = make_labelled_folder(tmp_path / "src", digits_split, 10, 6)
    flat = tmp_path / "flat"
    flat.mkdir()
    lines = ["path,label"]
    for p in sorted(src.rglob("*.png")):
        (flat / p.name).write_bytes(p.read_bytes())
        lines.append(f"{p.name},{'anomalous' if p.parent.name == 'anomalous' else 0}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "rep"
    argv = ["score", str(model_dir), "--images", str(flat), "--out", str(out), "--quiet"]
    assert main([*argv, "--labels", str(tmp_path / "labels.csv")]) == 0
    rows = read_scores(out / "scores.csv")
    assert sorted(int(r["label"]) for r in rows.values()) == [0] * 10 + [1] * 6
    assert (out / "roc.png").exists() and "AUROC" in (out / "index.html").read_text()
    # an image without a label is a one-line error
    (tmp_path / "labels.csv").write_text("\n".join(lines[:-1]) + "\n")
    capsys.readouterr()
    assert main([*argv, "--labels", str(tmp_path / "labels.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no label for 1 of the 16 images" in err[0]


def test_bad_files_are_skipped_and_counted(tmp_path, model_dir, digits_split, capsys):
    folder = make_labelled_folder(tmp_path / "imgs", digits_split, 8, 4)
    (folder / "normal" / "broken.png").write_bytes(b"not a png")
    (folder / "anomalous" / "empty.jpg").write_bytes(b"")
    out = tmp_path / "rep"
    argv = ["score", str(model_dir), "--images", str(folder), "--out", str(out), "--quiet", "--batch-size", "5"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--skip-bad" in err[0] and ("empty.jpg" in err[0] or "broken.png" in err[0])
    assert main([*argv, "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "skipped 2 unreadable file(s)" in captured.err and "broken.png" in captured.err
    rows = read_scores(out / "scores.csv")
    assert len(rows) == 12 and not any(n.endswith(("broken.png", "empty.jpg")) for n in rows)
    page = (out / "index.html").read_text()
    assert "2 unreadable files skipped" in page and "unreadable files skipped</td><td class=\"num\">2<" in page


def test_report_has_a_sortable_table_and_no_external_assets(tmp_path, model_dir, digits_split):
    out = make_score_report(tmp_path, model_dir, digits_split, "--table", "30")
    page = (out / "index.html").read_text()
    table = re.search(r'<table class="sortable" id="scores">(.*?)</table>', page, re.DOTALL).group(1)
    header = re.findall(r"<th[^>]*>([^<]+)</th>", table)
    assert header[:4] == ["rank", "path", "score", "flag"] and header[-1] == "label"
    body = re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1])
    assert len(body) == 30  # --table rows, highest first
    scores = [float(re.findall(r'data-v="([^"]+)"', r)[1]) for r in body]  # [rank, score, ...]
    assert scores == sorted(scores, reverse=True)
    assert "<script>" in page and "addEventListener(\"click\"" in page and "aria-sort" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no CDN, no external asset


def test_crop_and_resize(tmp_path):
    img = np.zeros((16, 32), dtype=np.uint8)
    img[:, 8:24] = 200  # the centre half is bright
    Image.fromarray(img).save(tmp_path / "wide.png")
    Image.fromarray(np.stack([img] * 3, axis=-1)).save(tmp_path / "wide_rgb.png")
    crop = stream.ImageFolderStream(tmp_path, mode="L", size=8, crop=True)
    resize = stream.ImageFolderStream(tmp_path, mode="L", size=8)
    c, _ = crop.load(0)
    r, _ = resize.load(0)
    assert c.shape == r.shape == (8, 8)
    assert c.min() > 150  # the centre crop keeps only the bright middle
    assert r[:, 0].max() < 50 and r[:, 4].min() > 150  # the resize squeezes the dark borders in
    rgb = stream.ImageFolderStream(tmp_path, mode="RGB", size=(6, 10))
    x, converted = rgb.load(0)
    assert x.shape == (3, 6, 10) and converted  # grey file converted to the model's RGB
    assert crop.names == ["wide.png", "wide_rgb.png"]


def test_heaps_are_bounded_and_anomaly_maps_are_used_when_they_work(tmp_path, digits_split):
    det = ganad.create("ocsvm", n_components=5).fit(digits_split.train.x)
    x = digits_split.test.x[:50]
    data = stream.ArrayStream(x, [f"x[{i}]" for i in range(50)])
    res = score_stream(det, stream.image_loader(data, batch_size=9), data.names, tmp_path / "s.csv",
                       thumbs=3, table=5, show_progress=False)
    s = det.decision_function(x)
    assert len(res.top) == len(res.bottom) == 3 and len(res.table) == 5
    assert [p for _, p, _ in res.top] == list(np.argsort(-s, kind="stable")[:3])
    assert [p for _, p, _ in res.bottom] == list(np.argsort(s, kind="stable")[:3])
    np.testing.assert_allclose(res.scores, s)
    imgs = [im for _, _, im in res.top]
    assert anomaly_maps(det, imgs) is None or hasattr(det, "anomaly_map")

    class WithMaps:
        def anomaly_map(self, X):
            return np.abs(X.astype(float) - 128)[:, None]  # (n, 1, H, W)

    class Broken:
        def anomaly_map(self, X):
            raise RuntimeError("no maps for this one")

    maps = anomaly_maps(WithMaps(), imgs)
    assert maps.shape == (3, 8, 8)
    assert anomaly_maps(Broken(), imgs) is None
