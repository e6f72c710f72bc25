"""fit_loop: batching, divergence, checkpoints (incl. resume after kill -9), early stopping."""

import os
import runpy
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from torch import nn

from ganad.exceptions import TrainingDivergedError
from ganad.train import History, alternating, fit_loop, load_checkpoint

torch.set_num_threads(1)


def _to_float(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 255.0)


def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = torch.optim.Adam(net.parameters(), 1e-2)

    def step(b: torch.Tensor, _: int):
        loss = (net(b) - 1).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss, "const": 2.0}

    return net, opt, step


DATA = (np.random.RandomState(0).rand(40, 3) * 255).astype(np.uint8)


def test_batches_are_drawn_from_uint8_and_cover_every_sample():
    seen: list[np.ndarray] = []

    def to_input(a: np.ndarray) -> torch.Tensor:
        assert a.dtype == np.uint8  # images stay uint8 until a batch is drawn
        seen.append(a.copy())
        return _to_float(a)

    net, opt, step = _tiny()
    h = fit_loop(step, DATA, to_input, epochs=2, batch_size=16, generator=torch.Generator().manual_seed(0),
                 state={"net": net, "opt": opt}, drop_last=False)
    assert [len(b) for b in seen] == [16, 16, 8] * 2
    for epoch in (seen[:3], seen[3:]):
        rows = np.concatenate(epoch)
        assert sorted(map(bytes, rows)) == sorted(map(bytes, DATA))  # each sample once per epoch
    assert not np.array_equal(np.concatenate(seen[:3]), np.concatenate(seen[3:]))  # reshuffled
    assert isinstance(h, History) and h.epochs_run == 2 and h.images == 80
    assert list(h.losses) == ["loss", "const"] and h.losses["const"] == [2.0, 2.0]
    assert len(h.losses["loss"]) == 2 and h.images_per_second > 0 and h.seconds > 0


def test_drop_last_and_tiny_data():
    calls = []
    net, opt, step = _tiny()

    def counting(b, g):
        calls.append((len(b), g))
        return step(b, g)

    fit_loop(counting, DATA, _to_float, epochs=2, batch_size=16, generator=torch.Generator(), state={},
             verbose=True)  # progress bar on stderr
    assert calls == [(16, 0), (16, 1), (16, 2), (16, 3)]  # 40 // 16 = 2 steps per epoch
    calls.clear()
    fit_loop(counting, DATA[:5], _to_float, epochs=1, batch_size=16, generator=torch.Generator(), state={})
    assert calls == [(5, 0)]  # fewer samples than a batch: one batch, not zero steps


def test_same_generator_seed_gives_same_weights():
    out = []
    for _ in range(2):
        net, opt, step = _tiny()
        fit_loop(step, DATA, _to_float, epochs=2, batch_size=8, generator=torch.Generator().manual_seed(5),
                 state={"net": net, "opt": opt})
        out.append(net.state_dict())
    assert all(torch.equal(out[0][k], out[1][k]) for k in out[0])


def test_nan_loss_raises_naming_epoch_step_and_loss():
    def step(b, g):
        return {"fine": 1.0, "d_loss": float("nan") if g == 2 else 0.5}

    with pytest.raises(TrainingDivergedError) as err:
        fit_loop(step, DATA, _to_float, epochs=3, batch_size=16, generator=torch.Generator(), state={}, desc="gan")
    msg = str(err.value)
    assert "'d_loss'" in msg and "nan" in msg and "epoch 2/3" in msg and "step 1/2" in msg and "gan" in msg
    with pytest.raises(TrainingDivergedError, match="inf"):
        fit_loop(lambda b, g: {"l": torch.tensor(float("inf"))}, DATA, _to_float, epochs=1, batch_size=8,
                 generator=torch.Generator(), state={})


def test_alternating_runs_generator_every_n_critic_steps():
    d_calls, g_calls = [], []

    def d_step(b, g):
        d_calls.append(g)
        return {"d": 1.0}

    def g_step(b, g):
        g_calls.append(g)
        return {"g": 3.0}

    h = fit_loop(alternating(d_step, g_step, n_critic=3), DATA, _to_float, epochs=3, batch_size=10,
                 generator=torch.Generator(), state={})
    assert d_calls == list(range(12))
    assert g_calls == [2, 5, 8, 11]
    assert h.losses["g"] == [3.0, 3.0, 3.0]
    with pytest.raises(ValueError):
        alternating(d_step, g_step, n_critic=0)


