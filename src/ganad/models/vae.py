"""VAE baseline (Kingma & Welling 2014) scored by the negative ELBO (ADGAN paper, Deecke et al. 2018, section 4.2).

"In VAEs we scored by evaluating the evidence lower bound (ELBO)."  With
q(z|x) = N(mu(x), diag sigma^2(x)), p(z) = N(0, I) and a decoder p(x|z),
the negative ELBO of one image (Kingma & Welling's variational lower bound,
with the closed-form KL divergence of a Gaussian encoder from the standard
normal prior that they derive for this case) is

    -ELBO(x) = E_q(z|x)[-log p(x|z)] + KL(q(z|x) || p(z)),
    KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)      (closed form)

and the anomaly score is A(x) = -ELBO(x) (higher = less likely under the
model).  ``score_parts`` gives "reconstruction" (the expected negative
log-likelihood term), "kl" and "score" = reconstruction + kl, in nats per image.

Likelihoods (``likelihood``), pixels x in [-1, 1] and decoder output
y = tanh(a):

* "gaussian" (default): N(x; y, sigma^2 I) with a fixed ``sigma`` (0.1, in
  [-1, 1] pixel units),
  -log p(x|z) = sum_p (x_p - y_p)^2 / (2 sigma^2) + log sigma + 1/2 log(2 pi);
* "gaussian_pixel": N(x; y, diag s^2) with s_p the per-pixel std of the
  training images plus 0.1 (fixed before training, saved with the model), so
  the model is trained and scored with the likelihood that ``score="elbo_pixel"``
  only scores with;
* "bernoulli" (Kingma & Welling's choice for binarised MNIST): targets
  t = (x + 1)/2 in [0, 1], p = (y + 1)/2 = sigmoid(2a), -log p(x|z) =
  sum_p BCE(2a_p, t_p), computed from the logits 2a.  On grey-level images
  the BCE of a pixel is bounded below by its entropy H(t_p), so images with
  many mid-grey pixels score high however well they are reconstructed, and
  on Fashion-MNIST the Bernoulli -ELBO scored far below the Gaussian one
  (benchmarks/README.md, section VAE).  Hence the Gaussian default.

Training minimises the batch mean of -ELBO with one reparameterised sample
z = mu + sigma * eps per image (eps from the torch RNG seeded by
``random_state``).

Test time (deterministic, independent of batch mates): ``n_samples=0``
(default) evaluates the reconstruction term at the posterior mean z = mu (a
deterministic plug-in estimate of the expectation);
``n_samples=k`` averages it over k samples z = mu + sigma * eps_j with one
fixed set eps_1..eps_k drawn from a generator seeded with ``random_state``
(0 when None) and shared by every image, so a score depends on its image
only.  The KL term is always exact.

``score="elbo_pixel"`` (our addition, not the paper's; the benchmark
chooses between the two on the validation split): the -ELBO under a Gaussian
likelihood whose per-pixel std is that of the *training* images plus 0.1
(fitted after training, saved with the model), evaluated with the trained
encoder and decoder means.  It weighs an error by its pixel's normal
variation (as PyOD standardises its inputs); measured effect:
benchmarks/README.md, section VAE.  ``score_parts`` also gives
"elbo_pixel".

Nets: the DCAE's (section 4.2: DCGAN-like, BatchNorm and ReLU in each layer),
:class:`ganad.models.dcae.ConvEncoder` with 2*nz outputs (mu, log sigma^2)
and :class:`ganad.nets.dcgan.DCGANDecoder`.  28x28 images are padded to 32;
the likelihood covers the original pixels only, so the score is the -ELBO of
the image the user passed.

No reference code is available (no public code of the ADGAN paper's VAE
was found), so these are choices, not deviations: nz = 32, width 32 (CPU-sized; DCGAN's is 64), Adam lr 1e-3,
betas (0.9, 0.999), 15 epochs, batch 64; log sigma^2
is clamped to [-20, 10] for numerical safety (far outside the values a
trained model reaches).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..distributed import batch_randn
from ..params import NON_NEGATIVE_INT, POSITIVE, Options
from ..registry import register
from .dcae import _AutoencoderBase

LIKELIHOODS = ("gaussian", "gaussian_pixel", "bernoulli")
LOGVAR_RANGE = (-20.0, 10.0)


@register("vae")
class VAE(_AutoencoderBase):
    """Convolutional VAE; score = negative ELBO (reconstruction NLL + KL), in nats per image.

    Parameters
    ----------
    nz : latent size, the dimension of z ~ q(z|x) (the encoder outputs its mean and
        log-variance).
    likelihood : the decoder's p(x|z): "gaussian" (fixed std ``sigma``), "gaussian_pixel"
        (std = the training images' per-pixel std plus 0.1) or "bernoulli".
    sigma : std of the "gaussian" likelihood, in [-1, 1] pixel units.
    n_samples : test-time samples of z for the reconstruction term: 0 = the posterior
        mean, k = k fixed seeded draws shared by every image.
    score : "elbo" (the -ELBO under ``likelihood``) or "elbo_pixel" (the -ELBO under
        the "gaussian_pixel" likelihood, whatever ``likelihood`` trained, see the module
        docstring); scoring only.
    """

    SCORES = ("elbo", "elbo_pixel")
    score_params = ("score",)
    code_outputs = 2  # mu and log sigma^2

    def __init__(
        self,
        nz: int = 32,
        width: int = 32,
        lr: float = 1e-3,
        beta1: float = 0.9,
        weight_decay: float = 0.0,
        likelihood: str = "gaussian",
        sigma: float = 0.1,
        n_samples: int = 0,
        score: str = "elbo",
        **common: Any,
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, weight_decay=weight_decay, **common)
        self.likelihood = likelihood
        self.sigma = sigma
        self.n_samples = n_samples
        self.score = score

    _parameter_constraints = {
        "likelihood": [Options(LIKELIHOODS)], "sigma": [POSITIVE], "n_samples": [NON_NEGATIVE_INT],
        "score": [Options(SCORES)],
    }

    # ----------------------------------------------------------- pieces
    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.nets_["encoder"](x).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def _code(self, x: torch.Tensor) -> torch.Tensor:
        return self._posterior(x)[0]

    def _pre_tanh(self, z: torch.Tensor) -> torch.Tensor:
        dec = self.nets_["decoder"]
        return dec.net[:-1](z.reshape(len(z), -1, 1, 1))  # DCGANDecoder: last layer is the tanh

    def _nll(self, x: torch.Tensor, z: torch.Tensor, pixel_sigma: bool = False) -> torch.Tensor:
        """-log p(x | z) per image over the original (unpadded) pixels; ``pixel_sigma``:
        the Gaussian with the fitted per-pixel std ``pixel_scale_`` (scoring only)."""
        a = self._crop(self._pre_tanh(z))
        x = self._crop(x)
        if pixel_sigma or self.likelihood == "gaussian_pixel":
            s = self.pixel_scale_
            nll = (x - torch.tanh(a)).pow(2) / (2.0 * s * s) + s.log() + 0.5 * math.log(2.0 * math.pi)
        elif self.likelihood == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(2.0 * a, (x + 1.0) / 2.0, reduction="none")
        else:
            s = float(self.sigma)
            nll = (x - torch.tanh(a)).pow(2) / (2.0 * s * s) + math.log(s) + 0.5 * math.log(2.0 * math.pi)
        return nll.flatten(1).sum(1)

    @staticmethod
    def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)

    def _score_eps(self, device: torch.device) -> torch.Tensor:
        """The k fixed standard-normal draws used at test time (same for every image).

        Drawn once per (n_samples, nz, random_state, device) and kept: the same values
        as a fresh draw, and a constant to ``torch.export`` (:mod:`ganad.export`), which
        cannot trace a ``torch.Generator``."""
        seed = 0 if self.random_state is None else int(self.random_state)
        key = (int(self.n_samples), int(self.nz), seed, str(device))
        cached = getattr(self, "_eps_cache", None)
        if cached is None or cached[0] != key:
            g = torch.Generator().manual_seed(seed)
            with torch.inference_mode(False):  # a plain tensor, usable outside scoring too
                cached = (key, torch.randn(self.n_samples, self.nz, generator=g).to(device))
            self._eps_cache = cached
        return cached[1]

    # ----------------------------------------------------------- train
    def _train(self, x: np.ndarray) -> None:
        self._fit_pixel_scale(x)  # images only: needed by the "gaussian_pixel" likelihood
        opt = self._optimizer()
        self.nets_.train()

        def step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor]:
            mu, logvar = self._posterior(xb)
            z = mu + (0.5 * logvar).exp() * batch_randn(mu.shape, dtype=mu.dtype, device=mu.device)
            rec, kl = self._nll(xb, z).mean(), self._kl(mu, logvar).mean()
            loss = rec + kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return {"neg_elbo": loss, "reconstruction": rec, "kl": kl}

        self._run_loop(step, x, {"opt": opt})

    # ----------------------------------------------------------- score
    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self._posterior(batch)
        kl = self._kl(mu, logvar)
        if self.n_samples == 0:
            zs = [mu]
        else:
            std = (0.5 * logvar).exp()
            zs = [mu + std * e for e in self._score_eps(batch.device)]
        rec = sum(self._nll(batch, z) for z in zs) / len(zs)
        rec_pixel = sum(self._nll(batch, z, pixel_sigma=True) for z in zs) / len(zs)
        elbo, elbo_pixel = rec + kl, rec_pixel + kl
        return {
            "reconstruction": rec, "kl": kl, "elbo_pixel": elbo_pixel,
            "score": elbo if self.score == "elbo" else elbo_pixel,
        }

    # ----------------------------------------------------------- maps
    def _map_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """Per-pixel -log p(x | z) of the score's likelihood without its additive constant
        (channel mean, original pixels), at the same z as the score (the posterior mean, or
        the fixed draws of ``n_samples``): (x - y)^2 / (2 sigma^2) for "gaussian",
        (x - y)^2 / (2 s_p^2) for "gaussian_pixel" or ``score="elbo_pixel"``, the BCE for
        "bernoulli".  Its image sum is the "reconstruction" term less a constant."""
        mu, logvar = self._posterior(batch)
        if self.n_samples == 0:
            zs = [mu]
        else:
            std = (0.5 * logvar).exp()
            zs = [mu + std * e for e in self._score_eps(batch.device)]
        return sum(self._pixel_nll(batch, z) for z in zs) / len(zs)

    def _pixel_nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        a = self._crop(self._pre_tanh(z))
        x = self._crop(x)
        if self.score == "elbo_pixel" or self.likelihood == "gaussian_pixel":
            nll = (x - torch.tanh(a)).pow(2) / (2.0 * self.pixel_scale_ * self.pixel_scale_)
        elif self.likelihood == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(2.0 * a, (x + 1.0) / 2.0, reduction="none")
        else:
            nll = (x - torch.tanh(a)).pow(2) / (2.0 * float(self.sigma) ** 2)
        return nll.mean(1)


__all__ = ["VAE"]
