"""LeNet-type nets without bias terms for Deep SVDD (Ruff et al., ICML 2018), plus the
mirrored decoders used for autoencoder pretraining (as the reference code,
lukasruff/Deep-SVDD-PyTorch).

Deep SVDD needs a network phi that cannot map every input to the centre c
for free (Ruff et al. 2018 show that a constant output is reachable if the
net has bias terms or bounded activations).  So
every convolution and linear layer here has ``bias=False`` and every
BatchNorm has ``affine=False`` (no learnt shift), with eps 1e-4 as in the
reference code.

Encoder (``LeNetEncoder``), one stage per entry of ``widths``:
    conv 5/1/2 -> BN -> LeakyReLU(0.01) -> maxpool 2,
then a linear layer to ``rep_dim``.  Presets (``LENET_PRESETS``):

* ``"mnist"`` (28 px, 1 channel): widths (8, 4), rep_dim 32 ->
  28 -> 14 -> 7, FC 196 -> 32;
* ``"cifar"`` (32 px, 3 channels): widths (32, 64, 128), rep_dim 128 ->
  32 -> 16 -> 8 -> 4, FC 2048 -> 128; its autoencoder adds an affine-free
  BatchNorm1d after the FC (kept in the decoder here, so the SVDD net is the
  encoder alone, exactly the weights the reference copies over).

Any input side divisible by 2**len(widths) works (the 8x8 scikit-learn
digits with the MNIST preset: 8 -> 4 -> 2, FC 16 -> 32).

Decoder (``LeNetDecoder``), the mirror: the code is reshaped to
(rep_dim/16, 4, 4), LeakyReLU, then per stage (deepest first) a nearest
upsampling to the side the matching encoder stage had, convT 5/1/2, BN,
LeakyReLU; a last upsampling to the input side, convT 5/1/2 to the image
channels and a sigmoid (the preprocessed inputs lie in about [0, 1]).

Deviations from the reference code (lukasruff/Deep-SVDD-PyTorch), and why:

* One generic decoder instead of two hand-written ones.  For the CIFAR preset
  it is layer for layer the reference decoder.  For MNIST the reference goes
  4 -> 8 -> 16 -> (padding 3) 14 -> 28; here 4 -> 7 -> 14 -> 28, i.e. the
  intermediate maps have the encoder's sides (7, 14) instead of (8, 14).
  Same layers, widths and kernel sizes; it also works for other input sides.
* Initialisation: the CIFAR preset uses Xavier-uniform with the LeakyReLU
  gain as the reference; the MNIST preset keeps PyTorch's default, as the
  reference does.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-4
SLOPE = 0.01  # LeakyReLU's default slope, as in the reference

LENET_PRESETS: dict[str, dict[str, Any]] = {
    "mnist": {"widths": (8, 4), "rep_dim": 32, "ae_bn1d": False, "xavier": False},
    "cifar": {"widths": (32, 64, 128), "rep_dim": 128, "ae_bn1d": True, "xavier": True},
}


def _checked_size(size: int | Sequence[int], widths: Sequence[int], rep_dim: int) -> tuple[int, int]:
    """``size`` as (H, W), checked with ``widths`` and ``rep_dim``: the one geometry check
    of the encoder and of its mirrored decoder, which must accept the same settings."""
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    k = len(widths)
    if k < 1 or any(int(w) < 1 for w in widths):
        raise ValueError(f"widths must be a non-empty list of positive integers; got {widths!r}")
    if hw[0] % 2**k or hw[1] % 2**k or min(hw) < 2**k:
        raise ValueError(f"LeNet with {k} pooling stages needs an input side divisible by {2**k}; got {hw}")
    if rep_dim < 1:
        raise ValueError(f"rep_dim must be a positive integer; got {rep_dim!r}")
    return hw


def xavier_lrelu_init(net: nn.Module) -> nn.Module:
    """Xavier-uniform weights with the LeakyReLU gain (the reference's CIFAR init)."""
    gain = nn.init.calculate_gain("leaky_relu")
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight, gain=gain)
    return net


