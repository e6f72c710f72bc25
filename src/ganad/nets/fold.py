"""Fold eval-mode BatchNorm into the convolution before it, for scoring.

In eval mode BatchNorm is an affine map per channel, y = (x - mean) / sqrt(var +
eps) * gamma + beta, so a convolution followed by it is one convolution with
scaled weights and a bias.  :func:`fold_batchnorm` returns a copy of a net in
which every ``Conv2d`` / ``ConvTranspose2d`` directly followed by a
``BatchNorm2d`` inside an ``nn.Sequential`` carries the BatchNorm and the
BatchNorm is an ``nn.Identity``; everything else (parametrised layers such as
spectral-norm convolutions, BatchNorm without running statistics, a BatchNorm
not preceded by a convolution) is copied unchanged.  The copy computes the same
function up to rounding; scoring in bf16 uses it (one pass over each feature map
less), fp32 scoring keeps the nets as trained.
"""

from __future__ import annotations

import copy
import weakref
from typing import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        isinstance(conv, _CONVS) and type(bn) is nn.BatchNorm2d and conv.groups == 1
        and not parametrize.is_parametrized(conv) and not parametrize.is_parametrized(bn)
        and bn.running_mean is not None and bn.running_var is not None
        and bn.num_features == conv.out_channels and not bn.training
    )


@torch.no_grad()
def _fold_into(conv: nn.Module, bn: nn.BatchNorm2d) -> None:
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.affine:
        scale = scale * bn.weight
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    shift = (bias - bn.running_mean) * scale + (bn.bias if bn.affine else 0.0)
    # Conv2d weights are (out, in, k, k); ConvTranspose2d's (in, out, k, k)
    shape = (-1, 1, 1, 1) if isinstance(conv, nn.Conv2d) else (1, -1, 1, 1)
    conv.weight.copy_(conv.weight * scale.reshape(shape))
    conv.bias = nn.Parameter(shift.to(conv.weight.dtype), requires_grad=False)


def _foldable_pairs(module: nn.Module) -> Iterator[tuple[nn.Sequential, str, nn.Module, nn.Module]]:
    """(sequential, the BatchNorm's name, conv, BatchNorm) for every foldable neighbour pair."""
    for seq in module.modules():
        if isinstance(seq, nn.Sequential):
            items = list(seq._modules.items())
            for (_, conv), (name, bn) in zip(items, items[1:]):
                if conv is not None and bn is not None and _foldable(conv, bn):
                    yield seq, name, conv, bn


def fold_batchnorm(module: nn.Module) -> tuple[nn.Module, int]:
    """(a copy of ``module`` with eval-mode BatchNorm folded into the preceding convs, the number folded)."""
    out = copy.deepcopy(module).eval()
    pairs = list(_foldable_pairs(out))  # found before any BatchNorm is replaced
    for seq, name, conv, bn in pairs:
        _fold_into(conv, bn)
        seq._modules[name] = nn.Identity()
    return out, len(pairs)


def has_foldable(module: nn.Module) -> bool:
    """Whether ``module`` is in eval mode and :func:`fold_batchnorm` would fold anything (no copy)."""
    return all(not m.training for m in module.modules()) and next(_foldable_pairs(module), None) is not None


# module -> (the versions of its tensors when folded, the folded copy); weak, so a
# discarded net takes its copy with it
_FOLDED: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], nn.Module]]" = weakref.WeakKeyDictionary()


def _versions(module: nn.Module) -> tuple[int, ...]:
    # an optimiser step, a load_state_dict or a BatchNorm statistics update bumps a tensor's
    # version; a move to another device or layout gives it new storage
    return tuple(v for t in (*module.parameters(), *module.buffers()) for v in (t.data_ptr(), t._version))


def folded_for_scoring(module: nn.Module) -> nn.Module | None:
    """The folded copy of an eval-mode net, reused while its weights and statistics are unchanged;
    None when it has nothing to fold."""
    if not has_foldable(module):
        return None
    key = _versions(module)
    hit = _FOLDED.get(module)
    if hit is not None and hit[0] == key:
        return hit[1]
    folded, _ = fold_batchnorm(module)
    folded.requires_grad_(False)
    _FOLDED[module] = (key, folded)
    return folded


__all__ = ["fold_batchnorm", "folded_for_scoring", "has_foldable"]
