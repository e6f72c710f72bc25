"""GANomaly (Akcay, Atapour-Abarghouei & Breckon, ACCV 2018) and Skip-GANomaly (IJCNN 2019).

GANomaly (METHODS.md 4a).  G = E1 -> Dec -> E2 (DCGAN nets, separate
weights): z = E1(x), x_hat = Dec(z), z_hat = E2(x_hat).  D is a DCGAN encoder
with one logit; f(.) is its last 4x4 feature map.  Per batch, a G step then
a D step (Adam 2e-4, betas (0.5, 0.999)):

    L_adv = mean (f(x) - f(x_hat))^2          (feature matching, paper eq. 1)
    L_con = mean |x - x_hat|                  (paper eq. 2)
    L_enc = mean (z - z_hat)^2                (paper eq. 3)
    L_G   = w_adv L_adv + w_con L_con + w_enc L_enc,   w = (1, 50, 1)
    L_D   = 1/2 [BCE(D(x), 1) + BCE(D(x_hat), 0)]; D is re-initialised when L_D < 1e-5
    score A(x) = mean over nz of (z - z_hat)^2                     (paper eq. 4)

Skip-GANomaly (METHODS.md 4b).  G is a U-Net (pix2pix layout, log2(size)
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
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from ..losses import d_loss_bce, feature_matching, g_loss_bce
from ..nets.dcgan import DCGANDecoder, DCGANEncoder
from ..nets.unet import SkipDiscriminator, UNetGenerator
from ..nets.init import dcgan_init, init_dcgan
from ..registry import register
from ..train import History
from .torch_base import TorchDetector, make_optimizer, module_dict

_BN_MODES = ("eval", "legacy_train")
D_REINIT_BELOW = 1e-5  # the reference restarts D when its loss falls below this


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
class _GANomalyBase(TorchDetector):
    """Shared hyper-parameters, optimisers and the legacy BatchNorm scoring mode."""

    def __init__(
        self,
        nz: int = 100,
        width: int = 64,
        lr: float = 2e-4,
        beta1: float = 0.5,
        bn_mode: str = "eval",
        **common: Any,
    ):
        super().__init__(**common)
        self.nz = nz
        self.width = width
        self.lr = lr
        self.beta1 = beta1
        self.bn_mode = bn_mode

    def _check_params(self) -> None:
        super()._check_params()
        for name in ("nz", "width"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if self.bn_mode not in _BN_MODES:
            raise ValueError(f"bn_mode must be one of {_BN_MODES}; got {self.bn_mode!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a positive number; got {self.lr!r}")

    def _optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        betas = (self.beta1, 0.999)
        return (make_optimizer(self.nets_["g"].parameters(), self.lr, betas),
                make_optimizer(self.nets_["d"].parameters(), self.lr, betas))

    def _fit_loop(self, step: Any, x: np.ndarray, opt_g: Any, opt_d: Any) -> History:
        return self._run_loop(step, x, {"opt_g": opt_g, "opt_d": opt_d})

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
        **common: Any,
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, bn_mode=bn_mode, **common)
        self.w_adv = w_adv
        self.w_con = w_con
        self.w_enc = w_enc

    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        self.nets_ = module_dict(
            g=init_dcgan(GANomalyGenerator(size, c, self.nz, self.width)),
            d=init_dcgan(DCGANEncoder(size, c, 1, self.width)),  # the reference builds D from ngf too
        )

    def _train(self, x: np.ndarray) -> None:
        g, d = self.nets_["g"], self.nets_["d"]
        opt_g, opt_d = self._optimizers()
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
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            reinit = float(loss_d.item() < D_REINIT_BELOW)  # D won outright: restart it, as the reference does
            if reinit:
                d.apply(dcgan_init)
            return {"g": loss_g, "g_adv": adv, "g_con": con, "g_enc": enc, "d": loss_d, "d_reinit": reinit}

        self._fit_loop(step, x, opt_g, opt_d)

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
        g = self.nets_["g"]

        def latent(batch: torch.Tensor) -> torch.Tensor:
            _, z, z_hat = g(batch)
            return (z - z_hat).pow(2).mean(1)

        return self._batched(x, latent)


@register("skipganomaly")
class SkipGANomaly(_GANomalyBase):
    """Skip-GANomaly: score = lam * mean (x - x_hat)^2 + (1 - lam) * mean (f(x) - f(x_hat))^2.

    ``score_norm="minmax"`` scales it by the training scores' min and max
    (monotone, so rankings and AUROC are unchanged).  ``score_parts`` gives
    "reconstruction", "feature" (the paper's latent score L(x)), "raw" and "score".
    ``lam`` only changes scoring (``score_params``): a benchmark grid over it shares one fit.
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
        **common: Any,
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, bn_mode=bn_mode, **common)
        self.w_adv = w_adv
        self.w_con = w_con
        self.w_lat = w_lat
        self.lam = lam
        self.noise_std = noise_std
        self.score_norm = score_norm

    def _check_params(self) -> None:
        super()._check_params()
        if self.score_norm not in ("minmax", "none"):
            raise ValueError(f"score_norm must be 'minmax' or 'none'; got {self.score_norm!r}")
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1]; got {self.lam!r}")

    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        self.nets_ = module_dict(
            g=init_dcgan(UNetGenerator(size, c, self.width)),
            d=init_dcgan(SkipDiscriminator(size, c, self.nz, self.width)),
        )
        self._norm: tuple[float, float] | None = None

    def _train(self, x: np.ndarray) -> None:
        g, d = self.nets_["g"], self.nets_["d"]
        opt_g, opt_d = self._optimizers()
        g_params = list(g.parameters())

        def step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor | float]:
            x_in = xb + self.noise_std * torch.randn_like(xb) if self.noise_std else xb
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
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            reinit = float(loss_d.item() < D_REINIT_BELOW)
            if reinit:
                d.apply(dcgan_init)
            return {"g": loss_g, "g_adv": adv, "g_con": con, "g_lat": lat, "d": loss_d, "d_reinit": reinit}

        self._fit_loop(step, x, opt_g, opt_d)

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
