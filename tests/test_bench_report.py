"""`ganad report`: the benchmark store as one HTML page with PNGs, on a tiny synthetic store."""

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from ganad.cli import main


def _record(model, protocol, klass, seed, auroc, **options):
    class_key = "anomalous_class" if protocol == "one-anomalous" else "normal_class"
    return {
        "model": model, "dataset": "fashion-mnist", "protocol": protocol, class_key: klass, "seed": seed,
        "auroc": auroc, "auprc": auroc - 0.05, "f1": auroc - 0.2, "fit_seconds": 1.5, "score_seconds": 0.1,
        "peak_rss_mb": 400.0, "n_train": 100, "n_test": 100, "device": "cpu:x86_64:2cores", "torch_version": "2",
        "git_commit": "abc1234", "config": {"params": {"epochs": 1}, "grid": {}}, "protocol_options": options,
    }


def make_store(root: Path) -> Path:
    """one-class (2 models x 3 classes, 2 seeds of one), contamination (3 gammas), ood (2 other sets), speed."""
    root.mkdir(parents=True, exist_ok=True)
    one_class = [_record(m, "one-class", c, s, 0.6 + 0.1 * c + (0.05 if m == "dcae" else 0) + 0.01 * s)
                 for m in ("dcae", "ocsvm") for c in range(3) for s in ((0, 1) if m == "dcae" else (0,))]
    contamination = [_record(m, "contamination", c, 0, 0.9 - g - (0.1 if m == "kde" else 0), gamma=g)
                     for m in ("kde", "ganomaly") for g in (0.05, 0.1, 0.2) for c in range(2)]
    ood = [_record(m, "ood", 0, 0, a, other=o) for m, a in (("vae", 0.8), ("dcae", 0.7)) for o in ("mnist", "cifar10")]
    for name, rs in (("fashion-mnist-one-class", one_class), ("fashion-mnist-contamination", contamination),
                     ("fashion-mnist-ood", ood)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs) + '{"cut by a cra')
    speed = {"model": "dcae", "precision": "fp32", "threads": 1, "width": 64, "train_img_s": 1234.5,
             "score_img_s": 9876.5, "train_gflop_s": 12.3, "peak_fp32_gflop_s": 80.0, "peak_bf16_gflop_s": 160.0,
             "auroc": 0.91, "device": "test cpu", "commit": "abc1234"}
    (root / "speed.jsonl").write_text(json.dumps(speed) + "\n")
    return root


def make_bench_report(tmp_path: Path) -> Path:
    out = tmp_path / "report"
    assert main(["report", "--results", str(make_store(tmp_path / "results")), "--out", str(out)]) == 0
    return out


def test_report_writes_index_and_pngs(tmp_path, capsys):
    out = make_bench_report(tmp_path)
    assert f"report: {out / 'index.html'}" in capsys.readouterr().out
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["bars-fashion-mnist-contamination.png", "bars-fashion-mnist-one-class.png",
                    "bars-fashion-mnist-ood.png", "contamination-fashion-mnist.png"]
    for p in pngs:
        with Image.open(out / p) as im:
            assert im.width > 300 and im.height > 100
    page = (out / "index.html").read_text()
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (out / src).is_file(), src
    assert not re.search(r'(src|href)="(https?:)?//', page)
    # the per-class heat-map table: our rows, published and peer rows, coloured cells
    assert "background-color:#" in page and "GEOM (Golan &amp; El-Yaniv 2018)" in page and "PyOD 2.1 VAE" in page
    assert re.search(r"dcae \(epochs=1\)</td><td class=\"kind\">ganad</td>", page)
    # dcae, class 0: mean of two seeds (0.65, 0.66)
    assert 'data-v="0.655' in page
    assert "vs mnist" in page and "vs cifar10" in page  # the OOD table
    assert 'id="speed"' in page and "9876" in page  # the speed table


