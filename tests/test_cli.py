"""The ganad command: fit, score, bench, demo; one-line errors with exit code 2."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganad.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "ganad.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("cmd", ["fit", "score", "bench", "demo"])
def test_help(cmd):
    r = run(cmd, "--help")
    assert r.returncode == 0 and "usage: ganad" in r.stdout


def test_bad_input_is_one_line_exit_2():
    r = run("fit", "kde", "--data", "digits", "--normal", "12")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "normal_class" in r.stderr
    r = run("fit", "nosuchmodel", "--data", "digits")
    assert r.returncode == 2 and "unknown model" in r.stderr


def test_fit_then_score_a_folder(tmp_path, digits_arrays):
    out = tmp_path / "run"
    assert main(["fit", "kde", "--data", "digits", "--normal", "1", "--out", str(out), "--param", "n_components=20"]) == 0
    assert (out / "model.pt").exists() and (out / "report" / "roc.png").exists()
    # a folder of PNGs: nine ones and one zero; the zero must rank first
    x_tr, y_tr, _, _ = digits_arrays
    folder = tmp_path / "imgs"
    folder.mkdir()
    picks = list(np.flatnonzero(y_tr == 1)[-9:]) + [int(np.flatnonzero(y_tr == 0)[0])]
    for i, idx in enumerate(picks):
        Image.fromarray(x_tr[idx]).save(folder / f"img{i:02d}_{y_tr[idx]}.png")
    r = run("score", str(out), "--images", str(folder), "--top", "3", "--out", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0].split()
    assert first[0] == "1" and first[2].endswith("_0.png")
    assert (tmp_path / "rep" / "index.html").exists()


def test_score_missing_folder(tmp_path):
    r = run("score", str(tmp_path / "nothing"), "--images", str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_bench_cli(tmp_path):
    res = tmp_path / "results"
    args = ["bench", "--models", "ocsvm", "--data", "digits", "--classes", "2", "--results", str(res), "--no-progress"]
    assert main(args) == 0
    assert (res / "digits-one-class.jsonl").exists() and (tmp_path / "RESULTS.md").exists()
