"""A checkpoint resumes only the run that wrote it; one `ganad fit` per run folder; no temp files left."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import ganad
from ganad import runlock, train
from ganad.cli import main
from ganad.run_identity import data_fingerprint, differences, run_key

TINY = dict(epochs=2, width=8, nz=8, batch_size=32, device="cpu", random_state=0)
FAST_CLI = ["--param", "width=8", "--param", "nz=8", "--param", "batch_size=32", "--param", "device=cpu"]


def _digit(normal: int, n: int = 120) -> np.ndarray:
    """``n`` images of one digit of scikit-learn's 8x8 digits as uint8 (same size for every digit)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * 255 / 16).round().astype(np.uint8)
    return x[np.flatnonzero(d.target == normal)[:n]]


def _weights(det) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in det.nets_.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def _fit_args(out, normal: int, *extra: str) -> list[str]:
    return ["fit", "dcae", "--data", "digits", "--normal", str(normal), "--epochs", "1", "--out", str(out),
            *FAST_CLI, *extra]


# --------------------------------------------------------------- fingerprint
def test_fingerprint_names_what_differs():
    x0, x1 = _digit(0), _digit(1)
    assert data_fingerprint(x0) == data_fingerprint(x0.copy())
    det = ganad.create("dcae", **TINY)
    key = run_key(det, x0)
    assert "epochs" not in key["params"] and "checkpoint" not in key["params"] and "device" not in key["params"]
    assert "score" not in key["params"]  # a score-only parameter
    other = run_key(ganad.create("dcae", **{**TINY, "lr": 2e-3, "random_state": 1}), x1)
    diffs = differences(key, other)
    assert diffs[0].startswith("training data differs (hash ")
    assert "random_state 0 != 1" in diffs and "lr 0.001 != 0.002" in diffs


def test_large_arrays_are_fingerprinted_on_a_sample(monkeypatch):
    from ganad import run_identity

    monkeypatch.setattr(run_identity, "FULL_HASH_BYTES", 1000)
    monkeypatch.setattr(run_identity, "SAMPLE_BYTES", 100)
    x = np.zeros((100, 64), dtype=np.uint8)
    fp = data_fingerprint(x)
    assert fp["sampled"] and fp != data_fingerprint(x + 1) and fp != data_fingerprint(x.reshape(200, 32))


# ----------------------------------------------------------- detector level
def test_finished_checkpoint_refuses_other_data_and_restart_trains(tmp_path):
    ck = str(tmp_path / "ck.pt")
    first = _weights(ganad.create("dcae", **TINY, checkpoint=ck).fit(_digit(0)))
    with pytest.raises(ValueError, match="training data differs") as err:
        ganad.create("dcae", **TINY, checkpoint=ck).fit(_digit(1))  # same size, other class
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{ck} was written by another run") and "resume=False" in msg
    det = ganad.create("dcae", **TINY, checkpoint=ck, resume=False).fit(_digit(1))
    assert det.history_.resumed_from == 0 and not _same(first, _weights(det))
    again = ganad.create("dcae", **TINY, checkpoint=ck).fit(_digit(1))  # now the checkpoint is this run's
    assert again.history_.resumed_from == 2 and _same(_weights(det), _weights(again))


def test_other_parameters_or_seed_are_refused_score_params_are_not(tmp_path):
    ck, x = str(tmp_path / "ck.pt"), _digit(0)
    ganad.create("dcae", **TINY, checkpoint=ck).fit(x)
    with pytest.raises(ValueError, match=r"lr 0\.001 != 0\.002"):
        ganad.create("dcae", **{**TINY, "lr": 2e-3}, checkpoint=ck).fit(x)
    with pytest.raises(ValueError, match="random_state 0 != 1"):
        ganad.create("dcae", **{**TINY, "random_state": 1}, checkpoint=ck).fit(x)
    det = ganad.create("dcae", **TINY, checkpoint=ck, score="standardized", verbose=False).fit(x)
    assert det.history_.resumed_from == 2  # scoring and verbosity are not part of the run


