"""DCGAN encoder and decoder for square images of side 8, 16, 32, 64, ... (Radford et al. 2016).

The layer plan is the one GANomaly's reference code uses (samet-akcay/ganomaly,
``lib/networks.py``) and that most of the papers share:

Encoder (32 -> 1): conv 4/2/1 C->w, LReLU(0.2) (no BN on the first layer);
then conv 4/2/1 doubling the width, BN, LReLU, until the map is 4x4; then
conv 4/1/0 -> ``out_dim`` (the latent code, or 1 logit for a
discriminator).  ``features(x)`` returns the last 4x4 map (feature matching).

Decoder (1 -> 32): convT 4/1/0 nz->w*2^k, BN, ReLU; convT 4/2/1 halving the
width, BN, ReLU, until side/2; convT 4/2/1 -> C, tanh.

No biases in convolutions followed by BatchNorm (they are cancelled by it).
The first decoder layer and the encoder head are dense layers in disguise and
run as one matmul (:mod:`ganad.nets.dense_conv`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from .dense_conv import HeadConv2d, ProjectionConvTranspose2d
from .gemm_conv import Conv2d, ConvTranspose2d


def _n_down(size: int) -> int:
    if size < 8 or size & (size - 1):
        raise ValueError(f"DCGAN nets need a power-of-two image side >= 8; got {size}")
    return int(math.log2(size)) - 2  # stride-2 layers from size down to 4


def _maybe_sn(layer: nn.Module, sn: bool) -> nn.Module:
    return _sn(layer) if sn else layer


class DCGANEncoder(nn.Module):
    """x (N, C, S, S) -> (N, out_dim); also used as discriminator with out_dim=1.

    norm: "batch" (DCGAN), "layer" (WGAN-GP critics must not use BatchNorm),
    or "none" (spectral-norm critics).  ``dropout`` is applied after every
    activation (Rafiee & Fevens use 0.2).
    """

    def __init__(
        self,
        size: int,
        channels: int,
        out_dim: int,
        width: int = 64,
        norm: str = "batch",
        sn: bool = False,
        dropout: float = 0.0,
        n_extra_layers: int = 0,
    ):
        super().__init__()
        n = _n_down(size)
        layers: list[nn.Module] = [
            _maybe_sn(Conv2d(channels, width, 4, 2, 1, bias=norm != "batch" or sn), sn),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        if dropout:
            layers.append(nn.Dropout(dropout))
        w, side = width, size // 2
        for _ in range(n_extra_layers):
            layers += [_maybe_sn(Conv2d(w, w, 3, 1, 1, bias=norm != "batch"), sn), *_norm(norm, w, side), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(n - 1):
            layers += [
                _maybe_sn(Conv2d(w, w * 2, 4, 2, 1, bias=norm != "batch"), sn),
                *_norm(norm, w * 2, side // 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            if dropout:
                layers.append(nn.Dropout(dropout))
            w, side = w * 2, side // 2
        self.body = nn.Sequential(*layers)
        self.head = _maybe_sn(HeadConv2d(w, out_dim, 4, bias=False), sn)
        self.feature_channels = w
        self.out_dim = out_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, w, 4, 4) map before the last convolution."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).flatten(1)


class DCGANDecoder(nn.Module):
    """z (N, nz) -> image (N, C, S, S) in [-1, 1]."""

    def __init__(self, size: int, channels: int, nz: int, width: int = 64, n_extra_layers: int = 0):
        super().__init__()
        n = _n_down(size)
        w = width * 2 ** (n - 1)
        layers: list[nn.Module] = [ProjectionConvTranspose2d(nz, w, 4, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [ConvTranspose2d(w, w // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(True)]
            w //= 2
        for _ in range(n_extra_layers):
            layers += [Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)]
        layers += [ConvTranspose2d(w, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.nz = nz

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(len(z), -1, 1, 1))


def _norm(kind: str, channels: int, side: int) -> list[nn.Module]:
    if kind == "batch":
        return [nn.BatchNorm2d(channels)]
    if kind == "layer":
        return [nn.LayerNorm([channels, side, side])]
    if kind == "none":
        return []
    raise ValueError(f"norm must be 'batch', 'layer' or 'none'; got {kind!r}")
