"""Progressive-growing GAN nets and their growth schedule (Karras, Aila, Laine & Lehtinen, ICLR 2018).

The "paper" nets of the progressive GAN (PGGAN), the generator and critic
Berg et al. 2019 use unchanged (section 3.1), and their encoder, the critic's
trunk with a latent head (section 3, after ClusterGAN).  Sides 4, 8, 16, ...,
``size``; level k = 0 .. K (K = log2(size) - 2) works at 4 * 2^k px.  Channels
at level k: nf(k + 1) with nf(s) = min(16 * width / 2^s, width), PGGAN's
min(8192 / 2^s, 512) for width = 512 (512 channels at every level up to 32 px).

* **Equalised learning rate**: every weight is drawn from N(0, 1) and scaled at
  run time by He's constant gain / sqrt(fan_in) (gain sqrt(2); the toRGB
  layers and the critic's output layer gain 1; the generator's first dense
  layer sqrt(2) / 4, as PGGAN); biases start at 0.
* **Generator** z (N, nz) -> pixel norm -> dense nz -> 16 nf(1) -> (nf(1), 4, 4),
  LReLU(0.2), PN -> conv3, LReLU, PN; then per level: nearest upsample x2 ->
  conv3, LReLU, PN -> conv3, LReLU, PN.  toRGB: conv1 -> C with a **linear**
  output (no tanh).  PN is pixel norm, x / sqrt(mean_c x^2 + 1e-8).  The
  upsample + conv3 runs as PGGAN's fused transposed convolution (the same
  function, :class:`EqualizedConv2d`).
* **Critic** fromRGB: conv1 C -> nf, LReLU; per level: conv3, LReLU, conv3,
  average pool 2 (PGGAN's fused conv + downscale), LReLU; at
  4x4: minibatch standard deviation (group 4), conv3, LReLU, dense -> nf(0),
  LReLU, dense -> 1.
* **Encoder**: the critic's layers **without** the minibatch standard
  deviation layer and without the output layer; the hidden dense layer gives
  nz values, LReLU (the reference encoder's output ``z_n``).  With the stddev layer (as the reference
  has it) an image's code would depend on the other images of its batch.

**Fade-in** (PGGAN section 3).  While level k fades in with weight alpha in
[0, 1): the generator's image is lerp(up2(toRGB_{k-1}(h_{k-1})), toRGB_k(h_k),
alpha); the critic's (and encoder's) level-(k-1) activations are
lerp(fromRGB_{k-1}(pool2(x)), block_k(fromRGB_k(x)), alpha); real images are
shown as lerp(up2(pool2(x_k)), x_k, alpha), x_k the batch average-pooled to
the level's side (:func:`real_at_level`).  The nets take and give images at
the level's side; PGGAN's nets work at full size and rescale inside, the same
numbers (nearest upsampling then average pooling is the identity).

**Schedule** (:func:`growth_schedule`, :func:`level_at`): as PGGAN's
``TrainingSchedule``, in images shown: ``images_per_stage`` images stable at
4 px, then for each larger side ``images_per_stage`` images of fade-in (alpha
ramps linearly from 0) and ``images_per_stage`` stable; the last side stays
stable until training ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_SQRT2 = math.sqrt(2.0)


def _levels(size: int) -> int:
    if size < 4 or size & (size - 1):
        raise ValueError(f"progressive nets need a power-of-two image side >= 4; got {size}")
    return int(math.log2(size)) - 2


def channels_at(width: int, stage: int) -> int:
    """PGGAN's nf(stage) = min(fmap_base / 2^stage, fmap_max) with fmap_base = 16 * width, fmap_max = width."""
    return max(1, min((16 * width) >> stage, width))


# ------------------------------------------------------------------ layers
class EqualizedConv2d(nn.Module):
    """Conv k x k, 'same' padding, with PGGAN's run-time He scaling of N(0, 1) weights.

    ``resample="up"``: nearest upsampling x2 then the conv; ``"down"``: the conv then
    average pooling 2.  Both run as PGGAN's fused forms (``upscale2d_conv2d``,
    ``conv2d_downscale2d``: a stride-2 transposed / plain conv with the 3x3 kernel
    padded and summed over its four 2x2 shifts), the same function at about half the
    cost of the two operations at the larger side.
    """

    def __init__(self, c_in: int, c_out: int, k: int, gain: float = _SQRT2, resample: str | None = None):
        super().__init__()
        if resample not in (None, "up", "down") or (resample is not None and k != 3):
            raise ValueError(f"resample must be None, 'up' or 'down' (with k = 3); got {resample!r}, k = {k}")
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = gain / math.sqrt(c_in * k * k)
        self.padding = k // 2
        self.resample = resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        if self.resample is None:
            return F.conv2d(x, w, self.bias, padding=self.padding)
        w = F.pad(w, (1, 1, 1, 1))
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
        if self.resample == "up":  # = conv(upsample(x), weight)
            return F.conv_transpose2d(x, w.flip(2, 3).transpose(0, 1), self.bias, stride=2, padding=1)
        return F.conv2d(x, w * 0.25, self.bias, stride=2, padding=1)  # = avg_pool2(conv(x, weight))


