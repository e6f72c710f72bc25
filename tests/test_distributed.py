"""Data-parallel training under torchrun (gloo, 2 processes on the CPU) against one process.

GANomaly, EGBAD, f-AnoGAN (both phases) and Deep SVDD (pretraining + soft-boundary
SVDD) are fitted by tests/dist_worker.py with the same global batch (32) and seed
in 2 processes (``sync_batchnorm=True``) and in this process.  The tolerance:

* every weight and buffer within ``ATOL`` = 1e-6 of the one-process run
  (measured: GANomaly 7e-9, Deep SVDD 2.4e-7, EGBAD and f-AnoGAN's GAN < 1e-6),
  except the biases that a BatchNorm right after them cancels (their gradient
  is zero up to rounding, which Adam normalises into steps of ~lr either way:
  a random walk in both runs) and that BatchNorm's running mean, within
  ``2 lr steps`` (measured EGBAD 5.5e-5, f-AnoGAN 2.4e-4);
* f-AnoGAN's encoder (phase 2) trains through the eval-mode generator, whose
  running mean holds that walk: within 1e-3 (measured 3.2e-4, max |w| 0.15-0.4),
  scores within 1e-3 relative (measured 3.7e-4); the others' scores within 1e-5
  relative (measured <= 3e-7).

Scores of one model are exactly equal however many processes score them
(sharded by whole batches, gathered in input order).  A rank killed with
SIGKILL ends the run with a clear error within seconds, and a rerun resumes to
the weights of an uninterrupted run, bit for bit.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

dist = pytest.importorskip("torch.distributed")
pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed with gloo is not available"
)

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("dist_worker", os.path.join(HERE, "dist_worker.py"))
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

ATOL = 1e-6
KILL_BOUND_S = 30.0  # a dead rank must end the run this soon (measured: ~2 s)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """The 2-process run of every model, and the uninterrupted `ganad fit` run of the kill test."""
    out = tmp_path_factory.mktemp("two")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           os.path.join(HERE, "dist_worker.py"), str(out), "--cli"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env())
    assert r.returncode == 0, r.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        worker.run(str(out), list(worker.CONFIGS))
    finally:
        torch.set_num_threads(threads)
    return out


def _load(folder, name, rank=0):
    return torch.load(os.path.join(folder, f"{name}.rank{rank}.pt"), weights_only=False)


def _bn_cancelled(name: str, state: dict) -> set[str]:
    """Biases whose output goes straight into a BatchNorm (zero gradient up to rounding)
    and that BatchNorm's running mean."""
    out = set()
    for k in state:
        m = re.fullmatch(r"(.*)\.(\d+)\.bias", k)
        if m and f"{m[1]}.{int(m[2]) + 1}.running_mean" in state:  # nn.Sequential: Conv/Linear, BatchNorm
            out |= {k, f"{m[1]}.{int(m[2]) + 1}.running_mean"}
    if name == "fanogan":  # G's last residual block (conv2 + shortcut) feeds G's final BatchNorm
        last = max(int(k.split(".")[2]) for k in state if k.startswith("g.blocks."))
        out |= {f"g.blocks.{last}.conv2.bias", f"g.blocks.{last}.shortcut.bias", "g.norm.running_mean"}
    return out


def _steps(name: str) -> int:
    det = worker.make(name)
    n_fit = len(det._calibration_split(worker.data()[0])[0])
    return det.epochs * (n_fit // det.batch_size)


@pytest.mark.parametrize("name", list(worker.CONFIGS))
def test_two_processes_train_like_one_at_the_same_global_batch(name, one, two):
    ref, r0, r1 = _load(one, name), _load(two, name), _load(two, name, 1)
    assert r0["world"] == 2 and ref["world"] == 1
    for k in r0["state"]:  # the processes hold the same weights, bit for bit
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    cancelled = _bn_cancelled(name, ref["state"])
    walk = 2 * worker.make(name).lr * _steps(name)
    for k, v in ref["state"].items():
        got = r0["state"][k]
        if not v.is_floating_point():
            assert torch.equal(v, got), k
            continue
        diff = (v - got).abs().max().item()
        if name == "fanogan" and k.startswith("e."):
            assert diff <= 1e-3, (k, diff)
        elif k in cancelled:
            assert diff <= walk, (k, diff, walk)
        else:
            assert diff <= ATOL, (k, diff)
    for k, v in ref["losses"].items():  # the history holds the global batch's losses
        np.testing.assert_allclose(r0["losses"][k], v, rtol=1e-3 if name == "fanogan" else 1e-5, atol=1e-7)
    rtol = 1e-3 if name == "fanogan" else 1e-5
    np.testing.assert_allclose(r0["scores"], ref["scores"], rtol=rtol, atol=rtol * np.abs(ref["scores"]).max())
    # sharded scoring gathers, in input order, exactly what one process computes
    assert np.array_equal(r0["scores"], r0["scores_alone"]) and np.array_equal(r0["scores"], r1["scores"])


@pytest.mark.parametrize("name", list(worker.CONFIGS))
def test_decision_function_under_torchrun_equals_one_process(name, two):
    import ganad

    x = worker.data()[1]
    assert len(x) > 10 * 256  # many scoring batches, split over the processes
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        scores = ganad.load(os.path.join(two, f"{name}.model.pt")).decision_function(x)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(scores, _load(two, name)["scores"])


def _fit_cli(out, *, env=None):
    cmd = [sys.executable, "-m", "ganad", *worker.CLI_ARGS, "--nproc", "2", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env(**(env or {})))
    return r, time.time()


def test_a_killed_rank_ends_the_run_with_a_clear_error_and_a_rerun_resumes(two, tmp_path):
    out = tmp_path / "run"
    r, ended = _fit_cli(out, env={"GANAD_FAULT": "1:2"})  # rank 1: SIGKILL after epoch 2 of 4
    assert r.returncode == 1, r.stderr[-3000:]
    killed = float(re.search(r"GANAD_FAULT: rank 1 kills itself .* at t=([\d.]+)", r.stderr)[1])
    assert ended - killed < KILL_BOUND_S
    assert "ganad fit: error: the run with 2 processes failed" in r.stderr
    assert "rerun the same command to resume" in r.stderr
    assert not (out / "model.pt").exists() and not (out / ".lock").exists()
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 2

    r, _ = _fit_cli(out)  # the same command again: resumes after epoch 2
    assert r.returncode == 0, r.stderr[-3000:]
    assert "with 2 processes" in r.stdout
    resumed = torch.load(out / "model.pt", weights_only=True)["state"]["nets"]
    straight = torch.load(two / "cli" / "model.pt", weights_only=True)["state"]["nets"]
    assert resumed.keys() == straight.keys()
    for k in straight:
        assert torch.equal(resumed[k], straight[k]), k


def test_nproc_must_be_positive():
    from ganad.cli import main

    assert main(["fit", "kde", "--data", "digits", "--nproc", "0"]) == 2
