"""Benchmark runner: stored records, resume/skip, crash-cut lines, rendering."""

import json

import pytest

from ganad.bench import render, runner
from ganad.bench.store import REQUIRED_KEYS, ResultStore, store_path


@pytest.fixture
def cells():
    return runner.plan(["kde", "ocsvm"], "digits", "one-class", [0, 1], [0])


def test_bench_stores_one_record_per_cell_and_resumes(cells, tmp_path):
    logs = []
    new = runner.run_bench(cells, tmp_path, log=logs.append, progress=False)
    assert len(new) == 4
    path = store_path(tmp_path, "digits", "one-class")
    recs = ResultStore(path).records()
    assert len(recs) == 4
    for r in recs:
        assert set(REQUIRED_KEYS) <= set(r)
        assert 0.9 < r["auroc"] <= 1 and 0 <= r["f1"] <= 1
        assert r["n_test"] == 899 and r["selected"]["n_components"] in (20, 40, 60, 64)
        assert all(t["val_auroc"] <= 1 for t in r["selection_trials"])
    # a second run stores nothing new
    assert runner.run_bench(cells, tmp_path, log=logs.append, progress=False) == []
    assert "4 of 4 cells already stored" in logs[-1]


def test_interrupted_write_is_rerun(cells, tmp_path):
    runner.run_bench(cells[:1], tmp_path, log=lambda _: None, progress=False)
    path = store_path(tmp_path, "digits", "one-class")
    with path.open("a") as fh:  # a crash in the middle of writing the next cell
        fh.write('{"model": "ocsvm", "auroc": 0.9')
    new = runner.run_bench(cells[:2], tmp_path, log=lambda _: None, progress=False)
    assert len(new) == 1 and len(ResultStore(path).records()) == 2


def test_other_config_is_another_cell(tmp_path):
    a = runner.plan(["kde"], "digits", "one-class", [0], [0])
    b = runner.plan(["kde"], "digits", "one-class", [0], [0], params={"kde": {"bandwidth": 2.0}})
    runner.run_bench(a, tmp_path, log=lambda _: None, progress=False)
    assert len(runner.run_bench(b, tmp_path, log=lambda _: None, progress=False)) == 1


def test_render_table_beside_published(tmp_path):
    runner.run_bench(runner.plan(["kde"], "digits", "one-class", [0, 1], [0, 1]), tmp_path / "results",
                     log=lambda _: None, progress=False)
    text = render.render(tmp_path / "results")
    assert (tmp_path / "RESULTS.md").read_text() == text
    row = next(line for line in text.splitlines() if line.startswith("| **kde**"))
    assert "±" in row and "| 2 |" in row  # two seeds


def test_render_shows_published_numbers(tmp_path):
    rec = {"model": "kde", "dataset": "fashion-mnist", "protocol": "one-class", "normal_class": 0, "seed": 0,
           "auroc": 0.9, "auprc": 0.98, "f1": 0.5, "fit_seconds": 1.0, "score_seconds": 1.0, "peak_rss_mb": 1.0,
           "n_train": 1, "n_test": 1, "device": "cpu", "torch_version": "x", "git_commit": "abc", "config": {}}
    ResultStore(tmp_path / "r" / "fashion-mnist-one-class.jsonl").append(rec)
    text = render.render(tmp_path / "r")
    assert "GEOM" in text and "0.928" in text and "PyOD 2.1 IForest" in text


