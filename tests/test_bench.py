"""Benchmark runner: stored records, resume/skip, crash-cut lines, rendering."""

import json

import pytest

import ganad
from ganad import metrics
from ganad.bench import render, runner
from ganad.bench.store import REQUIRED_KEYS, ResultStore, store_path
from conftest import needs_fmnist


@pytest.fixture
def cells():
    return runner.plan(["kde", "ocsvm"], "digits", "one-class", [0, 1], [0], selection="labelled", labelled=5)


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
        assert r["selection"] == "labelled:5" and r["n_val_anomalies"] == 5 and r["test_informed"] is False
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

    def run_cell(cell, **kw):
        if not ran:  # while the first cell runs, "another process" stores the second
            ResultStore(store_path(tmp_path, "digits", "one-class")).append(other[0])
        ran.append(cell.klass)
        return real_run_cell(cell, **kw)

    monkeypatch.setattr(runner, "run_cell", run_cell)
    logs = []
    new = runner.run_bench(cells[:2], tmp_path, log=logs.append, progress=False)
    assert len(new) == 1 and len(ran) == 1
    assert any("stored meanwhile, skipped" in line for line in logs)
    assert len(ResultStore(store_path(tmp_path, "digits", "one-class")).records()) == 2


# ------------------------------------------------------------------ selection regimes
def _quiet(cells, results):
    return runner.run_bench(cells, results, log=lambda _: None, progress=False)


def test_default_regime_is_none_and_fits_the_declared_configuration(tmp_path, monkeypatch):
    from ganad.models.classic import KDE

    seen = []
    real_fit = KDE.fit
    monkeypatch.setattr(KDE, "fit", lambda self, X, y=None: seen.append(self.n_components) or real_fit(self, X, y))
    (rec,) = _quiet(runner.plan(["kde"], "digits", "one-class", [0], [0]), tmp_path)
    assert rec["selection"] == "none" and rec["n_val_anomalies"] == 0 and rec["test_informed"] is False
    assert rec["config"]["grid"] == {} and rec["selected"] == {} and rec["selection_trials"] == []
    assert seen == [KDE().n_components]  # one fit, the model's default, no grid point
    assert rec["n_val"] > 0  # the held-out normals are still there, only the anomalies are not drawn


def test_labelled_selection_reads_exactly_k_validation_anomalies(monkeypatch):
    from ganad import datasets
    from ganad.bench import selection

    seen = []
    real = runner.select_on_validation

    def spy(model, params, grid, split):
        seen.append(split.val)
        return real(model, params, grid, split)

    monkeypatch.setattr(runner, "select_on_validation", spy)
    (cell,) = runner.plan(["kde"], "digits", "one-class", [3], [1], selection="labelled", labelled=5)
    rec = runner.run_cell(cell)
    normals = datasets.digits("one-class", normal_class=3, random_state=1, val_anomaly_ratio=0.0).val
    (val,) = seen
    assert val.n_anomalous == 5 and (val.labels[val.y == 1] != 3).all()
    assert (val.y == 0).sum() == len(normals)  # every held-out normal is kept
    assert rec["selection"] == "labelled:5" and rec["n_val_anomalies"] == 5
    assert len(rec["selection_trials"]) == len(selection.expand_grid(rec["config"]["grid"])) == 5
    with pytest.raises(ValueError, match="validation anomalies"):  # more than the training split holds
        runner.run_cell(runner.plan(["kde"], "digits", "one-class", [3], [1], selection="labelled", labelled=5000)[0])


def _poisoned_make_split(real):
    """make_split whose validation split always holds 5 anomalies, their images NaN."""
    import numpy as np

    from ganad.data.protocols import Subset

    def make_split(*args, **kw):
        kw["val_anomalies"] = 5
        split = real(*args, **kw)
        x = split.val.x.astype(np.float32)
        x[split.val.y == 1] = np.nan
        split.val = Subset(x, split.val.y, split.val.labels)
        return split

    return make_split


