"""DCAE: deep convolutional autoencoder baseline (ADGAN paper, Deecke et al. 2018, section 4.2).

"For the DCAE we scored according to reconstruction losses, interpreting a
high loss as indicative of a new sample differing from samples seen during
training ... In both DCAEs and VAEs we use a convolutional architecture
similar to that of DCGAN, with batch normalization and ReLU activations in
each layer."  The paper gives no equations for it; with x in [-1, 1] and
x_hat = Dec(Enc(x)):

    training loss   L = 1/N sum_i mean_p (x_ip - x_hat_ip)^2          (MSE)
    score           A(x) = mean_p (x_p - x_hat_p)^2                     (per-sample reconstruction error)

``score_parts`` gives "reconstruction" (the per-sample MSE, the default
"score"), "l1" (mean |x - x_hat|, for comparison) and "standardized":
mean_p ((x_p - x_hat_p) / s_p)^2 with s_p the per-pixel standard deviation
of the *training* images plus 0.1 (saved with the model).  The standardised
error is our addition, not the paper's: it is the reconstruction error in the
units of each pixel's normal variation (as PyOD standardises its inputs), so
ink where normal images never have any weighs more.  ``score="standardized"``
makes it the score; the benchmark chooses between the two on the validation
split (measured effects: benchmarks/README.md, section DCAE).

Nets (DCGAN-like, section 4.2): encoder ``ConvEncoder``: conv 4/2/1 with
BatchNorm and ReLU in every layer, widths w, 2w, ... until the map is 4x4,
then conv 4/1/0 to the nz-dim code (no activation); decoder
:class:`ganad.nets.dcgan.DCGANDecoder` (convT, BN, ReLU, tanh output).
28x28 images are zero-padded to 32 (a power-of-two side); losses and scores are
taken over the original pixels only (the padding is constant and would only
dilute the mean).

No reference code is available (no public code of the ADGAN paper's DCAE
was found), so these are choices, not deviations: nz = 64, width 32 (DCGAN's 64
has ~4x the multiply-adds; pass ``width=64`` for the full-size nets), Adam
lr 1e-3 with betas (0.9, 0.999) (an autoencoder, not a GAN: DCGAN's beta1 =
0.5 is for the adversarial game), DCGAN weight init, 15 epochs, batch 64.  The
encoder uses ReLU rather than DCGAN's LeakyReLU because the paper says ReLU
"in each layer".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..nets.dcgan import DCGANDecoder, _n_down
from ..nets.dense_conv import HeadConv2d
from ..nets.init import init_dcgan
from ..params import SHARED, Options
from ..registry import register
from .torch_base import DCGANDetector, crop_to_input, module_dict
from ..nets.gemm_conv import Conv2d


class ConvEncoder(nn.Module):
    """x (N, C, S, S) -> (N, out_dim): DCGAN-like encoder with BatchNorm and ReLU in every layer.

    conv 4/2/1 C->w, BN, ReLU; conv 4/2/1 doubling the width, BN, ReLU, until
    4x4; conv 4/1/0 -> out_dim (linear output).  S is a power of two >= 8.
    """

    def __init__(self, size: int, channels: int, out_dim: int, width: int = 64):
        super().__init__()
        n = _n_down(size)
        layers: list[nn.Module] = []
        c, w = channels, width
        for i in range(n):
            layers += [Conv2d(c, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)]
            c, w = w, w * 2
        self.body = nn.Sequential(*layers)
        self.head = HeadConv2d(c, out_dim, 4, bias=True)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).flatten(1)


# Floor of the per-pixel scale in [-1, 1] units (0.05 of the [0, 1] range), so
# that pixels constant over the training images do not get infinite weight.
PIXEL_FLOOR = 0.1

class _AutoencoderBase(DCGANDetector):
    """Shared by DCAE and VAE: hyper-parameters, nets, optimiser, pixel scale, ``reconstruct``.

    Parameters
    ----------
    width : base channel count of the DCGAN-like encoder and decoder (doubled at each
        stride-2 layer; DCGAN's is 64).
    lr, beta1 : Adam(lr, (beta1, 0.999)) of the encoder and decoder (an autoencoder, not
        a GAN: beta1 0.9, not DCGAN's 0.5).
    weight_decay : Adam's (L2) weight decay (0 = none).
    """

    #: the encoder's outputs per latent dimension: 1 (DCAE: the code) or 2 (VAE: mean, log-variance)
    code_outputs = 1

    def __init__(self, nz: int, width: int, lr: float, beta1: float, weight_decay: float, **common: Any):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, **common)
        self.weight_decay = weight_decay

    _parameter_constraints = {"weight_decay": SHARED["weight_decay"]}

    def _build(self, input_shape: tuple[int, ...]) -> None:
        c, size = input_shape[0], self.image_size_
        self.nets_ = module_dict(
            encoder=init_dcgan(ConvEncoder(size, c, self.code_outputs * self.nz, self.width)),
            decoder=init_dcgan(DCGANDecoder(size, c, self.nz, self.width)),
        )

    def _optimizer(self) -> torch.optim.Optimizer:
        return self._adam(self.nets_, weight_decay=self.weight_decay)

    def _fit_pixel_scale(self, x: np.ndarray) -> None:
        """Per-pixel std of the training images (model units, [-1, 1]) plus PIXEL_FLOOR:
        the scale of the standardised scores, fitted on training data only and saved."""
        total = total_sq = None
        for batch in self._iter_batches(x):
            b = self._crop(batch).double()
            total = b.sum(0) if total is None else total + b.sum(0)
            total_sq = b.pow(2).sum(0) if total_sq is None else total_sq + b.pow(2).sum(0)
        mean = total / len(x)
        var = (total_sq / len(x) - mean.pow(2)).clamp_min(0.0)
        self.pixel_scale_ = (var.sqrt() + PIXEL_FLOOR).float()

    def _extra_state(self) -> dict[str, Any]:
        return {"pixel_scale": self.pixel_scale_}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.pixel_scale_ = state["pixel_scale"].to(self.device_)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.nets_["decoder"](z)

    def _code(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    has_anomaly_map = True

    def _reconstruct_batch(self, batch: torch.Tensor) -> torch.Tensor:
        return self._decode(self._code(batch))

    def reconstruct(self, X: Any) -> np.ndarray:
        """Reconstructions in [0, 1], shaped like the input images (N, C, H, W); eval mode."""
        return self._reconstructions(X)


@register("dcae")
class DCAE(_AutoencoderBase):
    """Deep convolutional autoencoder; score = per-sample mean squared reconstruction error.

    Parameters
    ----------
    nz : size of the code Enc(x).
    score : "mse" (mean (x - x_hat)^2) or "standardized" (the error in units of each
        pixel's standard deviation over the training images plus 0.1, see the module
        docstring); scoring only.
    """

    SCORES = ("mse", "standardized")
    score_params = ("score",)
    _parameter_constraints = {"score": [Options(SCORES)]}

    def __init__(
        self,
        nz: int = 64,
        width: int = 32,
        lr: float = 1e-3,
        beta1: float = 0.9,
        weight_decay: float = 0.0,
        score: str = "mse",
        **common: Any,
    ):
        super().__init__(nz=nz, width=width, lr=lr, beta1=beta1, weight_decay=weight_decay, **common)
        self.score = score

    def _code(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets_["encoder"](x)

    def _train(self, x: np.ndarray) -> None:
        opt = self._optimizer()
        self.nets_.train()

        def step(xb: torch.Tensor, _: int) -> dict[str, torch.Tensor]:
            x_hat = self._decode(self._code(xb))
            loss = (self._crop(xb) - self._crop(x_hat)).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return {"mse": loss}

        self._run_loop(step, x, {"opt": opt})
        self._fit_pixel_scale(x)

    def _score_batch(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        diff = self._crop(batch) - self._crop(self._decode(self._code(batch)))
        mse = diff.pow(2).flatten(1).mean(1)
        standardized = (diff / self.pixel_scale_).pow(2).flatten(1).mean(1)
        score = mse if self.score == "mse" else standardized
        return {"reconstruction": mse, "l1": diff.abs().flatten(1).mean(1), "standardized": standardized, "score": score}

    map_error = "l2"

    def _map_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """The score's per-pixel terms over the original pixels, channel mean: (x - x_hat)^2
        (``score="mse"``: its image mean is "reconstruction") or ((x - x_hat) / s_p)^2
        (``score="standardized"``)."""
        diff = self._crop(batch) - self._crop(self._reconstruct_batch(batch))
        if self.score == "standardized":
            diff = diff / self.pixel_scale_
        return diff.pow(2).mean(1)


__all__ = ["ConvEncoder", "DCAE", "crop_to_input"]