class EqualizedLinear(nn.Module):
    """Dense layer with PGGAN's run-time He scaling of N(0, 1) weights."""

    def __init__(self, d_in: int, d_out: int, gain: float = _SQRT2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(d_out))
        self.scale = gain / math.sqrt(d_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean over channels of x^2 + eps), per sample and pixel (dim 1 = channels)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class MinibatchStddev(nn.Module):
    """PGGAN's minibatch standard deviation: one feature map with the mean (over channels and
    pixels) of the per-group standard deviation, appended to the input.

    Sample i belongs to group i mod (N / g), as PGGAN's reshape; g is the largest size
    <= ``group`` that divides the batch (PGGAN requires divisibility).  Computed in fp32.
    """

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = int(group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group, n)
        while n % g:
            g -= 1
        y = x.float().reshape(g, n // g, c, h, w)
        y = (y - y.mean(0, keepdim=True)).pow(2).mean(0).add(1e-8).sqrt().mean(dim=(1, 2, 3))
        y = y.to(x.dtype).reshape(n // g, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


def upsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upsampling by an integer factor (PGGAN's ``upscale2d``)."""
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def downsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Box-filter downsampling by an integer factor (PGGAN's ``downscale2d``)."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


# --------------------------------------------------------------- networks
class ProgressiveGenerator(nn.Module):
    """z (N, nz) -> image (N, C, r, r) at level side r = ``resolution`` (fade weight ``alpha``)."""

    def __init__(self, size: int, channels: int, nz: int = 512, width: int = 512):
        super().__init__()
        self.size, self.nz, self.n_levels = size, nz, _levels(size) + 1
        c0 = channels_at(width, 1)
        self.c0 = c0
        self.dense = EqualizedLinear(nz, 16 * c0, gain=_SQRT2 / 4)
        self.conv4 = EqualizedConv2d(c0, c0, 3)
        self.blocks = nn.ModuleList()
        for k in range(1, self.n_levels):
            c_in, c_out = channels_at(width, k), channels_at(width, k + 1)
            self.blocks.append(
                nn.ModuleList([EqualizedConv2d(c_in, c_out, 3, resample="up"), EqualizedConv2d(c_out, c_out, 3)])
            )
        self.to_rgb = nn.ModuleList(
            [EqualizedConv2d(channels_at(width, k + 1), channels, 1, gain=1.0) for k in range(self.n_levels)]
        )

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        level = _levels(self.size if resolution is None else int(resolution))
        if level >= self.n_levels:
            raise ValueError(f"resolution {resolution} is above the generator's {self.size}")
        h = pixel_norm(z.flatten(1))
        h = pixel_norm(_lrelu(self.dense(h).view(len(z), self.c0, 4, 4)))
        h = pixel_norm(_lrelu(self.conv4(h)))
        prev = h
        for conv_a, conv_b in self.blocks[:level]:
            prev = h
            h = pixel_norm(_lrelu(conv_a(h)))  # upsample x2 + conv3
            h = pixel_norm(_lrelu(conv_b(h)))
        img = self.to_rgb[level](h)
        if level > 0 and alpha < 1.0:
            img = torch.lerp(upsample(self.to_rgb[level - 1](prev)), img, float(alpha))
        return img


class ProgressiveCritic(nn.Module):
    """image (N, C, r, r) at a level side r -> (N, out_dim) (critic: ``out_dim=1``, flattened to (N,)).

    ``features(x, alpha)`` is the 4x4 map entering the minibatch-stddev layer,
    flattened: the last features that depend on the image alone.
    """

    def __init__(self, size: int, channels: int, width: int = 512, stddev_group: int = 4, out_dim: int = 1):
        super().__init__()
        self.size, self.n_levels = size, _levels(size) + 1
        c0 = channels_at(width, 1)
        self.from_rgb = nn.ModuleList(
            [EqualizedConv2d(channels, channels_at(width, k + 1), 1) for k in range(self.n_levels)]
        )
        self.blocks = nn.ModuleList([nn.Identity()])  # level 0 has no down-block
        for k in range(1, self.n_levels):
            c_in, c_out = channels_at(width, k + 1), channels_at(width, k)
            self.blocks.append(
                nn.ModuleList([EqualizedConv2d(c_in, c_in, 3), EqualizedConv2d(c_in, c_out, 3, resample="down")])
            )
        self.stddev = MinibatchStddev(stddev_group) if stddev_group > 1 else None
        self.conv4 = EqualizedConv2d(c0 + (1 if self.stddev is not None else 0), c0, 3)
        self.feature_dim = 16 * c0
        self.out_dim = out_dim
        self._head(width, out_dim)

    def _head(self, width: int, out_dim: int) -> None:
        self.dense0 = EqualizedLinear(self.feature_dim, channels_at(width, 0))
        self.dense1 = EqualizedLinear(channels_at(width, 0), out_dim, gain=1.0)

    def features(self, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        level = _levels(x.shape[-1])
        if level >= self.n_levels:
            raise ValueError(f"a {x.shape[-1]} px input is above the net's {self.size}")
        h = _lrelu(self.from_rgb[level](x))
        for k in range(level, 0, -1):
            conv_a, conv_b = self.blocks[k]
            h = _lrelu(conv_b(_lrelu(conv_a(h))))  # conv3 + average pool 2
            if k == level and alpha < 1.0:
                h = torch.lerp(_lrelu(self.from_rgb[k - 1](downsample(x))), h, float(alpha))
        return h.flatten(1)

    def _trunk(self, x: torch.Tensor, alpha: float) -> torch.Tensor:
        h = self.features(x, alpha).view(len(x), -1, 4, 4)
        if self.stddev is not None:
            h = self.stddev(h)
        return _lrelu(self.dense0(_lrelu(self.conv4(h)).flatten(1)))

    def forward(self, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        out = self.dense1(self._trunk(x, alpha))
        return out.flatten() if self.out_dim == 1 else out


class ProgressiveEncoder(ProgressiveCritic):
    """image (N, C, r, r) -> z (N, nz): the critic's layers without the minibatch-stddev
    layer (codes independent of batch mates), dense -> nz, LReLU(0.2)."""

    def __init__(self, size: int, channels: int, nz: int = 512, width: int = 512):
        super().__init__(size, channels, width, stddev_group=0, out_dim=nz)

    def _head(self, width: int, out_dim: int) -> None:
        self.dense0 = EqualizedLinear(self.feature_dim, out_dim)

    def forward(self, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        return self._trunk(x, alpha)


# ----------------------------------------------------------------- schedule
@dataclass(frozen=True)
class Stage:
    """One side of the growth: ``fade_images`` shown while it fades in, then ``stable_images``
    (None: until training ends, the last stage)."""

    resolution: int
    fade_images: int
    stable_images: int | None


@dataclass(frozen=True)
class Level:
    """Where training is: ``phase`` counts the fade and stable phases from 0 (4 px stable)."""

    phase: int
    stage: int
    resolution: int
    alpha: float


def growth_schedule(size: int, images_per_stage: int) -> tuple[Stage, ...]:
    """PGGAN's schedule to ``size`` px: 4 px stable, then fade + stable per doubling; the last stage open."""
    n = _levels(size) + 1
    if images_per_stage < 1:
        raise ValueError(f"images_per_stage must be >= 1; got {images_per_stage}")
    i = int(images_per_stage)
    return tuple(Stage(4 << k, 0 if k == 0 else i, None if k == n - 1 else i) for k in range(n))


def level_at(schedule: Sequence[Stage], images: int) -> Level:
    """The level after ``images`` images shown: stage, side, fade weight alpha and phase index."""
    seen, phase = int(images), 0
    for k, st in enumerate(schedule):
        if st.fade_images:
            if seen < st.fade_images:
                return Level(phase, k, st.resolution, seen / st.fade_images)
            seen -= st.fade_images
            phase += 1
        if st.stable_images is None or seen < st.stable_images:
            return Level(phase, k, st.resolution, 1.0)
        seen -= st.stable_images
        phase += 1
    last = schedule[-1]  # only reached by a schedule whose last stage is closed
    return Level(phase - 1, len(schedule) - 1, last.resolution, 1.0)


def real_at_level(x: torch.Tensor, resolution: int, alpha: float = 1.0) -> torch.Tensor:
    """Full-size real images -> the level's side (box filter), blended during a fade-in with
    their half-side version upsampled back: lerp(up2(pool2(x_r)), x_r, alpha) (PGGAN's ``process_reals``)."""
    xr = downsample(x, x.shape[-1] // int(resolution))
    if alpha < 1.0 and resolution > 4:
        xr = torch.lerp(upsample(downsample(xr)), xr, float(alpha))
    return xr


__all__ = [
    "EqualizedConv2d",
    "EqualizedLinear",
    "Level",
    "MinibatchStddev",
    "ProgressiveCritic",
    "ProgressiveEncoder",
    "ProgressiveGenerator",
    "Stage",
    "channels_at",
    "downsample",
    "growth_schedule",
    "level_at",
    "pixel_norm",
    "real_at_level",
    "upsample",
]