def test_selection_none_never_reads_validation_anomalies(monkeypatch):
    monkeypatch.setattr(runner, "make_split", _poisoned_make_split(runner.make_split))
    rec = runner.run_cell(runner.plan(["kde"], "digits", "one-class", [0], [0])[0])
    assert rec["selection"] == "none" and rec["n_val_anomalies"] == 0 and 0.5 < rec["auroc"] <= 1
    # the same poisoned split does break the labelled regime, which reads them
    with pytest.raises(ValueError):
        runner.run_cell(runner.plan(["kde"], "digits", "one-class", [0], [0], selection="labelled", labelled=5)[0])


def test_two_regimes_of_one_cell_are_two_records(tmp_path):
    none = runner.plan(["kde"], "digits", "one-class", [0], [0])
    labelled = runner.plan(["kde"], "digits", "one-class", [0], [0], selection="labelled", labelled=5)
    assert len(_quiet(none, tmp_path)) == 1 and len(_quiet(labelled, tmp_path)) == 1
    assert _quiet(none + labelled, tmp_path) == []
    recs = ResultStore(store_path(tmp_path, "digits", "one-class")).records()
    assert sorted(r["selection"] for r in recs) == ["labelled:5", "none"]
    # a model without a grid has one regime: "labelled" has nothing to choose
    assert runner.Cell("deepsvdd", "digits", "one-class", 0, 0, selection="labelled").regime == "none"
    assert runner.Cell("kde", "digits", "one-class", 0, 0, selection="labelled", labelled=7).regime == "labelled:7"


def _old(model="kde", protocol="one-class", grid=None, n_val=1200, **extra):
    class_key = "anomalous_class" if protocol == "one-anomalous" else "normal_class"
    return {"model": model, "dataset": "fashion-mnist", "protocol": protocol, class_key: 0, "seed": 0,
            "auroc": 0.9, "auprc": 0.9, "f1": 0.5, "fit_seconds": 1.0, "score_seconds": 1.0, "device": "cpu:x",
            "git_commit": "abc", "n_val": n_val, "protocol_options": {},
            "config": {"params": {}, "grid": grid if grid is not None else {}}, **extra}


def test_old_records_get_their_read_time_regime():
    from ganad.bench.provenance import record_selection
    from ganad.bench.store import cell_key

    pca = {"n_components": [20, 40]}
    assert record_selection(_old(grid=pca)) == "labelled:600"  # one-class: as many anomalies as held-out normals
    assert record_selection(_old(grid=pca, n_val=18)) == "labelled:9"
    assert record_selection(_old(grid={"n_components": [20]})) == "none"  # one point: nothing chosen
    assert record_selection(_old(model="dcae")) == "none"
    assert record_selection(_old(protocol="one-anomalous", grid=pca, n_val=5400)) == "none"  # no val anomalies
    assert record_selection(_old(grid=pca, selection="none")) == "none"  # a stored regime wins
    # the regime is part of the cell key, read-time default included
    assert cell_key(_old(grid=pca)) != cell_key(_old(grid=pca, selection="none"))
    assert cell_key(_old(grid=pca)) == cell_key(_old(grid=pca, selection="labelled:600"))


