"""One declared parameter table per model: every parameter has a meaning and a constraint,
the shared hyper-parameters are declared once, and docs/parameters.md is the generated text."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import ganad
from ganad import describe
from ganad.cli import main
from ganad.params import SHARED, SHARED_DOCS, merged_constraints
from ganad.registry import get_class

DOC = Path(__file__).resolve().parents[1] / "docs" / "parameters.md"
REGENERATE = "make docs  (or: .venv/bin/python -m ganad.describe --markdown > docs/parameters.md)"


@pytest.mark.parametrize("name", ganad.available_models())
def test_every_parameter_has_a_meaning_and_a_constraint(name):
    rows = describe.describe_params(name)
    assert [r["name"] for r in rows] == get_class(name)._param_names()
    undocumented = [r["name"] for r in rows if not r["doc"].strip()]
    unconstrained = [r["name"] for r in rows if not r["allowed"].strip()]
    assert not undocumented, f"{name}: no meaning for {undocumented} (document them in the class docstring's Parameters)"
    assert not unconstrained, f"{name}: no declared constraint for {unconstrained} (add them to _parameter_constraints)"
    assert set(merged_constraints(get_class(name))) >= {r["name"] for r in rows}


@pytest.mark.parametrize("name", ganad.available_models())
def test_the_defaults_satisfy_the_declared_constraints(name):
    get_class(name)()._check_params()


def test_shared_hyper_parameters_are_declared_once_with_a_meaning():
    assert set(SHARED) == set(SHARED_DOCS) >= {"nz", "width", "lr", "beta1", "beta2", "epochs", "batch_size",
                                               "device", "precision"}
    assert all(SHARED[k] and SHARED_DOCS[k].strip() for k in SHARED)
    # a model whose docstrings do not document a shared parameter says what SHARED_DOCS says
    rows = {r["name"]: r for r in describe.describe_params("ganomaly")}
    for key in ("epochs", "batch_size", "device", "precision"):
        assert rows[key]["doc"] == SHARED_DOCS[key]
    assert rows["precision"]["allowed"] == "one of 'fp32', 'bf16'"
    # ... and its own docstring wins where it documents one
    fanogan = {r["name"]: r for r in describe.describe_params("fanogan")}
    assert fanogan["epochs"]["doc"] == "epochs of the GAN phase (phase 1)."


def test_markdown_has_a_table_per_model():
    text = describe.markdown()
    for name in ganad.available_models():
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert describe.model_summary(name) in section.replace("\\|", "|")
        assert "| parameter | default | allowed | meaning |" in section
        rows = [line for line in section.splitlines() if line.startswith("| `")]
        assert [line.split("`")[1] for line in rows] == get_class(name)._param_names()
        assert all(len(re.findall(r"(?<!\\)\|", line)) == 5 for line in rows)  # 4 cells, pipes escaped
    assert "| `w_con` | `50.0` | a number >= 0 | weight of L_con" in text


def test_docs_parameters_md_is_the_generated_text():
    assert DOC.exists(), f"docs/parameters.md is missing; generate it with: {REGENERATE}"
    assert DOC.read_text(encoding="utf-8") == describe.markdown(), (
        f"docs/parameters.md is stale (a model's parameters or docstrings changed); regenerate it with: {REGENERATE}"
    )


def test_markdown_entry_points_print_it(capsys):
    assert main(["models", "--markdown"]) == 0
    assert capsys.readouterr().out == describe.markdown()
    assert main(["models", "ganomaly", "--markdown"]) == 2
    assert "takes no NAME" in capsys.readouterr().err
    r = subprocess.run([sys.executable, "-m", "ganad.describe", "--markdown"], capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == describe.markdown()
