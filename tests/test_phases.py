"""Declared training phases (TorchDetector._run_phases): order, the step's epoch, the phase
val_loss is asked about, frozen modules, and resume of a run killed in its second phase."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from torch import nn

from ganad.models.torch_base import Phase, TorchDetector
from ganad.train import StepIndex, alternating, fit_loop, load_checkpoint

torch.set_num_threads(1)
DATA = np.random.RandomState(0).rand(40, 4).astype(np.float32)


class TwoPhase(TorchDetector):
    """Phase "first" trains net a (noise and dropout draw from the RNGs), phase "" trains
    net b on a's output with a frozen; records every call the engine makes."""

    input_kind = "tabular"
    checkpoint_phases = (("first", "epochs"), ("", "second_epochs"))

    def __init__(self, second_epochs: int = 3, **common):
        common.setdefault("batch_size", 8)
        common.setdefault("device", "cpu")
        common.setdefault("calibration_fraction", 0.0)
        super().__init__(**common)
        self.second_epochs = second_epochs

    pause = 0.0  # seconds per step of the second phase (so that a test can kill it there)
    fail_at: int | None = None  # the second phase raises at the start of this epoch

    def _build(self, input_shape):
        d = input_shape[0]
        self.nets_ = nn.ModuleDict({"a": nn.Sequential(nn.Linear(d, 8), nn.Dropout(0.2), nn.Linear(8, d)),
                                    "b": nn.Linear(d, 1)})
        self.calls: list[tuple] = []

    def _train(self, x):
        a, b = self.nets_["a"], self.nets_["b"]
        opt_a, opt_b = torch.optim.Adam(a.parameters(), 1e-2), torch.optim.Adam(b.parameters(), 1e-2)

        def first(xb, t):
            self.calls.append(("first", t.epoch, t.index, int(t)))
            loss = (a(xb + 0.1 * torch.randn_like(xb)) - xb).pow(2).mean()
            opt_a.zero_grad()
            loss.backward()
            opt_a.step()
            return {"a": loss}

        def second(xb, t):
            if t.epoch == self.fail_at:
                raise KeyboardInterrupt("stopped in the second phase")
            time.sleep(self.pause)
            self.calls.append(("second", t.epoch, t.index, int(t), any(p.requires_grad for p in a.parameters())))
            loss = (b(a(xb)) - 1).pow(2).mean()
            opt_b.zero_grad()
            loss.backward()
            opt_b.step()
            return {"b": loss}

        def make(name, step):
            def make_step():
                self.calls.append(("make", name))
                return step
            return make_step

        self._run_phases([Phase("first", self.epochs, make("first", first), {"opt_a": opt_a}),
                          Phase("", self.second_epochs, make("second", second), {"opt_b": opt_b}, frozen=(a,))], x)

    def _val_loss(self, x_val, phase=None):
        self.calls.append(("val", phase.name))
        return float((self.nets_["a"](torch.from_numpy(x_val)) - torch.from_numpy(x_val)).pow(2).mean())

    def _score_batch(self, batch):
        return {"score": self.nets_["b"](self.nets_["a"](batch)).flatten()}


def test_phases_run_in_order_with_the_epoch_and_their_own_validation():
    det = TwoPhase(epochs=2, second_epochs=3, validation_fraction=0.2).fit(DATA)  # 32 fitted: 4 steps an epoch
    calls = det.calls
    assert calls[0] == ("make", "first") and calls.index(("make", "second")) == 2 * (4 + 1) + 1
    first = [c for c in calls if c[0] == "first"]
    second = [c for c in calls if c[0] == "second"]
    assert [c[1:] for c in first] == [(e, i, 4 * e + i) for e in range(2) for i in range(4)]
    assert [c[1:4] for c in second] == [(e, i, 4 * e + i) for e in range(3) for i in range(4)]
    # the engine tells val_loss its phase, after each epoch of it
    vals = [c[1] for c in calls if c[0] == "val"]
    assert vals == ["first"] * 2 + [""] * 3
    assert [c[0] for c in calls[1:6]] == ["first"] * 4 + ["val"]
    # a frozen module needs no gradient during the phase, and gets it back afterwards
    assert not any(c[4] for c in second)
    assert all(p.requires_grad for p in det.nets_.parameters())
    assert det.history_.epochs_run == 3 and len(det.history_.val_losses) == 3


