"""GANomaly (Akcay, Atapour-Abarghouei & Breckon, ACCV 2018) and Skip-GANomaly (IJCNN 2019).

GANomaly (reference code: samet-akcay/ganomaly, lib/networks.py and lib/model.py).
G = E1 -> Dec -> E2 (DCGAN nets, separate
weights): z = E1(x), x_hat = Dec(z), z_hat = E2(x_hat).  D is a DCGAN encoder
with one logit; f(.) is its last 4x4 feature map.  Per batch, a G step then
a D step (Adam 2e-4, betas (0.5, 0.999)); equation numbers are those of the
survey by Di Mattia et al. (2019, section 2.3), which restates the losses:

    L_adv = mean (f(x) - f(x_hat))^2          (feature matching; the survey's eq. 8)
    L_con = mean |x - x_hat|                  (the survey's eq. 9)
    L_enc = mean (z - z_hat)^2                (the survey's eq. 10)
    L_G   = w_adv L_adv + w_con L_con + w_enc L_enc,   w = (1, 50, 1)
    L_D   = 1/2 [BCE(D(x), 1) + BCE(D(x_hat), 0)]; D is re-initialised when L_D < 1e-5
    score A(x) = mean over nz of (z - z_hat)^2                     (the survey's eq. 12)

Skip-GANomaly (reference code: samet-akcay/skip-ganomaly).  G is a U-Net (pix2pix layout, log2(size)
levels); D is a DCGAN encoder to an nz-dim code f(x) (1x1, no activation)
followed by a 3x3 conv classifier:

    L_G = w_adv BCE(D(x_hat), 1) + w_con mean |x - x_hat| + w_lat mean (f(x) - f(x_hat))^2,
          w = (1, 40, 1) (the paper's; the code's default w_con is 50)
    L_D = BCE(D(x), 1) + BCE(D(x_hat), 0) + w_lat mean (f(x) - f(x_hat))^2
    score A(x) = lam R(x) + (1 - lam) L(x), lam = 0.9, with R = mean (x - x_hat)^2
          and L = mean (f(x) - f(x_hat))^2 as in the code (the paper writes norms),
          min-max scaled with the *training* scores' range.

Deviations from the reference code, and why:

* Scoring runs in eval mode (BatchNorm running statistics) under
  inference_mode, so a score never depends on its batch mates.  The code
  never calls ``eval()``; ``bn_mode="legacy_train"`` reproduces that
  (batch statistics over test batches of ``batch_size``, on a copy of the
  nets so the fitted running statistics stay untouched) for comparison only.
* After training, every BatchNorm's running mean and variance are recomputed
  as the average over the training batches under the final weights ("precise
  BN"; the same forward passes as a training step).  See "Small training sets".
* GANomaly trains at least ``min_steps`` = 150 optimisation steps: ``epochs``
  is raised on small data sets (``min_steps=0``: exactly ``epochs``).
* No min-max normalisation over the test set (it leaks test statistics into
  thresholds).  GANomaly's score is the raw latent error; Skip-GANomaly's
  min-max is fitted on the training scores and saved with the model.
* No best-epoch selection on test AUC: the last epoch is kept (a caller may
  select epochs on normal validation data).
* Images are scaled to [-1, 1] (the code feeds MNIST normalised with
  mean/std, a range tanh cannot reach) and 28x28 is padded to 32, not resized.
* BCE is computed from logits (softplus) rather than sigmoid + ``BCELoss``:
  the same loss without the clamp at log(0) = -100.
* GANomaly's G-step feature target f(x) reuses D's forward pass on x from the
  D step (same weights, same values; the code runs it twice).
* Skip-GANomaly: the code adds an uninitialised ``torch.empty`` buffer to G's
  input; here that noise is explicit Gaussian noise of ``noise_std`` (0 by
  default, as the paper has none).  The code's ``set_input(noise=True)``, never
  called, would fill the buffer with ``torch.randn``: ``noise_std=1.0`` is that
  path.  It matters: the U-Net's outermost skip lets a G trained on clean images
  copy anomalies almost as well as normals, and training on noisy inputs forces it
  to use the class's structure (Fashion-MNIST validation AUROC, width 32, 3
  epochs, classes 8/6/0: 0.546/0.600/0.776 clean, 0.572/0.767/0.887 with
  ``noise_std=1.0``; the benchmark picks 0 or 1 per class on validation).
  Scoring always sees the clean image, as in the code.  The latent term in L_D
  (with gradients into D only) is kept as in the code, although the paper's L_D
  has only the BCE terms.

Small training sets.  On a few hundred images training makes few steps (200
images, 180 fitted after the calibration hold-out, batch 64: 2 steps an epoch,
30 in 15 epochs), and the latent score used to *invert*: the CLI's default on
200 Fashion-MNIST T-shirts scored T-shirts above the other classes (test AUROC
0.32, reconstruction term 0.50), on the 8x8 digits (15 steps) 0.007-0.07.  The
cause was eval-mode BatchNorm, not the method: PyTorch starts the running
variance at 1 and averages with momentum 0.1, so after k steps the start value
still weighs 0.9^k, while the first BatchNorm of a DCGAN-initialised (N(0,
0.02)) encoder sees variances ~1e-4..1e-3 (the decoder's at 8 px ~1e-6).  After
30 steps the running variance of E1's and E2's first BatchNorm was 68x and 150x
the true one: the eval-mode nets were not the trained ones, and their latent
error tracked the amount of ink (Spearman 0.92 with the mean pixel; T-shirts
have the most; these variances, ratios and the correlation are an unstored
diagnostic).  Statistics recomputed at the same weights give 0.76 (0.90 for
the reconstruction term); the running averages catch up by ~100 steps.  With
recomputed statistics, validation latent AUROC (held-out training-split
normals + other classes, no test data) after 15 / 30 / 100 / 150 / 300 steps:
10 digit classes (~63 images) 0.90 / 0.94 / 0.98 / 0.99 / 0.99 (0.05 / 0.05 /
0.98 / 0.99 / 0.99 with the running averages); Fashion-MNIST classes 0/1/7/8,
180 images, 0.91 / 0.92 / 0.93 / 0.93 / 0.93 (0.31 / 0.23 / 0.93 / ...).  Over
these 14 cells 150 steps has the best mean (0.972; 100: 0.966, 200: 0.971,
300: 0.971), hence ``min_steps``; from ~700 images on, 15 epochs make more
steps than that and nothing changes (``benchmarks/small_folder_probe.py``,
``probes/small-folder-steps.jsonl``).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer

from ..distributed import batch_randn
from ..losses import d_loss_bce, feature_matching, g_loss_bce
from ..nets.dcgan import DCGANDecoder, DCGANEncoder
from ..nets.unet import SkipDiscriminator, UNetGenerator
from ..nets.init import dcgan_init, init_dcgan
from ..params import NON_NEGATIVE, NON_NEGATIVE_INT, UNIT, Options
from ..registry import register
from ..train import History, StepFn
from .torch_base import DCGANDetector, module_dict

_BN_MODES = ("eval", "legacy_train")
D_REINIT_BELOW = 1e-5  # the reference restarts D when its loss falls below this
BN_STATS_MAX_IMAGES = 8192  # images whose batches set the BatchNorm statistics after training


# -------------------------------------------------------------------- nets
class GANomalyGenerator(nn.Module):
    """x -> (x_hat, z, z_hat) with z = E1(x), x_hat = Dec(z), z_hat = E2(x_hat)."""

    def __init__(self, size: int, channels: int, nz: int, width: int):
        super().__init__()
        self.encoder1 = DCGANEncoder(size, channels, nz, width)
        self.decoder = DCGANDecoder(size, channels, nz, width)
        self.encoder2 = DCGANEncoder(size, channels, nz, width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder1(x)
        x_hat = self.decoder(z)
        return x_hat, z, self.encoder2(x_hat)


# ---------------------------------------------------------------- detectors
class _GANomalyBase(DCGANDetector):
    """Shared hyper-parameters, the training loop (a G step, then a D step that restarts a
    D that has won) and the legacy BatchNorm scoring mode.

    Parameters
    ----------
    lr, beta1 : Adam(lr, (beta1, 0.999)) of G and of D (the reference's 2e-4, 0.5).
    bn_mode : "eval" scores with BatchNorm's running statistics (batch-independent
        scores); "legacy_train" scores in train mode, as the reference code, with the
        batch statistics of test batches of ``batch_size`` (on a copy of the nets), for
        comparison only.
    min_steps : fewest optimisation steps to train: ``epochs`` is raised to
        ceil(min_steps / steps per epoch) on small data sets; 0 trains exactly ``epochs``.
    """

    def __init__(
        self, nz: int, width: int, lr: float, beta1: float, bn_mode: str, min_steps: int, **common: Any
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, **common)
        self.bn_mode = bn_mode
        self.min_steps = min_steps

    _parameter_constraints = {"bn_mode": [Options(_BN_MODES)], "min_steps": [NON_NEGATIVE_INT]}

    def _train(self, x: np.ndarray) -> None:
        g, d = self.nets_["g"], self.nets_["d"]
        opt_g, opt_d = self._adam(g), self._adam(d)
        self._run_loop(self._step(g, d, opt_g, opt_d), x, {"opt_g": opt_g, "opt_d": opt_d}, min_steps=self.min_steps)
        self._recompute_bn_stats(x)

    def _step(self, g: nn.Module, d: nn.Module, opt_g: Optimizer, opt_d: Optimizer) -> StepFn:  # pragma: no cover
        """The training step ``step(batch, t)``: a G step on ``opt_g``, then :meth:`_update_d`."""
        raise NotImplementedError

    def _update_d(self, d: nn.Module, opt_d: Optimizer, loss_d: torch.Tensor) -> float:
        """One D step on ``loss_d``; a D that won outright (loss below ``D_REINIT_BELOW``) is
        restarted, as the reference does, decided on the global batch under torchrun.
        Returns 1.0 when D was restarted, else 0.0 (the step's "d_reinit")."""
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        reinit = float(self._global_mean(loss_d.detach()).item() < D_REINIT_BELOW)
        if reinit:
            d.apply(dcgan_init)
        return reinit

    def _bn_passes(self, nets: nn.ModuleDict, xb: torch.Tensor, noise: torch.Generator) -> None:  # pragma: no cover
        """The forward passes one training step makes through every BatchNorm layer."""
        raise NotImplementedError

    @torch.no_grad()
    def _recompute_bn_stats(self, x: np.ndarray) -> None:
        """Set every BatchNorm's running statistics to their mean over training batches
        under the final weights ("precise BN"), replacing the momentum-0.1 averages.

        Those start at mean 0, variance 1, and the first BatchNorm of a DCGAN-initialised
        encoder sees variances near 1e-4 (unstored): after k steps the start value still weighs
        0.9^k, which dominates until k is ~100 (module docstring).  The batches mirror
        training (``batch_size``, full batches, the same forward passes), in a fixed
        order of at most ``BN_STATS_MAX_IMAGES`` of the fitted images (the holdout of
        ``validation_fraction`` excluded).
        """
        bns = [m for m in self.nets_.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        x, _ = self._holdout(x)
        if not bns or len(x) == 0:
            return
        seed = 0 if self.random_state is None else int(self.random_state)
        idx = np.arange(len(x))
        if len(x) > BN_STATS_MAX_IMAGES:
            idx = np.sort(np.random.default_rng([seed, 0xB5]).choice(len(x), BN_STATS_MAX_IMAGES, replace=False))
        bs = min(self.batch_size, len(idx))
        modes = [(m, m.training) for m in self.nets_.modules()]
        momenta = [(m, m.momentum) for m in bns]
        noise = torch.Generator(device=self.device_).manual_seed(seed)
        try:
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the passes below
            self.nets_.train()
            for i in range(len(idx) // bs):
                self._bn_passes(self.nets_, self._to_input(x[idx[i * bs : (i + 1) * bs]]), noise)
        finally:
            for m, momentum in momenta:
                m.momentum = momentum
            for m, training in modes:
                m.training = training

    def _parts(self, nets: nn.ModuleDict, x: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._parts(self.nets_, batch)

    def _score_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if self.bn_mode == "eval":
            return super()._score_parts(x)
        # legacy_train: the reference code's test() leaves BatchNorm in train mode, so a
        # score depends on its test batch; a copy keeps the fitted running stats intact.
        nets = copy.deepcopy(self.nets_).train()
        parts: dict[str, list[np.ndarray]] = {}
        with torch.no_grad():
            for batch in self._iter_batches(x, self.batch_size):
                for k, v in self._parts(nets, batch).items():
                    parts.setdefault(k, []).append(v.float().cpu().numpy())
        return {k: np.concatenate(v) for k, v in parts.items()}


@register("ganomaly")
class GANomaly(_GANomalyBase):
    """GANomaly: score = mean (E1(x) - E2(G(x)))^2 over the nz latent dimensions.

    ``score_parts`` gives "latent" (= "score"), "reconstruction" (mean |x - x_hat|)
    and "feature" (mean (f(x) - f(x_hat))^2 on D's features).

    Parameters
    ----------
    nz : size of the latent code z = E1(x) (and z_hat = E2(x_hat)); the score averages over it.
    width : base channel count of the DCGAN nets E1, Dec, E2 and D (doubled at each
        stride-2 layer).
    w_adv : weight of L_adv = mean (f(x) - f(x_hat))^2 (feature matching on D's last
        4x4 feature map) in L_G.
    w_con : weight of L_con = mean |x - x_hat| (the reconstruction term) in L_G.
    w_enc : weight of L_enc = mean (z - z_hat)^2 (the latent term) in L_G.
    """

    def __init__(
        self,
        nz: int = 100,
        width: int = 64,
        lr: float = 2e-4,
        beta1: float = 0.5,
        w_adv: float = 1.0,
        w_con: float = 50.0,
        w_enc: float = 1.0,
        bn_mode: str = "eval",
        min_steps: int = 150,
        **common: Any,
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, bn_mode=bn_mode, min_steps=min_steps, **common)
        self.w_adv = w_adv
        self.w_con = w_con
        self.w_enc = w_enc

    _parameter_constraints = {"w_adv": [NON_NEGATIVE], "w_con": [NON_NEGATIVE], "w_enc": [NON_NEGATIVE]}

    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        self.nets_ = module_dict(
            g=init_dcgan(GANomalyGenerator(size, c, self.nz, self.width)),
            d=init_dcgan(DCGANEncoder(size, c, 1, self.width)),  # the reference builds D from ngf too
        )

    def _step(self, g: nn.Module, d: nn.Module, opt_g: Optimizer, opt_d: Optimizer) -> StepFn:
        g_params = list(g.parameters())

        def step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor | float]:
            x_hat, z, z_hat = g(xb)
            h_real = d.features(xb)  # also the D step's real branch (same weights)
            adv = feature_matching(h_real.detach(), d.features(x_hat))
            con = (xb - x_hat).abs().mean()
            enc = (z - z_hat).pow(2).mean()
            loss_g = self.w_adv * adv + self.w_con * con + self.w_enc * enc
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=g_params)  # G only; D's grads come from L_D alone
            opt_g.step()

            loss_d = 0.5 * d_loss_bce(d.head(h_real).flatten(), d(x_hat.detach()).flatten())
            reinit = self._update_d(d, opt_d, loss_d)
            return {"g": loss_g, "g_adv": adv, "g_con": con, "g_enc": enc, "d": loss_d, "d_reinit": reinit}

        return step

    def _bn_passes(self, nets: nn.ModuleDict, xb: torch.Tensor, noise: torch.Generator) -> None:
        # a step runs G on x, then D on x (once: its features serve both steps) and twice on x_hat
        x_hat, _, _ = nets["g"](xb)
        for inp in (xb, x_hat, x_hat):
            nets["d"].features(inp)

    def _parts(self, nets: nn.ModuleDict, x: torch.Tensor) -> dict[str, torch.Tensor]:
        g, d = nets["g"], nets["d"]
        x_hat, z, z_hat = g(x)
        latent = (z - z_hat).pow(2).mean(1)
        return {
            "latent": latent,
            "reconstruction": (x - x_hat).abs().flatten(1).mean(1),
            "feature": (d.features(x) - d.features(x_hat)).pow(2).flatten(1).mean(1),
            "score": latent,
        }

    def _score(self, x: np.ndarray) -> np.ndarray:
        # decision_function needs only G's three nets, not D's two feature passes.
        if self.bn_mode != "eval":
            return self._score_parts(x)["score"]

        def latent(batch: torch.Tensor) -> torch.Tensor:
            _, z, z_hat = self.nets_["g"](batch)  # looked up in the pass: bf16 scores a folded copy
            return (z - z_hat).pow(2).mean(1)

        return self._batched(x, latent)

    # map: the reconstruction term per pixel, |x - Dec(E1(x))| (channel mean); the score is the latent error
    has_anomaly_map = True
    map_error = "l1"

    def _reconstruct_batch(self, batch: torch.Tensor) -> torch.Tensor:
        return self.nets_["g"](batch)[0]

    def _encode_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """z = E1(x) (B, nz) of a prepared batch, the bottleneck code (:mod:`ganad.report.latent`)."""
        return self.nets_["g"].encoder1(batch)


@register("skipganomaly")
class SkipGANomaly(_GANomalyBase):
    """Skip-GANomaly: score = lam * mean (x - x_hat)^2 + (1 - lam) * mean (f(x) - f(x_hat))^2.

    ``score_norm="minmax"`` scales it by the training scores' min and max
    (monotone, so rankings and AUROC are unchanged).  ``score_parts`` gives
    "reconstruction", "feature" (the paper's latent score L(x)), "raw" and "score".
    ``lam`` only changes scoring (``score_params``): a benchmark grid over it shares one fit.

    Parameters
    ----------
    nz : size of D's code f(x), the features of the latent term (G, a U-Net, has no
        latent size).
    width : base channel count of the U-Net G (channels width * min(2^i, 8) at level i)
        and of D's DCGAN encoder.
    w_adv : weight of the adversarial term BCE(D(x_hat), 1) in L_G.
    w_con : weight of the reconstruction term mean |x - x_hat| in L_G (the paper's 40;
        the reference code's default is 50).
    w_lat : weight of the latent term mean (f(x) - f(x_hat))^2 in L_G and in L_D.
    lam : weight of the reconstruction term R(x) in the score lam R(x) + (1 - lam) L(x);
        changes scoring only.
    noise_std : std of the Gaussian noise added to G's input in training (0 = none, as
        the paper; 1.0 = the reference code's ``set_input(noise=True)`` path); scoring
        always sees the clean image.
    score_norm : "minmax" scales the score by the training scores' min and max (saved
        with the model); "none" keeps the raw score.
    """

    score_params = ("lam",)

    def __init__(
        self,
        nz: int = 100,
        width: int = 64,
        lr: float = 2e-4,
        beta1: float = 0.5,
        w_adv: float = 1.0,
        w_con: float = 40.0,
        w_lat: float = 1.0,
        lam: float = 0.9,
        noise_std: float = 0.0,
        score_norm: str = "minmax",
        bn_mode: str = "eval",
        min_steps: int = 0,
        **common: Any,
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, bn_mode=bn_mode, min_steps=min_steps, **common)
        self.w_adv = w_adv
        self.w_con = w_con
        self.w_lat = w_lat
        self.lam = lam
        self.noise_std = noise_std
        self.score_norm = score_norm

    _parameter_constraints = {
        "w_adv": [NON_NEGATIVE], "w_con": [NON_NEGATIVE], "w_lat": [NON_NEGATIVE], "lam": [UNIT],
        "noise_std": [NON_NEGATIVE], "score_norm": [Options(("minmax", "none"))],
    }

    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        self.nets_ = module_dict(
            g=init_dcgan(UNetGenerator(size, c, self.width)),
            d=init_dcgan(SkipDiscriminator(size, c, self.nz, self.width)),
        )
        self._norm: tuple[float, float] | None = None

    def _step(self, g: nn.Module, d: nn.Module, opt_g: Optimizer, opt_d: Optimizer) -> StepFn:
        g_params = list(g.parameters())

        def step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor | float]:
            # this rank's rows of the global batch's noise under torchrun (torch.randn_like otherwise)
            x_in = xb + self.noise_std * batch_randn(*xb.shape, dtype=xb.dtype, device=xb.device) if self.noise_std else xb
            x_hat = g(x_in)
            logit_real, f_real = d(xb)
            logit_fake, f_fake = d(x_hat)
            adv = g_loss_bce(logit_fake)
            con = (xb - x_hat).abs().mean()
            lat = feature_matching(f_real.detach(), f_fake)
            loss_g = self.w_adv * adv + self.w_con * con + self.w_lat * lat
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=g_params)
            opt_g.step()

            logit_fake_d, f_fake_d = d(x_hat.detach())
            loss_d = d_loss_bce(logit_real, logit_fake_d) + self.w_lat * feature_matching(f_real, f_fake_d)
            reinit = self._update_d(d, opt_d, loss_d)
            return {"g": loss_g, "g_adv": adv, "g_con": con, "g_lat": lat, "d": loss_d, "d_reinit": reinit}

        return step

    def _bn_passes(self, nets: nn.ModuleDict, xb: torch.Tensor, noise: torch.Generator) -> None:
        # a step runs G on its (noisy) input, then D on x, x_hat (G step) and x_hat (D step)
        if self.noise_std:
            xb_in = xb + self.noise_std * torch.randn(xb.shape, generator=noise, device=xb.device, dtype=xb.dtype)
        else:
            xb_in = xb
        x_hat = nets["g"](xb_in)
        for inp in (xb, x_hat, x_hat):
            nets["d"](inp)

    def _training_scores(self, x: np.ndarray) -> np.ndarray:
        # The min-max range is fitted here, on the training scores (never on a test
        # set), so that it follows ``lam`` when ``rescore_training`` re-runs it.
        self._norm = None
        raw = self._score_parts(x)["raw"]
        if self.score_norm == "minmax":
            self._norm = (float(raw.min()), float(raw.max()))
            return (raw - self._norm[0]) / max(self._norm[1] - self._norm[0], 1e-12)
        return raw

    def _parts(self, nets: nn.ModuleDict, x: torch.Tensor) -> dict[str, torch.Tensor]:
        g, d = nets["g"], nets["d"]
        x_hat = g(x)
        _, f_real = d(x)
        _, f_fake = d(x_hat)
        rec = (x - x_hat).pow(2).flatten(1).mean(1)
        feat = (f_real - f_fake).pow(2).mean(1)
        raw = self.lam * rec + (1.0 - self.lam) * feat
        score = raw
        if self._norm is not None:
            lo, hi = self._norm
            score = (raw - lo) / max(hi - lo, 1e-12)
        return {"reconstruction": rec, "feature": feat, "raw": raw, "score": score}

    def _extra_state(self) -> dict[str, Any]:
        if self._norm is None:
            return {}
        return {"score_min": torch.tensor(self._norm[0], dtype=torch.float64),
                "score_max": torch.tensor(self._norm[1], dtype=torch.float64)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if "score_min" in state:
            self._norm = (float(state["score_min"]), float(state["score_max"]))

    # map: the reconstruction term R per pixel, (x - G(x))^2 (channel mean)
    has_anomaly_map = True
    map_error = "l2"

    def _reconstruct_batch(self, batch: torch.Tensor) -> torch.Tensor:
        return self.nets_["g"](batch)
