"""The SNGAN ResNet generator and critic of 32x32 images (Miyato et al. 2018), as AMA uses them.

Somepalli et al. (UAI 2021, section 4.1) borrow "the generator and the
discriminator architectures" of Spectral Normalization GAN; these are those
nets at 32 px, built from the residual blocks of :mod:`ganad.nets.resnet`:

* :class:`SNGANGenerator`: z (N, nz) -> Linear -> (width, 4, 4) -> up-blocks
  to ``size`` (three at 32 px, width 256 -> 256), each BN -> ReLU -> nearest
  x2 -> conv3 -> BN -> ReLU -> conv3 with a shortcut nearest x2 -> conv1;
  then BN -> ReLU -> conv3 -> C -> tanh.  No spectral norm.
* :class:`SNGANDiscriminator`: the "optimized" first block (conv3 -> ReLU ->
  conv3 -> avgpool 2; shortcut avgpool -> conv1), one down-block (ReLU ->
  conv3 -> ReLU -> conv3 -> avgpool; shortcut conv1 -> avgpool), two plain
  blocks with identity shortcuts, ReLU, a **sum** over H, W (the features
  phi, ``width`` of them) and a bias-free Linear -> 1.  Spectral norm (one
  power iteration per training forward, torch's parametrisation API) on every
  conv and on the linear head; no BatchNorm (a WGAN-GP critic must not mix
  samples).  ``in_channels`` is 2C for AMA's mirrored critic on (x, y) pairs.

Sides: any power of two >= 8; the generator has log2(size) - 2 up-blocks and
the critic always two down-blocks (32 -> 8x8 features as in SNGAN; 8 -> 2x2).

Initialisation as the SNGAN code AMA's repository uses: Xavier-uniform with
gain sqrt(2) for the blocks' 3x3 convs, gain 1 for the 1x1 shortcuts, the
generator's input linear and output conv and the critic's head; biases 0
(the raw weights are initialised before spectral norm is attached).  The
first generator conv of each block has no bias (BatchNorm follows it and
would cancel it).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .resnet import DiscBlock, GenBlock

_LINEAR_LIKE = (nn.Conv2d, nn.Linear)


def _check_size(size: int) -> int:
    if size < 8 or size & (size - 1):
        raise ValueError(f"the SNGAN nets need a power-of-two image side >= 8; got {size}")
    return int(math.log2(size)) - 2


@torch.no_grad()
def _xavier(module: nn.Module, gain: float) -> None:
    nn.init.xavier_uniform_(module.weight, gain=gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _init_block(block: nn.Module) -> None:
    _xavier(block.conv1, math.sqrt(2.0))
    _xavier(block.conv2, math.sqrt(2.0))
    if block.skip is not None:
        _xavier(block.skip, 1.0)


class SNGANGenerator(nn.Module):
    """z (N, nz) -> image (N, channels, size, size) in [-1, 1]."""

    def __init__(self, size: int, channels: int, nz: int = 128, width: int = 256):
        super().__init__()
        n_up = _check_size(size)
        self.nz, self.width = nz, width
        self.fc = nn.Linear(nz, 4 * 4 * width)
        self.blocks = nn.Sequential(*[GenBlock(width, width, sn=False) for _ in range(n_up)])
        self.bn = nn.BatchNorm2d(width)
        self.out = nn.Conv2d(width, channels, 3, 1, 1)
        _xavier(self.fc, 1.0)
        for b in self.blocks:
            _init_block(b)
        _xavier(self.out, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.fc(z.flatten(1)).view(len(z), self.width, 4, 4))
        return torch.tanh(self.out(torch.relu(self.bn(h))))


class SNGANDiscriminator(nn.Module):
    """(N, in_channels, size, size) -> critic value (N,); ``features`` -> phi (N, width)."""

    def __init__(self, size: int, in_channels: int, width: int = 128, sn: bool = True):
        super().__init__()
        _check_size(size)
        self.in_channels, self.width = in_channels, width
        self.blocks = nn.Sequential(
            DiscBlock(in_channels, width, down=True, first=True, sn=False),
            DiscBlock(width, width, down=True, sn=False),
            DiscBlock(width, width, down=False, sn=False),
            DiscBlock(width, width, down=False, sn=False),
        )
        self.head = nn.Linear(width, 1, bias=False)
        for b in self.blocks:
            _init_block(b)
        _xavier(self.head, 1.0)
        if sn:  # after the init: the power iteration starts from the initialised weights
            for m in list(self.modules()):
                if isinstance(m, _LINEAR_LIKE):
                    spectral_norm(m)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi: ReLU of the last block, summed over H and W."""
        return torch.relu(self.blocks(x)).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()


__all__ = ["SNGANDiscriminator", "SNGANGenerator"]
