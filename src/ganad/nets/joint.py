"""Nets of the BiGAN family (EGBAD, ALAD): encoders, generators and the
discriminators over pairs — (x, z), (x, x') and (z, z') — for image inputs.

Every discriminator returns ``(logits (N,), features (N, F))``; the features
are the layer the papers use for feature matching and for the anomaly score
(f_D of EGBAD, f_xz / f_xx / f_zz of ALAD).  Layer lists follow the authors'
reference code (houssamzenati/Efficient-GAN-Anomaly-Detection and
houssamzenati/Adversarially-Learned-Anomaly-Detection), generalised from the
reference sizes (28 px for EGBAD's MNIST nets, 32 px for ALAD's CIFAR-10
nets) to any power-of-two side >= 8 that
:func:`ganad.data.transforms.model_size` produces:

* ``ZenatiMNIST*`` (EGBAD ``bigan/mnist_utilities.py``): two stride-2 layers
  (side S -> S/4) whatever S is; LReLU slope 0.1; dropout 0.5 in D.  Widths
  scale with ``width`` w (reference w = 64): E 32/64/128 = w/2, w, 2w;
  G FC 1024 = 16w, then 2w x (S/4)^2, convT w, convT C; D x-path w, w,
  z-path 512 = 8w, joint 1024 = 16w.
* ``ALAD*`` / :class:`XZDiscriminator` / :class:`XXDiscriminator` /
  :class:`ZZDiscriminator` (ALAD ``alad/cifar10_utilities.py``): log2(S) - 2
  stride-2 layers down to 4x4 with widths w, 2w, 4w, ... (reference w = 128:
  128/256/512), LReLU slope 0.2, dropout 0.2; optional spectral norm (SN) on
  every layer but the final logit layers (and the encoder's last conv), as
  the reference's ``do_spectral_norm``.  SN is the parametrization API
  (``torch.nn.utils.parametrizations.spectral_norm``: one power iteration per
  training forward, persistent u, none in eval mode), which, unlike the hook
  API, lets fitted detectors be deep-copied.

Initialisation is done by the detectors with :func:`normal_init` (the
references' ``random_normal_initializer``: N(0, 0.02) for EGBAD, N(0, 0.01)
for ALAD; biases 0; BatchNorm gamma 1, beta 0 as TensorFlow's default).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from .dense_conv import HeadConv2d
from .init import _raw_weight
from .gemm_conv import Conv2d, ConvTranspose2d

_LINEAR_LIKE = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def _maybe_sn(layer: nn.Module, sn: bool) -> nn.Module:
    return _sn(layer) if sn else layer


def _check_side(size: int) -> int:
    if size < 8 or size & (size - 1):
        raise ValueError(f"BiGAN nets need a power-of-two image side >= 8; got {size}")
    return int(math.log2(size)) - 2  # stride-2 layers from size down to 4


@torch.no_grad()
def normal_init(net: nn.Module, std: float) -> nn.Module:
    """Conv/Linear weights ~ N(0, std) (through the raw weight of SN layers), biases 0;
    BatchNorm gamma 1, beta 0.  Returns ``net``."""
    for m in net.modules():
        if isinstance(m, _LINEAR_LIKE):
            nn.init.normal_(_raw_weight(m), 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


# ------------------------------------------------------------------ EGBAD (MNIST nets)
class ZenatiMNISTEncoder(nn.Module):
    """x (N, C, S, S) -> z (N, nz): conv 3/1/1 w/2 (no activation, as the reference),
    conv 3/2/1 w, BN, LReLU(0.1), conv 3/2/1 2w, BN, LReLU(0.1), flatten, FC nz."""

    def __init__(self, size: int, channels: int, nz: int, width: int = 64):
        super().__init__()
        _check_side(size)
        w1 = max(1, width // 2)
        self.body = nn.Sequential(
            Conv2d(channels, w1, 3, 1, 1),
            Conv2d(w1, width, 3, 2, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.1),
            Conv2d(width, 2 * width, 3, 2, 1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.1),
        )
        self.fc = nn.Linear(2 * width * (size // 4) ** 2, nz)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).flatten(1))


class ZenatiMNISTGenerator(nn.Module):
    """z (N, nz) -> x (N, C, S, S): FC 16w, BN, ReLU, FC 2w (S/4)^2, BN, ReLU,
    convT 4/2/1 w, BN, ReLU, convT 4/2/1 C, tanh."""

    def __init__(self, size: int, channels: int, nz: int, width: int = 64):
        super().__init__()
        _check_side(size)
        self.side, self.c0 = size // 4, 2 * width
        hidden = 16 * width
        self.fc = nn.Sequential(
            nn.Linear(nz, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, self.c0 * self.side**2), nn.BatchNorm1d(self.c0 * self.side**2), nn.ReLU(),
        )
        self.conv = nn.Sequential(
            ConvTranspose2d(self.c0, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv(self.fc(z.flatten(1)).view(len(z), self.c0, self.side, self.side))


class ZenatiMNISTDiscriminator(nn.Module):
    """(x, z) -> (logit, f): x-path conv 4/2/1 w, LReLU, drop, conv 4/2/1 w, BN, LReLU,
    drop; z-path FC 8w, LReLU, drop; joint FC 16w, LReLU, drop [f]; FC 1.
    LReLU slope 0.1, dropout 0.5 (EGBAD's D(x, z))."""

    def __init__(self, size: int, channels: int, nz: int, width: int = 64, dropout: float = 0.5):
        super().__init__()
        _check_side(size)
        self.x_path = nn.Sequential(
            Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.1), nn.Dropout(dropout),
            Conv2d(width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.1), nn.Dropout(dropout),
        )
        self.z_path = nn.Sequential(nn.Linear(nz, 8 * width), nn.LeakyReLU(0.1), nn.Dropout(dropout))
        joint_in = width * (size // 4) ** 2 + 8 * width
        self.joint = nn.Sequential(nn.Linear(joint_in, 16 * width), nn.LeakyReLU(0.1), nn.Dropout(dropout))
        self.head = nn.Linear(16 * width, 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.joint(torch.cat([self.x_path(x).flatten(1), self.z_path(z.flatten(1))], dim=1))
        return self.head(f).flatten(), f


# -------------------------------------------------------------------- ALAD (CIFAR nets)
class ALADEncoder(nn.Module):
    """x -> z: [conv 4/2/1 (SN), BN, LReLU(0.2)] down to 4x4 with widths w, 2w, ...,
    then conv 4/1/0 -> nz (no SN).  The BN follows every stride-2 conv, the first too."""

    def __init__(self, size: int, channels: int, nz: int, width: int = 128, sn: bool = True):
        super().__init__()
        n = _check_side(size)
        layers: list[nn.Module] = []
        c_in, c = channels, width
        for _ in range(n):
            layers += [_maybe_sn(Conv2d(c_in, c, 4, 2, 1), sn), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            c_in, c = c, 2 * c
        self.body = nn.Sequential(*layers)
        self.head = HeadConv2d(c_in, nz, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).flatten(1)


class XZDiscriminator(nn.Module):
    """ALAD's D_xz (and EGBAD's D for colour images): (x, z) -> (logit, f_xz).

    x-path: conv 4/2/1 w, LReLU(0.2) (no BN), then conv 4/2/1 doubling the
    width, BN, LReLU down to 4x4, flatten; z-path: 2 x [FC 4w, LReLU, drop];
    joint: FC 8w, LReLU, drop [f_xz]; FC 1 (no SN).  Reference widths at
    w = 128: 128/256/512, z 512, joint 1024; dropout 0.2.
    """

    def __init__(self, size: int, channels: int, nz: int, width: int = 128, sn: bool = True, dropout: float = 0.2):
        super().__init__()
        n = _check_side(size)
        layers: list[nn.Module] = [_maybe_sn(Conv2d(channels, width, 4, 2, 1), sn), nn.LeakyReLU(0.2)]
        c = width
        for _ in range(n - 1):
            layers += [_maybe_sn(Conv2d(c, 2 * c, 4, 2, 1), sn), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2)]
            c *= 2
        self.x_path = nn.Sequential(*layers)
        zw = 4 * width
        self.z_path = nn.Sequential(
            _maybe_sn(nn.Linear(nz, zw), sn), nn.LeakyReLU(0.2), nn.Dropout(dropout),
            _maybe_sn(nn.Linear(zw, zw), sn), nn.LeakyReLU(0.2), nn.Dropout(dropout),
        )
        self.joint = nn.Sequential(_maybe_sn(nn.Linear(c * 16 + zw, 8 * width), sn), nn.LeakyReLU(0.2), nn.Dropout(dropout))
        self.head = nn.Linear(8 * width, 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.joint(torch.cat([self.x_path(x).flatten(1), self.z_path(z.flatten(1))], dim=1))
        return self.head(f).flatten(), f


class XXDiscriminator(nn.Module):
    """ALAD's D_xx: (x, x') -> (logit, f_xx).

    ``concat="height"`` stacks x above x' (the reference's TF ``axis=1`` on
    NHWC: a (C, 2S, S) image); ``"channel"`` stacks them as 2C channels (a
    labelled variant).  Then conv 5/2/2 w/2, LReLU(0.2), drop; conv 5/2/2 w,
    LReLU, drop; flatten [f_xx]; FC 1 (no SN).  Reference at w = 128: 64, 128.
    """

    def __init__(self, size: int, channels: int, width: int = 128, sn: bool = True, dropout: float = 0.2, concat: str = "height"):
        super().__init__()
        _check_side(size)
        if concat not in ("height", "channel"):
            raise ValueError(f"concat must be 'height' or 'channel'; got {concat!r}")
        self.concat = concat
        c_in, h, w = (channels, 2 * size, size) if concat == "height" else (2 * channels, size, size)
        w1 = max(1, width // 2)
        self.body = nn.Sequential(
            _maybe_sn(Conv2d(c_in, w1, 5, 2, 2), sn), nn.LeakyReLU(0.2), nn.Dropout(dropout),
            _maybe_sn(Conv2d(w1, width, 5, 2, 2), sn), nn.LeakyReLU(0.2), nn.Dropout(dropout),
        )
        self.head = nn.Linear(width * (h // 4) * (w // 4), 1)

    def forward(self, x: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(torch.cat([x, x2], dim=2 if self.concat == "height" else 1)).flatten(1)
        return self.head(f).flatten(), f


class ZZDiscriminator(nn.Module):
    """ALAD's D_zz: (z, z') -> (logit, f_zz): concat, FC 64, LReLU(0.2), drop,
    FC 32, LReLU, drop [f_zz], FC 1 (no SN); dropout 0.2."""

    def __init__(self, nz: int, sn: bool = True, dropout: float = 0.2, widths: tuple[int, int] = (64, 32)):
        super().__init__()
        a, b = widths
        self.body = nn.Sequential(
            _maybe_sn(nn.Linear(2 * nz, a), sn), nn.LeakyReLU(0.2), nn.Dropout(dropout),
            _maybe_sn(nn.Linear(a, b), sn), nn.LeakyReLU(0.2), nn.Dropout(dropout),
        )
        self.head = nn.Linear(b, 1)

    def forward(self, z: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(torch.cat([z.flatten(1), z2.flatten(1)], dim=1))
        return self.head(f).flatten(), f


# ---------------------------------------------------------------- weight averaging
@torch.no_grad()
def ema_update(ema: nn.Module, live: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * live`` for parameters; buffers
    (BatchNorm running statistics, spectral-norm u/v) are copied, as
    TensorFlow's ``ExponentialMovingAverage`` getter averages trainable
    variables only.  Both modules must have been built identically."""
    for pe, pl in zip(ema.parameters(), live.parameters()):
        pe.lerp_(pl.detach(), 1.0 - decay)
    for be, bl in zip(ema.buffers(), live.buffers()):
        be.copy_(bl)


def ema_decay_at(decay: float, step: int) -> float:
    """TensorFlow's ``num_updates`` warm-up: min(decay, (1 + t) / (10 + t))."""
    return min(decay, (1.0 + step) / (10.0 + step))


__all__ = [
    "ALADEncoder",
    "XXDiscriminator",
    "XZDiscriminator",
    "ZZDiscriminator",
    "ZenatiMNISTDiscriminator",
    "ZenatiMNISTEncoder",
    "ZenatiMNISTGenerator",
    "ema_decay_at",
    "ema_update",
    "normal_init",
]
