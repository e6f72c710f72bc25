"""``ganad models``: every model with a summary; ``ganad models NAME``: parameters, defaults, meaning."""

import subprocess
import sys

import pytest

import ganad
from ganad.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "ganad.cli", *args], capture_output=True, text=True, timeout=300)


def test_models_lists_every_model(capsys):
    from ganad import describe

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0] for line in lines if line and not line.startswith("`")}
    assert listed == set(ganad.available_models())
    summaries = dict(describe.model_summaries())
    assert all(summaries[n] for n in ganad.available_models())  # a one-line description each
    assert summaries["anogan"].startswith("AnoGAN")


def test_models_name_shows_params_defaults_and_paper(capsys):
    assert main(["models", "ganomaly"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    assert rows["w_con"][0] == "50.0"
    assert rows["epochs"][0] == "15" and "training epochs" in " ".join(rows["epochs"])
    assert "Akcay" in out  # the paper, from the module docstring
    assert set(rows) == set(ganad.registry.get_class("ganomaly")._param_names())


def test_describe_params_reads_docs_and_real_defaults():
    from ganad import describe

    params = {p["name"]: p for p in describe.describe_params("deepsvdd")}
    assert params["epochs"]["default"] == 50 and params["batch_size"]["default"] == 200  # set via **common
    assert "Soft-boundary trade-off" in params["nu"]["doc"]
    assert "share of anomalies" in params["contamination"]["doc"]  # BaseDetector's docstring
    ano = {p["name"]: p for p in describe.describe_params("anogan")}
    assert ano["search_steps"]["default"] == 500 and "Gamma" in ano["search_steps"]["doc"]
    assert ano["nz"]["doc"] == ano["width"]["doc"] != ""  # "nz, width : ..." documents both
    g = {p["name"]: p for p in describe.describe_params("ganomaly")}
    assert g["w_con"]["default"] == 50.0 and isinstance(g["w_con"]["doc"], str)


def test_models_unknown_name_is_one_line_exit_2():
    r = run("models", "nosuchmodel")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "unknown model" in r.stderr


def test_fit_help_lists_model_names(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for name in ganad.available_models():
        assert name in out
    assert "ganad models NAME" in out