def _section(text, title):
    """The lines of the RESULTS.md section whose heading starts with ``title``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {title}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start:end])


def test_regimes_render_in_their_own_tables(tmp_path):
    none = _old(grid={}, selection="none", normal_class=1)
    labelled = {**_old(grid={"n_components": [20, 40]}, selection="labelled:50"), "auroc": 0.8}
    informed = {**_old(model="gaae", selection="none"), "config": {"params": {"epochs": 10}, "grid": {}}}
    flagged = {**_old(model="dcae", selection="none"), "test_informed": True}
    old = _old(model="ocsvm", grid={"n_components": [20, 40]})  # read as labelled:600
    store = ResultStore(tmp_path / "r" / "fashion-mnist-one-class.jsonl")
    for r in (none, labelled, informed, flagged, old):
        store.append({**r, "peak_rss_mb": 1.0, "n_train": 1, "n_test": 1, "torch_version": "x"})
    text = render.render(tmp_path / "r")
    head = _section(text, "Unsupervised")
    semi = _section(text, "Semi-supervised")
    tested = _section(text, "Test-informed")
    assert "| **kde** | none |" in head and "GEOM" in head and "PyOD 2.1 IForest" in head
    assert "**gaae**" not in head and "**dcae**" not in head and "labelled" not in head.split("GEOM")[0]
    assert "| **kde** (n_components in {20, 40} on val) | labelled:50 |" in semi
    assert "| **ocsvm** (n_components in {20, 40} on val) | labelled:600 |" in semi and "GEOM" not in semi
    assert "**gaae** (epochs=10) | none; test-informed: epochs = 10" in tested and "**dcae**" in tested
    assert "OC-SVM, raw pixels, tuned in hindsight" in tested and "tuned in hindsight" not in head


def test_test_informed_rules_read_the_stored_config():
    from ganad.bench.provenance import record_test_informed

    def rec(model, params=None, grid=None):
        return {"model": model, "config": {"params": params or {}, "grid": grid or {}}}

    assert record_test_informed(rec("egbad", grid={"lam": [0.1, 1.0]}))
    assert not record_test_informed(rec("egbad", grid={"lam": [0.1, 0.5]}))
    assert record_test_informed(rec("gaae", {"epochs": 10})) and not record_test_informed(rec("gaae", {"epochs": 3}))
    assert record_test_informed(rec("alad", {"patience": 4, "epochs": 4}))
    assert not record_test_informed(rec("alad", {"epochs": 4}))
    assert not record_test_informed(rec("alad", {"patience": None, "validation_fraction": 0, "epochs": 4}))
    assert record_test_informed(rec("adgan", {"width": 32})) and not record_test_informed(rec("adgan", {"width": 16}))
    assert not record_test_informed(rec("kde", {"epochs": 10, "width": 32, "patience": 1}))


# ------------------------------------------------------------------ contamination and OOD cells
def test_multi_gamma_bench_makes_a_record_per_gamma(tmp_path):
    from ganad.cli import main

    res = tmp_path / "results"
    assert main(["bench", "--models", "kde", "--data", "digits", "--protocol", "contamination", "--gamma", "0", "0.1",
                 "--classes", "1", "--results", str(res), "--no-progress"]) == 0
    recs = ResultStore(store_path(res, "digits", "contamination")).records()
    assert sorted(r["gamma"] for r in recs) == [0.0, 0.1]
    for r in recs:
        assert r["protocol_options"]["gamma"] == r["gamma"] and r["selection"] == "none"
        assert 0 <= r["auroc_berg_layout"] <= 1 and r["berg_layout"]["n_normal"] == r["berg_layout"]["n_anomalous"]
        assert (r["n_train_anomalies"] == 0) == (r["gamma"] == 0)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "γ = 0 | γ = 0.1" in text and "Berg et al. section 4.1.1 layout" in text and "Drop from γ = 0" in text
    row = next(line for line in text.splitlines() if line.startswith("| **kde** | none | ") and "(1)" in line)
    assert row.count("(1)") == 2  # one class at each gamma


def test_berg_layout_auroc_is_computed_from_the_same_scores(monkeypatch):
    from ganad import metrics
    from ganad.data.protocols import berg_test_layout

    scored = []
    real = runner.metrics.evaluate
    monkeypatch.setattr(runner.metrics, "evaluate", lambda y, s, **kw: scored.append((y, s)) or real(y, s, **kw))
    rec = runner.run_cell(runner.plan(["kde"], "digits", "contamination", [2], [4], gammas=[0.05])[0])
    ((y, s),) = scored
    labels = runner.make_split("digits", "contamination", normal_class=2, gamma=0.05, random_state=4).test.labels
    idx = berg_test_layout(labels, 2, 4)
    assert len(labels) == len(y) and len(idx) == 2 * (labels == 2).sum()
    assert rec["auroc_berg_layout"] == pytest.approx(metrics.roc_auc(y[idx], s[idx]))


def test_ood_cells_record_the_other_set(tmp_path):
    from ganad.cli import main

    res = tmp_path / "results"
    assert main(["bench", "--models", "kde", "--data", "digits", "--protocol", "ood", "--other", "uniform-noise",
                 "gaussian-noise", "--train-subset", "300", "--results", str(res), "--no-progress"]) == 0
    recs = ResultStore(store_path(res, "digits", "ood")).records()
    assert sorted(r["other"] for r in recs) == ["gaussian-noise", "uniform-noise"]
    for r in recs:
        assert r["normal_class"] is None and r["n_train"] == 300 and r["protocol_options"]["train_subset"] == 300
        assert r["test_anomalies"] == round(0.2 * (r["n_test"] - r["test_anomalies"]))
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| method | selection | vs gaussian-noise | vs uniform-noise |" in text
    assert "| **kde** [train_subset=300] | none |" in text
    assert main(["bench", "--models", "kde", "--data", "digits", "--protocol", "ood", "--other", "uniform-noise",
                 "--classes", "1", "--results", str(res)]) == 2
    with pytest.raises(ValueError, match="ood protocol has none"):
        runner.plan(["kde"], "digits", "ood", [None], [0], selection="labelled", others=["uniform-noise"])


def test_adgan_rows_at_the_lr_chosen_on_labelled_anomalies_are_semi_supervised():
    from ganad.bench.provenance import record_selection

    def rec(params, **extra):
        return {"model": "adgan", "protocol": "one-class", "config": {"params": params, "grid": {}}, **extra}

    assert record_selection(rec({"lr": 5e-4})) == "labelled:150"
    assert record_selection(rec({}, selection="none")) == "labelled:150"  # new runner, default lr 5e-4
    assert record_selection(rec({})) == "none"  # old record: trained at the old default 5e-5
    assert record_selection(rec({"lr": 5e-5})) == "none"
    assert record_selection(rec({"lr": 5e-4, "lipschitz": "gp"})) == "none"


def test_ood_sets_share_one_fit_and_the_normals_are_scored_once(tmp_path):
    # The cells of several out-of-distribution sets differ only in their anomalies:
    # one fit, the in-distribution normals scored once, and every number equal to
    # that of a cell run on its own.
    cells = runner.plan(["dcae"], "digits", "ood", [None], [0], params={"dcae": {"epochs": 1}},
                        protocol_options={"train_subset": 300, "test_subset": 240},
                        others=["uniform-noise", "gaussian-noise"])
    recs = runner.run_bench(cells, tmp_path, log=lambda _: None, progress=False)
    first, second = recs
    assert not first["fit_reused"] and second["fit_reused"]
    assert first["n_scored"] == first["n_test"] and second["n_scored"] == second["test_anomalies"] == 40
    alone = runner.run_cell(cells[1])
    assert not alone["fit_reused"] and alone["n_scored"] == alone["n_test"]
    for key in ("auroc", "auroc_typical", "auprc", "threshold"):
        assert second[key] == pytest.approx(alone[key], abs=1e-12), key
    assert second["part_auroc"] == pytest.approx(alone["part_auroc"], abs=1e-12)


def test_ood_a_score_is_the_typicality_of_the_score_under_the_validation_normals():
    from ganad.datasets import make_split
    from ganad.models.typical import a_score, gaussian

    cell = runner.plan(["kde"], "digits", "ood", [None], [3], protocol_options={"train_subset": 300},
                       others=["uniform-noise"])[0]
    rec = runner.run_cell(cell)
    split = make_split("digits", "ood", other="uniform-noise", random_state=3, train_subset=300)
    det = ganad.create("kde", random_state=3).fit(split.train.x)
    mu, sigma = gaussian(det.decision_function(split.val.x))
    assert rec["typical_gaussian"]["n"] == len(split.val) > 50 and split.val.n_anomalous == 0
    assert rec["typical_gaussian"]["mu"] == pytest.approx(mu)
    want = metrics.roc_auc(split.test.y, a_score(det.decision_function(split.test.x), mu, sigma))
    assert rec["auroc_typical"] == pytest.approx(want)
    # uniform noise scores far above every normal: the two-sided score keeps it anomalous
    assert rec["auroc_typical"] > 0.9 and rec["auroc"] > 0.9


def test_plain_bench_commands_of_the_searches_match_their_stored_rows():
    # `ganad bench --models anogan` (and adgan) must plan the stored cells' sizes, not
    # the models' own defaults (hours per cell on this CPU)
    from ganad.bench.store import cell_key

    anogan = runner.plan(["anogan"], "fashion-mnist", "one-class", [0], [0])[0]
    scripted = runner.plan(["anogan"], "fashion-mnist", "one-class", [0], [0],
                           params={"anogan": {"width": 16, "epochs": 5, "search_steps": 100}})[0]
    assert cell_key(anogan.key_record()) == cell_key(scripted.key_record())
    from ganad.bench.provenance import record_selection

    adgan = runner.plan(["adgan"], "fashion-mnist", "one-class", [0], [0], protocol_options={"test_subset": 5000})[0]
    assert {k: adgan.params[k] for k in ("width", "epochs", "n_seed", "threshold_images")} == {
        "width": 16, "epochs": 60, "n_seed": 8, "threshold_images": 500}
    # at the default lr, chosen on labelled validation anomalies: read as semi-supervised, not as none
    assert "lr" not in adgan.params and record_selection(adgan.key_record()) == "labelled:150"


def test_records_store_the_updates_per_network_and_the_table_shows_them(tmp_path):
    params = {"dcae": {"epochs": 2, "batch_size": 16, "calibration_fraction": 0.0, "width": 4}}
    cells = runner.plan(["dcae", "kde"], "digits", "one-class", [0], [0], params=params)
    runner.run_bench(cells, tmp_path / "results", log=lambda _: None, progress=False)
    recs = {r["model"]: r for r in ResultStore(store_path(tmp_path / "results", "digits", "one-class")).records()}
    steps = 2 * (recs["dcae"]["n_train"] // 16)  # epochs x whole batches of the training split
    assert recs["dcae"]["updates"] == {"opt": steps} and recs["kde"]["updates"] is None
    text = render.render(tmp_path / "results")
    row = next(line for line in text.splitlines() if line.startswith("| **dcae**"))
    assert f"| opt {steps} |" in row


def test_other_record_files_beside_the_stores_are_not_read_as_cells(tmp_path):
    """speed, distributed-speed, search-speed and kernel figures live in results/ too."""
    runner.run_bench(runner.plan(["kde"], "digits", "one-class", [0], [0]), tmp_path / "results",
                     log=lambda _: None, progress=False)
    for name in ("distributed-speed.jsonl", "search-speed.jsonl", "conv-kernels.jsonl"):
        (tmp_path / "results" / name).write_text('{"model": "ganomaly", "images_per_cpu_second": 0.1}\n')
    text = render.render(tmp_path / "results")
    assert "| **kde**" in text


# ------------------------------------------------------------------ one-class and contamination gamma 0: one experiment
def _same_split(dataset, klass, seed):
    import numpy as np

    one = runner.make_split(dataset, "one-class", normal_class=klass, val_anomalies=0, random_state=seed)
    cont = runner.make_split(dataset, "contamination", normal_class=klass, gamma=0.0, val_anomalies=0,
                             random_state=seed)
    for part in ("train", "val", "test"):
        a, b = getattr(one, part), getattr(cont, part)
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and np.array_equal(a.labels, b.labels), part


@pytest.mark.parametrize("seed", [0, 3])
def test_unsupervised_one_class_split_is_the_contamination_split_at_gamma_0(seed):
    for klass in range(10):
        _same_split("digits", klass, seed)


@needs_fmnist
def test_fashion_mnist_one_class_split_is_the_contamination_split_at_gamma_0():
    for klass in (0, 9):
        _same_split("fashion-mnist", klass, 1)


def test_one_class_cell_is_recorded_from_its_stored_contamination_twin(tmp_path, monkeypatch):
    from ganad.bench import twins

    fitted_dir, twin_dir = tmp_path / "fitted", tmp_path / "twin"
    one_class = runner.plan(["kde"], "digits", "one-class", [3], [1])
    (fitted,) = _quiet(one_class, fitted_dir)
    _quiet(runner.plan(["kde"], "digits", "contamination", [3], [1], gammas=[0.0, 0.1]), twin_dir)

    def no_fit(*a, **k):
        raise AssertionError("the twin is stored: nothing should be fitted")

    monkeypatch.setattr(runner, "fit_declared", no_fit)
    (derived,) = _quiet(one_class, twin_dir)
    assert derived["auroc"] == fitted["auroc"] and derived["auprc"] == fitted["auprc"]
    assert derived["protocol"] == "one-class" and derived["protocol_options"] == {}
    assert derived["same_fit_as"]["protocol_options"] == {"gamma": 0.0}
    assert not set(twins.CONTAMINATION_KEYS) & set(derived)
    assert ResultStore(store_path(twin_dir, "digits", "one-class")).has(one_class[0].key_record())
    assert _quiet(one_class, twin_dir) == []  # stored now: not derived twice
    assert "1 of 1 cells shared with contamination γ = 0" in render.render(twin_dir)
    # a regime that reads validation anomalies, or another class, has no twin: it is fitted
    with pytest.raises(AssertionError, match="nothing should be fitted"):
        _quiet(runner.plan(["kde"], "digits", "one-class", [4], [1]), twin_dir)
    assert twins.contamination_twin(
        runner.plan(["kde"], "digits", "one-class", [3], [1], selection="labelled", labelled=5)[0].key_record()) is None


def _make_stale(path):
    recs = ResultStore(path).records()
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "updates"}) + "\n" for r in recs))


def test_refresh_reruns_stale_records_and_the_new_record_supersedes_the_old(tmp_path):
    from ganad.bench.store import all_records, is_current

    cells = runner.plan(["kde"], "digits", "one-class", [0, 1], [0])
    _quiet(cells, tmp_path)
    path = store_path(tmp_path, "digits", "one-class")
    _make_stale(path)
    assert _quiet(cells, tmp_path) == []  # stored, if stale: skipped without --refresh
    new = runner.run_bench(cells, tmp_path, log=lambda _: None, progress=False, refresh=True)
    assert len(new) == 2 and all(is_current(r) for r in new)
    assert len(ResultStore(path).records()) == 4  # append-only: the stale records stay in the file
    read = list(all_records(tmp_path))
    assert len(read) == 2 and all(is_current(r) for r in read)
    assert runner.run_bench(cells, tmp_path, log=lambda _: None, progress=False, refresh=True) == []
    text = render.render(tmp_path)
    assert "Stored cells: 2." in text and "n/r" not in text


def test_refresh_does_not_derive_from_a_stale_twin(tmp_path):
    _quiet(runner.plan(["kde"], "digits", "contamination", [2], [0], gammas=[0.0]), tmp_path)
    _make_stale(store_path(tmp_path, "digits", "contamination"))
    (rec,) = runner.run_bench(runner.plan(["kde"], "digits", "one-class", [2], [0]), tmp_path,
                              log=lambda _: None, progress=False, refresh=True)
    assert "same_fit_as" not in rec and "updates" in rec


def test_updates_cell_says_when_only_some_cells_counted_their_updates():
    assert render.updates_cell([{"updates": {"gan/g": 3}}, {"updates": {"gan/g": 5}}]) == "gan/g 4"
    assert render.updates_cell([{"updates": {"opt_g": 3}}, {}]) == "g 3 (1 of 2 cells)"
    assert render.updates_cell([{}, {}]) == "n/r" and render.updates_cell([{"updates": None}]) == ""