def test_checkpoint_is_weights_only_and_finished_run_returns_at_once(tmp_path):
    ck = tmp_path / "run" / "ckpt.pt"
    net, opt, step = _tiny()
    h = fit_loop(step, DATA, _to_float, epochs=2, batch_size=8, generator=torch.Generator().manual_seed(0),
                 state={"net": net, "opt": opt}, checkpoint=ck)
    raw = torch.load(ck, weights_only=True)  # no pickled objects inside
    assert raw["epoch"] == 2 and raw["finished"]
    assert set(raw["rng"]) >= {"torch", "generator", "numpy", "python"}
    assert all(isinstance(v, torch.Tensor) for v in (raw["rng"]["torch"], raw["rng"]["generator"]))
    assert not os.path.exists(f"{ck}.tmp")

    net2, opt2, _ = _tiny(seed=1)  # different initial weights; the checkpoint must win

    def must_not_run(b, g):
        raise AssertionError("a finished run must not train again")

    h2 = fit_loop(must_not_run, DATA, _to_float, epochs=2, batch_size=8, generator=torch.Generator(),
                  state={"net": net2, "opt": opt2}, checkpoint=ck)
    assert h2.losses == h.losses and h2.epochs_run == 2 and h2.resumed_from == 2
    assert all(torch.equal(v, net2.state_dict()[k]) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="samples"):
        fit_loop(step, DATA[:30], _to_float, epochs=2, batch_size=8, generator=torch.Generator(),
                 state={"net": net, "opt": opt}, checkpoint=ck)


def test_early_stopping_restores_best_weights(tmp_path):
    p = nn.Parameter(torch.zeros(1))
    module = nn.Module()
    module.p = p
    vals = iter([3.0, 1.0, 2.0, 2.5, 0.5, 0.1])

    def step(b, g):
        with torch.no_grad():
            p.add_(1.0)  # p == number of epochs trained
        return {"l": float(p.detach())}

    h = fit_loop(step, DATA[:8], _to_float, epochs=6, batch_size=8, generator=torch.Generator(),
                 state={"m": module}, val_loss=lambda: next(vals), patience=2, checkpoint=tmp_path / "c.pt")
    assert h.val_losses == [3.0, 1.0, 2.0, 2.5] and h.best_epoch == 1 and h.stopped_early
    assert h.epochs_run == 4 and p.item() == 2.0  # weights of epoch 1 (0-based) restored
    h2 = fit_loop(step, DATA[:8], _to_float, epochs=6, batch_size=8, generator=torch.Generator(),
                  state={"m": module}, val_loss=lambda: 0.0, patience=2, checkpoint=tmp_path / "c.pt")
    assert h2.stopped_early and p.item() == 2.0  # rerun: returns at once with the best weights


def test_val_loss_runs_in_eval_mode_and_modes_come_back():
    net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    net[2].eval()  # a frozen submodule stays frozen during training
    modes = []

    def step(b, g):
        modes.append((net.training, net[1].training, net[2].training))
        return {"l": 0.0}

    def val():
        modes.append(("val", net.training, net[1].training, net[2].training, torch.is_grad_enabled()))
        return 1.0

    fit_loop(step, DATA, _to_float, epochs=2, batch_size=40, generator=torch.Generator(), state={"net": net},
             val_loss=val)
    assert modes == [(True, True, False), ("val", False, False, False, False)] * 2


_RUN = textwrap.dedent(
    """
    import random, sys, time
    import numpy as np, torch
    from torch import nn
    from ganad.train import fit_loop
    torch.set_num_threads(1)
    ckpt, out, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
    torch.manual_seed(0); np.random.seed(0); random.seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    data = (np.random.RandomState(1).rand(64, 6) * 255).astype(np.uint8)

    def step(b, g):
        time.sleep(pause)
        # draw from every RNG the checkpoint must restore: torch (noise, dropout), numpy, random
        b = b + 0.1 * torch.randn_like(b) + 0.01 * float(np.random.rand()) + 0.01 * random.random()
        loss = (net(b) - 1).pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
        return {"loss": loss}

    h = fit_loop(step, data, lambda a: torch.from_numpy(a.astype(np.float32) / 255), epochs=8, batch_size=16,
                 generator=torch.Generator().manual_seed(0), state={"net": net, "opt": opt},
                 checkpoint=None if ckpt == "-" else ckpt)
    torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "resumed_from": h.resumed_from,
                "losses": h.losses["loss"]}, out)
    """
)


