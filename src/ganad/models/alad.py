"""ALAD: Adversarially Learned Anomaly Detection (Zenati et al., ICDM 2018, arXiv:1812.02288).

A BiGAN with ALICE's conditional-entropy regularisers: encoder E, generator
G and three discriminators, all trained on normal data.  Reference code: the
authors' houssamzenati/Adversarially-Learned-Anomaly-Detection (``alad/``).

* D_xz(x, z) tells (x, E(x)) from (G(z), z): the BiGAN / ALI game V(D_xz, E, G)
  (the BiGAN objective, eq. 3 of the survey by Di Mattia et al. 2019);
* D_xx(x, x') tells (x, x) from (x, G(E(x))): data-space cycle consistency,
  ALICE's approximation of the conditional entropy H(x|z);
* D_zz(z, z') tells (z, z) from (z, E(G(z))): latent-space cycle consistency;

and the three games are played together, min_{G,E} max_{D_xz,D_xx,D_zz}
V(D_xz) + V(D_xx) + V(D_zz).  With BCE on logits, as the reference code:

    L_D  = BCE(D_xz(x, E(x)), 1) + BCE(D_xz(G(z), z), 0)
         + BCE(D_xx(x, x), 1)    + BCE(D_xx(x, G(E(x))), 0)
         + BCE(D_zz(z, z), 1)    + BCE(D_zz(z, E(G(z))), 0)          (D_zz if allow_zz)
    C    = BCE(D_xx(x, x), 0) + BCE(D_xx(x, G(E(x))), 1)
         + BCE(D_zz(z, z), 0) + BCE(D_zz(z, E(G(z))), 1)              (flipped labels)
    L_G  = BCE(D_xz(G(z), z), 1) + C,     L_E = BCE(D_xz(x, E(x)), 0) + C

Score (the "fm" score, ALAD's anomaly score, restated as eq. 1 in Rafiee &
Fevens 2022, section 3.1): A(x) = ||f_xx(x, x) - f_xx(x, G(E(x)))||_1, with
f_xx D_xx's last hidden layer (the layer before the logits).  ``score_parts``
also gives the reference code's other scores: "l1" = ||x - G(E(x))||_1, "l2"
= ||x - G(E(x))||_2 and "logits" = BCE(D_xx(x, G(E(x))), 1) (the code's
"ch"); ``score_method`` picks which one is "score".

Nets: ALAD's CIFAR-10 E, G, D_xz, D_xx, D_zz (``alad/cifar10_utilities.py``,
width 128 = 128/256/512 channels, latent 100, init
N(0, 0.01)), generalised to any power-of-two side; spectral normalisation on
every discriminator layer but the logit layers, and on E's stride-2 convs,
as the reference's default ``--sn``; Adam 2e-4, beta1 0.5, batch 32; an EMA
(0.999) of all weights scores.  The ALAD paper's own equation numbers are
not cited: its text was not available to check them.

Deviations from the reference code, and why:

* Scoring in eval mode under inference_mode: no dropout, BatchNorm running
  statistics and no spectral-norm power iteration (the TF ``sn.py`` runs one
  power iteration and updates u at every call, test batches included), so a
  score never depends on its batch mates or on how often the model scored.
* The EMA uses TensorFlow's ``num_updates`` warm-up (min(decay, (1 + t) /
  (10 + t))) rather than a constant 0.999 from the initial weights, so short
  runs do not score with nearly untrained weights; ``ema_decay=0`` scores with
  the raw weights.  Buffers (BatchNorm statistics, SN vectors) are copied
  from the live nets.
* D and G/E steps share one minibatch and one z draw (the reference feeds the
  G/E step a second shuffled copy and fresh z): one E/G forward per step
  instead of two.  G and E are updated after D, against D's new weights.
* The logged G/E losses leave out BCE(D_xx(x, x), 0) and BCE(D_zz(z, z), 0):
  they do not depend on G or E (their gradients are zero) and cost a forward.
* The reference's early stopping is broken: its best validation loss starts
  at 0, so no epoch after the first counts as an improvement, training stops
  after about a dozen epochs and the test uses the last weights, not the
  best.  Here it is the toolkit's normal-only validation
  (``validation_fraction``, ``patience``) on the mean score of held-out normal images, which is what the reference
  meant to monitor.
* G's last transposed conv has no bias (the shared DCGAN decoder); images
  are in [-1, 1] and padded to a power-of-two side (28 -> 32).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import batch_randn
from ..losses import d_loss_bce
from ..nets.dcgan import DCGANDecoder
from ..nets.joint import ALADEncoder, XXDiscriminator, XZDiscriminator, ZZDiscriminator, normal_init
from ..params import BOOL, Interval, Options
from ..registry import register
from .egbad import _BiGANBase

_SCORES = ("fm", "l1", "l2", "logits")
INIT_STD = 0.01


@register("alad")
class ALAD(_BiGANBase):
    """ALAD: score = ||f_xx(x, x) - f_xx(x, G(E(x)))||_1 (``score_method="fm"``).

    Parameters
    ----------
    nz : latent size, the dimension of z (100, the reference's).
    width : base channel count of the nets (128: E's 128/256/512 channels, as the reference).
    sn : spectral normalisation on every discriminator layer but the logit layers and
        on E's stride-2 convs (the reference's default ``--sn``).
    allow_zz : play the latent-cycle game too: D_zz's terms in L_D and in the cycle
        loss C of G and E (False: D_xz and D_xx only).
    xx_concat : how D_xx sees its pair (x, x'): "height" stacks x above x' (the
        reference's), "channel" stacks them as 2C channels.
    score_method : which score is "score": "fm" (||f_xx(x, x) - f_xx(x, G(E(x)))||_1,
        ALAD's), "l1" / "l2" (||x - G(E(x))||_1 / _2) or "logits" (BCE(D_xx(x, G(E(x))), 1)).
    """

    def __init__(
        self,
        nz: int = 100,
        width: int = 128,
        lr: float = 2e-4,
        beta1: float = 0.5,
        ema_decay: float = 0.999,
        sn: bool = True,
        allow_zz: bool = True,
        xx_concat: str = "height",
        score_method: str = "fm",
        batch_size: int = 32,
        **common: Any,
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, ema_decay=ema_decay, batch_size=batch_size, **common)
        self.sn = sn
        self.allow_zz = allow_zz
        self.xx_concat = xx_concat
        self.score_method = score_method

    _parameter_constraints = {
        "width": [Interval(int, 2)], "sn": [BOOL], "allow_zz": [BOOL], "xx_concat": [Options(("height", "channel"))],
        "score_method": [Options(_SCORES)],
    }

    def _make_nets(self, channels: int, size: int) -> dict[str, nn.Module]:
        w, sn = self.width, bool(self.sn)
        nets = {
            "e": ALADEncoder(size, channels, self.nz, w, sn=sn),
            "g": DCGANDecoder(size, channels, self.nz, w),
            "dxz": XZDiscriminator(size, channels, self.nz, w, sn=sn),
            "dxx": XXDiscriminator(size, channels, w, sn=sn, concat=self.xx_concat),
            "dzz": ZZDiscriminator(self.nz, sn=sn),
        }
        return {k: normal_init(m, INIT_STD) for k, m in nets.items()}

    def _train(self, x: np.ndarray) -> None:
        e, g = self.nets_["e"], self.nets_["g"]
        dxz, dxx, dzz = self.nets_["dxz"], self.nets_["dxx"], self.nets_["dzz"]
        opt_d = self._adam(dxz, dxx, dzz)  # Adam is per parameter: one optimizer = the reference's three
        opt_ge = self._adam(g, e)
        ge_params = [*g.parameters(), *e.parameters()]
        zz = bool(self.allow_zz)

        def step(xb: torch.Tensor, global_step: int) -> dict[str, torch.Tensor | float]:
            z = batch_randn(len(xb), self.nz, device=xb.device)
            z_enc = e(xb)
            x_fake = g(z)
            x_rec = g(z_enc)
            z_rec = e(x_fake)

            # discriminators: D_xz, D_xx, D_zz on detached samples
            lxz_real, _ = dxz(xb, z_enc.detach())
            lxz_fake, _ = dxz(x_fake.detach(), z)
            loss_dxz = d_loss_bce(lxz_real, lxz_fake)
            lxx_real, _ = dxx(xb, xb)
            lxx_fake, _ = dxx(xb, x_rec.detach())
            loss_dxx = d_loss_bce(lxx_real, lxx_fake)
            loss_d = loss_dxz + loss_dxx
            out: dict[str, torch.Tensor | float] = {"d_xz": loss_dxz, "d_xx": loss_dxx}
            if zz:
                lzz_real, _ = dzz(z, z)
                lzz_fake, _ = dzz(z, z_rec.detach())
                loss_dzz = d_loss_bce(lzz_real, lzz_fake)
                loss_d = loss_d + loss_dzz
                out["d_zz"] = loss_dzz
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            # generator and encoder against the updated discriminators
            lxz_real, _ = dxz(xb, z_enc)
            lxz_fake, _ = dxz(x_fake, z)
            gen_xz = F.softplus(-lxz_fake).mean()  # BCE(D_xz(G(z), z), 1): depends on G only
            enc_xz = F.softplus(lxz_real).mean()  # BCE(D_xz(x, E(x)), 0): depends on E only
            lxx_fake, _ = dxx(xb, x_rec)
            cycle = F.softplus(-lxx_fake).mean()  # BCE(D_xx(x, G(E(x))), 1)
            if zz:
                lzz_fake, _ = dzz(z, z_rec)
                cycle = cycle + F.softplus(-lzz_fake).mean()  # BCE(D_zz(z, E(G(z))), 1)
            # d/dG of (gen_xz + enc_xz + C) = d/dG L_G and d/dE of it = d/dE L_E
            opt_ge.zero_grad(set_to_none=True)
            (gen_xz + enc_xz + cycle).backward(inputs=ge_params)
            opt_ge.step()
            self._ema_step(global_step)
            out.update({"d": loss_d, "g": gen_xz + cycle, "e": enc_xz + cycle, "cycle": cycle})
            return out

        self._run_loop(step, x, {"opt_d": opt_d, "opt_ge": opt_ge})

    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        n = self._scoring_nets()
        x_rec = n["g"](n["e"](batch))
        _, f_real = n["dxx"](batch, batch)
        l_rec, f_rec = n["dxx"](batch, x_rec)
        diff = (batch - x_rec).flatten(1)
        parts = {
            "fm": (f_real - f_rec).abs().sum(1),
            "l1": diff.abs().sum(1),
            "l2": diff.pow(2).sum(1).sqrt(),
            "logits": F.softplus(-l_rec),
        }
        return {**parts, "score": parts[self.score_method]}
