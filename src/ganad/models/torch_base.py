"""What every neural detector shares: device, seeding, batching, eval-mode scoring, state.

A subclass sets ``input_kind``, implements ``_build(input_shape)`` (creates
``self.nets_``, an ``nn.ModuleDict``), ``_train(x)`` and
``_score_batch(batch) -> dict[str, Tensor]``.  ``_train`` declares its
training as data, one :class:`Phase` per phase (a GAN, then an encoder; an
autoencoder pretraining, then the objective), and hands the list to
:meth:`TorchDetector._run_phases`, which owns the loop (:func:`ganad.train.fit_loop`):
the hold-out, the batching, one checkpoint file per phase, resume, early stopping
and which phase the validation loss is asked about.  Scoring always runs with every
net in ``eval()`` mode under ``torch.inference_mode()`` (train-mode BatchNorm
at test time is a known bug of several reference implementations), one
batch at a time, so a sample's score never depends on its batch mates.
Methods that need gradients at test time (AnoGAN, ADGAN) override
``_score_parts`` and still call ``self.nets_.eval()``.
"""

from __future__ import annotations

import os
import random
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from .. import distributed
from ..base import BaseDetector
from ..params import BOOL, POSITIVE_INT, SHARE, SHARED, Path
from ..data.transforms import from_model_output, model_size, to_model_input, unit_to_model
from ..nets.fold import folded_for_scoring

