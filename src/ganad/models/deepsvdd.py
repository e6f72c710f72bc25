"""Deep SVDD (Ruff, Vandermeulen, Goernitz, Deecke, Siddiqui, Binder, Mueller & Kloft, ICML 2018).

A bias-free network phi (LeNet type, :mod:`ganad.nets.lenet`) is trained to
map the normal data into a small hypersphere of centre c.  Reference code:
the authors' lukasruff/Deep-SVDD-PyTorch.  The paper's equations are named
here, not numbered: its text was not available to check the numbers.

The paper's One-Class Deep SVDD objective:

    min_W  1/n sum_i ||phi(x_i; W) - c||^2  +  lambda/2 sum_l ||W^l||_F^2

The paper's soft-boundary Deep SVDD objective, radius R and nu in (0, 1]:

    min_{R, W}  R^2 + 1/(nu n) sum_i max(0, ||phi(x_i; W) - c||^2 - R^2)  +  lambda/2 sum_l ||W^l||_F^2

The weight-decay term is Adam's (coupled L2) ``weight_decay``, as in the
reference.  R is not a gradient variable: after ``warm_up_epochs`` epochs it
is set after every mini-batch step to the (1 - nu)-quantile of the batch's
distances ||phi - c|| (the reference's line search for R).

Anomaly score (the paper's):  s(x) = ||phi(x) - c||^2, minus R^2 for the
soft-boundary objective.  ``score_parts`` gives "distance" (||phi - c||^2)
and "score".

Training (as the reference code):

1. Preprocessing: per-image global contrast normalisation with the l1 scale,
   x <- (x - mean(x)) / mean|x - mean(x)| on pixels in [0, 1], then min-max
   scaling with the smallest and largest GCN'd pixel value of the *training*
   images (the normal class); the two constants are fitted in ``fit`` and
   saved with the model (``data_min_``, ``data_max_``).  This replaces the
   toolkit's usual [-1, 1] scaling (``_to_input`` is overridden).
2. Autoencoder pretraining for ``pretrain_epochs`` epochs (LeNet encoder +
   mirrored decoder, loss = batch mean of the per-sample sum of squared
   errors, Adam ``pretrain_lr``, ``pretrain_weight_decay``).
3. c = mean of phi over the training set in one eval-mode forward pass;
   coordinates with |c_i| < eps (0.1) are moved to +-eps (sign of c_i) so
   that no unit can reach c by dying (see hypersphere collapse below).
4. SVDD training of the encoder for ``epochs`` epochs (Adam ``lr``, ``weight_decay``).

Hypersphere collapse (the trivial solution the paper proves reachable when
c is the output of all-zero weights, when the net has bias terms, or when
its activations are bounded) is prevented as in the paper: no bias terms
anywhere, no affine BatchNorm, unbounded (LeakyReLU) activations, and c
fixed away from the initial all-zero output.

Defaults: the reference's hyper-parameters (lr 1e-4, batch 200, weight decay
0.5e-6; AE weight decay 0.5e-3 for MNIST, 0.5e-6 for CIFAR) with fewer epochs
(50 + 50 instead of 150 + 150, lr x 0.1 after epoch 30 of each phase
instead of 50), sized for a CPU: the LeNet nets are small (the benchmark's
15 + 15 epochs on a Fashion-MNIST class took 61-94 s on one CPU thread, the
stored one-class records; benchmarks/README.md, section Deep SVDD).

Deviations from the reference code (lukasruff/Deep-SVDD-PyTorch), and why:

* The lr drop happens at the start of the stated milestone epoch; the
  reference calls ``scheduler.step()`` at the start of each epoch, so with
  PyTorch >= 1.1 its drop comes one epoch early.
* A c_i of exactly 0 is moved to +eps (the reference's masks leave it at 0).
* GCN of a constant image divides 0 by 0 in the reference (NaN); here an
  image whose mean absolute deviation is below 1e-6 becomes the zero image.
* Inputs whose side is not divisible by 2**stages are zero-padded (centred,
  before GCN); the reference only handles 28 and 32 px.
* The decoder is built by :class:`ganad.nets.lenet.LeNetDecoder` (see its
  notes: intermediate sides 7/14 instead of 8/14 for MNIST).  The SVDD net
  is the pretrained encoder object itself, not a copy of its weights.
* ``net="auto"`` picks the MNIST LeNet for one channel and the CIFAR LeNet
  otherwise; the min-max constants are computed from the training data
  (the reference's definition: GCN'd training images of the normal class)
  rather than looked up in its per-class table, so any training set works.
  Not checked against the table's numbers: MNIST and CIFAR-10 are not on
  this machine.
* With ``validation_fraction > 0`` (early stopping) the held-out normal
  images still enter the min-max constants and c (they are training normals).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.arrays import as_nchw, to_unit_float
from ..distributed import gather_batch
from ..nets.lenet import LENET_PRESETS, lenet_pair
from ..params import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, Interval, Options, ListOf
from ..registry import register
from ..train import StepFn, StepIndex
from .torch_base import Phase, TorchDetector, module_dict

OBJECTIVES = ("one-class", "soft-boundary")
NETS = ("auto", "mnist", "cifar")
GCN_FLAT = 1e-6  # mean absolute deviation (pixels in [0, 1]) below which an image counts as constant


def _as_tuple(v: Any) -> Any:
    """Lists (what a JSON config gives back) -> tuples, so saved and loaded params compare equal."""
    return tuple(v) if isinstance(v, list) else v


def global_contrast_normalization(x: torch.Tensor) -> torch.Tensor:
    """Per-image GCN with the l1 scale: (x - mean x) / mean |x - mean x| over C, H, W."""
    x = x - x.mean(dim=(1, 2, 3), keepdim=True)
    scale = x.abs().mean(dim=(1, 2, 3), keepdim=True)
    flat = scale <= GCN_FLAT  # a constant image (up to float rounding) has no contrast to normalise
    return torch.where(flat, torch.zeros_like(x), x / torch.where(flat, torch.ones_like(scale), scale))


class Hypersphere(nn.Module):
    """Fitted non-weight state: centre c, radius R and the min-max input constants (buffers)."""

    def __init__(self, rep_dim: int):
        super().__init__()
        self.register_buffer("c", torch.zeros(rep_dim))
        self.register_buffer("radius", torch.zeros(()))
        self.register_buffer("data_min", torch.zeros(()))  # (0, 1): identity until fitted
        self.register_buffer("data_max", torch.ones(()))


@register("deepsvdd")
class DeepSVDD(TorchDetector):
    """Deep SVDD, one-class or soft-boundary; score = ||phi(x) - c||^2 (- R^2).

    Parameters
    ----------
    objective : "one-class" or "soft-boundary"
    nu : float in (0, 1]
        Soft-boundary trade-off (share of training points allowed outside the sphere).
    net : "auto", "mnist" or "cifar"
        LeNet preset; "auto": "mnist" for 1 channel, else "cifar".
    rep_dim : int or None
        Output dimension of phi (None: the preset's, 32 / 128); a multiple of 16
        when pretraining (the decoder reshapes the code to (rep_dim/16, 4, 4)).
    lr, weight_decay, lr_milestones :
        Adam for the SVDD phase; the lr is multiplied by 0.1 at each milestone epoch.
    pretrain_epochs, pretrain_lr, pretrain_weight_decay, pretrain_lr_milestones :
        The autoencoder phase; ``pretrain_epochs=0`` skips it (SVDD from a random
        init); ``pretrain_weight_decay=None`` takes the preset's (5e-4 / 5e-7).
    warm_up_epochs : int
        Soft-boundary: epochs before R is first updated.
    eps : float
        Centre coordinates with |c_i| < eps are moved to +-eps.
    **common :
        ``epochs`` (SVDD phase, default 50), ``batch_size`` (default 200) and the
        other :class:`TorchDetector` settings.
    """

    def __init__(
        self,
        objective: str = "one-class",
        nu: float = 0.1,
        net: str = "auto",
        rep_dim: int | None = None,
        lr: float = 1e-4,
        weight_decay: float = 5e-7,
        lr_milestones: Sequence[int] = (30,),
        pretrain_epochs: int = 50,
        pretrain_lr: float = 1e-4,
        pretrain_weight_decay: float | None = None,
        pretrain_lr_milestones: Sequence[int] = (30,),
        warm_up_epochs: int = 10,
        eps: float = 0.1,
        **common: Any,
    ):
        common.setdefault("epochs", 50)
        common.setdefault("batch_size", 200)
        super().__init__(**common)
        self.objective = objective
        self.nu = nu
        self.net = net
        self.rep_dim = rep_dim
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_milestones = _as_tuple(lr_milestones)
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.pretrain_weight_decay = pretrain_weight_decay
        self.pretrain_lr_milestones = _as_tuple(pretrain_lr_milestones)
        self.warm_up_epochs = warm_up_epochs
        self.eps = eps

    # ------------------------------------------------------------ params
    _parameter_constraints = {
        "objective": [Options(OBJECTIVES)], "nu": [Interval(float, 0, 1, "right")], "net": [Options(NETS)],
        "rep_dim": [POSITIVE_INT, None], "lr": [POSITIVE], "pretrain_lr": [POSITIVE], "eps": [POSITIVE],
        "weight_decay": [NON_NEGATIVE, None], "pretrain_weight_decay": [NON_NEGATIVE, None],
        "pretrain_epochs": [NON_NEGATIVE_INT], "warm_up_epochs": [NON_NEGATIVE_INT],
        "lr_milestones": [ListOf(POSITIVE_INT)], "pretrain_lr_milestones": [ListOf(POSITIVE_INT)],
    }

    def _check_params(self) -> None:
        super()._check_params()
        if self.rep_dim is not None and self.pretrain_epochs and self.rep_dim % 16:
            raise ValueError(f"rep_dim must be a multiple of 16 for autoencoder pretraining; got {self.rep_dim}")

    # ------------------------------------------------------------- nets
    @property
    def preset_(self) -> str:
        if self.net != "auto":
            return self.net
        return "mnist" if self.input_shape_[0] == 1 else "cifar"

    def _padded_hw(self) -> tuple[int, int]:
        m = 2 ** len(LENET_PRESETS[self.preset_]["widths"])
        _, h, w = self.input_shape_
        return -(-h // m) * m, -(-w // m) * m

    def _build(self, input_shape: tuple[int, ...]) -> None:
        enc, dec = lenet_pair(self.preset_, input_shape[0], self._padded_hw(), self.rep_dim)
        self.nets_ = module_dict(phi=enc, sphere=Hypersphere(enc.rep_dim))
        self._decoder = dec  # pretraining only; not part of the fitted model

    # ------------------------------------------------------------ input
    def _to_input(self, x: np.ndarray) -> torch.Tensor:
        """uint8 / [0, 1] images -> GCN (l1) -> min-max with the training constants."""
        t = torch.from_numpy(to_unit_float(np.ascontiguousarray(as_nchw(x))))
        return self._prepare_tensor(t).to(self.device_)

    def _prepare_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """The tensor part of ``_to_input`` (images in [0, 1] -> padded, GCN, min-max)."""
        h, w = t.shape[-2:]
        ph, pw = self._padded_hw()
        if (h, w) != (ph, pw):
            top, left = (ph - h) // 2, (pw - w) // 2
            t = F.pad(t, (left, pw - w - left, top, ph - h - top), value=0.0)
        t = global_contrast_normalization(t)
        s = self.nets_["sphere"]
        lo, hi = float(s.data_min), float(s.data_max)
        return (t - lo) / max(hi - lo, 1e-12)

    # -------------------------------------------------------------- fit
    @staticmethod
    def _set_lr(opt: torch.optim.Optimizer, base: float, epoch: int, milestones: Sequence[int]) -> None:
        lr = base * 0.1 ** sum(epoch >= m for m in milestones)
        for g in opt.param_groups:
            g["lr"] = lr

    # autoencoder pretraining ("<checkpoint>.pretrain"), then SVDD (the checkpoint path itself)
    checkpoint_phases = (("pretrain", "pretrain_epochs"), ("", "epochs"))

    def _train(self, x: np.ndarray) -> None:
        self._fit_minmax(x)
        phases = [self._pretrain_phase()] if self.pretrain_epochs > 0 else []
        phases.append(self._svdd_phase(x))
        histories = self._run_phases(phases, x)
        self.pretrain_history_ = histories[0] if self.pretrain_epochs > 0 else None

    def _fit_minmax(self, x: np.ndarray) -> None:
        """1. The min-max constants: the smallest and largest GCN'd pixel of the training images."""
        sphere = self.nets_["sphere"]
        lo, hi = np.inf, -np.inf
        for batch in self._iter_batches(x, 1024):
            lo, hi = min(lo, float(batch.min())), max(hi, float(batch.max()))
        sphere.data_min.fill_(lo)
        sphere.data_max.fill_(hi)

    def _pretrain_phase(self) -> Phase:
        """2. Autoencoder pretraining of phi and the decoder; validated on the autoencoder loss."""
        phi, dec = self.nets_["phi"], self._decoder.to(self.device_)
        wd = self.pretrain_weight_decay
        if wd is None:
            wd = 5e-4 if self.preset_ == "mnist" else 5e-7
        opt_ae = torch.optim.Adam([*phi.parameters(), *dec.parameters()], lr=self.pretrain_lr, weight_decay=wd)

        def ae_step(xb: torch.Tensor, t: StepIndex) -> dict[str, torch.Tensor]:
            self._set_lr(opt_ae, self.pretrain_lr, t.epoch, self.pretrain_lr_milestones)
            loss = (dec(phi(xb)) - xb).pow(2).flatten(1).sum(1).mean()
            opt_ae.zero_grad(set_to_none=True)
            loss.backward()
            opt_ae.step()
            return {"ae": loss}

        def make_step() -> StepFn:
            phi.train()
            dec.train()
            return ae_step

        def val_loss(x_val: np.ndarray, _: Phase) -> float:
            total = 0.0
            for batch in self._iter_batches(x_val):
                total += float((dec(phi(batch)) - batch).pow(2).flatten(1).sum(1).sum())
            return total / len(x_val)

        return Phase("pretrain", self.pretrain_epochs, make_step, {"decoder": dec, "opt_ae": opt_ae},
                     val_loss=val_loss)

    def _svdd_phase(self, x: np.ndarray) -> Phase:
        """4. SVDD training of phi, after 3. (the centre c from the pretrained phi, at the phase's start)."""
        phi, sphere = self.nets_["phi"], self.nets_["sphere"]
        opt = torch.optim.Adam(phi.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        soft = self.objective == "soft-boundary"
        q = 1.0 - self.nu

        def svdd_step(xb: torch.Tensor, t: StepIndex) -> dict[str, torch.Tensor]:
            self._set_lr(opt, self.lr, t.epoch, self.lr_milestones)
            dist = (phi(xb) - sphere.c).pow(2).sum(1)
            loss = self._objective(dist)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            out = {"svdd": loss, "mean_dist": dist.detach().mean()}
            if soft:
                if t.epoch >= self.warm_up_epochs:
                    # the quantile of the global batch under torchrun (gather_batch: identity in one process)
                    sphere.radius.fill_(float(torch.quantile(gather_batch(dist.detach()).sqrt(), q)))
                out["radius"] = sphere.radius.clone()
            return out

        def make_step() -> StepFn:
            self._fit_centre(x)
            self.__dict__.pop("_decoder", None)  # pretraining done: the SVDD net is the encoder alone
            phi.train()
            return svdd_step

        return Phase("", self.epochs, make_step, {"opt": opt})

    def _fit_centre(self, x: np.ndarray) -> None:
        """3. c = mean of phi over the training data (one eval-mode pass), kept >= eps from 0 per coordinate."""
        phi, sphere = self.nets_["phi"], self.nets_["sphere"]
        phi.eval()
        with torch.no_grad():
            total = torch.zeros(phi.rep_dim, dtype=torch.float64, device=self.device_)
            for batch in self._iter_batches(x):
                total += phi(batch).double().sum(0)
            c = (total / len(x)).float()
        small = c.abs() < self.eps
        c[small & (c < 0)] = -self.eps
        c[small & (c >= 0)] = self.eps
        sphere.c.copy_(c)
        sphere.radius.zero_()

    def _objective(self, dist: torch.Tensor) -> torch.Tensor:
        if self.objective == "one-class":
            return dist.mean()
        r2 = self.nets_["sphere"].radius.pow(2)
        return r2 + (1.0 / self.nu) * F.relu(dist - r2).mean()

    def _val_loss(self, x_val: np.ndarray, phase: Phase | None = None) -> float:
        """The SVDD objective on held-out normals (the pretraining phase declares its own: the autoencoder loss)."""
        phi = self.nets_["phi"]
        total = 0.0
        for batch in self._iter_batches(x_val):
            dist = (phi(batch) - self.nets_["sphere"].c).pow(2).sum(1)
            total += float(self._objective(dist)) * len(batch)
        return total / len(x_val)

    # ------------------------------------------------------------ score
    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        sphere = self.nets_["sphere"]
        dist = (self.nets_["phi"](batch) - sphere.c).pow(2).sum(1)
        score = dist - sphere.radius.pow(2) if self.objective == "soft-boundary" else dist
        return {"distance": dist, "score": score}

    # -------------------------------------------------------- fitted views
    @property
    def center_(self) -> np.ndarray:
        return self.nets_["sphere"].c.detach().cpu().numpy().copy()

    @property
    def radius_(self) -> float:
        return float(self.nets_["sphere"].radius)

    @property
    def data_min_(self) -> float:
        return float(self.nets_["sphere"].data_min)

    @property
    def data_max_(self) -> float:
        return float(self.nets_["sphere"].data_max)

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        self.__dict__.pop("_decoder", None)


__all__ = ["DeepSVDD", "Hypersphere", "global_contrast_normalization"]
