"""AMA: Adversarial Mirrored AutoEncoder (Somepalli, Wu, Balaji, Vinzamuri & Feizi, UAI 2021, arXiv:2003.10713).

"Unsupervised Anomaly Detection with Adversarial Mirrored AutoEncoders".  An
autoencoder (encoder E, generator G) is trained against a *mirrored* critic
D2 that compares pairs of images stacked along the channels, (x, x) against
(x, G(E(x))), with a latent-space regulariser (simplex interpolation and
negative sampling by atypical selection); the anomaly score is the
distance R between the critic's features of the two pairs, normalised by a
Gaussian fitted to the training R-scores (the A-score).  Reference code: the
authors' somepago/AMA (``train.py``, ``loss.py``, ``interpolation.py``,
``cifar_models_bNorm.py``, ``anom_utils.py``), CIFAR-10 only.

**Losses** (section 3; x ⊕ y is the channel stack, w = 1 for a normal sample,
w = -lambda_neg for a negative one, means over the batch):

* Mirrored Wasserstein loss (eq. 1), the critic's side with WGAN-GP::

      L_D = -mean w D2(x ⊕ x) + mean w D2(x ⊕ G(E(x))) + gp_weight * GP

  (x ⊕ x) is the real pair and (x ⊕ G(E(x))) the fake one.  GP =
  mean (||grad D2(x ⊕ x_t)|| - 1)^2 on x_t = a x + (1 - a) G(E(x)), a ~ U(0, 1)
  per sample, the gradient taken with respect to the whole 2C-channel input;
  ``gp_norm="sample"`` (default) is the standard per-sample norm over (2C, H,
  W), ``"pixel"`` the reference code's norm over the channels only, one per
  pixel (for reproduction).  gp_weight = 10.
* The autoencoder's side (eqs. 2-3)::

      L_AE = -mean w D2(x ⊕ G(E(x))) + lambda_reg * mean_{normal} ||E(x)||_2,   lambda_reg = 1

* Simplex interpolation (section 3.2, k = 3): for the normal samples of the
  batch, e_1 = E(x), e_2, e_3 = e_1 under two random permutations,
  z_mix = a_1 e_1 + a_2 e_2 + (1 - a_1 - a_2) e_3 with a_1, a_2 ~ U(0, 0.5) per
  sample (the reference code's weights; the paper normalises k weights
  drawn from U(0, 0.5) by their sum, also a convex combination).  G(z_mix)
  is a *fake*: the critic gains lambda_inter (1/3) sum_k [-D2(x_k ⊕ x_k) +
  D2(x_k ⊕ G(z_mix))] (G(z_mix) detached) and the autoencoder
  lambda_inter (1/3) sum_k -D2(x_k ⊕ G(z_mix)), "the generator learns by
  trying to fool the discriminator", with gradients to G and to E through
  z_mix.  lambda_inter = 0.5 (section 4.1).  ``interp_detach=True`` is the
  reference code, whose autoencoder-side G(z_mix) is detached: the term is
  then a constant, so it is left out (the critic side only).
* Negatives (eq. 4, L_neg = E_{x ~ Q} [D2(x ⊕ x) - D2(x ⊕ x_hat)], weight
  lambda_neg = 5): from epoch ``atypical_start`` on (0-based; 10 = "from the
  11th epoch onwards", section 4.1) ``atypical_fraction`` = 10% of each
  batch's slots are replaced by synthetic negatives G(z_neg) (E and G in
  eval mode, no gradient), whose pairs then enter both losses with
  w = -lambda_neg, as the reference code does (x = G(z_neg), x_hat = G(E(x)));
  they take no part in the interpolation or the code regulariser.  z_neg:

  - ``atypical="annulus"`` (the paper's Atypical Selection, section 3.2,
    Fig. 3 b, c): direction uniform on the sphere, radius uniform in
    [sqrt(d) (1 - delta), sqrt(d)] (``atypical_direction="inward"``) or
    [sqrt(d), sqrt(d) (1 + delta)] ("outward"), d = nz, delta =
    ``atypical_delta`` (0.5; the paper tunes delta on validation anomalies
    and gives no value).  The radius, not the volume, is uniform: the volume
    of a 128-d annulus lies within 1% of its outer sphere, so volume-uniform
    inward samples would all sit on the typical shell itself;
  - ``"scale"`` (the reference code, for reproduction): a_i E(x_i) (inward)
    or E(x_i) / a_i (outward) for the replaced slots' own codes, a ~ U(0, 0.5);
  - ``"sipple"`` (Table 3's comparison, Sipple 2020, Fig. 3 a): uniform in the
    cube [-m, m]^d around the origin, m = the batch codes' largest |E(x)_j|
    (the reference code draws u * min|E(x)| in the positive orthant);
  - ``"none"``: no negatives.

  The paper used "inward" for CIFAR-10, "outward" for SVHN and
  Fashion-MNIST (section 4.1); the default here is "outward".

**Semi-supervised** (section 3.3, the reference's ``--anom_pc``): ``fit(X, y)``
with y = 1 for known anomalies puts them in L_neg instead of synthetic
negatives (w = -lambda_neg in both losses; no atypical selection when any
y = 1, as the reference code).  Off by default (``fit(X)``).  Known anomalies
are never held out (calibration, early stopping) and never enter the
A-score's Gaussian; ``threshold_`` is calibrated on held-out normals.

**Training** (section 4.1): 5 critic steps per autoencoder step
(``n_critic``); Adam lr 3e-4, betas (0, 0.9) for G and D2, (0.5, 0.9) for E;
lr x 0.1 at epochs ``lr_milestones`` = (30, 60, 90) of 100; batch 256.
``critic_batches="same"`` (default) runs the 5 critic steps and then the
autoencoder step on the same batch, as the reference code (an epoch = one
autoencoder step per batch); ``"new"`` gives every critic step its own batch
and steps the autoencoder after every 5th (:func:`ganad.train.alternating`,
5x cheaper epochs, 5x fewer autoencoder steps).  The milestones and
``atypical_start`` are absolute epochs, not fractions of ``epochs``, so that
a run extended to more epochs is the run it continues; for a short schedule
scale them with it (the paper's 10 / 30 / 60 / 90 of 100 epochs: 10%, 30%,
60%, 90%).  The lr is set from the epoch at every step, so a resumed run
(the optimisers are checkpointed) follows the same schedule exactly.

**Cost and the CPU benchmark configuration.**  At the reference sizes (widths
256 / 128 / 32, "same" batches) training costs ~1.8 s per image and epoch on
one CPU thread (one step of 64 Fashion-MNIST-sized images, warm-up included;
an unstored measurement): hours per epoch of a 5,400-image class.
:data:`ganad.bench.configs.PARAMS` runs ``gen_width=32, critic_width=32,
enc_width=16, batch_size=64, critic_batches="new", epochs=4, atypical_start=1, lr_milestones=[1, 2]``
(the paper's schedule scaled to 4 epochs: one epoch on normals only before
the negatives, lr drops at 30% and 60% rounded; 90% rounds to the end of the
last epoch): the stored benchmark fits of the ten Fashion-MNIST classes
(benchmarks/results/fashion-mnist-one-class.jsonl; 4,860 training images a
class after the 10% calibration hold-out; OMP_NUM_THREADS=1, a second
benchmark lane on the other core) trained at 19-42 ms per image (91-205 s
per epoch) and took 380-845 s per fit, mean 533 s, the scoring passes (the
A-score fit, the training and calibration scores) included.  The
benchmark's AUROCs are those records; the configuration was not chosen on
them.

**Scores** (section 3.4): R(x) = ||phi(x ⊕ x) - phi(x ⊕ G(E(x)))||_1 (eq. 5),
phi the critic's sum-pooled features, and the A-score: after training, a
Gaussian (mu, sigma, maximum likelihood) is fitted to the R-scores of the
training normals the weights were fitted on (eval mode; no calibration or
early-stopping hold-out, no labelled anomaly), saved with the model
(``r_mu_``, ``r_sigma_``).  The paper's A(x) = N(R(x); mu, sigma) is a
likelihood (lower = more anomalous); the score here is the equivalent
two-sided (R - mu)^2 / sigma^2 (higher = more anomalous; an unusually small R
is anomalous too, as CIFAR-10 vs SVHN in Fig. 4).  ``score_parts``:
"r_score", "a_score", "l1" (mean |x - G(E(x))|, the reference's
``l1_mean_recon`` metric and the anomaly map's image mean) and "score"
(``score="a"``: the A-score, ``"r"``: R).

**Ablations** (Table 1, lower half; Table 3), each one parameter:
``mirrored=False`` (a plain critic on x vs G(E(x)), C input channels;
interpolation fakes G(z_mix), R = ||phi(x) - phi(G(E(x)))||_1),
``interpolation=False``, ``atypical="none"``, ``score="r"``, and
``atypical="sipple"`` (Sipple's negative sampling instead of Atypical
Selection).

**Nets** (section 4.1; the layer lists of the reference's
``cifar_models_bNorm.py``): E = 4 conv layers (4/2/1 C -> 64 -> 128 -> 256
with BatchNorm and LeakyReLU(0.2), then 4/1/0 -> nz = 128; no biases;
``enc_width`` = 32 is the reference's ndf, the layers have 2, 4, 8 x ndf
channels; other sides get log2(S) - 2 stride-2 layers).  G = the SNGAN
ResNet generator (``gen_width`` 256), D2 = the SNGAN ResNet discriminator
with spectral norm on every layer (the README's ``--spectral_norm=1``;
``critic_width`` 128, bias-free head) on 2C channels: :mod:`ganad.nets.sngan`.
Images in [-1, 1]; 28x28 inputs are padded to 32.

Deviations from the reference code, and why:

* The critic's steps on one batch reuse one E/G forward (train mode) for
  G(E(x)): E and G do not change between them, so the critic sees the same
  reconstructions; BatchNorm's running statistics are updated once per
  batch instead of at every recomputation.  Fresh interpolation weights and
  permutations are drawn at every critic step, as in the reference.
* The mean D2(x_k ⊕ x_k) over the normals is the same for the three
  permutations; it is computed once, and each loss runs D2 once on all its
  pairs stacked along the batch (D2 has no BatchNorm: the same values), so
  spectral norm does one power iteration per loss instead of one per pair.
* Negative slots are drawn without replacement (the reference draws
  int(0.1 B) slots with replacement, so slightly fewer distinct ones).
* Early stopping (``validation_fraction``, ``patience``) watches the mean
  |x - G(E(x))| of held-out normal images; the reference chooses the epoch by
  validation AUROC on labelled anomalies, which the toolkit never does.
* Scoring is in eval mode, one batch at a time, every image scored; the
  reference fits the Gaussian on its training loader (train data with
  ``drop_last``) and scores the test set in its own batches.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..distributed import batch_rand, batch_randn
from ..nets.dense_conv import HeadConv2d
from ..nets.sngan import SNGANDiscriminator, SNGANGenerator
from ..params import BOOL, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, SHARED, Interval, ListOf, Options
from ..registry import register
from ..train import StepFn, StepIndex, alternating
from .torch_base import Phase, TorchDetector
from ..nets.gemm_conv import Conv2d

ATYPICAL = ("annulus", "scale", "sipple", "none")
DIRECTIONS = ("inward", "outward")
GP_NORMS = ("sample", "pixel")
SCORES = ("a", "r")
CRITIC_BATCHES = ("same", "new")


def _as_tuple(v: Any) -> Any:
    """Lists (what a JSON config gives back) -> tuples, so saved and loaded params compare equal."""
    return tuple(v) if isinstance(v, list) else v


# ------------------------------------------------------------------ nets
class AMAEncoder(nn.Module):
    """image (N, C, S, S) -> code (N, nz): stride-2 convs 4/2/1 (BN, LReLU 0.2) to 4x4, conv 4/1/0 -> nz; no biases."""

    def __init__(self, size: int, channels: int, nz: int = 128, width: int = 32):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"the AMA encoder needs a power-of-two image side >= 8; got {size}")
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(int(math.log2(size)) - 2):
            c_out = 2 * width * 2**i
            layers += [Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
            c_in = c_out
        layers.append(HeadConv2d(c_in, nz, 4, bias=False))
        self.main = nn.Sequential(*layers)
        self.nz = nz

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten(1)


# ---------------------------------------------------------------- pieces
def pair(x: torch.Tensor, y: torch.Tensor, mirrored: bool = True) -> torch.Tensor:
    """The critic's input for the pair (x, y): x ⊕ y along the channels (mirrored), else y alone."""
    return torch.cat([x, y], dim=1) if mirrored else y


