"""Pixel transforms in numpy/torch (no torchvision): scaling, padding, resizing.

Images are kept as uint8 (or float in [0, 1]) in memory and turned into
float tensors in [-1, 1] (the tanh range of every generator) one batch at a
time, by :func:`to_model_input`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import as_nchw, to_unit_float


def model_size(h: int, w: int) -> int:
    """Side the nets work at: the next power of two >= max(h, w), at least 8.

    28x28 MNIST-like images are zero-padded to 32x32, as the nets that halve
    the side per layer need a power of two.
    """
    side = max(h, w, 8)
    return 1 << (side - 1).bit_length()


def to_model_input(
    x: np.ndarray, device: torch.device | str = "cpu", size: int | None = None
) -> torch.Tensor:
    """A batch of images (uint8 or float [0, 1]) -> float32 tensor in [-1, 1] of side ``size``.

    Images smaller than ``size`` are padded with the background value -1
    (black), centred; larger ones are resized with bilinear interpolation.
    """
    x = as_nchw(x)
    t = torch.from_numpy(to_unit_float(np.ascontiguousarray(x))).to(device, non_blocking=True)
    return unit_to_model(t, size)


def unit_to_model(t: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """The tensor part of :func:`to_model_input`: float images in [0, 1] (N, C, H, W) -> [-1, 1]
    at side ``size`` (also what an exported ONNX graph computes, :mod:`ganad.export`)."""
    t = t * 2.0 - 1.0
    if size is None:
        return t
    h, w = t.shape[-2:]
    if h == size and w == size:
        return t
    if h <= size and w <= size:
        top, left = (size - h) // 2, (size - w) // 2
        return F.pad(t, (left, size - w - left, top, size - h - top), value=-1.0)
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)


def from_model_output(t: torch.Tensor, h: int, w: int) -> np.ndarray:
    """Inverse of :func:`to_model_input` for display: crop/resize back, [-1, 1] -> [0, 1]."""
    size = t.shape[-1]
    if size >= h and size >= w:
        top, left = (size - h) // 2, (size - w) // 2
        t = t[..., top : top + h, left : left + w]
    else:  # pragma: no cover - only when the nets downsampled
        t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    return ((t.clamp(-1, 1) + 1) / 2).detach().cpu().numpy()


def resize(x: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize images (N, H, W) or (N, C, H, W) to ``size``; uint8 stays uint8."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    squeeze = x.ndim == 3
    xs = as_nchw(x)
    t = torch.from_numpy(to_unit_float(xs))
    t = F.interpolate(t, size=hw, mode="bilinear", align_corners=False, antialias=True)
    out = t.clamp(0, 1).numpy()
    if x.dtype == np.uint8:
        out = np.round(out * 255).astype(np.uint8)
    return out[:, 0] if squeeze else out


def match_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Grayscale <-> RGB: replicate one channel, or average three (luma weights)."""
    xs = as_nchw(x)
    c = xs.shape[1]
    if c == channels:
        return xs
    if c == 1:
        return np.repeat(xs, channels, axis=1)
    if c == 3 and channels == 1:
        w = np.array([0.299, 0.587, 0.114], dtype=np.float32)[None, :, None, None]
        gray = (to_unit_float(xs) * w).sum(axis=1, keepdims=True)
        return np.round(gray * 255).astype(np.uint8) if xs.dtype == np.uint8 else gray
    raise ValueError(f"cannot convert {c} channels to {channels}")