def test_report_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for argv, match in ((["report", "--results", str(tmp_path / "nothing")], "no such folder"),
                        (["report", "--results", str(tmp_path / "empty"), "--out", str(tmp_path / "o")],
                         "no benchmark records")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err


def test_speed_only_store(tmp_path):
    store = make_store(tmp_path / "r")
    for p in store.glob("fashion-mnist-*.jsonl"):
        p.unlink()
    assert main(["report", "--results", str(store), "--out", str(tmp_path / "o")]) == 0
    assert 'id="speed"' in (tmp_path / "o" / "index.html").read_text()


def test_contamination_plot_reads_gamma_and_berg_layout(tmp_path):
    """Records written by `ganad bench --protocol contamination` carry gamma at the top level and
    auroc_berg_layout: the plot gets a line per model and a second panel for the Berg layout."""
    root = tmp_path / "results"
    root.mkdir()
    recs = []
    for m in ("kde", "dcae"):
        for g in (0.0, 0.02, 0.1):
            for c in range(2):
                r = _record(m, "contamination", c, 0, 0.9 - g, gamma=g)
                recs.append({**r, "gamma": g, "auroc_berg_layout": 0.85 - g, "selection": "none"})
    (root / "fashion-mnist-contamination.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "report"
    assert main(["report", "--results", str(root), "--out", str(out)]) == 0
    png = out / "contamination-fashion-mnist.png"
    with Image.open(png) as im:
        two_panels = im.width
    assert png.is_file() and 'src="contamination-fashion-mnist.png"' in (out / "index.html").read_text()
    for r in recs:
        del r["auroc_berg_layout"]
    (root / "fashion-mnist-contamination.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main(["report", "--results", str(root), "--out", str(tmp_path / "one")]) == 0
    with Image.open(tmp_path / "one" / "contamination-fashion-mnist.png") as im:
        assert im.width < two_panels  # one panel without the Berg layout


def test_auroc_vs_gamma_png(tmp_path):
    import pytest

    from ganad.report.plots import auroc_vs_gamma_png

    p = auroc_vs_gamma_png({"kde": {0.0: 0.9, 0.1: 0.8}, "dcae": {0.0: 0.95, 0.05: 0.9, 0.1: 0.85}},
                           tmp_path / "sub" / "g.png", berg_curves={"kde": {0.0: 0.85, 0.1: 0.7}})
    assert p == tmp_path / "sub" / "g.png" and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no"):
        auroc_vs_gamma_png({}, tmp_path / "empty.png")


def test_contamination_lines_average_the_same_classes_at_every_gamma_and_results_md_shows_the_plot(
        tmp_path, monkeypatch):
    """A partly run study (class 1 only at gamma 0) must not draw a drop that is a change of
    classes: each line averages the classes stored at all its gammas."""
    from ganad.bench import render
    from ganad.report import plots

    root = tmp_path / "results"
    root.mkdir()
    recs = [{**_record("kde", "contamination", c, 0, a, gamma=g), "gamma": g, "selection": "none"}
            for c, g, a in [(0, 0.0, 0.9), (0, 0.1, 0.8), (1, 0.0, 0.5)]]
    (root / "fashion-mnist-contamination.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    seen = {}
    real = plots.auroc_vs_gamma_png
    monkeypatch.setattr(plots, "auroc_vs_gamma_png", lambda curves, path, title, **kw: (
        seen.update(curves), real(curves, path, title, **kw))[1])
    text = render.render(root)
    assert seen == {"kde (epochs=1) (1 cl.)": {0.0: 0.9, 0.1: 0.8}}  # class 1 (gamma 0 only) left out
    assert "![fashion-mnist: AUROC against the training contamination gamma](contamination-fashion-mnist.png)" in text
    assert (tmp_path / "contamination-fashion-mnist.png").is_file()


def _summary_module():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "contamination_summary.py")
    spec = importlib.util.spec_from_file_location("contamination_summary", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_contamination_summary_compares_the_same_classes_at_every_gamma(tmp_path):
    from ganad.bench.store import ResultStore, store_path

    store = ResultStore(store_path(tmp_path, "toy", "contamination"))
    base = {"dataset": "toy", "protocol": "contamination", "seed": 0, "selection": "none", "config": {},
            "auprc": 0.5, "f1": 0.5, "fit_seconds": 1, "score_seconds": 1, "peak_rss_mb": 1, "n_train": 1,
            "n_test": 1, "device": "cpu", "torch_version": "x", "git_commit": "x"}
    cells = {(0, 0.0): 0.9, (1, 0.0): 0.7, (2, 0.0): 0.1, (0, 0.1): 0.8, (1, 0.1): 0.5, (0, 0.02): 0.85}
    for (c, g), auc in cells.items():
        store.append({**base, "model": "m", "normal_class": c, "gamma": g, "protocol_options": {"gamma": g},
                      "auroc": auc})
    (row,) = _summary_module().summary(str(tmp_path), "toy")
    assert row["classes"] == [0, 1]  # class 2 has no gamma-0.1 cell: left out of every column
    assert row["mean"][0.0] == pytest.approx(0.8) and row["mean"][0.1] == pytest.approx(0.65)
    assert 0.02 not in row["mean"]  # stored for class 0 only: not shown until it covers classes 0 and 1
    assert row["drop"][0.1] == pytest.approx(-0.15)