if TYPE_CHECKING:
    from ..train import History, StepFn


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; under torchrun ``"cuda"`` is GPU ``LOCAL_RANK``."""
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if str(device) == "auto" else device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available")
    if dev.type == "cuda" and dev.index is None and distributed.is_distributed():
        dev = torch.device("cuda", distributed.local_rank() % torch.cuda.device_count())
    return dev


def seed_everything(seed: int | None) -> torch.Generator:
    """Seed Python, numpy and torch; return a CPU generator for data order."""
    g = torch.Generator()
    if seed is None:
        g.seed()
        return g
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    g.manual_seed(seed)
    return g


def crop_to_input(t: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """The centred (h, w) window of a padded (N, C, S, S) tensor (the original pixels)."""
    h, w = hw
    s_h, s_w = t.shape[-2:]
    if (s_h, s_w) == (h, w) or h > s_h or w > s_w:  # not padded (or resized: keep all pixels)
        return t
    top, left = (s_h - h) // 2, (s_w - w) // 2
    return t[..., top : top + h, left : left + w]


def _fuse_adam(state: Mapping[str, Any]) -> None:
    """Adam / AdamW in ``state`` step with PyTorch's fused CPU kernel (one pass over each
    tensor instead of a chain of foreach ops).  Its rounding differs from the default
    kernel's in the last bit, so the engine uses it only where bf16 already changes the
    numbers."""
    for opt in state.values():
        if isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
            for group in opt.param_groups:
                if not group.get("differentiable") and not group.get("capturable"):
                    group["foreach"], group["fused"] = False, True


def _channels_last_input(to_input: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], Any]:
    """``to_input`` whose image batches (4-D tensors) come in channels-last layout."""
    def wrapped(a: np.ndarray) -> Any:
        t = to_input(a)
        return t.contiguous(memory_format=torch.channels_last) if isinstance(t, torch.Tensor) and t.dim() == 4 else t
    return wrapped


@dataclass(frozen=True)
class Phase:
    """One training phase as plain data, for :meth:`TorchDetector._run_phases`.

    name : the checkpoint suffix: the phase's file is ``<checkpoint>.<name>``
        ("" = the checkpoint path itself); one of the class's ``checkpoint_phases``.
    epochs : the phase's epochs.
    make_step : called when the phase starts, after the phases before it have
        trained (also when its checkpoint is finished and nothing is left to
        train): sets the phase up (train / eval modes, statistics of the earlier
        phases) and returns ``step(batch, t)``, ``t`` a :class:`ganad.train.StepIndex`
        (``t.epoch``: the phase's epoch).
    state : what the phase's checkpoint holds beside the nets (its optimisers).
    nets : the modules the checkpoint holds (and early stopping restores), under
        their own names; None: all of ``nets_``, as "nets".
    frozen : modules the phase must not update: their parameters need no
        gradient while it runs (given back afterwards).
    validate : False: no validation loss (and no early stopping) in this phase,
        even with ``validation_fraction > 0``.
    val_loss : ``(x_val, phase) -> float`` for this phase; None: ``_val_loss``.
    min_steps : the fewest optimisation steps: the loop raises ``epochs`` to
        ceil(min_steps / steps per epoch) on small data (0, or ``epochs`` = 0: exactly ``epochs``).
    """

    name: str
    epochs: int
    make_step: Callable[[], StepFn]
    state: Mapping[str, Any] = field(default_factory=dict)
    nets: Mapping[str, nn.Module] | None = None
    frozen: Sequence[nn.Module] = ()
    validate: bool = True
    val_loss: Callable[[np.ndarray, Phase], float] | None = None
    min_steps: int = 0


class TorchDetector(BaseDetector):
    """Base of the neural detectors (GANs, autoencoders, Deep SVDD).

    ``epochs``, ``batch_size``, ``device`` and ``precision`` are hyper-parameters
    many models share: their constraints and meanings are declared once, in
    :data:`ganad.params.SHARED` and :data:`ganad.params.SHARED_DOCS`.

    Parameters
    ----------
    verbose : show progress bars (tqdm on stderr, with images/s) while training and scoring.
    checkpoint : file the training state is saved to after every epoch; a rerun
        resumes from it (None = no checkpoint).
    resume : False deletes the checkpoint files first and trains from scratch.
    validation_fraction : share of the training images held out for early
        stopping, in [0, 0.5) (0 = none).
    patience : stop after this many epochs without a better validation loss
        and keep the best weights (None = never; needs validation_fraction > 0).
    calibration_fraction : share of the training images held out of the fit to
        calibrate ``threshold_``, in [0, 0.5) (0 = in-sample scores).
    sync_batchnorm : under torchrun (``ganad fit --nproc N``), BatchNorm layers use
        the statistics of the whole global batch instead of each process's slice
        (CPU/gloo and CUDA/NCCL); no effect in one process.
    """

    input_kind = "image"
    # Score conv nets in channels-last layout on CPU (see _scoring); False keeps
    # the default layout (the latent-search detectors never use _scoring).
    channels_last_scoring = True
    # The training phases, in order, as (checkpoint suffix, parameter giving the
    # phase's epochs): a phase's file is "<checkpoint>.<suffix>" ("" = the path itself).
    checkpoint_phases: ClassVar[tuple[tuple[str, str], ...]] = (("", "epochs"),)

    def __init__(
        self,
        epochs: int = 15,
        batch_size: int = 64,
        device: str = "auto",
        verbose: bool = False,
        checkpoint: str | None = None,
        resume: bool = True,
        validation_fraction: float = 0.0,
        patience: int | None = None,
        calibration_fraction: float = 0.1,
        precision: str = "fp32",
        sync_batchnorm: bool = False,
        contamination: float = 0.1,
        random_state: int | None = 0,
        value_range: tuple[float, float] | None = None,
    ):
        super().__init__(contamination=contamination, random_state=random_state, value_range=value_range)
        self.epochs = epochs
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose
        self.checkpoint = checkpoint
        self.resume = resume  # False: delete the checkpoint files first and train from scratch
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.calibration_fraction = calibration_fraction
        self.precision = precision
        self.sync_batchnorm = sync_batchnorm

    _parameter_constraints = {
        "epochs": SHARED["epochs"], "batch_size": SHARED["batch_size"], "verbose": [BOOL], "resume": [BOOL],
        "sync_batchnorm": [BOOL],
        "checkpoint": [Path, None], "validation_fraction": [SHARE], "patience": [POSITIVE_INT, None],
        "calibration_fraction": [SHARE], "precision": SHARED["precision"], "device": SHARED["device"],
    }

    def _check_params(self) -> None:
        super()._check_params()
        if str(self.device) != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {self.device!r}") from None
        if self.patience is not None and self.validation_fraction == 0.0:
            raise ValueError("early stopping (patience) needs validation_fraction > 0")

    # ----------------------------------------------------------------- hooks
    def _build(self, input_shape: tuple[int, ...]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _train(self, x: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _val_loss(self, x_val: np.ndarray, phase: Phase | None = None) -> float:
        """Early-stopping criterion on held-out *normal* training images, lower is better.

        Default: the mean anomaly score of the normal validation images (a
        model that scores unseen normal data as normal is doing its job).
        Subclasses may override it with their training objective; ``phase`` is
        the :class:`Phase` that is training (the loop passes it).
        """
        return float(np.mean(self._score_parts(x_val)["score"]))

    def _holdout(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(images to fit, held-out normal images or None): a seeded share
        ``validation_fraction`` of ``x`` for early stopping, never fitted on."""
        if self.validation_fraction <= 0:
            return x, None
        order = np.random.default_rng(self.random_state).permutation(len(x))
        n_val = max(1, int(round(len(x) * self.validation_fraction)))
        return x[np.sort(order[n_val:])], x[np.sort(order[:n_val])]

    def _run_loop(
        self, step: StepFn, x: np.ndarray, state: dict[str, Any], *, epochs: int | None = None,
        suffix: str | None = None, min_steps: int = 0,
    ) -> History:
        """Train one phase: ``step`` for ``epochs`` (default ``self.epochs``; at least
        ``min_steps`` steps) with ``state`` (the optimizers) checkpointed beside
        ``self.nets_``, in the checkpoint file of ``suffix`` (see :class:`Phase` and
        :meth:`_run_phases`)."""
        phase = Phase(suffix or "", self.epochs if epochs is None else epochs, lambda: step, state,
                      min_steps=min_steps)
        return self._run_phases([phase], x)[-1]

    def _run_phases(
        self, phases: Sequence[Phase], x: np.ndarray, *, data: np.ndarray | None = None,
        to_input: Callable[[np.ndarray], torch.Tensor] | None = None, x_val: np.ndarray | None = None,
    ) -> list[History]:
        """Run ``phases`` in order with :func:`ganad.train.fit_loop`; their Histories.

        Each phase has its own checkpoint file (:meth:`_checkpoint_path`) and run
        key (:meth:`_run_key` of ``x``): a run killed in any phase resumes there,
        and a finished phase's file makes it return at once with its weights.
        With ``validation_fraction > 0`` one seeded share of ``x`` (normal data,
        :meth:`_holdout`) is kept out of every phase for early stopping.
        ``data`` replaces that split: the loop batches ``data`` through
        ``to_input`` (default :meth:`_to_input`) and validates on ``x_val``
        (None: no validation).  ``history_`` is the last phase's History;
        ``updates_`` maps ``"<phase>/<optimiser>"`` (``"<optimiser>"`` in an
        unnamed phase) to the optimiser steps taken, the training budget per network.
        """
        names = {suffix for suffix, _ in self.checkpoint_phases}
        unknown = [p.name for p in phases if p.name not in names]
        if unknown:  # resume=False would leave their checkpoint files behind
            raise ValueError(f"{type(self).__name__}: phases {unknown} are not in checkpoint_phases")
        if data is None:
            data, x_val = self._holdout(x)
        histories = []
        self.updates_: dict[str, int] = {}
        for phase in phases:
            histories.append(self._run_phase(phase, x, data, to_input or self._to_input, x_val))
            self.history_ = histories[-1]
            prefix = f"{phase.name}/" if phase.name else ""
            self.updates_.update({prefix + k: v for k, v in self.history_.updates.items()})
        return histories

    def _run_phase(
        self, phase: Phase, x: np.ndarray, data: np.ndarray, to_input: Callable[[np.ndarray], torch.Tensor],
        x_val: np.ndarray | None,
    ) -> History:
        """One phase of :meth:`_run_phases`: its step, checkpoint, run key and validation.

        bf16 on CPU also picks the faster kernels: Adam's fused one (:func:`_fuse_adam`)
        and, for image nets, channels-last layout (given back afterwards).  fp32 is left
        as declared (contiguous layout, the single-tensor Adam)."""
        from ..train import fit_loop

        checkpoint = self._checkpoint_path(phase.name)
        val = phase.val_loss or self._val_loss
        val_loss = None if x_val is None or not phase.validate else (lambda: val(x_val, phase))
        state = {**({"nets": self.nets_} if phase.nets is None else phase.nets), **phase.state}
        frozen = [(p, p.requires_grad) for m in phase.frozen for p in m.parameters()]
        for p, _ in frozen:
            p.requires_grad_(False)
        cpu_bf16 = self.precision == "bf16" and self.device_.type == "cpu"
        cl = cpu_bf16 and self.channels_last_scoring and len(self.input_shape_) == 3
        if cpu_bf16:
            _fuse_adam(state)
        if cl:  # oneDNN's AMX kernels take channels-last without reorders
            self.nets_.to(memory_format=torch.channels_last)
            to_input = _channels_last_input(to_input)
        try:
            return fit_loop(
                phase.make_step(), data, to_input, epochs=phase.epochs, batch_size=self.batch_size,
                generator=self._generator, state=state,
                checkpoint=checkpoint, val_loss=val_loss, patience=None if val_loss is None else self.patience,
                verbose=self.verbose, desc=f"{self.name}-{phase.name}" if phase.name else self.name,
                run_key=None if checkpoint is None else self._run_key(x, phase.name),
                step_context=self._train_precision, sync_batchnorm=bool(self.sync_batchnorm),
                min_steps=phase.min_steps,
            )
        finally:
            for p, needed in frozen:
                p.requires_grad_(needed)
            if cl:  # saved weights and fp32 code paths keep the default layout
                self.nets_.to(memory_format=torch.contiguous_format)

    def _checkpoint_path(self, suffix: str) -> str | None:
        """The checkpoint file of the phase ``suffix`` (None without ``checkpoint``)."""
        if self.checkpoint is None:
            return None
        return f"{os.fspath(self.checkpoint)}.{suffix}" if suffix else os.fspath(self.checkpoint)

    def _run_key(self, x: np.ndarray, suffix: str) -> dict[str, Any]:
        """Fingerprint of this phase's run (:func:`ganad.run_identity.run_key`) on ``x``.

        The epoch counts of this phase and of later ones are left out (the loop
        checks the phase's length itself); earlier phases' counts stay in, since
        this phase starts from their result.
        """
        from ..run_identity import run_key

        return run_key(self, x, phase=suffix)

    def _drop_checkpoints(self) -> None:
        """``resume=False``: remove every phase's checkpoint file, so the run starts fresh
        (under torchrun rank 0 removes them while the others wait)."""
        if distributed.is_main():
            for suffix, _ in self.checkpoint_phases:
                path = self._checkpoint_path(suffix)
                if path is not None and os.path.isfile(path):
                    os.remove(path)
        distributed.barrier("barrier (removing checkpoints)")

    @staticmethod
    def _global_mean(t: torch.Tensor) -> torch.Tensor:
        """A step's batch mean ``t`` -> the global batch's under torchrun (``t`` in one
        process): for decisions a step takes on a batch statistic, so that every
        process takes the same one (:func:`ganad.distributed.global_mean`)."""
        return distributed.global_mean(t)

    def _extra_state(self) -> dict[str, Any]:
        """Fitted tensors other than the nets' weights (score normalisers, centres)."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # --------------------------------------------------------------- helpers
    @property
    def image_size_(self) -> int:
        """Side the nets work at (28 -> 32, 8 -> 8, 64 -> 64)."""
        _, h, w = self.input_shape_
        return model_size(h, w)

    def _to_input(self, x: np.ndarray) -> torch.Tensor:
        """numpy batch -> model tensor on the device ([-1, 1] images, or float features)."""
        if self.input_kind == "tabular" or len(self.input_shape_) == 1:
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device_)
        return to_model_input(x, self.device_, self.image_size_)

    def _prepare_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """Images as a float tensor in [0, 1] (N, C, H, W) -> the nets' input: the tensor
        part of :meth:`_to_input`, in torch ops only (the ONNX graph of :mod:`ganad.export`
        runs it); a detector with its own preprocessing overrides both."""
        return unit_to_model(t, self.image_size_)

    def _crop(self, t: torch.Tensor) -> torch.Tensor:
        """The input's own pixels of a batch at the nets' side (the padding of :meth:`_to_input` cut off),
        so that losses and scores are not diluted by constant padding."""
        return crop_to_input(t, self.input_shape_[1:])

    def _iter_batches(self, x: np.ndarray, batch_size: int | None = None) -> Iterator[torch.Tensor]:
        bs = batch_size or max(self.batch_size, 256)
        for i in range(0, len(x), bs):
            yield self._to_input(x[i : i + bs])

    # ------------------------------------------------------------- contract
    def _fit(self, x: np.ndarray) -> None:
        distributed.init_from_env()  # under torchrun: join the group (a no-op otherwise)
        self.device_ = resolve_device(self.device)
        if not self.resume:
            self._drop_checkpoints()
        # every process seeds alike: the same initial nets, data order and noise
        self._generator = seed_everything(distributed.shared_seed(self.random_state))
        self._build(self.input_shape_)
        self.nets_.to(self.device_)
        self._train(x)
        self.nets_.eval()

    def _autocast(self, *, cache: bool) -> Any:
        """The precision context: a no-op in fp32, bfloat16 autocast otherwise.

        Training enters it per step with ``cache=False``: autocast's cache of
        cast weights lives until the region is left, so a step that updates a
        net and then runs it again would otherwise see the weights of before
        the update.  Scoring changes no weight and keeps the cache.
        """
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device_.type, dtype=torch.bfloat16, cache_enabled=cache)

    def _train_precision(self) -> Any:
        return self._autocast(cache=False)

    @contextmanager
    def _scoring(self) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
        """Eval mode and inference_mode for a scoring pass; yields the batch preparer.

        On CPU, convolutional nets score in channels-last layout (oneDNN's
        preferred one, faster for GANomaly); the layout is restored
        afterwards, so training and saved weights are unaffected.  In bf16,
        ``self.nets_`` is, for the pass, a copy with eval-mode BatchNorm folded
        into the convolutions before it (:mod:`ganad.nets.fold`; kept while the
        weights are unchanged): GANomaly width 32 on 2 threads scored 8,602 img/s
        unfolded and 11,852 folded in one A/B run (an unstored measurement).
        fp32 scores with the nets as trained.  Score functions therefore look up
        ``self.nets_`` inside the pass, not before it.
        """
        self.nets_.eval()
        trained = self.nets_
        folded = folded_for_scoring(trained) if self.precision != "fp32" else None
        cl = self.channels_last_scoring and self.device_.type == "cpu" and len(self.input_shape_) == 3
        if folded is not None:
            self.nets_ = folded
        if cl:
            self.nets_.to(memory_format=torch.channels_last)
        try:
            # cached(): spectral-norm weights are computed once per pass, not per batch
            with torch.inference_mode(), parametrize.cached(), self._autocast(cache=True):
                yield (lambda b: b.contiguous(memory_format=torch.channels_last)) if cl else (lambda b: b)
        finally:
            if cl and folded is None:
                trained.to(memory_format=torch.contiguous_format)
            self.nets_ = trained

    def _score_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return self._fill(x, self._score_batch)

    def _fill(self, x: np.ndarray, fn: Callable[[torch.Tensor], dict[str, torch.Tensor]]) -> dict[str, np.ndarray]:
        """``fn(batch) -> {name: (B,) tensor}`` over ``x``, in one scoring pass.

        The results go straight into arrays allocated once: keeping per-batch
        arrays until a final concatenate made RSS grow with every batch with the
        spectral-norm nets (ALAD fitted on 60,000 images now peaks at 657 MB,
        benchmarks/memory/memory-60k.jsonl).

        Under torchrun every process scores a contiguous run of whole batches
        (:func:`ganad.distributed.score_shard`: the one-process batches, no
        duplicates) and the results are gathered in input order, so every
        process must call it (``decision_function`` is collective there).
        """
        from ..progress import progress

        distributed.init_from_env()
        bs = max(self.batch_size, 256)
        lo, hi = distributed.score_shard(len(x), bs)
        part = x[lo:hi]
        out: dict[str, np.ndarray] = {}
        start = 0
        desc = f"{self.name or type(self).__name__} score"
        show = bool(self.verbose) and distributed.is_main()
        with self._scoring() as prepare, progress(len(part), desc, show) as bar:
            for batch in map(prepare, self._iter_batches(part, bs)):
                stop = start + len(batch)
                for k, v in fn(batch).items():
                    if k not in out:
                        out[k] = np.empty(len(part), dtype=np.float32)
                    out[k][start:stop] = v.detach().float().cpu().numpy()
                start = stop
                bar.update(len(batch))
        return distributed.gather_parts(out, len(x))

    # Neural detectors hold out a plain ``calibration_fraction`` (no minimum): on
    # small data sets every image held out of training costs them more than a
    # noisier quantile does.
    calibration_min = 0

    def _calibration_size(self, n: int) -> int:
        # detectors that search at test time cap their calibration set (scoring is their cost)
        cap = getattr(self, "threshold_images", None)
        size = super()._calibration_size(n)
        return size if cap is None else max(1, min(size, int(cap)))

    def _calibration_split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``calibration_fraction=0`` fits on everything and takes ``threshold_`` from
        in-sample scores (the behaviour of most reference code; it over-flags new normals)."""
        if self.calibration_fraction > 0:
            return super()._calibration_split(x)
        cap = getattr(self, "threshold_images", None)
        if self.score_fit_data or cap is None or cap >= len(x):
            return x, (None if self.score_fit_data else x)
        rng = np.random.default_rng([0 if self.random_state is None else int(self.random_state), 0x7405])
        return x, x[np.sort(rng.choice(len(x), size=int(cap), replace=False))]

    # ------------------------------------------------------------ anomaly maps
    #: the per-pixel error of :meth:`_map_batch`'s default: "l1" |x - x_hat| or "l2"
    #: (x - x_hat)^2, as the model's own reconstruction term
    map_error: ClassVar[str] = "l1"

    def _reconstruct_batch(self, batch: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """x_hat (B, C, S, S) in model units for a prepared batch (eval mode, inference mode)."""
        raise NotImplementedError

    def _map_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """The per-pixel map (B, S', S') of a prepared batch, higher = more anomalous: by
        default the ``map_error`` between the batch and :meth:`_reconstruct_batch`, averaged
        over channels.  S' is the nets' side or already the input's (see :meth:`_map_to_input`)."""
        diff = batch - self._reconstruct_batch(batch)
        return (diff.abs() if self.map_error == "l1" else diff.pow(2)).mean(1)

    def _map_to_input(self, m: torch.Tensor) -> torch.Tensor:
        """(B, S, S) at the nets' side -> (B, H, W) at the input's: the padding that
        :func:`ganad.data.transforms.to_model_input` added is cropped off, a resize is undone."""
        h, w = self.input_shape_[1:]
        m = crop_to_input(m, (h, w))
        if tuple(m.shape[-2:]) != (h, w):
            m = torch.nn.functional.interpolate(m[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
        return m

    def _anomaly_map(self, x: np.ndarray) -> np.ndarray:
        """:meth:`_map_batch` over ``x`` in one scoring pass (eval mode, inference mode,
        batches as for scoring), so that a map never depends on its batch mates."""
        from ..progress import progress

        h, w = self.input_shape_[1:]
        out = np.empty((len(x), h, w), dtype=np.float32)
        start = 0
        desc = f"{self.name or type(self).__name__} map"
        with self._scoring() as prepare, progress(len(x), desc, bool(self.verbose)) as bar:
            for batch in map(prepare, self._iter_batches(x)):
                m = self._map_to_input(self._map_batch(batch))
                out[start : start + len(m)] = m.detach().float().cpu().numpy()
                start += len(m)
                bar.update(len(m))
        return out

    def _reconstructions(self, X: Any) -> np.ndarray:
        """:meth:`_reconstruct_batch` of every image of ``X`` in [0, 1], shaped like the input
        images (N, C, H, W), in eval mode: the body of the autoencoders' ``reconstruct``."""
        self._check_fitted()
        x = self._validate(X, fitting=False)
        self.nets_.eval()
        out = []
        with torch.inference_mode():
            for batch in self._iter_batches(x):
                out.append(from_model_output(self._reconstruct_batch(batch), *self.input_shape_[1:]))
        return np.concatenate(out)

    def _batched(self, x: np.ndarray, fn: Any) -> np.ndarray:
        """``fn(batch) -> (B,) tensor`` over ``x`` in eval mode under inference_mode."""
        return self._fill(x, lambda b: {"score": fn(b)})["score"]

    def _get_state(self) -> dict[str, Any]:
        nets = {k: v.detach().cpu() for k, v in self.nets_.state_dict().items()}
        extra = {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in self._extra_state().items()}
        return {"nets": nets, "extra": extra}

    def _set_state(self, state: dict[str, Any]) -> None:
        # a loaded model is not tied to the run that trained it (files written
        # before checkpoint/resume were left out of the saved config carry them)
        self.checkpoint, self.resume = None, True
        self.device_ = resolve_device(self.device)
        self._build(self.input_shape_)
        self.nets_.load_state_dict(state["nets"])
        self.nets_.to(self.device_).eval()
        self._load_extra_state(state.get("extra", {}))

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.nets_.parameters())


class DCGANDetector(TorchDetector):
    """A detector on DCGAN-style nets: latent size ``nz``, base channel ``width`` and
    Adam(``lr``, (``beta1``, 0.999)) for its nets.

    One declaration of these hyper-parameters, their constraints and the optimiser
    factory, which AnoGAN, GANomaly, EGBAD / ALAD, GAAE and the autoencoders share.
    """

    def __init__(self, nz: int, width: int | None, lr: float, beta1: float, **common: Any):
        super().__init__(**common)
        self.nz = nz
        self.width = width
        self.lr = lr
        self.beta1 = beta1

    _parameter_constraints = {
        "nz": SHARED["nz"], "width": [POSITIVE_INT], "lr": SHARED["lr"], "beta1": SHARED["beta1"],
    }

    def _adam(self, *modules: nn.Module, **kw: Any) -> torch.optim.Optimizer:
        """Adam(lr, (beta1, 0.999)) over every parameter of ``modules``: one optimiser for them
        all, which updates each net as its own would (Adam is per parameter); ``kw`` goes to
        :func:`make_optimizer` (``kind="adamw"``, ``weight_decay``)."""
        params = [p for m in modules for p in m.parameters()]
        return make_optimizer(params, self.lr, (self.beta1, 0.999), **kw)


def make_optimizer(
    params: Any, lr: float, betas: tuple[float, float] = (0.5, 0.999), kind: str = "adam", weight_decay: float | None = None
) -> torch.optim.Optimizer:
    """Adam (DCGAN betas by default), AdamW, RMSprop or SGD.

    ``weight_decay=None`` takes the optimizer's usual default (0, or 1e-2 for
    AdamW); an explicit 0 is kept.
    """
    if weight_decay is None:
        weight_decay = 1e-2 if kind.lower() == "adamw" else 0.0
    kind = kind.lower()
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}")


def module_dict(**nets: nn.Module) -> nn.ModuleDict:
    return nn.ModuleDict(nets)
