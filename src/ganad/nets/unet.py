"""Skip-GANomaly's nets (Akcay et al. 2019): the pix2pix U-Net generator and the
DCGAN discriminator that also returns its features."""

from __future__ import annotations

import math

import torch
from torch import nn

from .dcgan import DCGANEncoder
from .gemm_conv import Conv2d, ConvTranspose2d


class UNetGenerator(nn.Module):
    """pix2pix U-Net with log2(size) levels (5 at 32 px), channels w*min(2^i, 8).

    Down: conv 4/2/1 (first: no activation before, no norm; then LReLU(0.2),
    conv, BN; innermost: no BN).  Up: ReLU, convT 4/2/1 on [skip, up] (doubled
    channels), BN; outermost ReLU, convT -> C (with bias), tanh.
    """

    def __init__(self, size: int, channels: int, width: int = 64):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"the U-Net needs a power-of-two image side >= 8; got {size}")
        n = int(math.log2(size))
        ch = [width * min(2**i, 8) for i in range(n)]
        down: list[nn.Module] = [Conv2d(channels, ch[0], 4, 2, 1, bias=False)]
        for i in range(1, n):
            layers = [nn.LeakyReLU(0.2), Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=False)]
            if i < n - 1:
                layers.append(nn.BatchNorm2d(ch[i]))
            down.append(nn.Sequential(*layers))
        up: list[nn.Module] = [nn.Sequential(nn.ReLU(), ConvTranspose2d(2 * ch[0], channels, 4, 2, 1), nn.Tanh())]
        for i in range(1, n):
            c_in = ch[i] if i == n - 1 else 2 * ch[i]  # innermost has no skip to concatenate
            up.append(nn.Sequential(nn.ReLU(), ConvTranspose2d(c_in, ch[i - 1], 4, 2, 1, bias=False), nn.BatchNorm2d(ch[i - 1])))
        self.down, self.up = nn.ModuleList(down), nn.ModuleList(up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        h = self.up[-1](skips[-1])
        for i in range(len(self.up) - 2, -1, -1):
            h = self.up[i](torch.cat([skips[i], h], dim=1))
        return h


class SkipDiscriminator(nn.Module):
    """x -> (logit (N,), f (N, nz)): DCGAN encoder to a 1x1 nz-map, then conv 3/1/1 -> 1."""

    def __init__(self, size: int, channels: int, nz: int, width: int = 64):
        super().__init__()
        self.encoder = DCGANEncoder(size, channels, nz, width)
        self.classifier = Conv2d(nz, 1, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.encoder.head(self.encoder.body(x))  # (N, nz, 1, 1), no activation
        return self.classifier(f).flatten(), f.flatten(1)


__all__ = ["SkipDiscriminator", "UNetGenerator"]
