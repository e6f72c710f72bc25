"""f-AnoGAN (Schlegl, Seeböck, Waldstein, Langs & Schmidt-Erfurth, Medical Image Analysis 2019).

Two training phases on normal images, as the official code
(tSchlegl/f-AnoGAN: ``wgangp_64x64.py`` / ``z_encoding_izif.py`` /
``anomaly_detection.py``); Berg et al. 2019, sections 3.1-3.2, summarise the
method the same way (a WGAN-GP instead of AnoGAN's DCGAN, then an encoder
trained in a subsequent step instead of AnoGAN's latent search):

1. **WGAN-GP** (Gulrajani et al. 2017): residual generator G and critic D
   (LayerNorm, no BatchNorm, so the penalty's per-sample gradients are per
   sample)::

       L_D = E D(G(z)) - E D(x) + gp_weight * E (||grad D(x_hat)||_2 - 1)^2,   gp_weight = 10
       L_G = -E D(G(z)),  z ~ N(0, I_128)

   with one G update after every ``n_critic`` = 5 critic updates, each on a
   new batch (the reference skips the first G step: the same order), Adam
   lr 1e-4, betas (0, 0.9) for both.

2. **izi_f encoder** (image -> z -> image, plus critic features): E is
   trained with G and D frozen (G's BatchNorm in eval mode), E(x) =
   tanh(Linear(trunk(x))) (``z_reg="tanh"``, the code's default ``tanh_fc``),
   RMSProp lr 5e-5::

       L_izi_f = mean_pix (x - G(E(x)))^2 + kappa * mean_feat (f(x) - f(G(E(x))))^2,  kappa = 1

   f is the critic's last feature map, flattened (8w x 4 x 4).

Score (the official ``anomaly_detection.py`` with ``dual_iloss=True``):
A(x) = A_R(x) + kappa A_D(x) with A_R = mean_pix (x - G(E(x)))^2 ("image")
and A_D = mean_feat (f(x) - f(G(E(x))))^2 ("feature"), the same two terms as
the encoder's training loss.  The
journal paper's equation numbers are not cited: its text was not available
to check them.

Nets (the official 64 px nets with one residual block fewer at 32 px, the
adaptation Berg et al. 2019, section 4.2, made for 32x32 images: "removing
one residual block in the discriminator, generator, and encoder"; smaller
sides drop further blocks): G = Linear(nz -> 8w x 4 x 4), then
log2(S) - 2 residual up-blocks to S px (at 32: 8w -> 4w -> 2w -> w; at 64 the
reference's 8w -> 8w -> 4w -> 2w -> w), BN, ReLU, conv3 -> C, tanh.  D = conv3
C -> w, log2(S) - 2 residual down-blocks (w -> 2w -> 4w -> 8w, capped at 8w)
to 4x4 [f], Linear -> 1.  E = D's trunk with BatchNorm instead of LayerNorm,
Linear -> nz, tanh.  Up-block: BN, ReLU, upsample x2 (nearest), conv3 (no
bias), BN, ReLU, conv3; shortcut upsample, conv1.  Down-block: norm, ReLU,
conv3 (C_in -> C_in, no bias), norm, ReLU, conv3, mean-pool 2; shortcut
mean-pool, conv1.  LayerNorm normalises over (C, H, W) with a per-channel
affine (``GroupNorm(1, C)``).  Initialisation as tflib: conv weights uniform
with std sqrt(4 / (fan_in + fan_out)) (He) or sqrt(2 / (fan_in + fan_out))
(Glorot: input convs and shortcuts), linear layers uniform with std
sqrt(1 / fan_in), biases 0.

**Checkpoints.** The phases are two declared training phases
(:class:`~ganad.models.torch_base.Phase`) with their own files,
``<checkpoint>.gan`` and ``<checkpoint>.enc``: a run killed
in either phase resumes where it stopped (a finished ``.gan`` file makes phase
1 return at once with its weights), and a finished pair reloads without
training.  Phase 1 runs ``epochs`` epochs (one critic batch per step), phase
2 ``encoder_epochs`` (default: ``epochs``).  ``history_`` is phase 2's
History, ``gan_history_`` phase 1's.  With ``validation_fraction`` > 0 the
same held-out normal images are kept out of both phases; early stopping
(``patience``) applies to the encoder phase only, on the mean anomaly score
of the held-out normals (the reference's "z-mapping loss test"); a WGAN
critic loss is no criterion for stopping the GAN.

Deviations from the reference code, and why:

* 32 px (and 8, 16 px) inputs lose resolution levels, as in Berg et al.'s
  32 px adaptation; 28 px images are padded to 32, scaled to [-1, 1].
* The encoder trains for ``encoder_epochs`` epochs rather than 50 000
  iterations, so that its length follows the data set's size.
* PyTorch's RMSprop (alpha = TF's decay 0.9, eps 1e-10) initialises its mean
  square at 0 where TF's starts at 1, and BatchNorm uses PyTorch's momentum
  (0.1; TF's default is 0.01): small differences in the first steps.
* The critic step runs G without gradient in train mode, which also updates
  G's BatchNorm running statistics (TF updates them in the G step only); the
  statistics are estimates of the same batch statistics either way.
* The reference drops test images beyond a multiple of 64 (``img_loader``):
  here every image is scored, one at a time in effect (eval mode).
* The "ziz" latent distance the scoring script also logs is not computed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import batch_randn
from ..losses import d_loss_wgan, g_loss_wgan, gradient_penalty
from ..params import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, SHARED, Options
from ..registry import register
from ..train import StepFn, alternating
from .berg import minmax_unit
from .torch_base import Phase, TorchDetector

_Z_REGS = ("tanh", "none")


# ----------------------------------------------------------------- layers
@torch.no_grad()
def _uniform_(w: torch.Tensor, std: float) -> None:
    nn.init.uniform_(w, -std * math.sqrt(3.0), std * math.sqrt(3.0))


def _conv(c_in: int, c_out: int, k: int, *, he: bool = True, bias: bool = True) -> nn.Conv2d:
    """tflib's Conv2D: 'same' padding, uniform He (4 / fan sum) or Glorot (2 / fan sum) init."""
    conv = nn.Conv2d(c_in, c_out, k, 1, k // 2, bias=bias)
    fans = (c_in + c_out) * k * k
    _uniform_(conv.weight, math.sqrt((4.0 if he else 2.0) / fans))
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def _linear(i: int, o: int) -> nn.Linear:
    lin = nn.Linear(i, o)
    _uniform_(lin.weight, math.sqrt(1.0 / i))
    nn.init.zeros_(lin.bias)
    return lin


def _norm(kind: str, c: int) -> nn.Module:
    # "layer": tflib's Layernorm over (C, H, W) with a per-channel scale/offset
    return nn.BatchNorm2d(c) if kind == "batch" else nn.GroupNorm(1, c)


def _n_blocks(size: int) -> int:
    if size < 8 or size & (size - 1):
        raise ValueError(f"f-AnoGAN nets need a power-of-two image side >= 8; got {size}")
    return int(math.log2(size)) - 2


class ResBlock(nn.Module):
    """Residual block of the f-AnoGAN (Gulrajani et al.'s "Good" 64 px) nets; ``resample`` "up" or "down"."""

    def __init__(self, c_in: int, c_out: int, resample: str, norm: str):
        super().__init__()
        if resample not in ("up", "down"):
            raise ValueError(f"resample must be 'up' or 'down'; got {resample!r}")
        self.up = resample == "up"
        c_mid = c_out if self.up else c_in
        self.norm1 = _norm(norm, c_in)
        self.conv1 = _conv(c_in, c_mid, 3, bias=False)
        self.norm2 = _norm(norm, c_mid)
        self.conv2 = _conv(c_mid, c_out, 3)
        self.shortcut = _conv(c_in, c_out, 1, he=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(x))
        if self.up:
            h = self.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))
            h = self.conv2(F.relu(self.norm2(h)))
            return self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest")) + h
        h = self.conv1(h)
        h = F.avg_pool2d(self.conv2(F.relu(self.norm2(h))), 2)
        return self.shortcut(F.avg_pool2d(x, 2)) + h


