"""GAAE: the GAN-augmented autoencoder of Rafiee & Fevens (ICANN 2020; arXiv 2112.15541, "On the
effectiveness of generative adversarial network on anomaly detection").

A GAN (generator G, critic C) and an autoencoder (encoder E, decoder) are
trained simultaneously on normal data, and the decoder IS the generator
(paper section 3.2, "parameter sharing (aka weight sharing) between GAN's
generator and autoencoder's decoder"): one module object, ``nets_["generator"]``, also
reachable as ``decoder_``; the autoencoder path is G(E(x)).

Losses (paper section 3.2), per batch x_r of real images, z ~ N(0, I), x_f = G(z):

    RSGAN (eq. 2)   L_D = -E log sigmoid(C(x_r) - C(x_f)),   L_G = -E log sigmoid(C(x_f) - C(x_r))
    autoencoder     L_AE = ||x - G(E(x))||^2                  (MSE, mean over pixels)

``gan_loss="sgan"`` is the ablation of Table 7: the standard GAN,
L_D = -E log s(C(x_r)) - E log(1 - s(C(x_f))), non-saturating L_G = -E log s(C(x_f)).

Anomaly score (eqs. 4-7), f_D = the critic's last feature map (before its
output layer), all terms per image:

    L_D(x) = sum |f_D(x) - f_D(G(E(x)))|        (eq. 4, "discrimination")
    L_R(x) = sum |x - G(E(x))|                  (eq. 5, "residual")
    L_L(x) = sum |E(x) - E(G(E(x)))|            (eq. 6, "latent")
    A(x)   = lam L_D(x) + (1 - lam) L_R(x) + beta L_L(x)          (eq. 7; beta = 0 gives eq. 3)

lam = 0.8 (section 5, all experiments); beta = 0.5 for MNIST and 1 for
CIFAR-10, SVHN and ALL (section 5 and Table 6): ``beta=None`` (default)
takes 0.5 for grayscale and 1 for colour images (``beta_`` holds the value
used).  ``score_parts`` gives "discrimination", "residual", "latent" (after
the optional normalisation below), "raw" (eq. 7 without normalisation),
"eq3" (eq. 3: the score with beta = 0, Table 6's ablation; beta enters only
the score, so one fitted model gives both) and "score".

Set-up (section 5, Table 1): critic with spectral normalisation (section
5.1.2) and LeakyReLU, dropout 0.2 in encoder and critic, generator with
ReLU; AdamW lr 1e-4 with betas (0.5, 0.999) (Table 1 lists Adam(0.5, 0.999),
the text says AdamW) and PyTorch's default decoupled weight decay 0.01;
batch 64; latent 100 (200 for SVHN and ALL: set ``nz``); 15 epochs (the
paper trains natural images for at most 85).  The paper gives layer counts
but no widths: width 32 is a CPU-sized choice (``width=64`` is DCGAN's and
has ~4x the multiply-adds).  The DCGAN nets of
:mod:`ganad.nets.dcgan` stand in for Table 1's layer counts: E = DCGAN
encoder (BatchNorm, LeakyReLU(0.2), dropout) to the nz-dim code; C = DCGAN
encoder without BatchNorm, with SN and dropout, to one logit; G = DCGAN
decoder.

Per batch, as in the reference code's ``Ours/train.py`` (the authors'
LayaaRS/Unsupervised-Anomaly-Detection-with-a-GAN-Augmented-Autoencoder):
an autoencoder step (E and G on L_AE), a generator step (G on L_G), a
critic step (C on L_D, on the same x_f).  E and G each have one AdamW
optimiser; the autoencoder step moves both, the generator step only G.

Deviations from the paper and the reference code, and why:

* The reference code does not implement the paper (no RSGAN, no SN, no
  AdamW, a 2-way cross-entropy critic, weight decay 0.5); we follow the paper.
* E's code goes through a LayerNorm without learnt affine (``latent_norm=
  "layer"``), as the reference encoder ends in a LayerNorm: every code then
  has zero mean and unit variance over its nz entries, like a draw from the
  generator's prior N(0, I), so the one generator serves both paths.
  ``latent_norm="none"`` turns it off.
* Scoring in eval mode (dropout off, BatchNorm running statistics), with no
  augmentation of test images (the reference flips/crops test images too, so
  its scores are random).
* ``reduction``: "sum" (default) as in eqs. 4-6, "mean" as in the reference
  code.  28x28 inputs are zero-padded to 32 (the DCGAN nets need a
  power-of-two side); L_R and L_AE cover the original pixels only.
* ``score_norm``: the paper adds the raw terms ("none", default).  "mean"
  divides each term by its mean over the training images and "zscore"
  standardises it with their mean and std, so that lam and beta weigh terms
  of comparable size; the statistics are fitted on the training data only and
  saved with the model.  Measured effects: benchmarks/README.md, section
  GAAE.
* The critic's C(x_r) in the generator step is recomputed without gradient
  (RSGAN's L_G needs it; only G is updated there).
* Spectral norm is PyTorch's parametrisation (one power iteration per
  training forward, none in eval mode), as the paper's SN-GAN critic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.transforms import from_model_output
from ..distributed import batch_randn
from ..losses import d_loss_bce, d_loss_rsgan, g_loss_bce, g_loss_rsgan
from ..nets.dcgan import DCGANDecoder, DCGANEncoder
from ..nets.init import init_dcgan
from ..params import BETA, NON_NEGATIVE, SHARED, UNIT, Options
from ..registry import register
from .torch_base import DCGANDetector, Phase, module_dict

GAN_LOSSES = ("rsgan", "sgan")
REDUCTIONS = ("sum", "mean")
SCORE_NORMS = ("none", "mean", "zscore")
LATENT_NORMS = ("layer", "none")
TERMS = ("discrimination", "residual", "latent")


class GAAEEncoder(nn.Module):
    """x -> E(x) (N, nz): DCGAN encoder (BatchNorm, LeakyReLU, dropout), then an optional affine-free LayerNorm."""

    def __init__(self, size: int, channels: int, nz: int, width: int, dropout: float, latent_norm: str):
        super().__init__()
        self.net = DCGANEncoder(size, channels, nz, width, norm="batch", dropout=dropout)
        self.norm = nn.LayerNorm(nz, elementwise_affine=False) if latent_norm == "layer" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.net(x))


@register("gaae")
class GAAE(DCGANDetector):
    """GAN-augmented autoencoder; A(x) = lam L_D + (1 - lam) L_R + beta L_L (Rafiee & Fevens, eq. 7).

    Parameters
    ----------
    nz, width : latent size (100) and base channel count of the DCGAN nets (32; DCGAN's 64 costs ~4x).
    lr, beta1, weight_decay : AdamW for E, G and C (1e-4, 0.5, 0.01).
    dropout : dropout rate after every activation of the encoder and the critic (0.2).
    gan_loss : "rsgan" (paper) or "sgan" (Table 7 ablation).
    lam, beta : score weights; ``beta=None`` -> 0.5 (grayscale) / 1.0 (colour); ``beta=0`` is the Table 6 ablation.
    reduction : "sum" (eqs. 4-6) or "mean" (reference code) over each term's entries.
    score_norm : "none" (paper), "mean" or "zscore" (fitted on training scores).
    latent_norm : "layer" (affine-free LayerNorm on E's code) or "none".
    **common : :class:`TorchDetector` settings (epochs 15, batch_size 64, ...).
    """

    def __init__(
        self,
        nz: int = 100,
        width: int = 32,
        lr: float = 1e-4,
        beta1: float = 0.5,
        weight_decay: float = 1e-2,
        dropout: float = 0.2,
        gan_loss: str = "rsgan",
        lam: float = 0.8,
        beta: float | None = None,
        reduction: str = "sum",
        score_norm: str = "none",
        latent_norm: str = "layer",
        **common: Any,
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, **common)
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.gan_loss = gan_loss
        self.lam = lam
        self.beta = beta
        self.reduction = reduction
        self.score_norm = score_norm
        self.latent_norm = latent_norm

    _parameter_constraints = {
        "weight_decay": SHARED["weight_decay"], "dropout": [BETA], "lam": [UNIT], "beta": [NON_NEGATIVE, None],
        "gan_loss": [Options(GAN_LOSSES)], "reduction": [Options(REDUCTIONS)], "score_norm": [Options(SCORE_NORMS)],
        "latent_norm": [Options(LATENT_NORMS)],
    }

    # ------------------------------------------------------------- nets
    @property
    def beta_(self) -> float:
        """The latent weight in use: ``beta``, or 0.5 (grayscale) / 1.0 (colour) when None."""
        if self.beta is not None:
            return float(self.beta)
        return 0.5 if self.input_shape_[0] == 1 else 1.0

    @property
    def generator_(self) -> nn.Module:
        return self.nets_["generator"]

    @property
    def decoder_(self) -> nn.Module:
        """The autoencoder's decoder: the generator itself (shared weights, one object)."""
        return self.nets_["generator"]

    @property
    def encoder_(self) -> nn.Module:
        return self.nets_["encoder"]

    @property
    def critic_(self) -> nn.Module:
        return self.nets_["critic"]

    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        self.nets_ = module_dict(
            encoder=init_dcgan(GAAEEncoder(size, c, self.nz, self.width, self.dropout, self.latent_norm)),
            generator=init_dcgan(DCGANDecoder(size, c, self.nz, self.width)),
            critic=init_dcgan(DCGANEncoder(size, c, 1, self.width, norm="none", sn=True, dropout=self.dropout)),
        )
        self._norm: dict[str, tuple[float, float]] | None = None

    def _reduce(self, t: torch.Tensor) -> torch.Tensor:
        t = t.flatten(1)
        return t.sum(1) if self.reduction == "sum" else t.mean(1)

    # ------------------------------------------------------------ train
    def _train(self, x: np.ndarray) -> None:
        enc, gen, critic = self.encoder_, self.generator_, self.critic_
        opt_e, opt_g, opt_d = (
            self._adam(m, kind="adamw", weight_decay=self.weight_decay) for m in (enc, gen, critic)
        )
        g_params = list(gen.parameters())
        rs = self.gan_loss == "rsgan"
        self.nets_.train()

        def step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor]:
            # autoencoder step: E and the shared G on the reconstruction error
            loss_ae = (self._crop(gen(enc(xb))) - self._crop(xb)).pow(2).mean()
            opt_e.zero_grad(set_to_none=True)
            opt_g.zero_grad(set_to_none=True)
            loss_ae.backward()
            opt_e.step()
            opt_g.step()

            # generator step
            z = batch_randn(len(xb), self.nz, device=xb.device)
            fake = gen(z)
            c_fake = critic(fake)
            if rs:
                with torch.no_grad():
                    c_real_g = critic(xb)
                loss_g = g_loss_rsgan(c_real_g, c_fake)
            else:
                loss_g = g_loss_bce(c_fake)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=g_params)
            opt_g.step()

            # critic step on the same fakes
            c_real, c_fake_d = critic(xb), critic(fake.detach())
            loss_d = d_loss_rsgan(c_real, c_fake_d) if rs else d_loss_bce(c_real, c_fake_d)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            return {"ae": loss_ae, "g": loss_g, "d": loss_d}

        self._run_loop(step, x, {"opt_e": opt_e, "opt_g": opt_g, "opt_d": opt_d})
        if self.score_norm != "none":  # fitted on the training images only
            raw = self._score_parts(x)
            if self.score_norm == "mean":
                self._norm = {k: (0.0, max(float(raw[k].mean()), 1e-12)) for k in TERMS}
            else:
                self._norm = {k: (float(raw[k].mean()), max(float(raw[k].std()), 1e-12)) for k in TERMS}

    def _val_loss(self, x_val: np.ndarray, phase: Phase | None = None) -> float:
        """Early stopping on the autoencoder's reconstruction error of held-out normals."""
        total = 0.0
        for batch in self._iter_batches(x_val):
            rec = self.generator_(self.encoder_(batch))
            total += float((self._crop(rec) - self._crop(batch)).pow(2).flatten(1).mean(1).sum())
        return total / len(x_val)

    # ------------------------------------------------------------ score
    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        enc, gen, critic = self.encoder_, self.generator_, self.critic_
        z = enc(batch)
        rec = gen(z)
        terms = {
            "discrimination": self._reduce((critic.features(batch) - critic.features(rec)).abs()),
            "residual": self._reduce((self._crop(batch) - self._crop(rec)).abs()),
            "latent": self._reduce((z - enc(rec)).abs()),
        }
        raw = self.lam * terms["discrimination"] + (1.0 - self.lam) * terms["residual"] + self.beta_ * terms["latent"]
        if self._norm is not None:
            terms = {k: (v - self._norm[k][0]) / self._norm[k][1] for k, v in terms.items()}
        without_latent = self.lam * terms["discrimination"] + (1.0 - self.lam) * terms["residual"]
        score = without_latent + self.beta_ * terms["latent"]
        # "eq3": the beta = 0 ablation (Table 6) of the same fitted model: beta only enters the score
        return {**terms, "raw": raw, "eq3": without_latent, "score": score}

    # map: the residual term L_R per pixel, |x - G(E(x))| (channel mean, original pixels)
    has_anomaly_map = True
    map_error = "l1"

    def _reconstruct_batch(self, batch: torch.Tensor) -> torch.Tensor:
        return self.generator_(self.encoder_(batch))

    def _extra_state(self) -> dict[str, Any]:
        if self._norm is None:
            return {}
        return {f"{k}_{i}": torch.tensor(v[i], dtype=torch.float64) for k, v in self._norm.items() for i in (0, 1)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if state:
            self._norm = {k: (float(state[f"{k}_0"]), float(state[f"{k}_1"])) for k in TERMS}

    # ------------------------------------------------------------- views
    def reconstruct(self, X: Any) -> np.ndarray:
        """G(E(x)) in [0, 1], shaped like the input images (N, C, H, W); eval mode."""
        return self._reconstructions(X)

    def generate(self, n: int, seed: int = 0) -> np.ndarray:
        """n samples G(z), z ~ N(0, I) from a generator seeded with ``seed``, in [0, 1]; eval mode."""
        self._check_fitted()
        z = torch.randn(n, self.nz, generator=torch.Generator().manual_seed(seed)).to(self.device_)
        self.nets_.eval()
        with torch.inference_mode():
            return from_model_output(self.generator_(z), *self.input_shape_[1:])


__all__ = ["GAAE", "GAAEEncoder"]
