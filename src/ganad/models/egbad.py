"""EGBAD: Efficient GAN-Based Anomaly Detection (Zenati et al., 2018, arXiv:1802.06222).

A BiGAN (Donahue et al. 2017): encoder E, generator G and a discriminator
D(x, z) over pairs, trained on normal data only.  Reference code: the
authors' houssamzenati/Efficient-GAN-Anomaly-Detection (``bigan/``).  The
three players solve the BiGAN saddle point min_{G,E} max_D V(D, E, G), with
V the BiGAN objective (written out as eq. 3 of the survey by Di Mattia et al.
2019, whose section 2.2 describes EGBAD as solving this problem), here with
the BCE losses of the reference code (logits, softplus form):

    L_D = BCE(D(x, E(x)), 1) + BCE(D(G(z), z), 0)      z ~ N(0, I)
    L_G = BCE(D(G(z), z), 1)                            (train_adv="bce")
    L_E = BCE(D(x, E(x)), 0)

Score: AnoGAN's form, a convex combination of a residual and a
discrimination loss (Di Mattia et al. 2019, section 2.1, eqs. 4-6; Rafiee &
Fevens 2022, section 3.1, describe EGBAD's score as "similar" to AnoGAN's),
evaluated at z = E(x) instead of a searched z, with lam = 0.1 on the
discrimination term (the reference code's ``weight`` and README setting):

    A(x)  = (1 - lam) * L_G(x) + lam * L_D(x)
    L_G(x) = ||x - G(E(x))||_1                                   ("residual")
    L_D(x) = ||f(x, E(x)) - f(G(E(x)), E(x))||_1   score_method="fm" (default)
           = BCE(D(G(E(x)), E(x)), 1)               score_method="ce" (the code's "cross-e")
           = BCE(D(x, E(x)), 1)                     score_method="ce_real" (D on the real pair
                                                    (x, E(x)) instead of the reconstructed one)

f is D's last hidden layer (the joint FC 1024 of the reference).  Norms are
sums over pixels/features, as ``tf.norm(ord=1)`` in the code.
``score_parts`` gives "residual", "discriminator" (the chosen L_D), "fm",
"ce", "ce_real" and "score", so every row of the survey's Table 1 (Di Mattia
et al. 2019, section 3: BiGAN training and testing configurations) is scored
from one model.  The survey's *training* options (section 3.2) are
``train_adv="fm"`` (L_G becomes feature matching between the batch means of
f(x, E(x)) and f(G(z), z), Salimans et al.; "FM influences only the
generator loss") and ``train_residual=w`` (adds w * mean |x - G(E(x))| to
L_E; the survey's "Residual" column, added there as a plain extra term, so
w = 1).  Cases 1-4 of Table 1: (bce, 1.0), (fm, 1.0), (bce, 0), (fm, 0); the
reference is case 3.

Nets: ``arch="mnist"`` is EGBAD's MNIST E/G/D (``bigan/mnist_utilities.py``,
latent 200, LReLU 0.1, dropout 0.5 in D, width 64), ``arch="cifar"`` the
CIFAR-10 E, G and D_xz of ALAD's reference code (``alad/cifar10_utilities.py``)
without D_xx, D_zz and spectral norm, since EGBAD's official code has no
CIFAR-10 model (width 128); ``"auto"`` picks "mnist" for one channel and
"cifar" otherwise.  Adam lr 1e-5, beta1 0.5, batch 100 and an exponential
moving average (EMA, 0.999) of all weights used for scoring, as the
reference.  The EGBAD paper's own equation numbers are not cited: its text was
not available to check them, so the equations are cited from the survey.

Deviations from the reference code, and why:

* Scoring runs in eval mode (BatchNorm running statistics, dropout off)
  under inference_mode, so a score never depends on its batch mates.
* The EMA uses TensorFlow's ``num_updates`` warm-up, decay_t = min(decay,
  (1 + t) / (10 + t)); the reference uses a constant 0.999 from the initial
  weights, which leaves short runs (a few hundred steps, e.g. on small data
  or in tests) scoring with nearly untrained weights.  Long runs are the
  same.  ``ema_decay=0`` scores with the raw weights.  BatchNorm statistics
  are copied from the live nets (the TF getter averages trainable variables
  only).
* The D step and the G/E step use the same minibatch and z draw (the
  reference feeds the G/E step a second, independently shuffled copy of the
  data and draws fresh z); it saves one E/G forward pass per step.  G and E
  are updated after D, on D's updated weights, as in the reference.
* The encoder's first conv has no activation, as in the reference (the
  survey's "version 1", appendix A.1, added a LeakyReLU there; its appendix
  A.2 reports better results without it).
* Images are scaled to [-1, 1] and padded to a power-of-two side (28 -> 32);
  the MNIST nets keep their two stride-2 layers at every side.
* No score normalisation: the reference scores are used raw (the later
  anomaly-toolbox re-implementation normalises over the test batch, which
  makes scores batch-dependent).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import batch_randn
from ..losses import d_loss_bce, feature_matching, g_loss_bce
from ..nets.dcgan import DCGANDecoder
from ..nets.joint import (
    ALADEncoder,
    XZDiscriminator,
    ZenatiMNISTDiscriminator,
    ZenatiMNISTEncoder,
    ZenatiMNISTGenerator,
    ema_decay_at,
    ema_update,
    normal_init,
)
from ..params import BETA, NON_NEGATIVE, UNIT, Interval, Options
from ..registry import register
from .torch_base import DCGANDetector, Phase

_ARCHES = ("auto", "mnist", "cifar")
_DEFAULT_WIDTH = {"mnist": 64, "cifar": 128}
_INIT_STD = {"mnist": 0.02, "cifar": 0.01}


class _BiGANBase(DCGANDetector):
    """What EGBAD and ALAD share: latent size, width, Adam, and the EMA copy of
    every net (``nets_["ema"]``), which is what scores.

    Parameters
    ----------
    lr, beta1 : Adam(lr, (beta1, 0.999)) of every net.
    ema_decay : decay of the exponential moving average of all weights, the copy that
        scores (warmed up as min(ema_decay, (1 + t) / (10 + t)) at step t); 0 scores
        with the raw weights.
    """

    def __init__(self, nz: int, width: int | None, lr: float, beta1: float, ema_decay: float, **common: Any):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, **common)
        self.ema_decay = ema_decay

    _parameter_constraints = {"width": [Interval(int, 2), None], "ema_decay": [BETA]}

    # ----------------------------------------------------------------- nets
    def _make_nets(self, channels: int, size: int) -> dict[str, nn.Module]:  # pragma: no cover
        raise NotImplementedError

    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        live = self._make_nets(c, size)
        nets: dict[str, nn.Module] = dict(live)
        if self.ema_decay > 0:
            ema = nn.ModuleDict(self._make_nets(c, size))
            ema.load_state_dict(nn.ModuleDict(live).state_dict())
            for p in ema.parameters():
                p.requires_grad_(False)
            nets["ema"] = ema
        self.nets_ = nn.ModuleDict(nets)

    def _live(self) -> dict[str, nn.Module]:
        return {k: m for k, m in self.nets_.items() if k != "ema"}

    def _scoring_nets(self) -> nn.ModuleDict:
        return self.nets_["ema"] if "ema" in self.nets_ else self.nets_

    def _val_loss(self, x_val: np.ndarray, phase: Phase | None = None) -> float:
        """Normal-only validation criterion (``validation_fraction`` > 0): the mean
        L1 cycle error ||x - G(E(x))|| of held-out normal images with the scoring
        nets.  A BiGAN whose encoder inverts its generator on normal data
        reconstructs them; its adversarial scores can drift however training
        goes (the "fm" score of a collapsed D is constant), so they make a poor
        criterion for keeping an epoch.  With ``patience`` the best epoch's
        weights are restored (:func:`ganad.train.fit_loop`)."""
        nets = self._scoring_nets()
        total = 0.0
        for batch in self._iter_batches(x_val):
            total += float((batch - nets["g"](nets["e"](batch))).abs().flatten(1).sum(1).sum())
        return total / len(x_val)

    # map: the L1 residual per pixel, |x - G(E(x))| with the scoring (EMA) nets, channel mean
    # (EGBAD: its score's "residual" term; ALAD: its "l1" score, not the default "fm" one)
    has_anomaly_map = True
    map_error = "l1"

    def _reconstruct_batch(self, batch: torch.Tensor) -> torch.Tensor:
        nets = self._scoring_nets()
        return nets["g"](nets["e"](batch))

    def _ema_step(self, global_step: int) -> None:
        if "ema" not in self.nets_:
            return
        decay = ema_decay_at(self.ema_decay, global_step)
        ema = self.nets_["ema"]
        for k, m in self._live().items():
            ema_update(ema[k], m, decay)

    def count_parameters(self) -> int:
        """Parameters of the live nets (the EMA copy doubles the stored weights)."""
        return sum(p.numel() for m in self._live().values() for p in m.parameters())

    def _encode_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """z = E(x) (B, nz) of a prepared batch with the scoring (EMA) encoder (:mod:`ganad.report.latent`)."""
        return self._scoring_nets()["e"](batch)


@register("egbad")
class EGBAD(_BiGANBase):
    """EGBAD (BiGAN): score = (1 - lam) ||x - G(E(x))||_1 + lam L_D(x), lam = 0.1.

    Parameters
    ----------
    nz : latent size, the dimension of z (200, as the reference's MNIST model).
    width : base channel count of E, G and D (None = 64 for the MNIST nets, 128 for
        the CIFAR nets).
    arch : the nets: "mnist" (EGBAD's MNIST E, G, D), "cifar" (ALAD's CIFAR-10 E, G
        and D_xz, without spectral norm) or "auto" ("mnist" for one channel, "cifar"
        otherwise).
    train_adv : G's loss: "bce" (BCE(D(G(z), z), 1), the reference) or "fm" (feature
        matching between the batch means of f(x, E(x)) and f(G(z), z)).
    train_residual : weight w of the term w * mean |x - G(E(x))| added to L_E (0 = off).
    score_method : the discrimination term L_D(x) of the score: "fm" (the L1 distance
        ||f(x, E(x)) - f(G(E(x)), E(x))||_1 of D's last hidden features), "ce"
        (BCE(D(G(E(x)), E(x)), 1)) or "ce_real" (BCE(D(x, E(x)), 1)); scoring only.
    lam : weight of L_D(x) in the score (1 - lam) ||x - G(E(x))||_1 + lam L_D(x);
        scoring only.
    """

    score_params = ("score_method", "lam")

    def __init__(
        self,
        nz: int = 200,
        width: int | None = None,
        arch: str = "auto",
        lr: float = 1e-5,
        beta1: float = 0.5,
        ema_decay: float = 0.999,
        train_adv: str = "bce",
        train_residual: float = 0.0,
        score_method: str = "fm",
        lam: float = 0.1,
        batch_size: int = 100,
        **common: Any,
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, ema_decay=ema_decay, batch_size=batch_size, **common)
        self.arch = arch
        self.train_adv = train_adv
        self.train_residual = train_residual
        self.score_method = score_method
        self.lam = lam

    _parameter_constraints = {
        "arch": [Options(_ARCHES)], "train_adv": [Options(("bce", "fm"))], "train_residual": [NON_NEGATIVE],
        "score_method": [Options(("fm", "ce", "ce_real"))], "lam": [UNIT],
    }

    def resolved_arch(self, channels: int | None = None) -> str:
        """The nets ``arch`` stands for here: ``"mnist"`` or ``"cifar"`` ("auto": by channel count)."""
        if self.arch != "auto":
            return self.arch
        c = channels if channels is not None else self.input_shape_[0]
        return "mnist" if c == 1 else "cifar"

    def _make_nets(self, channels: int, size: int) -> dict[str, nn.Module]:
        arch = self.resolved_arch(channels)
        w = self.width or _DEFAULT_WIDTH[arch]
        if arch == "mnist":
            e = ZenatiMNISTEncoder(size, channels, self.nz, w)
            g = ZenatiMNISTGenerator(size, channels, self.nz, w)
            d = ZenatiMNISTDiscriminator(size, channels, self.nz, w)
        else:
            e = ALADEncoder(size, channels, self.nz, w, sn=False)
            g = DCGANDecoder(size, channels, self.nz, w)
            d = XZDiscriminator(size, channels, self.nz, w, sn=False)
        std = _INIT_STD[arch]
        return {"e": normal_init(e, std), "g": normal_init(g, std), "d": normal_init(d, std)}

    def _train(self, x: np.ndarray) -> None:
        e, g, d = self.nets_["e"], self.nets_["g"], self.nets_["d"]
        opt_d, opt_g, opt_e = self._adam(d), self._adam(g), self._adam(e)
        g_params, e_params = list(g.parameters()), list(e.parameters())

        def step(xb: torch.Tensor, global_step: int) -> dict[str, torch.Tensor | float]:
            z = batch_randn(len(xb), self.nz, device=xb.device)
            x_fake = g(z)
            z_enc = e(xb)

            # D step: real pairs (x, E(x)) -> 1, generated pairs (G(z), z) -> 0
            l_real, _ = d(xb, z_enc.detach())
            l_fake, _ = d(x_fake.detach(), z)
            loss_d = d_loss_bce(l_real, l_fake)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            # G and E steps against the updated D
            l_real, f_real = d(xb, z_enc)
            l_fake, f_fake = d(x_fake, z)
            if self.train_adv == "bce":
                loss_g = g_loss_bce(l_fake)
            else:  # feature matching on D's last hidden layer (batch means: x and z are not paired)
                loss_g = feature_matching(f_real.detach(), f_fake, paired=False)
            loss_e = F.softplus(l_real).mean()  # BCE(D(x, E(x)), 0)
            out: dict[str, torch.Tensor | float] = {"d": loss_d, "g": loss_g, "e": loss_e}
            if self.train_residual:
                res = (xb - g(z_enc)).abs().mean()
                loss_e = loss_e + self.train_residual * res
                out["e_residual"] = res
            opt_g.zero_grad(set_to_none=True)
            opt_e.zero_grad(set_to_none=True)
            loss_g.backward(inputs=g_params)  # graphs share no intermediate node
            loss_e.backward(inputs=e_params)  # the residual trains E only (survey)
            opt_g.step()
            opt_e.step()
            self._ema_step(global_step)
            return out

        self._run_loop(step, x, {"opt_d": opt_d, "opt_g": opt_g, "opt_e": opt_e})

    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        n = self._scoring_nets()
        z = n["e"](batch)
        x_rec = n["g"](z)
        l_real, f_real = n["d"](batch, z)
        l_rec, f_rec = n["d"](x_rec, z)
        residual = (batch - x_rec).abs().flatten(1).sum(1)
        parts = {
            "fm": (f_real - f_rec).abs().sum(1),
            "ce": F.softplus(-l_rec),
            "ce_real": F.softplus(-l_real),
        }
        disc = parts[self.score_method]
        return {
            "residual": residual,
            "discriminator": disc,
            **parts,
            "score": (1.0 - self.lam) * residual + self.lam * disc,
        }