class FAnoGANGenerator(nn.Module):
    """z (N, nz) -> image (N, C, S, S) in [-1, 1]."""

    def __init__(self, size: int, channels: int, nz: int = 128, width: int = 64):
        super().__init__()
        n = _n_blocks(size)
        ch = [8 * width] + [width * min(8, 2 ** (n - 1 - i)) for i in range(n)]
        self.c0 = ch[0]
        self.fc = _linear(nz, 16 * ch[0])
        self.blocks = nn.Sequential(*[ResBlock(ch[i], ch[i + 1], "up", "batch") for i in range(n)])
        self.norm = nn.BatchNorm2d(ch[-1])
        self.out = _conv(ch[-1], channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.fc(z.flatten(1)).view(len(z), self.c0, 4, 4))
        return torch.tanh(self.out(F.relu(self.norm(h))))


class _Trunk(nn.Module):
    """conv3 C -> w, then residual down-blocks to 4x4; ``features`` flattens (N, 16 * c_last)."""

    def __init__(self, size: int, channels: int, width: int, norm: str):
        super().__init__()
        n = _n_blocks(size)
        ch = [width] + [width * min(8, 2 ** (i + 1)) for i in range(n)]
        self.inp = _conv(channels, width, 3, he=False)
        self.blocks = nn.Sequential(*[ResBlock(ch[i], ch[i + 1], "down", norm) for i in range(n)])
        self.feature_dim = 16 * ch[-1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.inp(x)).flatten(1)


