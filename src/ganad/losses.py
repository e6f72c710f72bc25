"""GAN objectives as pure functions of discriminator/critic outputs.

Conventions: ``real`` and ``fake`` are the critic's raw outputs (logits,
before any sigmoid), shape (N,) or (N, 1); every loss is a scalar mean over
the batch and is *minimised* by the player it belongs to.  sigma is the
logistic sigmoid and softplus(t) = log(1 + e^t), so -log sigma(t) =
softplus(-t) and -log(1 - sigma(t)) = softplus(t), computed without the
log(0) that ``BCELoss`` on sigmoid outputs clamps to -100.

=========================  =====================================================
BCE (Goodfellow 2014)       L_D = -E log s(D(x)) - E log(1 - s(D(G(z))))
non-saturating G            L_G = -E log s(D(G(z)))
feature matching            L = mean (f(x) - f(G(.)))^2  (paired or batch means)
WGAN (Arjovsky 2017)        L_D = E D(G(z)) - E D(x),  L_G = -E D(G(z)),
                            weights clipped to [-c, c] after each critic step
WGAN-GP (Gulrajani 2017)    + lambda E (||grad_xh D(xh)||_2 - 1)^2,
                            xh = a x + (1 - a) G(z), a ~ U[0, 1] per sample
RSGAN (Jolicoeur-M. 2019)   L_D = -E log s(D(x) - D(G(z))),
                            L_G = -E log s(D(G(z)) - D(x))
hinge (Lim & Ye 2017)       L_D = E relu(1 - D(x)) + E relu(1 + D(G(z))),
                            L_G = -E D(G(z))
=========================  =====================================================
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import batch_rand, global_mean

Inputs = torch.Tensor | Sequence[torch.Tensor]


def _flat(t: torch.Tensor) -> torch.Tensor:
    # (N,) and (N, 1) outputs pair up sample by sample instead of broadcasting to (N, N)
    return t.reshape(len(t), -1)


# ----------------------------------------------------------------- BCE / JS
def d_loss_bce(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L_D = -E log s(D(x)) - E log(1 - s(D(G(z)))) = E softplus(-real) + E softplus(fake).

    The sum of the two BCE terms; GANomaly's reference code halves it.
    """
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss_bce(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss L_G = -E log s(D(G(z))) = E softplus(-fake)."""
    return F.softplus(-fake).mean()


def feature_matching(real_feats: torch.Tensor, fake_feats: torch.Tensor, paired: bool = True) -> torch.Tensor:
    """Feature-matching loss on discriminator features f.

    ``paired=True`` (GANomaly's adversarial term, reconstructions paired with
    their inputs): mean over batch and features of (f(x_i) - f(x_hat_i))^2.
    ``paired=False`` (Salimans et al. 2016): mean over features of
    (E_batch f(x) - E_batch f(G(z)))^2.
    """
    if paired:
        return (real_feats - fake_feats).pow(2).mean()
    # under torchrun the batch means are the global batch's (global_mean: identity in one process)
    return (global_mean(real_feats.flatten(1).mean(0)) - global_mean(fake_feats.flatten(1).mean(0))).pow(2).mean()


# -------------------------------------------------------------------- WGAN
def d_loss_wgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Critic loss L_D = E D(G(z)) - E D(x) (minus the Wasserstein-1 estimate)."""
    return fake.mean() - real.mean()


def g_loss_wgan(fake: torch.Tensor) -> torch.Tensor:
    """Generator loss L_G = -E D(G(z))."""
    return -fake.mean()


@torch.no_grad()
def clip_weights(module: nn.Module, c: float = 0.01) -> None:
    """Clamp every parameter of the critic to [-c, c] in place (WGAN's Lipschitz bound)."""
    for p in module.parameters():
        p.clamp_(-c, c)


def gradient_penalty(
    critic: Callable[..., torch.Tensor],
    real: Inputs,
    fake: Inputs,
    weight: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty  weight * E_i (||grad_{xh_i} D(xh_i)||_2 - 1)^2.

    xh = a * real + (1 - a) * fake with one a ~ U[0, 1] per sample.  For a
    critic of several inputs (BiGAN/ALAD's D(x, z)) pass tuples: each member
    is interpolated with the same a, the critic is called as
    ``critic(*xh)`` and the norm is taken over the concatenated gradients.
    Pass ``fake`` detached; the penalty is differentiable w.r.t. the critic's
    parameters (``create_graph=True``).  A critic with BatchNorm mixes samples,
    so its per-sample gradient norms are not the ones the penalty assumes.
    """
    tup = not isinstance(real, torch.Tensor)
    reals = [t.float() for t in (list(real) if tup else [real])]
    fakes = [t.float() for t in (list(fake) if tup else [fake])]
    if torch.is_autocast_enabled(reals[0].device.type):
        # the penalty's double backward stays in fp32: a bf16 gradient norm is off by ~1e-2,
        # which the (norm - 1)^2 term squares into the critic's loss
        with torch.autocast(reals[0].device.type, enabled=False):
            return gradient_penalty(critic, reals if tup else reals[0], fakes if tup else fakes[0], weight, generator)
    if len(reals) != len(fakes):
        raise ValueError(f"real has {len(reals)} inputs but fake has {len(fakes)}")
    n = len(reals[0])
    dev = generator.device if generator is not None else reals[0].device
    a = batch_rand(n, generator=generator, device=dev).to(reals[0].device)  # torchrun: the global batch's rows
    mixed = []
    for r, f in zip(reals, fakes):
        ar = a.view(n, *([1] * (r.dim() - 1))).to(r.dtype)
        mixed.append((ar * r.detach() + (1 - ar) * f.detach()).requires_grad_(True))
    out = critic(*mixed)
    grads = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    norm = torch.cat([g.reshape(n, -1) for g in grads], dim=1).norm(2, dim=1)
    return weight * (norm - 1).pow(2).mean()


# ------------------------------------------------------------ relativistic
def d_loss_rsgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic standard GAN: L_D = -E log s(D(x) - D(G(z))) (paired samples)."""
    return F.softplus(-(_flat(real) - _flat(fake))).mean()


def g_loss_rsgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic standard GAN: L_G = -E log s(D(G(z)) - D(x))."""
    return F.softplus(-(_flat(fake) - _flat(real))).mean()


# ------------------------------------------------------------------- hinge
def d_loss_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L_D = E relu(1 - D(x)) + E relu(1 + D(G(z)))."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_loss_hinge(fake: torch.Tensor) -> torch.Tensor:
    """L_G = -E D(G(z))."""
    return -fake.mean()


__all__ = [
    "clip_weights",
    "d_loss_bce",
    "d_loss_hinge",
    "d_loss_rsgan",
    "d_loss_wgan",
    "feature_matching",
    "g_loss_bce",
    "g_loss_hinge",
    "g_loss_rsgan",
    "g_loss_wgan",
    "gradient_penalty",
]
