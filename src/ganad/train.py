"""The one training loop every method uses: batching, progress, checkpoint/resume, early stopping.

A method supplies ``step(batch, global_step) -> {name: loss}``, one
optimisation step on one batch (GANs: the D and G updates, see
:func:`alternating`), and :func:`fit_loop` does the rest (``global_step`` is a
:class:`StepIndex`: an ``int`` that also carries the epoch and the step's
index in it, so a schedule by epoch never mirrors the loop's batching):

* shuffles with the caller's ``torch.Generator`` each epoch and draws batches
  by indexing the (uint8) numpy array, so images become float tensors one
  batch at a time;
* averages each named loss over the epoch (:class:`History`), and raises
  :class:`~ganad.exceptions.TrainingDivergedError` at the first NaN/inf loss;
* after every epoch writes a checkpoint atomically (temp file + fsync +
  ``os.replace``) holding the state dicts, the history and every RNG state
  (torch CPU and CUDA, the shuffling generator, numpy, Python ``random``), as
  tensors and plain containers only, so that ``torch.load(weights_only=True)``
  reads it.  Started again with the same command after a crash (even
  ``kill -9``), the run resumes after the last complete epoch and, on CPU with
  a fixed seed, ends with bit-identical weights; a checkpoint of a finished run
  makes the call return at once with the trained weights loaded.  A resume
  says so ("resumed from epoch k of n", on stderr with ``verbose``, else
  logged);
* a checkpoint resumes only the run that wrote it: the caller's ``run_key``
  (:func:`ganad.run_identity.run_key`: data, model, parameters, seed) and the
  checkpoint format version must match, else the call is refused with a
  one-line ``ValueError`` naming what differs.  Epochs are checked apart: a
  run may be continued to more epochs than it was started with (the loop's
  result does not depend on the total), never returned for fewer epochs than
  it has done; a finished run that ended on restored best weights
  (early stopping) cannot be extended;
* under torchrun is data parallel (:mod:`ganad.distributed`): one global
  order and global batch, each rank steps on its slice, gradients averaged
  before every optimizer step, rank 0 writes the checkpoint; a distributed run
  resumes after ``kill -9`` like a single one (with any number of processes);
* optionally evaluates ``val_loss`` (normal validation data only, lower is
  better) after each epoch with every module in eval mode under
  ``torch.no_grad``, stops after ``patience`` epochs without improvement and
  restores the best weights.

Modules are trained in the mode the caller left them in (a frozen
submodule may stay in eval mode); the loop only switches them to eval for
``val_loss`` and restores each submodule's previous mode afterwards.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ContextManager, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from . import distributed
from .exceptions import TrainingDivergedError
from .run_identity import differences

StepFn = Callable[[torch.Tensor, int], Mapping[str, "torch.Tensor | float"]]
CHECKPOINT_FORMAT = "ganad-train-checkpoint"
CHECKPOINT_VERSION = 2  # 2: run fingerprint ("run_key") and target "epochs" stored
_log = logging.getLogger(__name__)


class StepIndex(int):
    """The global step ``fit_loop`` passes to ``step``: the ``int`` 0, 1, ... over the
    whole run, with ``epoch`` (0-based) and ``index`` (the step's place in its epoch).

    An ``int`` subclass, so that steps written for a plain global step keep working.
    """

    epoch: int
    index: int

    def __new__(cls, step: int, epoch: int, index: int) -> StepIndex:
        t = super().__new__(cls, step)
        t.epoch, t.index = epoch, index
        return t

    def __reduce__(self) -> tuple[Any, tuple[int, int, int]]:  # copy / pickle keep the epoch
        return StepIndex, (int(self), self.epoch, self.index)


@dataclass
class History:
    """What a :func:`fit_loop` run did; epochs are 0-based list indices."""

    losses: dict[str, list[float]] = field(default_factory=dict)  # name -> per-epoch mean
    val_losses: list[float] = field(default_factory=list)
    best_epoch: int | None = None  # epoch with the lowest val loss
    epochs_run: int = 0  # complete epochs, including those of resumed sessions
    seconds: float = 0.0  # wall time of all sessions (steps, validation, checkpoints)
    images_per_second: float = 0.0  # training throughput: images / time inside steps
    images: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False
    resumed_from: int = 0  # epochs already complete in the checkpoint this call found
    # optimiser name -> step() calls (each optimiser updates one network or a named group);
    # counted by a step hook, so the closures need not report them, and checkpointed with the rest
    updates: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def alternating(d_step: StepFn, g_step: StepFn, n_critic: int = 1) -> StepFn:
    """A ``step`` for ``fit_loop``: the critic update on every step, the
    generator update after every ``n_critic``-th critic update (WGAN: 5).

    Both get the same batch and global step; their loss dicts are merged, so
    the generator's losses are averaged over the steps that ran it.
    """
    if not isinstance(n_critic, int) or n_critic < 1:
        raise ValueError(f"n_critic must be a positive integer; got {n_critic!r}")

    def step(batch: torch.Tensor, global_step: int) -> dict[str, torch.Tensor | float]:
        out = dict(d_step(batch, global_step))
        if (global_step + 1) % n_critic == 0:
            out.update(g_step(batch, global_step))
        return out

    return step


# ------------------------------------------------------------------ RNG state
def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG a step may draw from, as tensors and numbers (no pickled objects)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64), "gauss_next": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# ----------------------------------------------------------------- checkpoint
def _save_checkpoint(path: str, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically; the temp file is this process's own and never outlives a failure."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"  # two writers never share (and replace) one temp file
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())  # a kill -9 / power cut never leaves a half-written checkpoint
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _check_same_run(
    ck: Mapping[str, Any], path: str, run_key: Mapping[str, Any] | None, n: int, bs: int, epochs: int
) -> None:
    """Refuse (one-line ``ValueError``) a checkpoint that another run wrote; see the module docstring."""
    diffs: list[str] = []
    version = ck.get("version")
    if version != CHECKPOINT_VERSION:
        diffs.append(f"checkpoint format {version} != {CHECKPOINT_VERSION}")
    else:
        if run_key is not None:
            saved = ck.get("run_key")
            current = json.loads(json.dumps(run_key, sort_keys=True))  # as stored: tuples -> lists
            diffs += ["no run fingerprint in the checkpoint"] if saved is None else differences(json.loads(saved), current)
        if not diffs and (ck["n_samples"], ck["batch_size"]) != (n, bs):
            diffs.append(f"{ck['n_samples']} samples in batches of {ck['batch_size']} != {n} in batches of {bs}")
        done, target = int(ck["epoch"]), int(ck["epochs"])
        hist = ck["history"]
        if epochs < done:
            diffs.append(f"epochs {target} != {epochs} ({done} already complete)")
        elif (
            epochs > done and ck["finished"] and not hist.get("stopped_early")
            and ck.get("best_state") is not None and hist.get("best_epoch") != done - 1
        ):
            diffs.append(f"epochs {target} != {epochs} (the finished run ended on restored best weights)")
    if diffs:
        raise ValueError(
            f"{path} was written by another run: {', '.join(diffs)}; pass resume=False "
            f"(ganad fit --restart) to start fresh, or another checkpoint path (--out)"
        )


def _announce(msg: str, verbose: bool) -> None:
    """One line about a resume: on stderr when verbose (the CLI), else logged; rank 0 only."""
    if not distributed.is_main():
        return
    if verbose:
        print(msg, file=sys.stderr, flush=True)
    else:
        _log.info(msg)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`fit_loop` (``weights_only=True``)."""
    path = os.fspath(path)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable training checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a ganad training checkpoint")
    return ck


def _module_copy(modules: Mapping[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    return {k: {n: t.detach().to("cpu", copy=True) for n, t in m.state_dict().items()} for k, m in modules.items()}


def _load_states(state: Mapping[str, Any], saved: Mapping[str, Any], path: str) -> None:
    missing = [k for k in state if k not in saved]
    if missing:
        raise ValueError(f"{path}: checkpoint has no state for {missing}; it belongs to another model")
    for k, obj in state.items():
        try:
            obj.load_state_dict(saved[k])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: checkpoint state {k!r} does not fit this model: {exc}") from exc


# ---------------------------------------------------------------------- loop
def _floats(losses: Mapping[str, torch.Tensor | float]) -> dict[str, float]:
    """Loss values as floats with one device sync for all tensors."""
    names = list(losses)
    tensors = {k: v for k, v in losses.items() if isinstance(v, torch.Tensor)}
    for k, v in tensors.items():
        if v.numel() != 1:
            raise ValueError(f"step returned loss {k!r} with shape {tuple(v.shape)}; losses must be scalars")
    out = {k: float(v) for k, v in losses.items() if k not in tensors}
    if tensors:
        devices = {v.device for v in tensors.values()}
        if len(devices) == 1:
            vals = torch.stack([v.detach().float().reshape(()) for v in tensors.values()]).tolist()
        else:
            vals = [float(v.detach()) for v in tensors.values()]
        out.update(zip(tensors, vals))
    return {k: out[k] for k in names}


class _EvalMode:
    """Put modules in eval mode and give every submodule its own mode back afterwards."""

    def __init__(self, modules: Mapping[str, nn.Module]):
        self.modules = list(modules.values())

    def __enter__(self) -> None:
        self.modes = [[(m, m.training) for m in mod.modules()] for mod in self.modules]
        for mod in self.modules:
            mod.eval()

    def __exit__(self, *exc: Any) -> None:
        for modes in self.modes:
            for m, training in modes:
                m.training = training


@dataclass
class _Run:
    """What one :func:`fit_loop` call works on; the small functions below share it."""

    step: StepFn
    data: np.ndarray
    to_input: Callable[[np.ndarray], torch.Tensor]
    epochs: int
    bs: int
    steps: int
    generator: torch.Generator
    state: Mapping[str, Any]
    modules: dict[str, nn.Module]
    ckpt: str | None
    run_key: Mapping[str, Any] | None
    desc: str
    verbose: bool
    step_context: Callable[[], ContextManager[Any]]
    hist: History = field(default_factory=History)
    best_state: dict[str, Any] | None = None


def _resume(run: _Run) -> tuple[int, bool]:
    """Load the run's checkpoint when there is one: (first epoch to train, nothing left to train).

    Under torchrun rank 0 reads it and sends it to the others (their nodes
    need not see rank 0's files), so every rank resumes from the same state.
    """
    if run.ckpt is None:
        return 0, False
    if distributed.is_distributed():
        ck = distributed.broadcast_object(
            _read_checkpoint(run.ckpt) if distributed.is_main() else None, what="broadcast (checkpoint)")
        if isinstance(ck, BaseException):  # rank 0 could not read it: every rank says why
            raise ValueError(str(ck))
        if ck is None:
            return 0, False
    elif not os.path.exists(run.ckpt):
        return 0, False
    else:
        ck = load_checkpoint(run.ckpt)
    _check_same_run(ck, run.ckpt, run.run_key, len(run.data), run.bs, run.epochs)
    _load_states(run.state, ck["state"], run.ckpt)
    run.hist = History.from_dict(ck["history"])
    run.best_state = ck.get("best_state")
    _set_rng_state(ck["rng"], run.generator)
    start = run.hist.resumed_from = int(ck["epoch"])
    done = bool(ck["finished"] and (run.hist.stopped_early or start >= run.epochs))
    note = " (finished; nothing to train)" if done else (
        f" (the run was started for {ck['epochs']} epochs)" if int(ck["epochs"]) != run.epochs else "")
    _announce(f"{run.desc}: resumed from epoch {start} of {run.epochs}{note}: {run.ckpt}", run.verbose)
    return start, done


def _read_checkpoint(path: str) -> dict[str, Any] | ValueError | None:
    """Rank 0's view of ``path``: the checkpoint, None when there is none, or the error."""
    if not os.path.exists(path):
        return None
    try:
        return load_checkpoint(path)
    except ValueError as exc:
        return exc


def _train_epoch(run: _Run, epoch: int) -> None:
    """One pass of ``step`` over a fresh shuffle; per-epoch mean losses go to the history.

    Under torchrun every rank draws the same permutation and trains on its slice
    of each global batch (:mod:`ganad.distributed`); the losses are the global
    batch's and the images counted are the global batch's.
    """
    n, bs, steps, hist = len(run.data), run.bs, run.steps, run.hist
    parallel = distributed.is_distributed()
    perm = torch.randperm(n, generator=run.generator).numpy()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    bar = _epoch_bar(run, epoch)
    try:
        for i in range(steps):
            t0 = time.perf_counter()
            idx = perm[i * bs : (i + 1) * bs]
            shard = distributed.batch_shard(len(idx)) if parallel else None
            local = idx if shard is None else idx[shard.start : shard.stop]
            with run.step_context(), distributed.step_shard(shard):
                losses = _floats(run.step(run.to_input(run.data[local]), StepIndex(epoch * steps + i, epoch, i)))
            if parallel:
                losses = distributed.mean_losses(losses, shard)
                distributed.sync_buffers(run.modules.values())
            hist.train_seconds += time.perf_counter() - t0
            hist.images += len(idx)
            for name, v in losses.items():
                if not math.isfinite(v):
                    raise TrainingDivergedError(
                        f"{run.desc}: loss {name!r} became {v} at epoch {epoch + 1}/{run.epochs}, step "
                        f"{i + 1}/{steps} (global step {epoch * steps + i}); lower the learning rate "
                        f"or check the input scaling"
                    )
                sums[name] = sums.get(name, 0.0) + v
                counts[name] = counts.get(name, 0) + 1
            if bar is not None:
                bar.set_postfix({k: f"{sums[k] / counts[k]:.4g}" for k in sums}, refresh=False)
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    for name in [*hist.losses, *(k for k in sums if k not in hist.losses)]:  # one entry per epoch
        hist.losses.setdefault(name, [math.nan] * epoch)
        hist.losses[name].append(sums[name] / counts[name] if name in sums else math.nan)


def _epoch_bar(run: _Run, epoch: int) -> Any:
    if not run.verbose or not distributed.is_main():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=run.steps, desc=f"{run.desc} {epoch + 1}/{run.epochs}", leave=False, dynamic_ncols=True)


def _validate(run: _Run, epoch: int, val_loss: Callable[[], float], patience: int | None) -> None:
    """Record the normal-only validation loss; keep the best weights; flag an early stop."""
    hist = run.hist
    with _EvalMode(run.modules), torch.no_grad():
        v = float(val_loss())
    v = float(distributed.broadcast_object(v, what="broadcast (val_loss)"))  # one early-stopping decision
    if not math.isfinite(v):
        raise TrainingDivergedError(f"{run.desc}: val_loss became {v} after epoch {epoch + 1}/{run.epochs}")
    hist.val_losses.append(v)
    if hist.best_epoch is None or v < hist.val_losses[hist.best_epoch]:
        hist.best_epoch = epoch
        if patience is not None:
            run.best_state = _module_copy(run.modules)
    elif patience is not None and epoch - hist.best_epoch >= patience:
        hist.stopped_early = True


def _write_checkpoint(run: _Run, epoch: int, finished: bool) -> None:
    """Everything a resume needs, after epoch ``epoch`` (0-based) is complete.

    Under torchrun rank 0 writes (every rank holds the same state) and the
    others wait for it, so no rank runs ahead of the last checkpoint.
    """
    assert run.ckpt is not None
    if not distributed.is_main():
        distributed.barrier("barrier (checkpoint)")
        return
    _save_checkpoint(
        run.ckpt,
        {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "epoch": epoch + 1,
            "finished": finished,
            "epochs": run.epochs,
            "run_key": None if run.run_key is None else json.dumps(run.run_key, sort_keys=True),
            "n_samples": len(run.data),
            "batch_size": run.bs,
            "state": {k: v.state_dict() for k, v in run.state.items()},
            "best_state": run.best_state,
            "history": run.hist.to_dict(),
            "rng": _rng_state(run.generator),
        },
    )
    distributed.barrier("barrier (checkpoint)")


def fit_loop(
    step: StepFn,
    data: np.ndarray,
    to_input: Callable[[np.ndarray], torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    state: Mapping[str, Any],
    checkpoint: str | os.PathLike | None = None,
    val_loss: Callable[[], float] | None = None,
    patience: int | None = None,
    verbose: bool = False,
    desc: str = "train",
    drop_last: bool = True,
    run_key: Mapping[str, Any] | None = None,
    step_context: Callable[[], ContextManager[Any]] | None = None,
    sync_batchnorm: bool = False,
    min_steps: int = 0,
) -> History:
    """Train for ``epochs`` epochs of ``step`` over shuffled batches of ``data``.

    ``state`` maps names to everything with ``state_dict()`` /
    ``load_state_dict()`` that a checkpoint must hold (nets, optimizers,
    schedulers); its ``nn.Module`` entries are the ones early stopping restores.
    A data set smaller than ``batch_size`` is trained as one batch per epoch.
    ``run_key`` is the fingerprint of the run (:func:`ganad.run_identity.run_key`),
    stored in the checkpoint; an existing checkpoint with another one is refused.
    Without it only the sample count, the batch size and the epochs are checked.
    ``step_context`` is entered around every step (the engine's precision:
    autocast is entered and left per step, so no cast weight outlives an
    optimiser update).  Returns the :class:`History`; raises
    ``TrainingDivergedError`` on a NaN/inf loss, naming the epoch, the step and the loss.

    Under torchrun (:mod:`ganad.distributed`) the loop is data parallel: each
    rank steps on its slice of every global batch of ``batch_size``, the
    optimizers in ``state`` average their gradients over the ranks, rank 0
    writes the checkpoint, and ``sync_batchnorm`` gives BatchNorm the global
    batch's statistics.  In one process ``sync_batchnorm`` changes nothing.
    """
    n = len(data)
    if n == 0:
        raise ValueError("fit_loop got no training data")
    if batch_size < 1 or epochs < 0:
        raise ValueError(f"batch_size must be >= 1 and epochs >= 0; got {batch_size}, {epochs}")
    if patience is not None and (val_loss is None or patience < 1):
        raise ValueError("patience needs a val_loss and must be >= 1")
    if min_steps < 0:
        raise ValueError(f"min_steps must be >= 0; got {min_steps}")
    bs = min(batch_size, n)
    steps = n // bs if drop_last else math.ceil(n / bs)
    if epochs > 0 and min_steps > 0:
        epochs = max(epochs, -(-min_steps // steps))
    world = distributed.world_size() if distributed.is_distributed() else 1
    smallest = bs if drop_last or n % bs == 0 else n % bs
    if smallest < world:
        raise ValueError(f"a batch of {smallest} images cannot be split over {world} processes; "
                         f"use batch_size >= {world} (and at least as many training images)")
    run = _Run(
        step=step, data=data, to_input=to_input, epochs=epochs, bs=bs,
        steps=steps, generator=generator, state=state,
        modules={k: v for k, v in state.items() if isinstance(v, nn.Module)},
        ckpt=os.fspath(checkpoint) if checkpoint is not None else None, run_key=run_key, desc=desc,
        verbose=verbose, step_context=step_context or contextlib.nullcontext,
    )
    start, done = _resume(run)
    if done:
        return run.hist
    synced = distributed.convert_sync_batchnorm(run.modules.values()) if sync_batchnorm and world > 1 else []
    try:
        with distributed.data_parallel(run.state), _count_updates(run):
            _epochs(run, start, val_loss, patience)
    finally:
        distributed.revert(synced)
    return run.hist


@contextlib.contextmanager
def _count_updates(run: _Run) -> Iterator[None]:
    """While inside, every ``step()`` of an optimiser in ``run.state`` adds one to
    ``run.hist.updates[name]`` (resumed runs continue the stored counts)."""
    def counter(name: str) -> Callable[..., None]:
        def count(*_: Any) -> None:
            run.hist.updates[name] = run.hist.updates.get(name, 0) + 1
        return count

    opts = {k: v for k, v in run.state.items() if isinstance(v, torch.optim.Optimizer)}
    for k in opts:
        run.hist.updates.setdefault(k, 0)
    handles = [v.register_step_post_hook(counter(k)) for k, v in opts.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _epochs(run: _Run, start: int, val_loss: Callable[[], float] | None, patience: int | None) -> None:
    """Epochs ``start`` .. ``run.epochs`` - 1: train, validate, checkpoint; stop early when told."""
    epochs, hist = run.epochs, run.hist
    t_start, seconds_before = time.perf_counter(), hist.seconds
    for epoch in range(start, epochs):
        _train_epoch(run, epoch)
        if val_loss is not None:
            _validate(run, epoch, val_loss, patience)
        hist.epochs_run = epoch + 1
        hist.seconds = seconds_before + time.perf_counter() - t_start
        hist.images_per_second = hist.images / max(hist.train_seconds, 1e-12)
        finished = hist.stopped_early or epoch + 1 >= epochs
        if finished and run.best_state is not None and hist.best_epoch != epoch:
            _load_states(run.modules, run.best_state, "best weights")
        if run.ckpt is not None:
            _write_checkpoint(run, epoch, finished)
        distributed.check_in_sync(run.modules.values(), f"epoch {epoch + 1}")
        distributed.maybe_fail(epoch + 1)
        if hist.stopped_early:
            break


__all__ = ["History", "StepIndex", "alternating", "fit_loop", "load_checkpoint"]