class FAnoGANCritic(_Trunk):
    """image -> critic value (N,); ``features(x)`` is f(x) of the izi_f loss and the score."""

    def __init__(self, size: int, channels: int, width: int = 64):
        super().__init__(size, channels, width, norm="layer")
        self.head = _linear(self.feature_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()


class FAnoGANEncoder(_Trunk):
    """image -> z (N, nz): the critic's trunk with BatchNorm, Linear, tanh (``z_reg="tanh"``)."""

    def __init__(self, size: int, channels: int, nz: int = 128, width: int = 64, z_reg: str = "tanh"):
        super().__init__(size, channels, width, norm="batch")
        if z_reg not in _Z_REGS:
            raise ValueError(f"z_reg must be one of {_Z_REGS}; got {z_reg!r}")
        self.head = _linear(self.feature_dim, nz)
        self.z_reg = z_reg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.head(self.features(x))
        return torch.tanh(z) if self.z_reg == "tanh" else z


# ---------------------------------------------------------------- detector
@register("fanogan")
class FAnoGAN(TorchDetector):
    """f-AnoGAN: WGAN-GP, then the izi_f encoder; score = image MSE + kappa * critic-feature MSE.

    ``score_parts``: "image", "feature", "score".

    Parameters
    ----------
    nz : latent size, the dimension of z ~ N(0, I) (128).
    width : base channel count w of G, D and E (64, the reference's DIM; D's and E's
        trunks widen w -> 8w).
    lr, beta1, beta2 : Adam(lr, (beta1, beta2)) of G and D in the GAN phase.
    epochs : epochs of the GAN phase (phase 1).
    n_critic : critic updates per G update in the GAN phase.
    gp_weight : weight of the WGAN-GP gradient penalty E (||grad D(x_hat)||_2 - 1)^2 in L_D.
    encoder_lr : RMSprop learning rate of the encoder phase (phase 2).
    encoder_epochs : epochs of the encoder phase (None = ``epochs``).
    kappa : weight of the critic-feature term, in the encoder's loss and in the score.
    z_reg : E's output: "tanh" (E(x) = tanh(Linear(...)), the reference's default) or
        "none" (linear).
    """

    # phase 1 (GAN) runs ``epochs``, phase 2 (encoder) ``encoder_epochs``: see _run_key
    checkpoint_phases = (("gan", "epochs"), ("enc", "encoder_epochs"))

    def __init__(
        self,
        nz: int = 128,
        width: int = 64,
        lr: float = 1e-4,
        beta1: float = 0.0,
        beta2: float = 0.9,
        n_critic: int = 5,
        gp_weight: float = 10.0,
        encoder_lr: float = 5e-5,
        encoder_epochs: int | None = None,
        kappa: float = 1.0,
        z_reg: str = "tanh",
        batch_size: int = 64,
        **common: Any,
    ):
        super().__init__(batch_size=batch_size, **common)
        self.nz = nz
        self.width = width
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.encoder_lr = encoder_lr
        self.encoder_epochs = encoder_epochs
        self.kappa = kappa
        self.z_reg = z_reg

    _parameter_constraints = {
        "nz": SHARED["nz"], "width": [POSITIVE_INT], "n_critic": [POSITIVE_INT], "lr": SHARED["lr"],
        "encoder_lr": [POSITIVE], "beta1": SHARED["beta1"], "beta2": SHARED["beta2"], "gp_weight": [NON_NEGATIVE],
        "kappa": [NON_NEGATIVE], "encoder_epochs": [NON_NEGATIVE_INT, None], "z_reg": [Options(_Z_REGS)],
    }

    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        self.nets_ = nn.ModuleDict(
            {
                "g": FAnoGANGenerator(size, c, self.nz, self.width),
                "d": FAnoGANCritic(size, c, self.width),
                "e": FAnoGANEncoder(size, c, self.nz, self.width, self.z_reg),
            }
        )

    # ----------------------------------------------------------- training
    def _train(self, x: np.ndarray) -> None:
        encoder_epochs = self.epochs if self.encoder_epochs is None else int(self.encoder_epochs)
        phases = [self._gan_phase(), self._encoder_phase(encoder_epochs)]
        self.gan_history_, self.history_ = self._run_phases(phases, x)  # one hold-out for both phases

    def _gan_phase(self) -> Phase:
        """Phase 1, WGAN-GP: G and D only (E is neither trained nor checkpointed), no validation."""
        g, d, e = self.nets_["g"], self.nets_["d"], self.nets_["e"]
        betas = (self.beta1, self.beta2)
        opt_g = torch.optim.Adam(g.parameters(), lr=self.lr, betas=betas)
        opt_d = torch.optim.Adam(d.parameters(), lr=self.lr, betas=betas)
        g_params = list(g.parameters())

        def d_step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor | float]:
            z = batch_randn(len(xb), self.nz, device=xb.device)
            with torch.no_grad():
                fake = g(z)
            wass = d_loss_wgan(d(xb), d(fake))
            gp = gradient_penalty(d, xb, fake, weight=self.gp_weight)
            loss = wass + gp
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            return {"d": loss, "d_wasserstein": -wass, "d_gp": gp}

        def g_step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor | float]:
            z = batch_randn(len(xb), self.nz, device=xb.device)
            loss = g_loss_wgan(d(g(z)))
            opt_g.zero_grad(set_to_none=True)
            loss.backward(inputs=g_params)
            opt_g.step()
            return {"g": loss}

        def make_step() -> StepFn:
            for m in (g, d, e):
                m.train()
            return alternating(d_step, g_step, int(self.n_critic))

        return Phase("gan", self.epochs, make_step, {"opt_g": opt_g, "opt_d": opt_d}, nets={"g": g, "d": d},
                     validate=False)  # a WGAN critic loss is no criterion for stopping the GAN

    def _encoder_phase(self, epochs: int) -> Phase:
        """Phase 2, the izi_f encoder: G and D frozen (G's BatchNorm in eval mode); early stopping here only."""
        g, d, e = self.nets_["g"], self.nets_["d"], self.nets_["e"]
        opt_e = torch.optim.RMSprop(e.parameters(), lr=self.encoder_lr, alpha=0.9, eps=1e-10)
        e_params = list(e.parameters())

        def e_step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor | float]:
            x_rec = g(e(xb))
            with torch.no_grad():
                f_real = d.features(xb)
            image = (xb - x_rec).pow(2).mean()
            feature = (f_real - d.features(x_rec)).pow(2).mean()
            loss = image + self.kappa * feature
            opt_e.zero_grad(set_to_none=True)
            loss.backward(inputs=e_params)
            opt_e.step()
            return {"e": loss, "e_image": image, "e_feature": feature}

        def make_step() -> StepFn:
            g.eval()
            d.eval()
            e.train()
            return e_step

        return Phase("enc", epochs, make_step, {"opt_e": opt_e}, frozen=(g, d))

    # ------------------------------------------------------------ scoring
    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        # Besides A ("score"): the f-AnoGAN rows b-d of Berg et al. 2019's Table 2, scored from
        # the same fit: "l_r" = ||Q - G(E(Q))||_2 on [0, 1] images (Eq. 8; the same ranking as
        # "image"), "l_n" = ||w(Q) - w(G(E(Q)))||_2 / N_X with w each image's own min-max
        # scaling to [0, 1] (Eq. 2-3, berg.minmax_unit), "l_o" = -||E(Q)||_2 / sqrt(nz) (Eq. 4)
        g, d, e = self.nets_["g"], self.nets_["d"], self.nets_["e"]
        z = e(batch)
        x_rec = g(z)
        image = (batch - x_rec).pow(2).flatten(1).mean(1)
        feature = (d.features(batch) - d.features(x_rec)).pow(2).mean(1)
        x, r = batch.float().flatten(1), x_rec.float().flatten(1)
        return {
            "image": image, "feature": feature, "score": image + self.kappa * feature,
            "l_r": 0.5 * (x - r).norm(dim=1), "l_n": (minmax_unit(x) - minmax_unit(r)).norm(dim=1) / x.shape[1],
            "l_o": -z.float().norm(dim=1) / math.sqrt(z.shape[1]),
        }

    # map: the image term A_R per pixel, (x - G(E(x)))^2 (channel mean, original pixels)
    has_anomaly_map = True
    map_error = "l2"

    def _reconstruct_batch(self, batch: torch.Tensor) -> torch.Tensor:
        return self.nets_["g"](self.nets_["e"](batch))

    def _encode_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """z = E(x) (B, nz) of a prepared batch (:mod:`ganad.report.latent`)."""
        return self.nets_["e"](batch)
