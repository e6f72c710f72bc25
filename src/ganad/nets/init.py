"""Weight initialisation shared by the GAN nets (Radford et al. 2016, DCGAN).

Use ``net.apply(dcgan_init)`` (or :func:`init_dcgan`, which returns the net):

* Conv / ConvTranspose / Linear weights ~ N(0, 0.02), biases = 0;
* BatchNorm gamma ~ N(1, 0.02), beta = 0.

GANomaly and Skip-GANomaly's reference code use exactly this (samet-akcay/ganomaly
and samet-akcay/skip-ganomaly).
Spectral-normalised layers are initialised through their raw weight
(``weight_orig`` for ``torch.nn.utils.spectral_norm``, ``original`` for the
parametrisation API): writing ``.weight`` there would be overwritten by the
next forward pass.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

_LINEAR_LIKE = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)


def _raw_weight(module: nn.Module) -> torch.Tensor:
    if hasattr(module, "weight_orig"):  # torch.nn.utils.spectral_norm (hook API)
        return module.weight_orig
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """Initialise one module in place; meant for ``net.apply(dcgan_init)``."""
    if isinstance(module, _LINEAR_LIKE):
        nn.init.normal_(_raw_weight(module), 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def init_dcgan(net: nn.Module) -> nn.Module:
    """``net.apply(dcgan_init)``; returns ``net`` for chaining."""
    return net.apply(dcgan_init)
