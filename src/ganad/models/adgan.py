"""ADGAN (Deecke et al., ECML-PKDD 2018): score an image by how hard it is to generate.

Training (paper section 4.2): a DCGAN-architecture generator
trained with the WGAN objective (paper eq. 2), z ~ N(0, I) of dimension 256
("Following [34] we set the dimensionality of the latent space to d' = 256").  The paper gives no training optimiser
or Lipschitz method; it restricts the critic to 1-Lipschitz functions and
cites only the original WGAN [2] (not WGAN-GP), so [2]'s Algorithm 1 is used:
weight clipping to [-``clip``, ``clip``] = [-0.01, 0.01] after every critic
step, RMSprop for both nets, ``n_critic`` = 5 critic steps per generator
step, batch 64 (``batch_size``).  Deviation: RMSprop's learning rate is 5e-4,
not [2]'s 5e-5, chosen on the validation split: at 5e-5, 60
epochs (~1,000 generator steps) leave the generator far from trained (measured
at width 16; the default width 64 was not measured on a CPU).  (The paper's
5e-5, footnote 9, is the *test-time* theta step, "the default learning rate
recommended in [2]".)  ``lipschitz="gp"`` trains with WGAN-GP instead
(gradient penalty 10, Adam lr 1e-4, betas (0, 0.9), LayerNorm critic).
G = ``DCGANDecoder(size, C, nz, width)`` (z256 -> 256x4x4 -> 128x8x8 ->
64x16x16 -> Cx32x32 at the default width 64),
critic = ``DCGANEncoder(size, C, 1, width, norm=critic_norm)``; DCGAN init.
Not reproduced from the WGAN code (not in its Algorithm 1): 100 critic steps
for the first 25 generator steps.

Scoring (Algorithm 1), per test image x:

1. draw ``n_seed`` = 64 seeds z_j,0 ~ N(0, I) and set theta_j,0 = theta (the trained G);
2. ``k`` = 5 times, for every seed j, with l = ||G_theta_j(z_j) - x||_2^2 (summed
   over pixels): one Adam step on z_j (lr ``lr_z`` = 0.25, betas (0.5, 0.999), the
   paper's footnote 9) and one Adam step on theta_j (lr ``lr_theta`` = 5e-5);
3. score = (1 / n_seed) sum_j l(G_theta_j,k(z_j,k), x), the mean loss at the final
   (z, theta).  theta and every optimiser state are reset for each image.

The paper gives no betas for the theta updates; the z betas are used for both
(one Adam over z and theta, as one optimiser with two parameter groups would).
``adapt_generator=False`` keeps theta fixed (a z-only search: the ablation of
section 3.1's "small amount of flexibility to the parametrization of the
generator", and much cheaper, since no parameter copies are needed).

Implementation: all (image, seed) pairs of a chunk are searched at once with
private, batched parameter copies and a vectorised Adam
(:func:`ganad.latent_search.adgan_search`); BatchNorm runs in eval mode
(running statistics), so seeds and images never interact, and each image's
seeds are drawn from a generator seeded by a hash of its pixels and the
detector's seed, so a score does not depend on the batch it was scored in.
Scoring costs (n_seed x k) forward/backward passes *and* Adam updates of a
full parameter copy per pair: about 4 x 1.7M floats of state per pair for
the default generator, processed ``search_chunk`` pairs at a time; theta's
Adam runs in torch's fused kernel (one pass over the pair's state).  Measured
on one thread of this project's Xeon, 32x32x1, 64 seeds x 5 steps, default
width 64, 4 images: 0.348 images per CPU second (benchmarks/results/search-speed.jsonl,
commit a23dd52; ``python benchmarks/adgan_speed.py --throughput``).  Every step
streams each pair's parameter state (theta, gradient, two moments: ~27 MB at
width 64) through memory several times for little arithmetic, so memory traffic,
not FLOPs, bounds the search (larger ``search_chunk`` values ran slower in an unstored
probe).  Earlier, on an AMD EPYC
(not stored), 1.8 images per CPU second at width 16: about 3x a per-seed loop of
``torch.optim.Adam`` on deep copies, and 40x or more for small generators,
where per-call overhead dominates (``--quick``).  ``fit`` also scores the held-out
calibration images for ``threshold_`` (at most ``threshold_images``, default
1,000), since scoring all training images would cost more than training.

The critic keeps DCGAN's BatchNorm by default (``critic_norm="batch"``), as the
DCGAN discriminator of the WGAN code does with weight clipping; a WGAN-GP
critic should not use BatchNorm, since the penalty needs per-sample gradients
("layer" or "none" are available).

Measured effects of these knobs (training epochs and learning rate, Lipschitz
method, width, n_seed, theta adaptation): benchmarks/README.md, section ADGAN.

``score_parts``: "reconstruction" (= "score", the mean final loss over seeds),
and the alternatives of section 3.2 (evaluated in section 4.3), oriented higher = more anomalous:
"prior_nll", the mean over seeds of -log N(z_j,k; 0, I) of the final latents,
and "critic", -D(x) with the trained critic (a WGAN critic rates real data high).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from ..latent_search import SearchScoring, adgan_search, per_image_normal, search_seed
from ..distributed import batch_randn
from ..losses import clip_weights, d_loss_wgan, g_loss_wgan, gradient_penalty
from ..progress import progress
from ..nets.dcgan import DCGANDecoder, DCGANEncoder
from ..nets.init import init_dcgan
from ..params import BETA, BOOL, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, SHARED, Options
from ..registry import register
from ..train import alternating
from .torch_base import TorchDetector, make_optimizer, module_dict

_NORMS = ("batch", "layer", "none")
# What lr=None and critic_norm=None resolve to, per Lipschitz method: WGAN with
# weight clipping (RMSprop, at the lr chosen on validation; see the docstring)
# and WGAN-GP (Adam, its paper's lr; a critic that does not mix samples).
_LIPSCHITZ_DEFAULTS = {"clip": {"lr": 5e-4, "critic_norm": "batch"}, "gp": {"lr": 1e-4, "critic_norm": "layer"}}


@register("adgan")
class ADGAN(SearchScoring, TorchDetector):
    """ADGAN: WGAN generator; score = mean over seeds of the squared error after k joint
    Adam steps on (z, theta) per seed.

    Parameters
    ----------
    nz, width : latent size (paper: 256) and DCGAN base width.
    lipschitz : how the critic is kept 1-Lipschitz (paper eq. 2 leaves it open):
        "clip" (WGAN [2]: weight clipping, RMSprop) or "gp" (WGAN-GP: gradient
        penalty, Adam with betas (0, 0.9)).
    lr : learning rate of both nets; None = 5e-4 for "clip" (RMSprop; WGAN's 5e-5
        trains too slowly, see the table above), 1e-4 for "gp" (WGAN-GP's).
    n_critic : critic steps per generator step (WGAN and WGAN-GP: 5).
    clip : critic weights are clipped to [-clip, clip] after each critic step (WGAN: 0.01).
    gp_weight : gradient-penalty weight for "gp" (WGAN-GP: 10).
    critic_norm : "batch" (DCGAN's discriminator, as in the WGAN code), "layer" or
        "none"; None = "batch" for "clip", "layer" for "gp" (a penalty on per-sample
        gradients needs a critic that does not mix samples).
    n_seed : seeds per test image (paper: 64).
    k : search steps per seed (paper: 5); 0 scores the random seeds as drawn.
    lr_z, lr_theta : Adam learning rates of the latents (0.25) and of the
        per-seed generator copies (5e-5).
    search_beta1, search_beta2 : Adam betas of the search (0.5, 0.999).
    adapt_generator : True = Algorithm 1 (per-seed copies of theta are adapted);
        False = z-only search with the trained theta (cheaper ablation).
    search_chunk : (image, seed) pairs searched at once; None = automatic
        (about 64 MiB of per-pair parameter state).
    threshold_images : most held-out training images scored for ``threshold_``
        (the calibration set; None = no cap); ``decision_scores_`` are their
        scores, since scoring the fitted images too would double the cost.
    epochs : training epochs (default 60; see the table of measured effects).
    **common : TorchDetector's batch_size, device, checkpoint, ...
    """

    def __init__(
        self,
        nz: int = 256,
        width: int = 64,
        lipschitz: str = "clip",
        lr: float | None = None,
        n_critic: int = 5,
        clip: float = 0.01,
        gp_weight: float = 10.0,
        critic_norm: str | None = None,
        n_seed: int = 64,
        k: int = 5,
        lr_z: float = 0.25,
        lr_theta: float = 5e-5,
        search_beta1: float = 0.5,
        search_beta2: float = 0.999,
        adapt_generator: bool = True,
        search_chunk: int | None = None,
        threshold_images: int | None = 1000,
        epochs: int = 60,
        **common: Any,
    ):
        # 60 epochs, not TorchDetector's 15: with n_critic = 5 the generator takes one
        # step per five batches, and 10 epochs left it far from trained (see the table above).
        super().__init__(epochs=epochs, **common)
        self.nz = nz
        self.width = width
        self.lipschitz = lipschitz
        self.lr = lr
        self.n_critic = n_critic
        self.clip = clip
        self.gp_weight = gp_weight
        self.critic_norm = critic_norm
        self.n_seed = n_seed
        self.k = k
        self.lr_z = lr_z
        self.lr_theta = lr_theta
        self.search_beta1 = search_beta1
        self.search_beta2 = search_beta2
        self.adapt_generator = adapt_generator
        self.search_chunk = search_chunk
        self.threshold_images = threshold_images

    _parameter_constraints = {
        "nz": SHARED["nz"], "width": [POSITIVE_INT], "lr": [POSITIVE, None], "n_critic": [POSITIVE_INT],
        "lipschitz": [Options(tuple(_LIPSCHITZ_DEFAULTS))], "clip": [POSITIVE], "gp_weight": [POSITIVE],
        "critic_norm": [Options(_NORMS), None], "n_seed": [POSITIVE_INT], "k": [NON_NEGATIVE_INT],
        "lr_z": [POSITIVE], "lr_theta": [POSITIVE], "search_beta1": [BETA], "search_beta2": [BETA],
        "search_chunk": [POSITIVE_INT, None], "threshold_images": [POSITIVE_INT, None], "adapt_generator": [BOOL],
    }

    # ------------------------------------------------------------ training
    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        self.nets_ = module_dict(
            g=init_dcgan(DCGANDecoder(size, c, self.nz, self.width)),
            d=init_dcgan(DCGANEncoder(size, c, 1, self.width, norm=self._resolved("critic_norm"))),
        )

    def _resolved(self, name: str) -> Any:
        """``lr`` or ``critic_norm`` as set, or the Lipschitz method's default when None."""
        value = getattr(self, name)
        return _LIPSCHITZ_DEFAULTS[self.lipschitz][name] if value is None else value

    def _train(self, x: np.ndarray) -> None:
        self.search_seed_ = search_seed(self.random_state)
        g, d = self.nets_["g"], self.nets_["d"]
        gp = self.lipschitz == "gp"
        # WGAN-GP's Algorithm 1: Adam (0, 0.9); WGAN's: RMSprop
        opt_kw = {"betas": (0.0, 0.9)} if gp else {"kind": "rmsprop"}
        lr = self._resolved("lr")
        opt_g = make_optimizer(g.parameters(), lr, **opt_kw)
        opt_d = make_optimizer(d.parameters(), lr, **opt_kw)
        g_params = list(g.parameters())

        def d_step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor]:
            with torch.no_grad():
                fake = g(batch_randn(len(xb), self.nz, device=xb.device))
            wass = d_loss_wgan(d(xb), d(fake))
            loss_d = wass + gradient_penalty(d, xb, fake, weight=self.gp_weight) if gp else wass
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            if not gp:
                clip_weights(d, self.clip)
            return {"d": loss_d, "wasserstein": -wass.detach()}

        def g_step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor]:
            loss_g = g_loss_wgan(d(g(batch_randn(len(xb), self.nz, device=xb.device))))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=g_params)
            opt_g.step()
            return {"g": loss_g}

        self._run_loop(alternating(d_step, g_step, int(self.n_critic)), x, {"opt_g": opt_g, "opt_d": opt_d})

    # ------------------------------------------------------------- scoring
    def initial_latents(self, X: Any) -> torch.Tensor:
        """The (N, n_seed, nz) seeds the search starts from for ``X``; image i's seeds
        depend only on image i (and the detector's seed)."""
        self._check_fitted()
        x = self._validate(X, fitting=False)
        return per_image_normal(x, (self.n_seed, self.nz), self.search_seed_)

    def _search_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.nets_.eval()
        g, d = self.nets_["g"], self.nets_["d"]
        const = 0.5 * self.nz * math.log(2 * math.pi)
        parts: dict[str, list[np.ndarray]] = {}
        bs = max(1, min(256, 65536 // self.n_seed))
        with progress(len(x), f"{self.name} search", bool(self.verbose)) as bar:
            for i in range(0, len(x), bs):
                rows = x[i : i + bs]
                xb = self._to_input(rows)
                z0 = per_image_normal(rows, (self.n_seed, self.nz), self.search_seed_).to(self.device_)
                res = adgan_search(
                    g, xb, z0, steps=int(self.k), lr_z=self.lr_z, lr_theta=self.lr_theta,
                    betas=(self.search_beta1, self.search_beta2), adapt_generator=bool(self.adapt_generator),
                    chunk_size=self.search_chunk,
                )
                with torch.no_grad():
                    rec = res.loss.mean(1)
                    batch = {
                        "reconstruction": rec,
                        "prior_nll": 0.5 * res.z.pow(2).sum(2).mean(1) + const,
                        "critic": -d(xb).flatten(),
                        "score": rec,
                    }
                for k, v in batch.items():
                    parts.setdefault(k, []).append(v.detach().float().cpu().numpy())
                bar.update(len(rows))
        return {k: np.concatenate(v) for k, v in parts.items()}

    def _search_precision(self) -> Any:
        """Algorithm 1's search runs in fp32 even when ``precision="bf16"`` (training
        still uses bf16).  Each step of every pair reads its private fp32 theta, which
        autocast casts to bf16 for the forward and whose bf16 gradient it casts back:
        two extra passes over the whole per-pair state, more than the bf16 matmuls
        save (one thread, width 64, 64 seeds x 5 steps, one A/B run: 0.216 images per
        CPU second under autocast vs 0.482 in fp32; an unstored measurement).  theta cannot be kept in bf16:
        an Adam step of lr_theta = 5e-5 is below bf16's resolution of a DCGAN weight.
        The z-only search (``adapt_generator=False``) keeps the detector's autocast."""
        return nullcontext() if self.adapt_generator else super()._search_precision()

    # ---------------------------------------------------------------- maps
    has_anomaly_map = True

    def _anomaly_map(self, x: np.ndarray) -> np.ndarray:
        """(x - G_theta_j(z_j))^2 per pixel at the search's final (z, theta), averaged over the
        seeds and channels: the "reconstruction" score per pixel (the same search, from the
        same seeds; an anomaly map costs a second search)."""
        with torch.inference_mode(False), self._search_precision():
            self.nets_.eval()
            h, w = self.input_shape_[1:]
            out = np.empty((len(x), h, w), dtype=np.float32)
            bs = max(1, min(256, 65536 // self.n_seed))
            for i in range(0, len(x), bs):
                rows = x[i : i + bs]
                z0 = per_image_normal(rows, (self.n_seed, self.nz), self.search_seed_).to(self.device_)
                res = adgan_search(
                    self.nets_["g"], self._to_input(rows), z0, steps=int(self.k), lr_z=self.lr_z,
                    lr_theta=self.lr_theta, betas=(self.search_beta1, self.search_beta2),
                    adapt_generator=bool(self.adapt_generator), chunk_size=self.search_chunk, return_maps=True,
                )
                out[i : i + len(rows)] = self._map_to_input(res.pixel_error.mean(1)).float().cpu().numpy()
        return out
