"""Berg, Ahlberg & Felsberg 2019, "Unsupervised adversarial learning of anomaly detection in the wild".

A progressive-growing WGAN-GP (Karras et al., ICLR 2018: "pGAN", section 3.1)
whose generator G and critic D are PGGAN's, with an encoder E trained jointly
with them (section 3.1, after ClusterGAN), on (possibly contaminated) normal
images.  Reference code: the authors' amandaberg/GANanomalyDetection (a fork of
PGGAN's TF1 code: ``networks.py`` G_paper / D_paper / E_clusterGAN, ``loss.py``,
``train.py``).  Nets: :mod:`ganad.nets.progressive` (equalised learning rate,
pixel norm in G, minibatch stddev in D, linear toRGB output, fade-in).

**Objective** (Eq. 1, q(x) = x: the Wasserstein loss with PGGAN's terms)::

    L_D = E D(G(z)) - E D(x) + gp_weight E (||grad D(x_hat)||_2 - 1)^2 + drift E D(x)^2
    L_G = -E D(G(z))
    L_E = E |G(z) - G(E(G(z)))|_1                 (Eq. 6, d_I: ``encoder_loss="image"``)
        = E |z - E(G(z))|_1                       (Eq. 7, d_z: ``encoder_loss="latent"``, Table 1's ablation)

z ~ N(0, I_nz) (section 3.1), gp_weight 10, drift 0.001, |.|_1 as a mean over
pixels (the reference's ``reduce_mean``).  Per batch, as the reference: a D
step, a G step, then an E step on fresh noise that updates E only
(``backward(inputs=E's parameters)``: neither G nor D gets a gradient from
L_E).  Adam lr 1e-3, betas (0, 0.99), eps 1e-8 for all three (E uses G's
rate, as the reference).  The penalty is computed in fp32 under bf16.

**Growth** (PGGAN's ``TrainingSchedule``, in images shown, one fit loop): 4 px
stable for ``images_per_stage`` images, then per doubling up to the nets' side
(28x28 images are padded to 32) ``images_per_stage`` images of fade-in, alpha
ramping linearly from 0 to 1, and ``images_per_stage`` stable; the last side
trains stable until ``epochs`` ends (:func:`ganad.nets.progressive.growth_schedule`).
The training step derives the level from its global step (level = f(step x
batch)), so a run killed and resumed, or extended to more epochs, follows the
same schedule: the schedule never depends on ``epochs``.  At every new phase
(each fade and each stable phase, PGGAN's ``reset_opt_for_new_lod``, which
fires whenever floor or ceil of its lod changes) the three Adam states are
cleared; that decision, too, is a function of the global step only.  Real
images at a lower level are average-pooled to its side and, during a fade,
blended with their half-side version upsampled (PGGAN's ``process_reals``).

**The encoder during the lower stages** grows with D, as the paper says ("in
the same progressive manner", section 3.1) and the reference does (its E reads
D's lod): at a level of side r it encodes r-px images (G's samples in
training, the pooled query at test time) through its own fade-in, and after
the growth it works at full resolution.  E is D's layers without D's last
dense layer and **without the minibatch-stddev layer**: the reference E has it,
which makes a query's code depend on its test batch mates; here a code depends
on its image alone (batch independence is part of the contract).

**Score** (section 3.3) with z_hat = E(Q) and Q's reconstruction G(z_hat), G
the EMA generator (decay 0.999, the reference's Gs, used at test)::

    L_n = ||w(Q) - w(G(z_hat))||_2 / N_X        (Eq. 2; w(X) = (X - min X) / (max X - min X), Eq. 3)
    L_o = -||z_hat||_2 / sqrt(N_z)              (Eq. 4)
    a   = lam L_n + (1 - lam) L_o,  lam = 0.05  (Eq. 5, section 4.2: N_z = 512, lam = 0.05)

w scales **each image** to [0, 1] by its own minimum and maximum (over all
pixels and channels); N_X = C H W of the nets' (padded) image.  ``score_parts``
gives Table 2's rows e-i from one fit: "fanogan_a" (e: f-AnoGAN's A = mean_pix
(Q - G(z_hat))^2 + kappa mean_feat (f(Q) - f(G(z_hat)))^2 with this model's
G, E and D, kappa = 1, f = D's 4x4 feature map entering the minibatch-stddev
layer, the last features of one image alone), "l_r" (f: Eq. 8, ||Q - G(z_hat)||_2
on [0, 1] images, i.e. half the norm in the nets' [-1, 1] units), "l_n" (g),
"l_o" (h) and "score" (i).  f-AnoGAN's rows a-d are the same parts of a
``fanogan`` fit ("score", "l_r", "l_n", "l_o").  ``lam`` and ``kappa`` change
the score only (``score_params``).  Anomaly maps: L_n per pixel, (w(Q) -
w(G(z_hat)))^2 averaged over channels (its sum over pixels and channels is
(N_X L_n)^2).  A large latent norm means "normal": the paper reports that
anomalies are encoded nearer the origin (section 4.2.1).

**Sizes.**  Paper / GPU setting: ``width=512`` (512 channels at every level to
32 px: PGGAN's nf = min(8192 / 2^stage, 512)), ``nz=512``, and for a CIFAR-10
class (5,000 images, "32 epochs (4 epochs on full resolution)", section 4.2)
``epochs=32, images_per_stage=23333`` (28 epochs over the six fade / stable
phases below full resolution, 4 stable at 32 px).  The paper does not say how
its epochs split over the phases; the reference's PGGAN default is 600,000
images per phase.  CPU default: ``width=64``, ``images_per_stage=4000``,
``epochs=8`` (on a Fashion-MNIST class, 4,860 fitted images: the growth takes
~4.9 epochs, then ~3 epochs at 32 px), batch 64.  Measured on Fashion-MNIST
class 0 (5,400 training images, 4,860 fitted; one thread, OMP_NUM_THREADS=1;
an unstored measurement): a fit of 1,259 s, 152 s per epoch averaged over the 8
epochs (steps of 64 images cost ~0.06 / 0.2 / 0.7 / 2.5 s at 4 / 8 / 16 / 32 px,
so ~190 s per epoch at 32 px).  At width 32 (the benchmark's setting, ``images_per_stage=2400,
epochs=5``) the stored class-0 fits took 259 s (benchmarks/probes/berg-val.jsonl) and
384 s (the benchmark record, machine load 2.5).
Validation (``make_split("fashion-mnist", "one-class", normal_class=0).val``,
one class, one seed, the width-32 setting; stored in benchmarks/probes/berg-val.jsonl by
``benchmarks/val_probe.py berg --classes 0 --param width=32 --param images_per_stage=2400
--param epochs=5``): AUROC score 0.27, l_o 0.27, l_n
0.81, l_r 0.85, fanogan_a 0.68: at this budget the latent norm ranks the other
classes as *more* normal (their codes are longer), the opposite of the paper's
observation; with
the CPU defaults (an unstored probe): score 0.33, l_o 0.33, l_n 0.87, l_r 0.90, fanogan_a 0.88.  The defaults are otherwise unvalidated.

**Why L_o inverts here.**  Nothing trains the length of the code: G
pixel-normalises its input, so G(c z) = G(z) for c > 0 and Eq. 6's L_E has no
gradient along ||E(.)|| (Eq. 7's d_z has).  The length is an untrained
direction of E and follows the image's ink: over the ten stored Fashion-MNIST
one-class rows (test split, seed 0) the AUROC of L_o against that of
"less ink is anomalous" has Pearson r = -0.94 (benchmarks/berg_latent_norm.py).
Mean test AUROC of the same fits: score 0.39, L_n 0.78, L_r 0.88.

Deviations from the reference code, and why:

* No minibatch-stddev in E (above).
* E trains against the EMA generator (``encoder_target="ema"``), the one the
  score uses; the reference trains E against G and scores with Gs, so E
  inverts a slightly different generator than the one it is evaluated with.
  ``encoder_target="g"`` is the reference's choice.
* The EMA decay warms up as min(ema_decay, (1 + t) / (10 + t)) at step t (TF's
  ``ExponentialMovingAverage`` with ``num_updates``), so that a short CPU run's
  G_ema is not mostly the initial weights (0.999 is reached after ~9,000
  steps; the paper-sized CIFAR run has ~2,500).  The EMA is updated after each G
  step (the reference updates Gs with the D step: one step of lag).
* One batch size throughout (the reference: 128 at 4-16 px, 64 at 32 px).
* z ~ N(0, I) as the paper (the reference draws 0.1 N(0, I); G pixel-normalises
  its input, so only d_z sees the scale).
* Minibatch stddev groups of 4 (the reference's group size); a batch not
  divisible by 4 uses the largest group size that divides it (PGGAN requires
  divisibility).  Under torchrun the groups are formed within each process's
  slice of the batch.
* A run whose ``epochs`` end before the growth does (a warning says so)
  scores at the level it reached: G_ema's image upsampled to full size, the
  query pooled to the level's side for E.  With early stopping
  (``validation_fraction``, ``patience``), epochs at different levels are
  compared on the mean validation score; it is best left off while growing.
* A flat image (max = min) has w = 0 (the division of Eq. 3 is guarded).
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ..distributed import batch_randn
from ..losses import d_loss_wgan, g_loss_wgan, gradient_penalty
from ..nets.progressive import (
    Level,
    ProgressiveCritic,
    ProgressiveEncoder,
    ProgressiveGenerator,
    growth_schedule,
    level_at,
    real_at_level,
    upsample,
)
from ..params import BETA, NON_NEGATIVE, POSITIVE_INT, SHARED, UNIT, Interval, Options
from ..registry import register
from .torch_base import TorchDetector

_ENCODER_LOSSES = ("image", "latent")
_ENCODER_TARGETS = ("ema", "g")


def minmax_unit(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """w(X) of Eq. 3 per image: (X - min X) / (max X - min X) over all of an image's
    pixels and channels, (N, ...) -> (N, D) flattened; a flat image (max = min) maps to 0."""
    flat = x.flatten(1)
    lo = flat.amin(dim=1, keepdim=True)
    hi = flat.amax(dim=1, keepdim=True)
    return (flat - lo) / (hi - lo).clamp_min(eps)


@register("berg")
class Berg(TorchDetector):
    """Progressive WGAN-GP with a jointly trained encoder; score = lam L_n + (1 - lam) L_o.

    ``score_parts``: "fanogan_a", "l_r", "l_n", "l_o", "score".

    Parameters
    ----------
    nz : latent size, the dimension of z ~ N(0, I) (512 in the paper).
    width : channels per level, PGGAN's nf(s) = min(16 width / 2^s, width) (512 in
        the paper; CPU default 64).
    images_per_stage : images shown per growth phase: 4 px stable for this many, then
        per doubling this many of fade-in and this many stable.
    lr, beta1, beta2 : Adam(lr, (beta1, beta2), eps 1e-8) of G, D and E.
    gp_weight : weight of the WGAN-GP gradient penalty E (||grad D(x_hat)||_2 - 1)^2 in L_D.
    drift : weight of PGGAN's drift term E D(x)^2 in L_D.
    ema_decay : decay of the EMA generator G_ema that scores, warmed up as
        min(ema_decay, (1 + t) / (10 + t)) at step t.
    stddev_group : group size of D's minibatch-stddev layer (the largest size up to it
        that divides the batch is used; 0 or 1: no such layer).
    encoder_loss : E's loss: "image" (Eq. 6, mean |G(z) - G(E(G(z)))|) or "latent"
        (Eq. 7, mean |z - E(G(z))|).
    encoder_target : the generator E learns to invert: "ema" (G_ema, the one the score
        uses) or "g" (the live G, the reference's choice).
    lam : weight of L_n in the score lam L_n + (1 - lam) L_o (Eq. 5); scoring only.
    kappa : weight of the critic-feature term in the "fanogan_a" score part; scoring only.
    """

    score_params = ("lam", "kappa")

    def __init__(
        self,
        nz: int = 512,
        width: int = 64,
        images_per_stage: int = 4000,
        lr: float = 1e-3,
        beta1: float = 0.0,
        beta2: float = 0.99,
        gp_weight: float = 10.0,
        drift: float = 1e-3,
        ema_decay: float = 0.999,
        stddev_group: int = 4,
        encoder_loss: str = "image",
        encoder_target: str = "ema",
        lam: float = 0.05,
        kappa: float = 1.0,
        epochs: int = 8,
        batch_size: int = 64,
        **common: Any,
    ):
        super().__init__(epochs=epochs, batch_size=batch_size, **common)
        self.nz = nz
        self.width = width
        self.images_per_stage = images_per_stage
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.gp_weight = gp_weight
        self.drift = drift
        self.ema_decay = ema_decay
        self.stddev_group = stddev_group
        self.encoder_loss = encoder_loss
        self.encoder_target = encoder_target
        self.lam = lam
        self.kappa = kappa

    _parameter_constraints = {
        "nz": SHARED["nz"], "width": SHARED["width"], "images_per_stage": [POSITIVE_INT], "lr": SHARED["lr"],
        "beta1": SHARED["beta1"], "beta2": SHARED["beta2"], "gp_weight": [NON_NEGATIVE], "drift": [NON_NEGATIVE],
        "ema_decay": [BETA], "stddev_group": [Interval(int, 0)], "encoder_loss": [Options(_ENCODER_LOSSES)],
        "encoder_target": [Options(_ENCODER_TARGETS)], "lam": [UNIT], "kappa": [NON_NEGATIVE],
    }

    # ----------------------------------------------------------------- nets
    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        g = ProgressiveGenerator(size, c, self.nz, self.width)
        g_ema = copy.deepcopy(g)
        for p in g_ema.parameters():
            p.requires_grad_(False)
        self.nets_ = nn.ModuleDict(
            {
                "g": g,
                "g_ema": g_ema,
                "d": ProgressiveCritic(size, c, self.width, stddev_group=self.stddev_group),
                "e": ProgressiveEncoder(size, c, self.nz, self.width),
            }
        )
        self.schedule_ = growth_schedule(size, self.images_per_stage)
        self.level_ = level_at(self.schedule_, 0)

    def _generator_for_encoder(self) -> nn.Module:
        return self.nets_["g_ema" if self.encoder_target == "ema" else "g"]

    # ------------------------------------------------------------- losses
    def _d_loss(self, xb: torch.Tensor, z: torch.Tensor, lv: Level) -> dict[str, torch.Tensor]:
        """L_D = E D(G(z)) - E D(x) + gp_weight * GP + drift * E D(x)^2 at the level ``lv``."""
        g, d = self.nets_["g"], self.nets_["d"]
        real = real_at_level(xb, lv.resolution, lv.alpha)
        with torch.no_grad():
            fake = g(z, lv.resolution, lv.alpha)
        d_real = d(real, lv.alpha).float()
        wass = d_loss_wgan(d_real, d(fake, lv.alpha).float())
        gp = gradient_penalty(lambda t: d(t, lv.alpha), real, fake, weight=self.gp_weight)  # fp32 inside
        drift = self.drift * d_real.pow(2).mean()
        return {"d": wass + gp + drift, "d_wasserstein": -wass, "d_gp": gp, "d_drift": drift}

    def _g_loss(self, z: torch.Tensor, lv: Level) -> torch.Tensor:
        """L_G = -E D(G(z))."""
        return g_loss_wgan(self.nets_["d"](self.nets_["g"](z, lv.resolution, lv.alpha), lv.alpha).float())

    def _e_loss(self, z: torch.Tensor, lv: Level) -> torch.Tensor:
        """Eq. 1's third term (Eq. 6, d_I) mean |G(z) - G(E(G(z)))|, or Eq. 7's d_z mean |z - E(G(z))|."""
        gen, e = self._generator_for_encoder(), self.nets_["e"]
        with torch.no_grad():
            x_fake = gen(z, lv.resolution, lv.alpha)
        z_hat = e(x_fake, lv.alpha)
        if self.encoder_loss == "latent":
            return (z.float() - z_hat.float()).abs().mean()
        return (x_fake.float() - gen(z_hat, lv.resolution, lv.alpha).float()).abs().mean()

    # ------------------------------------------------------------ updates
    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.beta1, self.beta2)
        return {
            f"opt_{k}": torch.optim.Adam(self.nets_[k].parameters(), lr=self.lr, betas=betas, eps=1e-8)
            for k in ("g", "d", "e")
        }

    def _d_update(self, xb: torch.Tensor, lv: Level, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        z = batch_randn(len(xb), self.nz, device=xb.device)
        out = self._d_loss(xb, z, lv)
        opt.zero_grad(set_to_none=True)
        out["d"].backward(inputs=list(self.nets_["d"].parameters()))
        opt.step()
        return out

    def _g_update(self, n: int, lv: Level, opt: torch.optim.Optimizer, step: int, device: torch.device) -> dict[str, torch.Tensor]:
        z = batch_randn(n, self.nz, device=device)
        loss = self._g_loss(z, lv)
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.nets_["g"].parameters()))
        opt.step()
        self._update_ema(step)
        return {"g": loss}

    def _e_update(self, n: int, lv: Level, opt: torch.optim.Optimizer, device: torch.device) -> dict[str, torch.Tensor]:
        """One E step on L_E: only E's parameters receive gradients (``backward(inputs=...)``)."""
        z = batch_randn(n, self.nz, device=device)
        loss = self._e_loss(z, lv)
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.nets_["e"].parameters()))
        opt.step()
        return {"e": loss}

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        """G_ema <- decay G_ema + (1 - decay) G, decay = min(ema_decay, (1 + t) / (10 + t))."""
        decay = min(float(self.ema_decay), (1.0 + step) / (10.0 + step))
        for pe, p in zip(self.nets_["g_ema"].parameters(), self.nets_["g"].parameters()):
            pe.lerp_(p.detach(), 1.0 - decay)

    def _make_step(self, batch: int, opts: dict[str, torch.optim.Optimizer]) -> Any:
        """The training step: level from the global step, optimiser reset at a new phase, D, G, E."""
        schedule = self.schedule_

        def step(xb: torch.Tensor, t: int) -> dict[str, torch.Tensor | float]:
            lv = level_at(schedule, t * batch)
            if t > 0 and level_at(schedule, (t - 1) * batch).phase != lv.phase:
                for opt in opts.values():  # PGGAN's reset_opt_for_new_lod: fresh Adam moments
                    opt.state.clear()
            self.level_ = lv
            out: dict[str, torch.Tensor | float] = dict(self._d_update(xb, lv, opts["opt_d"]))
            out.update(self._g_update(len(xb), lv, opts["opt_g"], t, xb.device))
            out.update(self._e_update(len(xb), lv, opts["opt_e"], xb.device))
            out["resolution"], out["alpha"] = float(lv.resolution), float(lv.alpha)
            return out

        return step

    def _train(self, x: np.ndarray) -> None:
        x_fit, _ = self._holdout(x)  # _run_loop holds out the same images
        batch = min(int(self.batch_size), len(x_fit))
        steps_per_epoch = len(x_fit) // batch
        growth = sum(s.fade_images + (s.stable_images or 0) for s in self.schedule_)
        if self.epochs > 0 and self.epochs * steps_per_epoch * batch < growth:
            reached = level_at(self.schedule_, (self.epochs * steps_per_epoch - 1) * batch)
            warnings.warn(
                f"berg: {self.epochs} epochs show {self.epochs * steps_per_epoch * batch} images, fewer than the "
                f"{growth} of the growth schedule (images_per_stage={self.images_per_stage}): training ends at "
                f"{reached.resolution} px of {self.image_size_}; raise epochs or lower images_per_stage",
                stacklevel=3,
            )
        opts = self._make_optimizers()
        self.nets_.train()
        self._run_loop(self._make_step(batch, opts), x, opts, epochs=self.epochs)
        hist = self.history_
        epochs_done = hist.epochs_run
        if self.patience is not None and hist.best_epoch is not None:
            epochs_done = hist.best_epoch + 1  # the loop restored the best epoch's weights
        self.level_ = level_at(self.schedule_, max(epochs_done * steps_per_epoch - 1, 0) * batch)

    # ------------------------------------------------------- fitted state
    def _extra_state(self) -> dict[str, Any]:
        lv = self.level_
        return {"level": torch.tensor([lv.phase, lv.stage, lv.resolution], dtype=torch.int64),
                "alpha": torch.tensor(lv.alpha, dtype=torch.float64)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if "level" in state:
            phase, stage, res = (int(v) for v in state["level"].tolist())
            self.level_ = Level(phase, stage, res, float(state["alpha"]))

    # ------------------------------------------------------------ scoring
    def _encode(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q at the trained level's side, z_hat = E(Q))."""
        lv = self.level_
        q = real_at_level(batch, lv.resolution, lv.alpha)
        return q, self.nets_["e"](q, lv.alpha)

    def _decode(self, z_hat: torch.Tensor) -> torch.Tensor:
        lv = self.level_
        return self.nets_["g_ema"](z_hat, lv.resolution, lv.alpha)

    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        lv, d = self.level_, self.nets_["d"]
        q, z_hat = self._encode(batch)
        rec_level = self._decode(z_hat)
        x = batch.float()
        rec = upsample(rec_level, self.image_size_ // lv.resolution).float()
        diff = (x - rec).flatten(1)
        image = diff.pow(2).mean(1)
        feature = (d.features(q, lv.alpha) - d.features(rec_level, lv.alpha)).float().pow(2).mean(1)
        l_r = 0.5 * diff.norm(dim=1)  # Eq. 8 on [0, 1] images: Q - G = (x - x_hat) / 2
        l_n = (minmax_unit(x) - minmax_unit(rec)).norm(dim=1) / x[0].numel()  # Eq. 2-3
        l_o = -z_hat.float().norm(dim=1) / math.sqrt(self.nz)  # Eq. 4
        return {
            "fanogan_a": image + self.kappa * feature,
            "l_r": l_r,
            "l_n": l_n,
            "l_o": l_o,
            "score": self.lam * l_n + (1.0 - self.lam) * l_o,  # Eq. 5
        }

    # map: L_n per pixel, (w(Q) - w(G(z_hat)))^2 (channel mean, original pixels)
    has_anomaly_map = True
    map_error = "l2"

    def _reconstruct_batch(self, batch: torch.Tensor) -> torch.Tensor:
        rec = self._decode(self._encode(batch)[1])
        return upsample(rec, self.image_size_ // self.level_.resolution)

    def _map_batch(self, batch: torch.Tensor) -> torch.Tensor:
        rec = self._reconstruct_batch(batch).float()
        x = batch.float()
        sq = (minmax_unit(x) - minmax_unit(rec)).pow(2).view(x.shape)
        return sq.mean(1)

    def _encode_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """z_hat = E(Q) (B, nz) of a prepared batch, the code whose norm L_o is (:mod:`ganad.report.latent`)."""
        return self._encode(batch)[1]