def test_a_finished_phase_is_skipped_on_resume_and_the_next_resumes_at_its_epoch(tmp_path):
    ck = str(tmp_path / "ck.pt")
    kw = dict(epochs=2, second_epochs=4, random_state=3)
    ref = TwoPhase(**kw).fit(DATA)
    stopped = TwoPhase(**kw, checkpoint=ck)
    stopped.fail_at = 2
    with pytest.raises(KeyboardInterrupt):
        stopped.fit(DATA)
    assert load_checkpoint(ck + ".first")["finished"] and load_checkpoint(ck)["epoch"] == 2
    det = TwoPhase(**kw, checkpoint=ck).fit(DATA)
    assert not [c for c in det.calls if c[0] == "first"]  # phase 1 returned at once with its weights
    assert [c[1] for c in det.calls if c[0] == "second"] == [2] * 5 + [3] * 5  # 40 samples: 5 steps an epoch
    assert [c for c in det.calls if c[0] == "make"] == [("make", "first"), ("make", "second")]
    for k, v in ref.nets_.state_dict().items():
        assert torch.equal(v, det.nets_.state_dict()[k]), k


def test_a_phase_must_be_declared_in_checkpoint_phases():
    class Undeclared(TwoPhase):
        checkpoint_phases = (("first", "epochs"),)  # resume=False would not remove the second phase's file

    with pytest.raises(ValueError, match="not in checkpoint_phases"):
        Undeclared(epochs=1, second_epochs=1).fit(DATA)


def test_the_step_gets_a_step_index_and_alternating_passes_it_on():
    seen: list[tuple] = []

    def d_step(b, t):
        seen.append(("d", type(t), t.epoch, t.index, int(t)))
        return {"d": 0.0}

    def g_step(b, t):
        seen.append(("g", t.epoch, t.index))
        return {"g": 0.0}

    fit_loop(alternating(d_step, g_step, 2), DATA, torch.from_numpy, epochs=2, batch_size=10,
             generator=torch.Generator().manual_seed(0), state={})
    assert [s[1:] for s in seen if s[0] == "d"] == [(StepIndex, e, i, 4 * e + i) for e in range(2) for i in range(4)]
    assert [s[1:] for s in seen if s[0] == "g"] == [(e, i) for e in range(2) for i in (1, 3)]
    t = StepIndex(7, 1, 3)
    assert t == 7 and t + 1 == 8 and type(t + 1) is int and (t.epoch, t.index) == (1, 3)


_RUN = textwrap.dedent(
    """
    import sys
    import torch
    sys.path.insert(0, sys.argv[1])
    from test_phases import DATA, TwoPhase
    torch.set_num_threads(1)
    det = TwoPhase(epochs=2, second_epochs=4, random_state=3, checkpoint=sys.argv[2])
    det.pause = float(sys.argv[4])
    det.fit(DATA)
    torch.save({"nets": det.nets_.state_dict(), "calls": [list(c) for c in det.calls]}, sys.argv[3])
    """
)


def test_a_run_killed_in_its_second_phase_resumes_to_the_uninterrupted_weights(tmp_path):
    ref = TwoPhase(epochs=2, second_epochs=4, random_state=3).fit(DATA)
    script, ck, out = tmp_path / "run.py", tmp_path / "ck.pt", tmp_path / "out.pt"
    script.write_text(_RUN)
    cmd = [sys.executable, str(script), os.path.dirname(__file__), str(ck), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*cmd, "0.05"], env=env)  # 5 steps x 50 ms per epoch of phase 2
    deadline = time.time() + 120
    while not ck.exists() and proc.poll() is None and time.time() < deadline:  # phase 2's first epoch is done
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not out.exists(), "the run ended before it could be killed"
    killed_at = load_checkpoint(ck)["epoch"]
    assert 1 <= killed_at < 4 and load_checkpoint(f"{ck}.first")["finished"]

    subprocess.run([*cmd, "0"], check=True, env=env, timeout=120)  # the same command again
    res = torch.load(out, weights_only=True)
    assert [c[1] for c in res["calls"] if c[0] == "second"][0] == killed_at  # resumed in phase 2
    assert not [c for c in res["calls"] if c[0] == "first"]
    for k, v in ref.nets_.state_dict().items():
        assert torch.equal(v, res["nets"][k]), k