def test_resume_after_kill_9_gives_identical_weights(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_RUN)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref, out, ck = tmp_path / "ref.pt", tmp_path / "out.pt", tmp_path / "ck.pt"
    cmd = [sys.executable, str(script)]
    argv = sys.argv
    try:  # the uninterrupted reference run in this process: one torch import less
        sys.argv = [str(script), "-", str(ref), "0"]
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv

    proc = subprocess.Popen([*cmd, str(ck), str(out), "0.05"], env=env)  # 4 steps x 50 ms per epoch
    deadline = time.time() + 120
    while not ck.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not out.exists(), "the run ended before it could be killed"
    killed_at = load_checkpoint(ck)["epoch"]
    assert 1 <= killed_at < 8

    subprocess.run([*cmd, str(ck), str(out), "0"], check=True, env=env, timeout=120)  # same command again
    a, b = torch.load(ref, weights_only=True), torch.load(out, weights_only=True)
    assert b["resumed_from"] == killed_at
    assert a["losses"] == b["losses"]
    for k, v in a["net"].items():
        assert torch.equal(v, b["net"][k]), k
    for sa, sb in zip(a["opt"]["state"].values(), b["opt"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_updates_count_each_optimiser_step_and_a_resumed_run_continues_the_count(tmp_path):
    torch.manual_seed(0)
    d, g = nn.Linear(3, 1), nn.Linear(3, 1)
    opt_d, opt_g = torch.optim.SGD(d.parameters(), 1e-3), torch.optim.SGD(g.parameters(), 1e-3)

    def update(net, opt, b):
        opt.zero_grad()
        loss = net(b).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    crash_at = {"step": 7}  # epoch 2 of 5 steps per epoch

    def d_step(b, step):
        if step == crash_at["step"]:
            raise KeyboardInterrupt  # a kill mid-epoch: the epoch's partial steps are not counted
        return {"d": update(d, opt_d, b)}

    def g_step(b, step):
        return {"g": update(g, opt_g, b)}

    ck = tmp_path / "ckpt.pt"
    run = dict(data=DATA, to_input=_to_float, epochs=3, batch_size=8, state={"d": d, "g": g, "opt_d": opt_d,
               "opt_g": opt_g}, checkpoint=ck)
    with pytest.raises(KeyboardInterrupt):
        fit_loop(alternating(d_step, g_step, n_critic=2), generator=torch.Generator().manual_seed(0), **run)
    assert load_checkpoint(ck)["history"]["updates"] == {"opt_d": 5, "opt_g": 2}  # epoch 1: steps 1, 3
    crash_at["step"] = -1
    h = fit_loop(alternating(d_step, g_step, n_critic=2), generator=torch.Generator().manual_seed(0), **run)
    assert h.resumed_from == 1
    assert h.updates == {"opt_d": 15, "opt_g": 7}  # 3 epochs x 5 critic steps; every second global step


@pytest.mark.parametrize("n, epochs, min_steps, expect", [
    (40, 2, 12, 3),    # 5 steps per epoch: 2 epochs raised to ceil(12 / 5) = 3
    (40, 4, 12, 4),    # 20 steps already: the epochs rule
    (40, 0, 12, 0),    # epochs = 0 stays untrained
    (4, 2, 7, 7),      # fewer images than a batch: one step per epoch
])
def test_min_steps_raises_the_epochs_on_small_data(n, epochs, min_steps, expect):
    net, opt, step = _tiny()
    h = fit_loop(step, DATA[:n], _to_float, epochs=epochs, batch_size=8, generator=torch.Generator().manual_seed(0),
                 state={"net": net, "opt": opt}, min_steps=min_steps)
    assert h.epochs_run == expect and h.updates["opt"] == expect * max(1, n // 8)