def _critic_outputs(
    critic: Callable[[torch.Tensor], torch.Tensor], inputs: list[torch.Tensor]
) -> list[torch.Tensor]:
    """One critic forward over the concatenated ``inputs`` (the critic has no BatchNorm: exact), split back."""
    out = critic(torch.cat(inputs)).flatten()
    return list(out.split([len(t) for t in inputs]))


def critic_loss(
    critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, x_rec: torch.Tensor, w: torch.Tensor,
    mirrored: bool = True, mix: tuple[Sequence[torch.Tensor], torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The critic's mirrored Wasserstein loss (eq. 1) and its interpolation term (section 3.2).

    loss = -mean w D(x ⊕ x) + mean w D(x ⊕ x_rec): (x ⊕ x) is the real pair,
    (x ⊕ x_rec) the fake one, w per sample (1 normal, -lambda_neg negative).
    ``mix = (xs, x_mix, normal)``: the k permuted normal images, G(z_mix) and
    the normal rows' mask; the term is (1/k) sum_k mean D(x_k ⊕ x_mix) - mean
    over the normals of D(x ⊕ x) (the mean of D(x_k ⊕ x_k) is the same for
    every permutation), to be weighted by lambda_inter.  Fakes are detached.
    """
    inputs = [pair(x, x, mirrored), pair(x, x_rec.detach(), mirrored)]
    if mix is not None:
        xs, x_mix, _ = mix
        inputs += [pair(xk, x_mix.detach(), mirrored) for xk in xs]
    outs = _critic_outputs(critic, inputs)
    real, fake = outs[0], outs[1]
    loss = -(w * real).mean() + (w * fake).mean()
    if mix is None:
        return loss, None
    return loss, torch.stack([o.mean() for o in outs[2:]]).mean() - real[mix[2]].mean()


def autoencoder_adv_loss(
    critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, x_rec: torch.Tensor, w: torch.Tensor,
    mirrored: bool = True, mix: tuple[Sequence[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The autoencoder's side: -mean w D(x ⊕ x_rec) (a normal's reconstruction should look real, a
    negative's should not) and, with ``mix = (xs, x_mix)``, the interpolation term
    -(1/k) sum_k mean D(x_k ⊕ x_mix) (G(z_mix) should look real), to be weighted by lambda_inter."""
    inputs = [pair(x, x_rec, mirrored)]
    if mix is not None:
        inputs += [pair(xk, mix[1], mirrored) for xk in mix[0]]
    outs = _critic_outputs(critic, inputs)
    adv = -(w * outs[0]).mean()
    if mix is None:
        return adv, None
    return adv, -torch.stack([o.mean() for o in outs[1:]]).mean()


def pair_gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, x_rec: torch.Tensor, weight: float = 10.0,
    mirrored: bool = True, norm: str = "sample",
) -> torch.Tensor:
    """WGAN-GP on the pairs: weight * mean (||grad D(x ⊕ x_t)|| - 1)^2, x_t = a x + (1 - a) x_rec, a ~ U(0, 1).

    The gradient is taken with respect to the critic's whole input (2C channels
    when mirrored).  ``norm="sample"``: one norm per sample over (channels, H, W)
    (Gulrajani et al.; for ``mirrored=False`` this is
    :func:`ganad.losses.gradient_penalty`); ``"pixel"``: the norm over the
    channels only, one per pixel, averaged over (N, H, W) (the AMA reference
    code).  Computed in fp32 with autocast off.
    """
    dev = x.device
    if torch.is_autocast_enabled(dev.type):
        with torch.autocast(dev.type, enabled=False):
            return pair_gradient_penalty(critic, x.float(), x_rec.float(), weight, mirrored, norm)
    x, x_rec = x.detach().float(), x_rec.detach().float()
    n = len(x)
    a = batch_rand(n, device=dev).view(n, 1, 1, 1)
    inp = pair(x, a * x + (1 - a) * x_rec, mirrored).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(inp).sum(), inp, create_graph=True)
    gn = grad.flatten(1).norm(2, dim=1) if norm == "sample" else grad.norm(2, dim=1)
    return weight * (gn - 1).pow(2).mean()


