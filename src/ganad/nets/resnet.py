"""Residual SNGAN nets (Miyato et al. 2018; Gulrajani et al. 2017 for the blocks).

* :class:`GenBlock`: BN -> ReLU -> upsample x2 -> conv3 -> BN -> ReLU -> conv3,
  plus a shortcut upsample -> conv1.
* :class:`DiscBlock`: [ReLU] -> conv3 -> ReLU -> conv3 -> [avgpool 2], plus a
  shortcut conv1 -> [avgpool]; the first block of a critic has no leading
  ReLU (the input is an image, not a feature map) and pools its shortcut
  before the conv (SNGAN's "optimized" block).
* :class:`ResNetGenerator`: z -> linear -> 4x4 map -> up-blocks to ``size`` ->
  BN, ReLU, conv3, tanh.
* :class:`ResNetCritic`: down-blocks to 8x8 (one when size is 8), two plain
  blocks, ReLU, global sum pooling, linear -> 1 logit.  No BatchNorm (SN or
  WGAN-GP critics must not use it); spectral norm optional (on by default).

The 32x32 sizes of the SNGAN CIFAR nets: generator width 256, critic 128;
the defaults here are smaller (128) to stay usable on a CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn


def _conv(i: int, o: int, k: int, sn: bool, bias: bool = True) -> nn.Module:
    layer = nn.Conv2d(i, o, k, 1, k // 2, bias=bias)
    return _sn(layer) if sn else layer


def _n_up(size: int) -> int:
    if size < 8 or size & (size - 1):
        raise ValueError(f"ResNet nets need a power-of-two image side >= 8; got {size}")
    return int(math.log2(size)) - 2


class GenBlock(nn.Module):
    """Generator up-block: (N, i, s, s) -> (N, o, 2s, 2s)."""

    def __init__(self, in_ch: int, out_ch: int, sn: bool = False):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(in_ch), nn.BatchNorm2d(out_ch)
        self.conv1 = _conv(in_ch, out_ch, 3, sn, bias=False)  # BN follows
        self.conv2 = _conv(out_ch, out_ch, 3, sn)
        self.skip = _conv(in_ch, out_ch, 1, sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class DiscBlock(nn.Module):
    """Critic block: (N, i, s, s) -> (N, o, s/2, s/2) when ``down`` else (N, o, s, s)."""

    def __init__(self, in_ch: int, out_ch: int, down: bool = True, first: bool = False, sn: bool = True):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = _conv(in_ch, out_ch, 3, sn)
        self.conv2 = _conv(out_ch, out_ch, 3, sn)
        # identity shortcut when shapes already agree (SNGAN's plain blocks)
        self.skip = _conv(in_ch, out_ch, 1, sn) if (in_ch != out_ch or down) else None

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip is None:
            return x
        if self.first:  # pool first: cheaper and what SNGAN's optimized block does
            return self.skip(F.avg_pool2d(x, 2) if self.down else x)
        x = self.skip(x)
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        return h + self._shortcut(x)


class ResNetGenerator(nn.Module):
    """z (N, nz) -> image (N, C, size, size) in [-1, 1]."""

    def __init__(self, size: int, channels: int, nz: int, width: int = 128, sn: bool = False):
        super().__init__()
        self.nz, self.width = nz, width
        self.fc = nn.Linear(nz, 4 * 4 * width)
        self.blocks = nn.Sequential(*[GenBlock(width, width, sn) for _ in range(_n_up(size))])
        self.bn = nn.BatchNorm2d(width)
        self.out = _conv(width, channels, 3, sn)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z.flatten(1)).view(len(z), self.width, 4, 4)
        return torch.tanh(self.out(F.relu(self.bn(self.blocks(h)))))


class ResNetCritic(nn.Module):
    """image (N, C, size, size) -> one logit (N, 1); ``features`` -> (N, width)."""

    def __init__(self, size: int, channels: int, width: int = 128, sn: bool = True):
        super().__init__()
        n_down = max(1, _n_up(size) - 1)  # down to 8x8 (32 -> 16 -> 8)
        blocks: list[nn.Module] = [DiscBlock(channels, width, down=True, first=True, sn=sn)]
        blocks += [DiscBlock(width, width, down=True, sn=sn) for _ in range(n_down - 1)]
        blocks += [DiscBlock(width, width, down=False, sn=sn) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, 1)
        if sn:
            self.head = _sn(self.head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling as in SNGAN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