class LeNetEncoder(nn.Module):
    """x (N, C, H, W) -> phi(x) (N, rep_dim); no biases, affine-free BatchNorm."""

    def __init__(
        self,
        channels: int,
        size: int | Sequence[int],
        widths: Sequence[int] = (8, 4),
        rep_dim: int = 32,
    ):
        super().__init__()
        hw = _checked_size(size, widths, rep_dim)
        layers: list[nn.Module] = []
        c = channels
        for w in widths:
            layers += [
                nn.Conv2d(c, int(w), 5, 1, 2, bias=False),
                nn.BatchNorm2d(int(w), eps=BN_EPS, affine=False),
                nn.LeakyReLU(SLOPE),
                nn.MaxPool2d(2, 2),
            ]
            c = int(w)
        self.body = nn.Sequential(*layers)
        k = len(widths)
        self.feature_shape = (c, hw[0] // 2**k, hw[1] // 2**k)
        self.fc = nn.Linear(c * self.feature_shape[1] * self.feature_shape[2], rep_dim, bias=False)
        self.rep_dim = rep_dim
        self.input_size = hw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).flatten(1))


class LeNetDecoder(nn.Module):
    """phi (N, rep_dim) -> image (N, C, H, W) in (0, 1); mirrors :class:`LeNetEncoder`."""

    def __init__(
        self,
        channels: int,
        size: int | Sequence[int],
        widths: Sequence[int] = (8, 4),
        rep_dim: int = 32,
        bn1d: bool = False,
    ):
        super().__init__()
        hw = _checked_size(size, widths, rep_dim)
        if rep_dim % 16:
            raise ValueError(
                f"the LeNet decoder reshapes the code to (rep_dim/16, 4, 4): rep_dim must be a multiple of 16; got {rep_dim}"
            )
        k = len(widths)
        self.rep_dim = rep_dim
        self.bn1d = nn.BatchNorm1d(rep_dim, eps=BN_EPS, affine=False) if bn1d else nn.Identity()
        # sides the upsampling steps go to: the deepest encoder map first, the input last
        self.sides = [(hw[0] // 2**i, hw[1] // 2**i) for i in range(k, -1, -1)]
        ws = [int(w) for w in widths]
        ins = [rep_dim // 16] + ws[::-1]  # stage inputs: code channels, then the widths deepest first
        outs = ws[::-1] + [channels]
        stages: list[nn.Module] = []
        for i, (ci, co) in enumerate(zip(ins, outs)):
            last = i == len(ins) - 1
            stage: list[nn.Module] = [nn.ConvTranspose2d(ci, co, 5, 1, 2, bias=False)]
            if not last:
                stage += [nn.BatchNorm2d(co, eps=BN_EPS, affine=False), nn.LeakyReLU(SLOPE)]
            stages.append(nn.Sequential(*stage))
        self.stages = nn.ModuleList(stages)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.bn1d(z), SLOPE).reshape(len(z), self.rep_dim // 16, 4, 4)
        for side, stage in zip(self.sides, self.stages):
            if tuple(h.shape[-2:]) != side:
                h = F.interpolate(h, size=side, mode="nearest")
            h = stage(h)
        return torch.sigmoid(h)


def lenet_pair(
    preset: str, channels: int, size: int | Sequence[int], rep_dim: int | None = None
) -> tuple[LeNetEncoder, LeNetDecoder]:
    """Encoder and mirrored decoder of a preset ("mnist" or "cifar"), initialised as the reference."""
    if preset not in LENET_PRESETS:
        raise ValueError(f"LeNet preset must be one of {sorted(LENET_PRESETS)}; got {preset!r}")
    p = LENET_PRESETS[preset]
    rd = p["rep_dim"] if rep_dim is None else int(rep_dim)
    enc = LeNetEncoder(channels, size, p["widths"], rd)
    dec = LeNetDecoder(channels, size, p["widths"], rd, bn1d=p["ae_bn1d"])
    if p["xavier"]:
        xavier_lrelu_init(enc)
        xavier_lrelu_init(dec)
    return enc, dec


def has_bias(net: nn.Module) -> bool:
    """True if any layer of ``net`` has an additive bias (a learnt BN shift counts)."""
    return any(isinstance(getattr(m, "bias", None), torch.Tensor) for m in net.modules())


__all__ = ["LENET_PRESETS", "LeNetDecoder", "LeNetEncoder", "has_bias", "lenet_pair", "xavier_lrelu_init"]
