"""Fully connected nets for tabular data (N, D): encoder, decoder, discriminator.

Small MLPs for feature vectors: ``depth`` hidden layers of ``width`` units,
LeakyReLU(0.2), optional BatchNorm, dropout and spectral normalisation (SN,
as ALAD's discriminators).  No registered model builds them (the EGBAD and
ALAD detectors are image-only); :func:`ganad.latent_search.adgan_search`
supports them as generators.  Layers in front of BatchNorm have
no bias (BatchNorm cancels it).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn


def _linear(i: int, o: int, *, bias: bool, sn: bool) -> nn.Module:
    layer = nn.Linear(i, o, bias=bias)
    return _sn(layer) if sn else layer


def _hidden_stack(
    in_dim: int, width: int, depth: int, *, slope: float, norm: str, sn: bool, dropout: float
) -> tuple[nn.Sequential, int]:
    if norm not in ("none", "batch", "layer"):
        raise ValueError(f"norm must be 'none', 'batch' or 'layer'; got {norm!r}")
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers.append(_linear(d, width, bias=norm != "batch", sn=sn))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(width))
        elif norm == "layer":
            layers.append(nn.LayerNorm(width))
        layers.append(nn.LeakyReLU(slope))
        if dropout:
            layers.append(nn.Dropout(dropout))
        d = width
    return nn.Sequential(*layers), d


class MLP(nn.Module):
    """(N, in_dim) -> (N, out_dim): ``depth`` hidden layers, then a linear head.

    ``out_act`` is applied to the head's output: ``None`` (logits, codes,
    standardised features), ``"tanh"`` or ``"sigmoid"``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width: int = 64,
        depth: int = 2,
        *,
        slope: float = 0.2,
        norm: str = "none",
        sn: bool = False,
        dropout: float = 0.0,
        out_act: str | None = None,
    ):
        super().__init__()
        self.body, d = _hidden_stack(in_dim, width, depth, slope=slope, norm=norm, sn=sn, dropout=dropout)
        self.head = _linear(d, out_dim, bias=True, sn=sn)
        acts = {None: nn.Identity(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid()}
        if out_act not in acts:
            raise ValueError(f"out_act must be None, 'tanh' or 'sigmoid'; got {out_act!r}")
        self.out_act = acts[out_act]
        self.in_dim, self.out_dim, self.feature_dim = in_dim, out_dim, d

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (feature matching, discrimination scores)."""
        return self.body(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_act(self.head(self.features(x)))


class MLPEncoder(MLP):
    """x (N, D) -> z (N, nz)."""

    def __init__(self, in_dim: int, nz: int, width: int = 64, depth: int = 2, **kw):
        super().__init__(in_dim, nz, width, depth, **kw)


class MLPDecoder(MLP):
    """z (N, nz) -> x (N, D); no output activation by default (standardised features)."""

    def __init__(self, nz: int, out_dim: int, width: int = 64, depth: int = 2, **kw):
        super().__init__(nz, out_dim, width, depth, **kw)


class MLPDiscriminator(nn.Module):
    """x (N, D) [and z (N, nz) for BiGAN-style joint critics] -> one logit (N, 1).

    With ``z_dim > 0`` the critic takes ``(x, z)`` and concatenates them,
    so ``losses.gradient_penalty`` can interpolate both.  ``kw``: the hidden
    layers' ``slope``, ``norm``, ``sn`` and ``dropout``, as for :class:`MLP`.
    """

    def __init__(self, in_dim: int, width: int = 64, depth: int = 2, *, z_dim: int = 0, **kw: Any):
        super().__init__()
        self.z_dim = z_dim
        self.net = MLP(in_dim + z_dim, 1, width, depth, out_act=None, **kw)  # a logit (out_act in kw: TypeError)

    def _join(self, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        x = x.flatten(1)
        if self.z_dim:
            if z is None:
                raise ValueError("this discriminator was built with z_dim > 0: call it with (x, z)")
            x = torch.cat([x, z.flatten(1)], dim=1)
        return x

    def features(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.features(self._join(x, z))

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self._join(x, z))