def test_store_rejects_incomplete_records(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        ResultStore(tmp_path / "x.jsonl").append({"model": "kde"})


def test_parse_value():
    assert runner.parse_value("3") == 3 and runner.parse_value("null") is None
    assert runner.parse_value("[1, 2]") == [1, 2] and runner.parse_value("adam") == "adam"
    assert json.loads(json.dumps(runner.parse_value("0.5"))) == 0.5


def test_record_has_part_aurocs_and_test_subset(tmp_path):
    cell = runner.Cell("dcae", "digits", "one-class", 0, 0, {"epochs": 2, "width": 8, "nz": 8},
                       {"test_subset": 300})
    rec = runner.run_cell(cell)
    assert rec["n_test"] == 300 and rec["protocol_options"] == {"test_subset": 300}
    assert set(rec["part_auroc"]) == {"reconstruction", "l1", "standardized"}
    assert all(0 <= v <= 1 for v in rec["part_auroc"].values())


def test_grid_over_score_params_shares_one_fit(monkeypatch, digits_split):
    from ganad.bench.selection import select_on_validation
    from ganad.models.egbad import EGBAD

    fits = []
    real_fit = EGBAD.fit
    monkeypatch.setattr(EGBAD, "fit", lambda self, X, y=None: fits.append(1) or real_fit(self, X, y))
    params = dict(width=4, nz=4, batch_size=16, lr=2e-4, epochs=1, device="cpu", random_state=0)
    det, chosen, trials = select_on_validation(
        "egbad", params, {"score_method": ["fm", "ce", "ce_real"]}, digits_split
    )
    assert len(fits) == 1 and len(trials) == 3
    assert det.score_method == chosen["score_method"]
    best = max(trials, key=lambda t: t["val_auroc"])
    assert chosen["score_method"] == best["score_method"]
    # the threshold follows the chosen score, not the one the model was fitted with
    import numpy as np

    _, held_out = det._calibration_split(digits_split.train.x)
    np.testing.assert_allclose(det.calibration_scores_, det.decision_function(held_out))
    k = min(int(np.ceil(0.9 * (len(held_out) + 1))), len(held_out))  # the conformal quantile
    assert det.threshold_ == np.sort(det.calibration_scores_)[k - 1]


def test_render_labels_grids_and_lists_score_terms():
    recs = [
        dict(model="gaae", dataset="d", protocol="one-class", normal_class=c, seed=0, auroc=0.9, auprc=0.9, f1=0.5,
             fit_seconds=1, score_seconds=1, device="cpu:x", git_commit="abc",
             config={"params": {"epochs": 3}, "grid": {"nz": [8, 16]}}, part_auroc={"eq3": 0.8, "latent": 0.6 + c / 10})
        for c in range(3)
    ]
    assert "nz in {8, 16} on val" in render.table(recs, "d", "one-class")
    terms = render.parts_table(recs)
    assert "eq3 0.800" in terms and "latent 0.700" in terms
    assert render.parts_table([{**r, "part_auroc": None} for r in recs]) == ""


def test_merge_appends_only_new_cells(cells, tmp_path):
    from ganad.bench.store import merge

    a, b = tmp_path / "a", tmp_path / "b"
    runner.run_bench(cells[:2], a, log=lambda _: None, progress=False)
    runner.run_bench(cells[1:3], b, log=lambda _: None, progress=False)
    assert merge(b, a) == 1  # cells[1] is in both
    assert len(ResultStore(store_path(a, "digits", "one-class")).records()) == 3
    assert merge(b, a) == 0


def test_cell_stored_by_another_process_meanwhile_is_skipped(cells, tmp_path, monkeypatch):
    # Two benchmark processes may share one store (e.g. one per core): a cell the
    # other process stored after this one planned its work is not run again.
    other = runner.run_bench(cells[1:2], tmp_path / "other", log=lambda _: None, progress=False)
    real_run_cell = runner.run_cell
    ran = []

    def run_cell(cell):
        if not ran:  # while the first cell runs, "another process" stores the second
            ResultStore(store_path(tmp_path, "digits", "one-class")).append(other[0])
        ran.append(cell.klass)
        return real_run_cell(cell)

    monkeypatch.setattr(runner, "run_cell", run_cell)
    logs = []
    new = runner.run_bench(cells[:2], tmp_path, log=logs.append, progress=False)
    assert len(new) == 1 and len(ran) == 1
    assert any("stored meanwhile, skipped" in line for line in logs)
    assert len(ResultStore(store_path(tmp_path, "digits", "one-class")).records()) == 2