def annulus_codes(dirs: torch.Tensor, u: torch.Tensor, delta: float, direction: str) -> torch.Tensor:
    """Atypical Selection's codes from standard normal ``dirs`` (n, d) and uniform ``u`` (n,):
    direction dirs / ||dirs|| (uniform on the sphere), radius uniform in
    [sqrt(d)(1 - delta), sqrt(d)] ("inward") or [sqrt(d), sqrt(d)(1 + delta)] ("outward")."""
    root = math.sqrt(dirs.shape[1])
    lo, hi = (root * (1.0 - delta), root) if direction == "inward" else (root, root * (1.0 + delta))
    r = lo + (hi - lo) * u.to(dirs.dtype)
    return dirs / dirs.norm(dim=1, keepdim=True).clamp_min(1e-12) * r[:, None]


def simplex_codes(
    e: torch.Tensor, a1: torch.Tensor, a2: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor
) -> torch.Tensor:
    """z_mix = a1 e + a2 e[p1] + (1 - a1 - a2) e[p2] (k = 3; a1, a2 (m, 1) in [0, 0.5])."""
    return a1 * e + a2 * e[p1] + (1.0 - a1 - a2) * e[p2]


@dataclass
class _Fit:
    """What the training steps of one ``fit`` share: the optimisers and this fit's switches."""

    opt_d: torch.optim.Optimizer
    opt_g: torch.optim.Optimizer
    opt_e: torch.optim.Optimizer
    d_params: list[nn.Parameter]
    ae_params: list[nn.Parameter]
    labelled: bool  # known anomalies (y = 1) in the training data: they are the negatives
    interp: bool
    negatives: bool  # synthetic negatives (atypical selection)