def test_fewer_epochs_than_done_are_refused_more_extend_the_run(tmp_path):
    ck, x = str(tmp_path / "ck.pt"), _digit(0)
    ganad.create("dcae", **TINY, checkpoint=ck).fit(x)  # finished, 2 epochs
    with pytest.raises(ValueError, match=r"epochs 2 != 1 \(2 already complete\)"):
        ganad.create("dcae", **{**TINY, "epochs": 1}, checkpoint=ck).fit(x)
    longer = ganad.create("dcae", **{**TINY, "epochs": 3}, checkpoint=ck).fit(x)
    assert longer.history_.resumed_from == 2 and longer.history_.epochs_run == 3
    straight = ganad.create("dcae", **{**TINY, "epochs": 3}).fit(x)
    assert _same(_weights(straight), _weights(longer))


def test_interrupted_run_resumes_and_says_so(tmp_path, monkeypatch, capsys):
    ck, x = str(tmp_path / "ck.pt"), _digit(0)
    kw = {**TINY, "epochs": 3}
    straight = _weights(ganad.create("dcae", **kw).fit(x))
    real_save = train._save_checkpoint

    def save_then_die(path, payload):
        real_save(path, payload)
        if payload["epoch"] == 1:
            raise KeyboardInterrupt  # killed right after epoch 1's checkpoint

    monkeypatch.setattr(train, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        ganad.create("dcae", **kw, checkpoint=ck).fit(x)
    monkeypatch.setattr(train, "_save_checkpoint", real_save)
    capsys.readouterr()
    det = ganad.create("dcae", **kw, checkpoint=ck, verbose=True).fit(x)
    assert "resumed from epoch 1 of 3" in capsys.readouterr().err
    assert det.history_.resumed_from == 1 and _same(straight, _weights(det))


def test_saved_model_has_no_checkpoint_and_refits_fresh(tmp_path):
    ck, path = str(tmp_path / "ck.pt"), tmp_path / "model.pt"
    ganad.create("dcae", **TINY, checkpoint=ck).fit(_digit(0)).save(path)
    raw = torch.load(path, weights_only=True)
    config = json.loads(raw["config"])
    assert "checkpoint" not in config and "resume" not in config
    back = ganad.load(path)
    assert back.get_params()["checkpoint"] is None
    before = _weights(back)
    back.fit(_digit(1))
    assert back.history_.resumed_from == 0 and not _same(before, _weights(back))
    # a model file written before: its config still names the checkpoint
    raw["config"] = json.dumps({**config, "checkpoint": ck})
    torch.save(raw, tmp_path / "old.pt")
    assert ganad.load(tmp_path / "old.pt").get_params()["checkpoint"] is None


# -------------------------------------------------------- multi-phase models
def test_fanogan_phases_are_fingerprinted(tmp_path):
    ck = str(tmp_path / "f.pt")
    kw = dict(width=4, nz=4, batch_size=16, epochs=1, encoder_epochs=1, device="cpu", random_state=0)
    x0, x1 = _digit(0, 32), _digit(1, 32)
    ganad.create("fanogan", **kw, checkpoint=ck).fit(x0)
    with pytest.raises(ValueError, match="training data differs"):
        ganad.create("fanogan", **kw, checkpoint=ck).fit(x1)
    # a longer GAN phase extends .gan, but the encoder trained on the shorter GAN is not reused
    with pytest.raises(ValueError, match=r"f\.pt\.enc was written by another run: epochs 1 != 2"):
        ganad.create("fanogan", **{**kw, "epochs": 2}, checkpoint=ck).fit(x0)
    det = ganad.create("fanogan", **kw, checkpoint=ck, resume=False).fit(x1)
    assert det.gan_history_.resumed_from == 0 and det.history_.resumed_from == 0


def test_deepsvdd_phases_are_fingerprinted(tmp_path):
    ck = str(tmp_path / "s.pt")
    kw = dict(epochs=1, pretrain_epochs=1, batch_size=32, lr_milestones=(), pretrain_lr_milestones=(),
              device="cpu", random_state=0)
    x = _digit(0, 64)
    ganad.create("deepsvdd", **kw, checkpoint=ck).fit(x)
    with pytest.raises(ValueError, match="training data differs"):
        ganad.create("deepsvdd", **kw, checkpoint=ck).fit(_digit(1, 64))
    longer = ganad.create("deepsvdd", **{**kw, "epochs": 2}, checkpoint=ck).fit(x)  # SVDD phase extended
    assert longer.pretrain_history_.resumed_from == 1 and longer.history_.resumed_from == 1
    # longer pretraining extends .pretrain, but the SVDD net trained after the shorter one is not reused
    with pytest.raises(ValueError, match=r"s\.pt was written by another run: pretrain_epochs 1 != 2"):
        ganad.create("deepsvdd", **{**kw, "epochs": 2, "pretrain_epochs": 2}, checkpoint=ck).fit(x)


# ------------------------------------------------------------------- the CLI
def test_cli_refuses_other_data_in_one_out_and_restart_trains(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_fit_args(out, 0)) == 0
    capsys.readouterr()
    assert main(_fit_args(out, 0)) == 0  # the same command again: the finished run is picked up
    assert "resumed from epoch 1 of 1" in capsys.readouterr().err
    assert main(_fit_args(out, 1)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ganad fit: error: ")
    assert "was written by another run: training data differs" in err and "--restart" in err
    assert main(_fit_args(out, 1, "--restart")) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["params"]["resume"] is False and ganad.load(out / "model.pt").get_params()["checkpoint"] is None
    assert not (out / runlock.LOCK_NAME).exists()


def test_cli_refuses_a_locked_out_and_takes_over_a_stale_lock(tmp_path, capsys):
    out = tmp_path / "run"
    lock = runlock.acquire(out)  # held by this (live) process
    try:
        assert main(_fit_args(out, 0)) == 2
    finally:
        lock.release()
    err = capsys.readouterr().err.strip()
    assert err == (f"ganad fit: error: {out}/ is in use by process {os.getpid()} (another `ganad fit`); "
                   f"wait for it or use another --out")
    assert not (out / runlock.LOCK_NAME).exists() and not (out / "checkpoint.pt").exists()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runlock.acquire(out, pid=dead.pid)  # left behind by a killed `ganad fit`
    assert runlock.holder(out) is None
    assert main(_fit_args(out, 0)) == 0
    assert not (out / runlock.LOCK_NAME).exists()
    assert main(_fit_args(out, 0, "--param", "width=0")) == 2  # released on errors too
    assert not (out / runlock.LOCK_NAME).exists()


def test_run_lock_is_exclusive():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        with runlock.RunLock(d):
            assert runlock.holder(d) == os.getpid()
            with pytest.raises(runlock.RunInUseError, match=f"in use by process {os.getpid()}"):
                runlock.acquire(d)
        assert runlock.holder(d) is None
        runlock.acquire(d).release()


# ---------------------------------------------------------------- temp files
def test_failed_saves_leave_no_temp_files(tmp_path, monkeypatch):
    det = ganad.create("dcae", **{**TINY, "epochs": 1}).fit(_digit(0))
    names = []

    def half_written(obj, f, *args, **kwargs):  # writes part of the file, then the disk is full
        if isinstance(f, (str, os.PathLike)):
            names.append(os.fspath(f))
            with open(f, "wb") as fh:
                fh.write(b"partial")
        else:
            names.append(f.name)
            f.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", half_written)
    folder = tmp_path / "m"
    with pytest.raises(OSError):
        det.save(folder / "model.pt")
    with pytest.raises(OSError):
        ganad.create("dcae", **{**TINY, "epochs": 1}, checkpoint=str(folder / "ck.pt")).fit(_digit(0))
    assert len(names) == 2 and all(f".{os.getpid()}.tmp" in n for n in names)  # each process its own
    assert sorted(os.listdir(folder)) == []
