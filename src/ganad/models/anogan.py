"""AnoGAN (Schlegl et al., IPMI 2017): a DCGAN on normal images, scored by latent search.

Training: a DCGAN (Radford et al. 2016) on the normal images,
``G = DCGANDecoder(size, C, nz, width)`` and ``D = DCGANEncoder(size, C, 1, width)``
with DCGAN initialisation, the BCE objective (non-saturating generator loss),
Adam(lr, (beta1, 0.999)); per batch one D step, then one G step on the same z ~ N(0, I).

Scoring (restated in the survey by Di Mattia et al. 2019, section 2.1,
eqs. 4-7): for a test image x, start from z_0 ~ N(0, I) and take Gamma =
``search_steps`` gradient steps on z (nets frozen, in eval mode) minimising

    L(z) = (1 - lam) * R(z) + lam * F(z),
    R(z) = sum |x - G(z)|                  (residual loss, L1 over pixels)
    F(z) = sum |f(x) - f(G(z))|            (discrimination loss by feature matching)

with f the discriminator's last feature map (the (width*2^k, 4, 4) map before
the logit convolution) and lam = 0.1 (the weight of the EGBAD authors'
AnoGAN baseline; the survey's eq. 6 prints gamma for the second lam).
Gamma defaults to 500, "an empirical value found in the original paper"
(survey, section 3.2).  The score is A(x) = L(z_Gamma), the loss at
the final z.  ``score_parts`` gives "residual" = R(z_Gamma), "feature" = F(z_Gamma)
and "score" = A(x).

Choices the paper leaves open, and why:

* Optimiser of the search: the paper says only "backpropagation".  Like the
  reimplementations (the AnoGAN baseline of the EGBAD authors,
  ``gan/run_mnist.py`` in houssamzenati/Efficient-GAN-Anomaly-Detection) this uses Adam
  (betas 0.9, 0.999) with the EGBAD schedule scaled to Gamma: ``search_lr``
  = 0.01 for the first 40% of the steps, 1e-3 up to 60%, 5e-4 after
  (``search_schedule="piecewise"``); ``"constant"`` keeps ``search_lr``.
* z_0 is drawn from the training prior N(0, I) (EGBAD truncates it at 2 sigma).
  Each image's draws come from a seed hashed from its own pixels and the
  detector's seed, so a score never depends on the other images scored with
  it (see :mod:`ganad.latent_search`).
* The search runs for a whole batch at once: one Adam over the (B, nz)
  latent tensor on the sum of the per-image losses, which gives every image's
  z exactly its own gradient (Adam is element-wise); the nets are in eval mode
  (BatchNorm running statistics), so images never interact.  Only z gets
  gradients; the nets' weights and statistics are left untouched.
* Norms as in the paper (sums of absolute values); ALAD's AnoGAN baseline
  swaps the weights (0.9 on the feature term), which is not done here.
* The discriminator's raw weights are used (no EMA, as in the EGBAD code at
  test time for D).

Cost: Gamma forward/backward passes of G and D per image.  At the
benchmark's sizes (width 16, 100 steps) the stored one-class records scored
~37 test images per second on one CPU thread.  ``fit`` also scores the
held-out calibration images for ``threshold_`` (at most ``threshold_images``,
default 1,000).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..latent_search import SearchScoring, per_image_normal, piecewise_lr, search_latent, search_seed
from ..progress import progress
from ..distributed import batch_randn
from ..losses import d_loss_bce, g_loss_bce
from ..nets.dcgan import DCGANDecoder, DCGANEncoder
from ..nets.init import init_dcgan
from ..params import NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, UNIT, Options
from ..registry import register
from .torch_base import DCGANDetector, module_dict

_SCHEDULES = ("piecewise", "constant")


@register("anogan")
class AnoGAN(SearchScoring, DCGANDetector):
    """AnoGAN: DCGAN + per-image latent search; score = (1 - lam) R + lam F at the final z.

    Parameters
    ----------
    nz, width : latent size and DCGAN base width.
    lr, beta1 : Adam settings of the GAN training (DCGAN: 2e-4, 0.5).
    lam : weight of the feature-matching term, in [0, 1] (paper: 0.1).
    search_steps : Gamma, the number of latent-search steps per image (paper: 500).
    search_lr : Adam learning rate of the search (0.01, as in EGBAD's AnoGAN).
    search_schedule : "piecewise" (EGBAD's 1 / 0.1 / 0.05 steps at 40% and 60%
        of Gamma) or "constant".
    threshold_images : most held-out training images scored for ``threshold_``
        (the calibration set; None = no cap); ``decision_scores_`` are their
        scores, since scoring the fitted images too would double the cost.
    **common : TorchDetector's epochs, batch_size, device, ... (images per
        search batch: max(batch_size, 256)).
    """

    def __init__(
        self,
        nz: int = 100,
        width: int = 64,
        lr: float = 2e-4,
        beta1: float = 0.5,
        lam: float = 0.1,
        search_steps: int = 500,
        search_lr: float = 0.01,
        search_schedule: str = "piecewise",
        threshold_images: int | None = 1000,
        **common: Any,
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, **common)
        self.lam = lam
        self.search_steps = search_steps
        self.search_lr = search_lr
        self.search_schedule = search_schedule
        self.threshold_images = threshold_images

    _parameter_constraints = {
        "lam": [UNIT], "search_steps": [NON_NEGATIVE_INT], "search_lr": [POSITIVE],
        "search_schedule": [Options(_SCHEDULES)], "threshold_images": [POSITIVE_INT, None],
    }

    # ------------------------------------------------------------ training
    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        self.nets_ = module_dict(
            g=init_dcgan(DCGANDecoder(size, c, self.nz, self.width)),
            d=init_dcgan(DCGANEncoder(size, c, 1, self.width)),
        )

    def _train(self, x: np.ndarray) -> None:
        self.search_seed_ = search_seed(self.random_state)
        g, d = self.nets_["g"], self.nets_["d"]
        opt_g, opt_d = self._adam(g), self._adam(d)
        g_params = list(g.parameters())

        def step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor]:
            z = batch_randn(len(xb), self.nz, device=xb.device)
            fake = g(z)
            loss_d = d_loss_bce(d(xb).flatten(), d(fake.detach()).flatten())
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_g = g_loss_bce(d(fake).flatten())  # the updated D, the same z
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=g_params)
            opt_g.step()
            return {"d": loss_d, "g": loss_g}

        self._run_loop(step, x, {"opt_g": opt_g, "opt_d": opt_d})

    # ------------------------------------------------------------- scoring
    def _terms(self, xb: torch.Tensor, f_x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g, d = self.nets_["g"], self.nets_["d"]
        x_hat = g(z)
        residual = (xb - x_hat).abs().flatten(1).sum(1)
        feature = (f_x - d.features(x_hat)).abs().flatten(1).sum(1)
        return residual, feature

    def _search_batch(
        self, xb: torch.Tensor, z0: torch.Tensor, on_step: Callable[[], None] | None = None
    ) -> dict[str, torch.Tensor]:
        """The search for one batch; ``on_step()`` is called once per search step (progress)."""
        lam = float(self.lam)
        z, f_x = self._search_z(xb, z0, on_step)
        with torch.no_grad():
            residual, feature = self._terms(xb, f_x, z)
        return {"residual": residual, "feature": feature, "score": (1.0 - lam) * residual + lam * feature}

    def _search_z(
        self, xb: torch.Tensor, z0: torch.Tensor, on_step: Callable[[], None] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the final z of the search from ``z0``, f(x)) for one batch."""
        lam = float(self.lam)
        with torch.no_grad():
            f_x = self.nets_["d"].features(xb)

        def objective(z: torch.Tensor) -> torch.Tensor:
            if on_step is not None:
                on_step()
            residual, feature = self._terms(xb, f_x, z)
            return (1.0 - lam) * residual + lam * feature

        lr = piecewise_lr(self.search_lr, self.search_steps) if self.search_schedule == "piecewise" else self.search_lr
        return search_latent(objective, z0, self.search_steps, lr), f_x

    def initial_latents(self, X: Any) -> torch.Tensor:
        """The (N, nz) starting points of the search for ``X``, a function of each image alone."""
        self._check_fitted()
        x = self._validate(X, fitting=False)
        return per_image_normal(x, (self.nz,), self.search_seed_)

    def _search_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {}
        bs = max(self.batch_size, 256)
        steps = max(int(self.search_steps), 1)
        self.nets_.eval()
        with progress(len(x), f"{self.name} search", bool(self.verbose)) as bar:
            for i in range(0, len(x), bs):
                rows = x[i : i + bs]
                # the bar advances with the search steps: after t of the batch's steps it
                # counts t/steps of its images, so a batch of slow searches still shows a rate
                done = [0, 0]  # steps taken, images counted

                def on_step(n: int = len(rows), done: list[int] = done) -> None:
                    done[0] += 1
                    k = min(n, n * done[0] // steps)
                    bar.update(k - done[1])
                    done[1] = k

                z0 = per_image_normal(rows, (self.nz,), self.search_seed_).to(self.device_)
                for k, v in self._search_batch(self._to_input(rows), z0, on_step).items():
                    parts.setdefault(k, []).append(v.detach().float().cpu().numpy())
                bar.update(len(rows) - done[1])
        return {k: np.concatenate(v) for k, v in parts.items()}

    # ---------------------------------------------------------------- maps
    has_anomaly_map = True

    def _anomaly_map(self, x: np.ndarray) -> np.ndarray:
        """|x - G(z*)| per pixel (the residual term R, channel mean), with z* the search's
        final z from the same start as the score's: an anomaly map costs a second search."""
        h, w = self.input_shape_[1:]
        out = np.empty((len(x), h, w), dtype=np.float32)
        bs = max(self.batch_size, 256)
        with torch.inference_mode(False), self._autocast(cache=False):
            self.nets_.eval()
            for i in range(0, len(x), bs):
                rows = x[i : i + bs]
                xb = self._to_input(rows)
                z0 = per_image_normal(rows, (self.nz,), self.search_seed_).to(self.device_)
                z, _ = self._search_z(xb, z0)
                with torch.no_grad():
                    m = self._map_to_input((xb - self.nets_["g"](z)).abs().mean(1))
                out[i : i + len(rows)] = m.float().cpu().numpy()
        return out