@contextmanager
def _eval_mode(*modules: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for mod in modules for m in mod.modules()]
    for mod in modules:
        mod.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


# ---------------------------------------------------------------- detector
@register("ama")
class AMA(TorchDetector):
    """AMA: mirrored Wasserstein autoencoder; score = (R - mu)^2 / sigma^2, R = ||phi(x⊕x) - phi(x⊕G(E(x)))||_1.

    Parameters
    ----------
    nz : code size d (128).
    enc_width, gen_width, critic_width :
        The encoder's ndf (32: 64/128/256 channels), the generator's channels (256)
        and the critic's (128), the reference's sizes.
    lr, beta1, beta2, enc_beta1 :
        Adam lr (3e-4) with betas (beta1, beta2) = (0, 0.9) for G and D2 and
        (enc_beta1, beta2) = (0.5, 0.9) for E.
    lr_milestones : epochs (0-based starts) at which every lr is multiplied by 0.1 ((30, 60, 90)).
    n_critic : critic steps per autoencoder step (5).
    critic_batches : "same" (the critic steps and then the autoencoder step on one
        batch, the reference) or "new" (a new batch per critic step, ``alternating``).
    gp_weight : gradient penalty weight (10).
    gp_norm : "sample" (per-sample gradient norm) or "pixel" (the reference's per-pixel norm).
    mirrored : critic on pairs x ⊕ y (True) or a plain critic on images (the ablation).
    lambda_reg : weight of the code norm mean ||E(x)||_2 on normals (1).
    interpolation : simplex interpolation on (True) or off (the ablation).
    lambda_inter : weight of the interpolation terms (0.5).
    interp_detach : True: no autoencoder-side interpolation term (the reference code's detached G(z_mix)).
    atypical : synthetic negatives: "annulus" (the paper), "scale" (the reference
        code), "sipple" (Sipple's cube, Table 3) or "none".
    atypical_direction : "inward" or "outward" of the sqrt(d) sphere (and of E(x) for "scale").
    atypical_delta : annulus width delta as a share of sqrt(d) (0.5).
    atypical_fraction : share of each batch's slots replaced by negatives (0.1).
    atypical_start : first epoch (0-based) with negatives (10: the 11th).
    lambda_neg : weight of the negatives' terms (5).
    score : "a" (A-score, default) or "r" (R-score) as ``score``.
    **common :
        ``epochs`` (default 100), ``batch_size`` (default 256) and the other
        :class:`TorchDetector` settings.
    """

    score_params = ("score",)
    supports_labels = True

    def __init__(
        self,
        nz: int = 128,
        enc_width: int = 32,
        gen_width: int = 256,
        critic_width: int = 128,
        lr: float = 3e-4,
        beta1: float = 0.0,
        beta2: float = 0.9,
        enc_beta1: float = 0.5,
        lr_milestones: Sequence[int] = (30, 60, 90),
        n_critic: int = 5,
        critic_batches: str = "same",
        gp_weight: float = 10.0,
        gp_norm: str = "sample",
        mirrored: bool = True,
        lambda_reg: float = 1.0,
        interpolation: bool = True,
        lambda_inter: float = 0.5,
        interp_detach: bool = False,
        atypical: str = "annulus",
        atypical_direction: str = "outward",
        atypical_delta: float = 0.5,
        atypical_fraction: float = 0.1,
        atypical_start: int = 10,
        lambda_neg: float = 5.0,
        score: str = "a",
        **common: Any,
    ):
        common.setdefault("epochs", 100)
        common.setdefault("batch_size", 256)
        super().__init__(**common)
        self.nz = nz
        self.enc_width = enc_width
        self.gen_width = gen_width
        self.critic_width = critic_width
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.enc_beta1 = enc_beta1
        self.lr_milestones = _as_tuple(lr_milestones)
        self.n_critic = n_critic
        self.critic_batches = critic_batches
        self.gp_weight = gp_weight
        self.gp_norm = gp_norm
        self.mirrored = mirrored
        self.lambda_reg = lambda_reg
        self.interpolation = interpolation
        self.lambda_inter = lambda_inter
        self.interp_detach = interp_detach
        self.atypical = atypical
        self.atypical_direction = atypical_direction
        self.atypical_delta = atypical_delta
        self.atypical_fraction = atypical_fraction
        self.atypical_start = atypical_start
        self.lambda_neg = lambda_neg
        self.score = score

    _parameter_constraints = {
        "nz": SHARED["nz"], "enc_width": [POSITIVE_INT], "gen_width": [POSITIVE_INT], "critic_width": [POSITIVE_INT],
        "lr": SHARED["lr"], "beta1": SHARED["beta1"], "beta2": SHARED["beta2"], "enc_beta1": SHARED["beta1"],
        "lr_milestones": [ListOf(POSITIVE_INT)], "n_critic": [POSITIVE_INT],
        "critic_batches": [Options(CRITIC_BATCHES)], "gp_weight": [NON_NEGATIVE], "gp_norm": [Options(GP_NORMS)],
        "mirrored": [BOOL], "lambda_reg": [NON_NEGATIVE], "interpolation": [BOOL], "lambda_inter": [NON_NEGATIVE],
        "interp_detach": [BOOL], "atypical": [Options(ATYPICAL)], "atypical_direction": [Options(DIRECTIONS)],
        "atypical_delta": [POSITIVE], "atypical_fraction": [Interval(float, 0, 1, "right")],
        "atypical_start": [NON_NEGATIVE_INT], "lambda_neg": [NON_NEGATIVE], "score": [Options(SCORES)],
    }

    def _check_params(self) -> None:
        super()._check_params()
        if self.atypical == "annulus" and self.atypical_direction == "inward" and self.atypical_delta > 1:
            raise ValueError(
                f"atypical_delta must be <= 1 for inward annulus sampling (radius >= 0); got {self.atypical_delta}")

    # ----------------------------------------------------------------- nets
    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        self.nets_ = nn.ModuleDict(
            {
                "e": AMAEncoder(size, c, self.nz, self.enc_width),
                "g": SNGANGenerator(size, c, self.nz, self.gen_width),
                "d": SNGANDiscriminator(size, 2 * c if self.mirrored else c, self.critic_width, sn=True),
            }
        )
        self.r_mu_: float | None = None
        self.r_sigma_: float | None = None

    # ------------------------------------------------------------- training
    def _set_lr(self, opts: Sequence[torch.optim.Optimizer], epoch: int) -> None:
        lr = self.lr * 0.1 ** sum(epoch >= m for m in self.lr_milestones)
        for opt in opts:
            for group in opt.param_groups:
                group["lr"] = lr

    def _negatives(self, x: torch.Tensor) -> torch.Tensor | None:
        """Replace ``atypical_fraction`` of the batch's slots by G(z_neg) in place; the slots' mask, or None.

        Noise is drawn for every row of the (global) batch and the selected rows
        used, so every torchrun rank draws alike (:func:`ganad.distributed.batch_rand`).
        """
        n = len(x)
        k = round(self.atypical_fraction * n)
        if k == 0:
            return None
        e, g = self.nets_["e"], self.nets_["g"]
        slots = batch_rand(n, device=x.device).argsort()[:k]
        with torch.no_grad(), _eval_mode(e, g):
            if self.atypical == "annulus":
                dirs, u = batch_randn(n, self.nz, device=x.device), batch_rand(n, device=x.device)
                z = annulus_codes(dirs[slots], u[slots], self.atypical_delta, self.atypical_direction)
            elif self.atypical == "scale":
                a = (0.5 * batch_rand(n, 1, device=x.device)[slots]).clamp_min(1e-6)
                codes = e(x[slots]).float()
                z = a * codes if self.atypical_direction == "inward" else codes / a
            else:  # sipple: uniform in the cube around the origin that holds the batch's codes
                m = e(x).float().abs().max()
                z = (2.0 * batch_rand(n, self.nz, device=x.device)[slots] - 1.0) * m
            x[slots] = g(z).to(x.dtype)
        mask = torch.zeros(n, dtype=torch.bool, device=x.device)
        mask[slots] = True
        return mask

    def _mix(self, codes: torch.Tensor, normal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z_mix of the normal rows and the two permutations (indices into the normal rows)."""
        n, dev = len(normal), codes.device
        a1 = 0.5 * batch_rand(n, 1, device=dev)[normal]
        a2 = 0.5 * batch_rand(n, 1, device=dev)[normal]
        p1 = batch_rand(n, device=dev)[normal].argsort()
        p2 = batch_rand(n, device=dev)[normal].argsort()
        return simplex_codes(codes, a1, a2, p1, p2), p1, p2

    def _train(self, x: np.ndarray) -> None:
        labels = getattr(self, "_fit_labels", None)
        labelled = labels is not None and bool(np.any(labels == 1))
        idx_fit, idx_val = self._split(len(x), labels if labelled else None)
        f = self._fit_state(labelled)
        opts = {"opt_d": f.opt_d, "opt_g": f.opt_g, "opt_e": f.opt_e}
        phase = Phase("", self.epochs, lambda: self._make_step(f), opts)
        # the loop batches sample indices: the labels of a semi-supervised fit come along
        self._run_phases([phase], x, data=idx_fit, to_input=self._label_input(x, labels if labelled else None),
                         x_val=None if idx_val is None else x[idx_val])

        # A-score: a Gaussian on the R-scores of the training normals the weights were fitted on
        fit_normals = idx_fit if labels is None else idx_fit[labels[idx_fit] == 0]
        r = self._fill(x[fit_normals], lambda b: {"r": self._parts(b)["r_score"]})["r"].astype(np.float64)
        self.r_mu_, self.r_sigma_ = float(r.mean()), float(r.std())

    def _split(self, n: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(fitted, held-out) sample indices: the early-stopping hold-out, from which known
        anomalies (``labels == 1``) go back to training (they are never held out)."""
        idx_fit, idx_val = self._holdout(np.arange(n))
        if labels is not None and idx_val is not None:
            idx_fit = np.union1d(idx_fit, idx_val[labels[idx_val] == 1])
            idx_val = idx_val[labels[idx_val] == 0]
        return idx_fit, idx_val

    def _label_input(self, x: np.ndarray, labels: np.ndarray | None) -> Callable[[np.ndarray], torch.Tensor]:
        """Sample indices -> the model input of ``x[idx]``, with the labels (when given) as one
        constant extra plane that :meth:`_prepare` splits off."""

        def to_input(idx: np.ndarray) -> torch.Tensor:
            xb = self._to_input(x[idx])
            if labels is None:
                return xb
            lab = torch.as_tensor(labels[idx], dtype=xb.dtype, device=xb.device)
            return torch.cat([xb, lab.view(-1, 1, 1, 1).expand(-1, 1, *xb.shape[2:])], dim=1)

        return to_input

    def _run_key(self, x: np.ndarray, suffix: str) -> dict[str, Any]:
        """The run fingerprint, with the labels of a ``fit(X, y)`` (they change the training)."""
        key = super()._run_key(x, suffix)
        labels = getattr(self, "_fit_labels", None)
        if labels is not None:
            from ..run_identity import data_fingerprint

            key["data"]["labels"] = data_fingerprint(np.asarray(labels))["hash"]
        return key

    def _fit_state(self, labelled: bool) -> _Fit:
        e, g, d = self.nets_["e"], self.nets_["g"], self.nets_["d"]
        return _Fit(
            opt_d=torch.optim.Adam(d.parameters(), lr=self.lr, betas=(self.beta1, self.beta2)),
            opt_g=torch.optim.Adam(g.parameters(), lr=self.lr, betas=(self.beta1, self.beta2)),
            opt_e=torch.optim.Adam(e.parameters(), lr=self.lr, betas=(self.enc_beta1, self.beta2)),
            d_params=list(d.parameters()), ae_params=[*g.parameters(), *e.parameters()], labelled=labelled,
            interp=bool(self.interpolation) and self.lambda_inter > 0,
            negatives=self.atypical != "none" and not labelled,
        )

    def _make_step(self, f: _Fit) -> StepFn:
        """The training step: ``n_critic`` critic updates and one autoencoder update on one
        batch ("same"), or each critic update on its own batch ("new", :func:`ganad.train.alternating`)."""
        for m in self.nets_.values():
            m.train()
        n_critic = int(self.n_critic)
        if self.critic_batches == "same":

            def step(xb: torch.Tensor, t: StepIndex) -> dict[str, torch.Tensor]:
                b = self._prepare(f, xb, t)
                runs = [self._d_update(f, b) for _ in range(n_critic)]
                out = {k: torch.stack([r[k] for r in runs if k in r]).mean() for k in runs[0]}
                out.update(self._ae_update(f, b))
                return out

            return step
        current: dict[str, Any] = {}

        def d_step(xb: torch.Tensor, t: StepIndex) -> dict[str, torch.Tensor]:
            current["b"] = self._prepare(f, xb, t)
            return self._d_update(f, current["b"])

        def ae_step(xb: torch.Tensor, t: StepIndex) -> dict[str, torch.Tensor]:
            return self._ae_update(f, current["b"])  # the batch of the critic step just run

        return alternating(d_step, ae_step, n_critic)

    def _prepare(self, f: _Fit, xb: torch.Tensor, t: StepIndex) -> dict[str, Any]:
        """A step's batch: the lr of its epoch, the negatives (known or synthetic) and their weights w."""
        self._set_lr((f.opt_d, f.opt_g, f.opt_e), t.epoch)
        c = self.input_shape_[0]
        if f.labelled:
            x_b, neg = xb[:, :c].contiguous(), xb[:, c, 0, 0] > 0.5
        else:
            x_b, neg = xb, None
            if f.negatives and t.epoch >= self.atypical_start:
                x_b = x_b.clone()
                neg = self._negatives(x_b)
        if neg is None:
            neg = torch.zeros(len(x_b), dtype=torch.bool, device=x_b.device)
        w = torch.where(neg, -float(self.lambda_neg), 1.0).to(x_b.dtype)
        return {"x": x_b, "w": w, "normal": ~neg, "x_rec": None}

    def _d_update(self, f: _Fit, b: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One critic update: the mirrored loss (eq. 1), the gradient penalty and the interpolation term."""
        e, g, d = self.nets_["e"], self.nets_["g"], self.nets_["d"]
        xb, w, normal, mirrored = b["x"], b["w"], b["normal"], bool(self.mirrored)
        if b["x_rec"] is None:  # one E/G forward for all critic steps on this batch
            with torch.no_grad():
                codes = e(xb)
                b["codes"], b["x_rec"] = codes, g(codes)
        mix = None
        if f.interp and bool(normal.any()):
            xn = xb[normal]
            with torch.no_grad():
                z_mix, p1, p2 = self._mix(b["codes"][normal], normal)
                mix = ((xn, xn[p1], xn[p2]), g(z_mix), normal)
        loss, term = critic_loss(d, xb, b["x_rec"], w, mirrored, mix)
        gp = pair_gradient_penalty(d, xb, b["x_rec"], self.gp_weight, mirrored, self.gp_norm)
        out = {"d_wasserstein": -loss.detach(), "d_gp": gp.detach()}
        total = loss + gp
        if term is not None:
            total = total + self.lambda_inter * term
            out["d_interp"] = term.detach()
        f.opt_d.zero_grad(set_to_none=True)
        total.backward(inputs=f.d_params)
        f.opt_d.step()
        out["d"] = total.detach()
        return out

    def _ae_update(self, f: _Fit, b: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One autoencoder update (E and G): eqs. 2-3 and the interpolation term."""
        e, g, d = self.nets_["e"], self.nets_["g"], self.nets_["d"]
        xb, w, normal = b["x"], b["w"], b["normal"]
        codes = e(xb)
        has_normal = bool(normal.any())
        mix = None
        if f.interp and not self.interp_detach and has_normal:
            xn = xb[normal]
            z_mix, p1, p2 = self._mix(codes[normal], normal)
            mix = ((xn, xn[p1], xn[p2]), g(z_mix))
        adv, term = autoencoder_adv_loss(d, xb, g(codes), w, bool(self.mirrored), mix)
        reg = codes[normal].float().norm(dim=1).mean() if has_normal else adv.new_zeros(())
        total = adv + self.lambda_reg * reg
        out = {"ae_adv": adv.detach(), "ae_reg": reg.detach()}
        if term is not None:
            total = total + self.lambda_inter * term
            out["ae_interp"] = term.detach()
        f.opt_g.zero_grad(set_to_none=True)
        f.opt_e.zero_grad(set_to_none=True)
        total.backward(inputs=f.ae_params)
        f.opt_g.step()
        f.opt_e.step()
        out["ae"] = total.detach()
        out["negatives"] = (~normal).float().mean()
        return out

    def _val_loss(self, x_val: np.ndarray, phase: Phase | None = None) -> float:
        """Mean |x - G(E(x))| of held-out normal images (the critic changes every epoch, so R does not compare)."""
        total = 0.0
        for batch in self._iter_batches(x_val):
            total += float(self._parts(batch)["l1"].double().sum())
        return total / len(x_val)

    # ------------------------------------------------------------- scoring
    def _parts(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        e, g, d = self.nets_["e"], self.nets_["g"], self.nets_["d"]
        mirrored = bool(self.mirrored)
        x_rec = g(e(batch))
        f_real = d.features(pair(batch, batch, mirrored))
        f_rec = d.features(pair(batch, x_rec, mirrored))
        return {
            "r_score": (f_real - f_rec).float().abs().sum(1),
            "l1": (batch - x_rec).float().abs().flatten(1).mean(1),
        }

    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = self._parts(batch)
        r = parts["r_score"]
        if self.r_mu_ is None:
            a = torch.full_like(r, float("nan"))
        else:
            # in float64: R sits close to mu for typical images, where float32 cancels digits
            a = ((r.double() - self.r_mu_).pow(2) / max(self.r_sigma_, 1e-12) ** 2).float()
        return {"r_score": r, "a_score": a, "l1": parts["l1"], "score": a if self.score == "a" else r}

    def _extra_state(self) -> dict[str, Any]:
        if self.r_mu_ is None:
            return {}
        return {"r_mu": torch.tensor(self.r_mu_, dtype=torch.float64),
                "r_sigma": torch.tensor(self.r_sigma_, dtype=torch.float64)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if "r_mu" in state:
            self.r_mu_, self.r_sigma_ = float(state["r_mu"]), float(state["r_sigma"])

    # map: |x - G(E(x))| per pixel (channel mean): the "l1" part per pixel
    has_anomaly_map = True
    map_error = "l1"

    def _reconstruct_batch(self, batch: torch.Tensor) -> torch.Tensor:
        return self.nets_["g"](self.nets_["e"](batch))

    def _encode_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """z = E(x) (B, nz) of a prepared batch (:mod:`ganad.report.latent`)."""
        return self.nets_["e"](batch)


__all__ = ["AMA", "AMAEncoder", "annulus_codes", "autoencoder_adv_loss", "critic_loss", "pair",
           "pair_gradient_penalty", "simplex_codes"]
