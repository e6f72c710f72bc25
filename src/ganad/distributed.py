"""Data-parallel training and sharded scoring over ``torch.distributed``, started by torchrun.

``ganad fit MODEL ... --nproc N`` runs N processes on this node through
``torch.distributed.run``; ``torchrun --nnodes ... -m ganad fit ...`` runs on
several.  A process joins the group torchrun describes in its environment
(:func:`init_from_env`: gloo on CPU, gloo + NCCL where CUDA is available) the
first time a detector is fitted or scores; outside torchrun every function
here is a no-op and training is exactly the one-process code path.

The scheme (no model code is wrapped):

* every rank builds the same nets from the same seed (rank 0's weights and
  buffers are broadcast when a training loop starts, to be safe), reads the
  same checkpoint and draws the same permutation from the same generator, so
  the data order is one global order, seeded and resumable; the global batch
  is ``batch_size`` and rank ``r`` trains on its contiguous slice
  :func:`batch_shard` of it (no padding, no duplicates);
* the optimizers of the loop's ``state`` all-reduce their gradients before
  every ``step()`` (an ``Optimizer.register_step_pre_hook``), weighted by each
  rank's share of the global batch: DistributedDataParallel's averaged
  gradients, for any ``step`` function that calls ``opt.step()`` itself;
* batch-sized noise is drawn for the whole global batch on every rank and
  sliced (:func:`batch_randn`, :func:`batch_rand`; ``nn.Dropout`` masks
  likewise while the loop runs), so a rank's slice sees the noise a
  one-process run gives those rows and the RNG streams of all ranks stay
  identical;
* BatchNorm uses per-rank batch statistics, or the global batch's with
  ``sync_batchnorm`` (:func:`convert_sync_batchnorm`, a differentiable
  all-reduce of the moments that works on gloo/CPU and NCCL alike); floating
  buffers (running statistics) are averaged after every step;
* losses are all-reduced (weighted means over the global batch) for the
  history, so every rank sees the same losses and a NaN stops all of them;
  in-step decisions on batch statistics must use :func:`global_mean` /
  :func:`gather_batch`; a weight checksum compared after every epoch turns a
  rank-local decision into a clear error instead of silently diverging ranks;
* rank 0 writes checkpoints (the others wait at a barrier) and the model file;
* scoring (:func:`score_shard` + :func:`gather_parts`) splits the input into
  whole scoring batches, one contiguous run of them per rank, and gathers the
  results in input order: the batches are the one-process run's, so the
  scores are too.

Failure handling: every collective has the group's timeout
(``GANAD_DIST_TIMEOUT`` seconds, default 180); a rank that dies closes its
connections, so the others fail at their next collective with a
:class:`DistributedError` naming the rank and the operation, and torchrun
stops the remaining workers.  Workers die with their launcher (Linux
``PR_SET_PDEATHSIG``), so ``kill -9`` of the launcher leaves no orphans; a
rerun resumes from the last checkpoint like a one-process run.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from .exceptions import DistributedError

TIMEOUT_ENV = "GANAD_DIST_TIMEOUT"
BACKEND_ENV = "GANAD_DIST_BACKEND"
#: "RANK:EPOCH": that rank kills itself (SIGKILL) after EPOCH complete epochs (failure tests)
FAULT_ENV = "GANAD_FAULT"
DEFAULT_TIMEOUT_S = 180.0

_owned = False  # this module initialised the process group (and destroys it at exit)


# ------------------------------------------------------------- environment
def _dist() -> Any:
    import torch.distributed as dist

    return dist


def available() -> bool:
    return _dist().is_available()


def launched() -> bool:
    """Whether torchrun (or an equivalent launcher) started this process as one of several."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def is_distributed() -> bool:
    """Whether this process is in an initialised group of more than one process."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    dist = _dist()
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    dist = _dist()
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes files and shows progress."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def timeout_seconds() -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds; got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{TIMEOUT_ENV} must be > 0; got {raw!r}")
    return value


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: have the kernel send ``sig`` to this process when its parent dies (no orphans)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no libc / prctl
        pass


def init_from_env(timeout: float | None = None, backend: str | None = None) -> bool:
    """Join the process group that torchrun described in the environment.

    A no-op outside torchrun (or with one process) and when a group already
    exists (the caller's own is used).  Backend: ``GANAD_DIST_BACKEND``, else
    gloo, plus NCCL for CUDA tensors where CUDA is available (each process
    then uses GPU ``LOCAL_RANK``).  ``timeout`` (default ``GANAD_DIST_TIMEOUT``
    or 180 s) bounds every collective.  Returns :func:`is_distributed`.
    """
    global _owned
    dist = _dist()
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return is_distributed()
    if not launched():
        return False
    die_with_parent()
    cuda = torch.cuda.is_available()
    backend = backend or os.environ.get(BACKEND_ENV) or ("cpu:gloo,cuda:nccl" if cuda else "gloo")
    if cuda and "nccl" in backend:
        torch.cuda.set_device(local_rank() % torch.cuda.device_count())
    seconds = timeout_seconds() if timeout is None else float(timeout)
    try:
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=seconds))
    except Exception as exc:  # rendezvous failed: another worker gone, a bad address, a timeout
        raise DistributedError(
            f"rank {os.environ.get('RANK')} of {os.environ.get('WORLD_SIZE')}: could not join the process group "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from exc
    _owned = True
    atexit.register(shutdown)
    return is_distributed()


def shutdown() -> None:
    """Leave the process group if :func:`init_from_env` created it."""
    global _owned
    dist = _dist()
    if _owned and dist.is_available() and dist.is_initialized():
        _owned = False
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


@contextlib.contextmanager
def _collective(what: str) -> Iterator[None]:
    """Turn a failed collective into a one-line :class:`DistributedError`."""
    try:
        yield
    except DistributedError:
        raise
    except RuntimeError as exc:  # DistBackendError, gloo's "Connection closed by peer", timeouts
        detail = _first_line(exc).split(" This is typically caused")[0]  # gloo's advice does not apply
        raise DistributedError(
            f"rank {rank()} of {world_size()}: {what} failed: another process stopped (it failed or was killed: "
            f"see its own error) or did not answer within {timeout_seconds():g}s ({detail})"
        ) from exc


def barrier(what: str = "barrier") -> None:
    if is_distributed():
        with _collective(what):
            _dist().barrier()


def broadcast_object(obj: Any, src: int = 0, what: str = "broadcast") -> Any:
    """``obj`` of rank ``src`` on every rank (the object itself in one process)."""
    if not is_distributed():
        return obj
    box = [obj]
    with _collective(what):
        _dist().broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(obj: Any, what: str = "all_gather") -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    with _collective(what):
        _dist().all_gather_object(out, obj)
    return out


def shared_seed(seed: int | None) -> int | None:
    """``seed``, or with ``None`` under torchrun a random seed drawn by rank 0 for all ranks."""
    if seed is not None or not is_distributed():
        return seed
    return int(broadcast_object(int(torch.randint(0, 2**62, ()).item()) if is_main() else None, what="seed"))


# ------------------------------------------------------------------ shards
@dataclass(frozen=True)
class Shard:
    """This rank's rows ``[start, stop)`` of a global batch of ``total`` rows."""

    start: int
    stop: int
    total: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def weight(self) -> float:
        return self.size / self.total


_shard: Shard | None = None


def batch_shard(n: int) -> Shard:
    """Rank ``r``'s contiguous slice of a global batch of ``n`` rows (sizes differ by at most one)."""
    w, r = world_size(), rank()
    return Shard(r * n // w, (r + 1) * n // w, n)


def current_shard() -> Shard | None:
    """The shard of the training step running now (None outside a data-parallel step)."""
    return _shard


@contextlib.contextmanager
def step_shard(shard: Shard | None) -> Iterator[None]:
    """Mark the code inside as one data-parallel step on ``shard`` (None: a no-op)."""
    global _shard
    if shard is None:
        yield
        return
    previous, _shard = _shard, shard
    try:
        yield
    finally:
        _shard = previous


def _batch_noise(draw: Callable[..., torch.Tensor], n: int, shape: tuple[int, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    sh = _shard
    if sh is None or n != sh.size:
        return draw(n, *shape, **kwargs)
    return draw(sh.total, *shape, **kwargs)[sh.start : sh.stop]


def _shape(n: Any, shape: tuple[Any, ...]) -> tuple[int, tuple[int, ...]]:
    if isinstance(n, (tuple, list, torch.Size)):  # torch.randn((n, d)) style
        return int(n[0]), tuple(int(s) for s in n[1:])
    return int(n), tuple(int(s) for s in shape)


def batch_randn(n: Any, *shape: int, **kwargs: Any) -> torch.Tensor:
    """``torch.randn(n, *shape, **kwargs)`` for a batch of ``n`` rows.

    In a data-parallel step whose shard has ``n`` rows: this rank's rows of the
    noise the whole global batch would draw, so that the rows match a
    one-process run and every rank's RNG advances alike.
    """
    n, shape = _shape(n, shape)
    return _batch_noise(torch.randn, n, shape, kwargs)


def batch_rand(n: Any, *shape: int, **kwargs: Any) -> torch.Tensor:
    """``torch.rand`` counterpart of :func:`batch_randn`."""
    n, shape = _shape(n, shape)
    return _batch_noise(torch.rand, n, shape, kwargs)


def _summed_copy(t: torch.Tensor, what: str) -> torch.Tensor:
    """A contiguous copy of ``t`` summed over the ranks (``t`` itself is left alone): both
    passes of :class:`_AllReduceSum`, ``what`` naming the pass in a collective's error."""
    out = t.clone(memory_format=torch.contiguous_format)
    with _collective(f"all_reduce ({what})"):
        _dist().all_reduce(out)
    return out


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over the ranks (its gradient is the sum of the ranks' gradients)."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _summed_copy(t, "forward")

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _summed_copy(grad, "backward")


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return t.view_as(t)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


def _global_sum(t: torch.Tensor, sh: Shard) -> torch.Tensor:
    """Sum of ``t`` over the ranks, differentiable, with gradients weighted for the
    gradient averaging of :func:`data_parallel` (a no-op for equal shards)."""
    equal = sh.total % world_size() == 0
    if not equal:
        t = _ScaleGrad.apply(t, 1.0 / sh.weight)
    out = _AllReduceSum.apply(t)
    return out if equal else _ScaleGrad.apply(out, sh.weight)


def global_mean(t: torch.Tensor) -> torch.Tensor:
    """The global-batch mean of a per-rank batch mean ``t`` (``t`` itself outside a
    data-parallel step): what a one-process run would compute.  Use it for any
    decision a step takes on a batch statistic (e.g. re-initialising a net when
    its loss is small), so that every rank takes the same one."""
    sh = _shard
    if sh is None or not is_distributed():
        return t
    return _global_sum(t * sh.weight, sh)


def gather_batch(t: torch.Tensor) -> torch.Tensor:
    """The rows of every rank's shard, in global-batch order (``t`` outside a
    data-parallel step); not differentiable.  E.g. a quantile over the batch."""
    sh = _shard
    if sh is None or not is_distributed():
        return t
    t = t.detach().contiguous()
    w = world_size()
    sizes = [(r + 1) * sh.total // w - r * sh.total // w for r in range(w)]
    pad = max(sizes)
    buf = torch.zeros((pad, *t.shape[1:]), dtype=t.dtype, device=t.device)
    buf[: len(t)] = t
    parts = [torch.empty_like(buf) for _ in range(w)]
    with _collective("all_gather (batch)"):
        _dist().all_gather(parts, buf)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


# ------------------------------------------------------ BatchNorm, Dropout
class _SyncBatchNormMixin:
    """BatchNorm whose training-mode statistics are those of the global batch
    inside a data-parallel step (plain BatchNorm everywhere else)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh = _shard
        if sh is None or not self.training or not is_distributed():
            return super().forward(x)  # type: ignore[misc]
        self._check_input_dim(x)  # type: ignore[attr-defined]
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        shape = [1, -1] + [1] * (x.dim() - 2)
        # the global count travels with the sums: the rows need not be the shard's
        s = _global_sum(torch.cat([xf.sum(dims), xf.new_tensor([xf.numel() / xf.shape[1]])]), sh)
        n = float(s[-1].detach())
        mean = s[:-1] / n
        centred = xf - mean.view(shape)
        var = _global_sum(centred.pow(2).sum(dims), sh) / n
        if self.track_running_stats and self.num_batches_tracked is not None:  # type: ignore[attr-defined]
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[attr-defined]
                f = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum  # type: ignore[attr-defined]
                self.running_mean.mul_(1 - f).add_(mean.detach().to(self.running_mean.dtype), alpha=f)  # type: ignore[attr-defined]
                unbiased = var.detach() * (n / max(n - 1, 1))
                self.running_var.mul_(1 - f).add_(unbiased.to(self.running_var.dtype), alpha=f)  # type: ignore[attr-defined]
        out = centred * torch.rsqrt(var + self.eps).view(shape)  # type: ignore[attr-defined]
        if self.affine:  # type: ignore[attr-defined]
            out = out * self.weight.view(shape) + self.bias.view(shape)  # type: ignore[attr-defined]
        return out.to(x.dtype)


class _ShardDropoutMixin:
    """Dropout whose mask, inside a data-parallel step, is this rank's rows of the
    mask a one-process run draws for the whole global batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh = _shard
        p = float(self.p)  # type: ignore[attr-defined]
        if sh is None or not self.training or p <= 0.0 or x.dim() == 0 or len(x) != sh.size:  # type: ignore[attr-defined]
            return super().forward(x)  # type: ignore[misc]
        if p >= 1.0:
            return x * 0.0
        noise = torch.empty((sh.total, *x.shape[1:]), dtype=x.dtype, device=x.device).bernoulli_(1 - p)
        noise.div_(1 - p)
        return x * noise[sh.start : sh.stop]


_SWAPPED: dict[tuple[type, type], type] = {}


def _swapped_class(cls: type, mixin: type) -> type:
    key = (cls, mixin)
    if key not in _SWAPPED:
        name = mixin.__name__.strip("_").replace("Mixin", "") + "_" + cls.__name__
        _SWAPPED[key] = type(name, (mixin, cls), {"_ganad_base": cls})
    return _SWAPPED[key]


def _swap(modules: Iterable[nn.Module], kinds: tuple[type, ...], mixin: type) -> list[nn.Module]:
    done = []
    for top in modules:
        for m in top.modules():
            if type(m) in kinds:  # exact classes only (a subclass may forward differently)
                m.__class__ = _swapped_class(type(m), mixin)
                done.append(m)
    return done


def _unswap(swapped: Iterable[nn.Module]) -> None:
    for m in swapped:
        base = getattr(type(m), "_ganad_base", None)
        if base is not None:
            m.__class__ = base


_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def convert_sync_batchnorm(modules: Iterable[nn.Module]) -> list[nn.Module]:
    """Make the BatchNorm layers of ``modules`` use the global batch's statistics in
    data-parallel steps (in place, same parameters and buffers; CPU/gloo and
    CUDA alike).  Returns the layers, for :func:`revert`."""
    return _swap(modules, _BATCHNORMS, _SyncBatchNormMixin)


def revert(swapped: Iterable[nn.Module]) -> None:
    """Undo :func:`convert_sync_batchnorm` (or the Dropout swap of :func:`data_parallel`)."""
    _unswap(swapped)


# ---------------------------------------------------------- data parallel
def _flat_collective(tensors: list[torch.Tensor], what: str, *, src: int | None = None, divide: float | None = None) -> None:
    """All-reduce (sum; in float64 and divided by ``divide`` when given) or, with ``src``,
    broadcast ``tensors`` in place, one flat buffer per (device, dtype)."""
    groups: dict[tuple[Any, Any], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    for (_, dtype), ts in groups.items():
        flat = torch.cat([t.detach().reshape(-1) for t in ts])
        if divide is not None:
            flat = flat.double()
        with _collective(what):
            if src is None:
                _dist().all_reduce(flat)
            else:
                _dist().broadcast(flat, src=src)
        if divide is not None:
            flat = flat.div_(divide)
        off = 0
        for t in ts:
            k = t.numel()
            t.copy_(flat[off : off + k].view_as(t).to(dtype))
            off += k


def _average_grads(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """Optimizer step pre-hook: this rank's gradients -> the global batch's."""
    if not is_distributed():
        return
    sh = _shard
    weight = sh.weight if sh is not None else 1.0 / world_size()
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    if any(gr.is_sparse for gr in grads):
        raise DistributedError("sparse gradients are not supported by ganad's data parallelism")
    if grads:
        with torch.no_grad():
            for gr in grads:
                gr.mul_(weight)
            _flat_collective(grads, f"all_reduce (gradients of {type(optimizer).__name__})")


def _modules(state: Mapping[str, Any]) -> list[nn.Module]:
    return [v for v in state.values() if isinstance(v, nn.Module)]


def broadcast_modules(modules: Iterable[nn.Module], src: int = 0) -> None:
    """Rank ``src``'s parameters and buffers on every rank."""
    if not is_distributed():
        return
    tensors, seen = [], set()
    for m in modules:
        for t in [*m.parameters(), *m.buffers()]:
            if id(t) not in seen:
                seen.add(id(t))
                tensors.append(t)
    with torch.no_grad():
        _flat_collective(tensors, "broadcast (weights)", src=src)


def sync_buffers(modules: Iterable[nn.Module]) -> None:
    """Average the floating buffers (BatchNorm running statistics) over the ranks,
    in float64: buffers that are already equal stay bit-identical."""
    if not is_distributed():
        return
    bufs, seen = [], set()
    for m in modules:
        for b in m.buffers():
            if b.is_floating_point() and id(b) not in seen:
                seen.add(id(b))
                bufs.append(b)
    if bufs:
        with torch.no_grad():
            _flat_collective(bufs, "all_reduce (buffers)", divide=float(world_size()))


def mean_losses(losses: Mapping[str, float], shard: Shard | None) -> dict[str, float]:
    """Per-rank step losses -> the global batch's (weighted means), identical on every rank."""
    if shard is None or not is_distributed() or not losses:
        return dict(losses)
    names = list(losses)
    vals = torch.tensor([losses[k] * shard.weight for k in names], dtype=torch.float64)
    with _collective("all_reduce (losses)"):
        _dist().all_reduce(vals)
    return dict(zip(names, vals.tolist()))


def check_in_sync(modules: Iterable[nn.Module], what: str) -> None:
    """Raise :class:`DistributedError` when the ranks' weights differ (a step took a
    rank-local decision); one small gather."""
    if not is_distributed():
        return
    with torch.no_grad():
        total = torch.zeros((), dtype=torch.float64)
        for m in modules:
            for t in [*m.parameters(), *m.buffers()]:
                if t.is_floating_point():
                    total += t.detach().double().sum().cpu() + t.detach().double().abs().sum().cpu()
    sums = all_gather_objects(float(total), what="all_gather (weight checksum)")
    if len(set(sums)) > 1:
        raise DistributedError(
            f"rank {rank()} of {world_size()}: the processes' weights differ after {what} (checksums {sums}): "
            f"a training step took a decision on per-process data; make it global with "
            f"ganad.distributed.global_mean / gather_batch"
        )


@contextlib.contextmanager
def data_parallel(state: Mapping[str, Any]) -> Iterator[None]:
    """While inside, the optimizers in ``state`` average their gradients over the
    ranks before each step, and the Dropout layers of its modules draw global-batch
    masks; the modules start from rank 0's weights.  A no-op in one process."""
    if not is_distributed():
        yield
        return
    modules = _modules(state)
    broadcast_modules(modules)
    handles = [v.register_step_pre_hook(_average_grads) for v in state.values() if isinstance(v, torch.optim.Optimizer)]
    dropouts = _swap(modules, (nn.Dropout,), _ShardDropoutMixin)
    try:
        yield
    finally:
        _unswap(dropouts)
        for h in handles:
            h.remove()


# --------------------------------------------------------------- scoring
def score_shard(n: int, batch_size: int) -> tuple[int, int]:
    """This rank's rows ``[start, stop)`` of ``n`` rows scored in batches of
    ``batch_size``: whole batches, a contiguous run of them per rank."""
    if not is_distributed():
        return 0, n
    nb = -(-n // batch_size)
    w, r = world_size(), rank()
    first, last = -(-r * nb // w), -(-(r + 1) * nb // w)  # ceil: rank 0 gets a lone batch
    return min(n, first * batch_size), min(n, last * batch_size)


def gather_parts(parts: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Every rank's :func:`score_shard` results, concatenated in input order."""
    if not is_distributed():
        return parts
    everyone = all_gather_objects(parts, what="all_gather (scores)")
    names: list[str] = []
    for p in everyone:
        names += [k for k in p if k not in names]
    out = {k: np.concatenate([p[k] for p in everyone if k in p]) for k in names}
    for k, v in out.items():
        if len(v) != n:
            raise DistributedError(f"rank {rank()}: gathered {len(v)} scores for {k!r}, expected {n}")
    return out


# ----------------------------------------------------------------- tests
def maybe_fail(epochs_done: int) -> None:
    """``GANAD_FAULT=RANK:EPOCH``: that rank kills itself with SIGKILL after EPOCH
    complete epochs (and its checkpoint), to test failure handling and resume."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    r, _, e = spec.partition(":")
    if int(r) == rank() and int(e or 1) == epochs_done:
        print(f"{FAULT_ENV}: rank {rank()} kills itself (SIGKILL) after epoch {epochs_done} at t={time.time():.3f}",
              file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = [
    "DistributedError", "Shard", "all_gather_objects", "barrier", "batch_rand", "batch_randn", "batch_shard",
    "broadcast_modules", "broadcast_object", "check_in_sync", "convert_sync_batchnorm", "current_shard",
    "data_parallel", "gather_batch", "gather_parts", "global_mean", "init_from_env", "is_distributed", "is_main",
    "launched", "local_rank", "mean_losses", "rank", "revert", "score_shard", "shutdown", "step_shard",
    "sync_buffers", "world_size",
]
