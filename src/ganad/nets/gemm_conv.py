"""The backward pass of small strided convolutions as matrix products, for bf16 training on a CPU.

Under CPU bf16 autocast, oneDNN computes the gradients of the DCGAN family's
4x4 stride-2 convolutions well below the matmul rate of the same CPU when the
smaller map is 4x4, while its forward pass is fast there.  So only the backward
is replaced: the weight gradient as one GEMM of the output gradient with the
input's patches (im2col), the input gradient as one GEMM and col2im (summed in
fp32), both on the AMX matmul kernels.  ``python benchmarks/conv_kernels.py``
measures it per layer (one thread, batch 64, forward + backward; stored in
``benchmarks/results/conv-kernels.jsonl``, variant "bf16 autocast, ganad
layers"); on the idle machine at a388881: 128 -> 256 of an 8x8 map 18.4 ->
10.7 ms, 256 -> 128 transposed of a 4x4 map 18.8 -> 16.4 ms, 256 -> 512 89.0 ->
43.4 ms, 512 -> 256 transposed 98.5 -> 44.5 ms.

:class:`Conv2d` and :class:`ConvTranspose2d` are drop-in subclasses of
``nn.Conv2d`` / ``nn.ConvTranspose2d`` (same parameters, state-dict keys,
initialisation and parametrisations such as spectral norm).  They take this
path only inside a CPU ``torch.autocast`` with dtype bf16 when a gradient is
needed, for a strided (stride >= 2), ungrouped, undilated, zero-padded layer
whose smaller map has at most :data:`SMALL_MAP_PIXELS` pixels; fp32, scoring,
CUDA and every other layer run the convolution unchanged, so fp32 results do
not move.  The gradients are those of the oneDNN bf16 convolution up to bf16
rounding (tested).  GANomaly at width 64 has four such layers; the 512-channel
levels of wider nets gain most.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _im2col(xp: torch.Tensor, k: tuple[int, int], s: tuple[int, int], out: tuple[int, int]) -> torch.Tensor:
    """Padded NHWC ``xp`` -> (N * oh * ow, kh * kw * C) patches, columns in (ki, kj, c) order."""
    n, _, _, c = xp.shape
    sn, sh, sw, sc = xp.stride()
    view = xp.as_strided((n, out[0], out[1], k[0], k[1], c), (sn, s[0] * sh, s[1] * sw, sh, sw, sc))
    return view.reshape(n * out[0] * out[1], k[0] * k[1] * c)


def _col2im(cols: torch.Tensor, n: int, grid: tuple[int, int], k: tuple[int, int], s: tuple[int, int],
            padded: tuple[int, int], c: int) -> torch.Tensor:
    """The adjoint of :func:`_im2col`: (N * gh * gw, kh * kw * C) -> the padded NHWC fp32 sum."""
    g = cols.view(n, grid[0], grid[1], k[0], k[1], c)
    out = torch.zeros(n, padded[0], padded[1], c, dtype=torch.float32, device=cols.device)
    span_h, span_w = s[0] * (grid[0] - 1) + 1, s[1] * (grid[1] - 1) + 1
    for ki in range(k[0]):
        for kj in range(k[1]):
            out[:, ki:ki + span_h:s[0], kj:kj + span_w:s[1], :] += g[:, :, :, ki, kj, :]
    return out


def _nhwc_pad(x: torch.Tensor, p: tuple[int, int]) -> torch.Tensor:
    return F.pad(x.permute(0, 2, 3, 1), (0, 0, p[1], p[1], p[0], p[0]))


class _GemmConv(torch.autograd.Function):
    """oneDNN's forward; the backward as two GEMMs on the input's patches and col2im."""

    @staticmethod
    def forward(ctx, x, w, k, s, p):  # type: ignore[override]
        ctx.save_for_backward(x, w)
        ctx.meta = (k, s, p)
        return F.conv2d(x, w, None, s, p)

    @staticmethod
    def backward(ctx, gy):  # type: ignore[override]
        x, w = ctx.saved_tensors
        k, s, p = ctx.meta
        n, c, h, wd = x.shape
        out = tuple(gy.shape[-2:])
        cols = _im2col(_nhwc_pad(x, p), k, s, out)
        wm = w.permute(0, 2, 3, 1).reshape(len(w), -1)
        g = gy.permute(0, 2, 3, 1).reshape(-1, len(w))
        gw = (g.t() @ cols).view(len(w), k[0], k[1], c).permute(0, 3, 1, 2)
        gp = _col2im(g @ wm, n, out, k, s, (h + 2 * p[0], wd + 2 * p[1]), c)
        gx = gp[:, p[0]:p[0] + h, p[1]:p[1] + wd, :].to(gy.dtype).permute(0, 3, 1, 2)
        return gx, gw, None, None, None


class _GemmConvTranspose(torch.autograd.Function):
    """oneDNN's forward; the backward as two GEMMs on the output gradient's patches."""

    @staticmethod
    def forward(ctx, x, w, k, s, p):  # type: ignore[override]
        ctx.save_for_backward(x, w)
        ctx.meta = (k, s, p)
        return F.conv_transpose2d(x, w, None, s, p)

    @staticmethod
    def backward(ctx, gy):  # type: ignore[override]
        x, w = ctx.saved_tensors
        k, s, p = ctx.meta
        n, cin, h, wd = x.shape
        cout = w.shape[1]
        xl = x.permute(0, 2, 3, 1).reshape(-1, cin)
        wt = w.permute(0, 2, 3, 1).reshape(cin, -1)
        gcols = _im2col(_nhwc_pad(gy, p), k, s, (h, wd))
        gx = (gcols @ wt.t()).view(n, h, wd, cin).permute(0, 3, 1, 2)
        gw = (xl.t() @ gcols).view(cin, k[0], k[1], cout).permute(0, 3, 1, 2)
        return gx, gw, None, None, None


def _bf16_cpu_training(x: torch.Tensor, layer: nn.Module) -> bool:
    """CPU bf16 autocast with a gradient to compute (scoring keeps oneDNN: its forward is faster)."""
    return (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_grad_enabled()
            and (x.requires_grad or any(p.requires_grad for p in layer.parameters())))


# the GEMM path is taken when the layer's smaller map (a convolution's output, a transposed
# convolution's input) has at most this many pixels: at 8x8 oneDNN's backward is as fast or
# faster (an earlier, all-GEMM version of this path, unstored: 128 -> 64 transposed of an 8x8
# map 11.0 vs 16.4 ms; 64 -> 128 of a 16x16 map 10.1 vs 15.0 ms, oneDNN first)
SMALL_MAP_PIXELS = 16


def _gemm_shape(layer: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor) -> bool:
    if not (x.dim() == 4 and layer.groups == 1 and tuple(layer.dilation) == (1, 1) and min(layer.stride) >= 2
            and layer.padding_mode == "zeros" and not isinstance(layer.padding, str)):
        return False
    h, w = x.shape[-2:]
    if isinstance(layer, nn.Conv2d):  # the output is the smaller map
        (kh, kw), (sh, sw), (ph, pw) = _pair(layer.kernel_size), _pair(layer.stride), _pair(layer.padding)
        h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    return h * w <= SMALL_MAP_PIXELS


def _with_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return y if bias is None else y + bias.to(y.dtype).view(1, -1, 1, 1)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d``; in CPU bf16 training, small-map strided layers compute their gradients as GEMMs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (_bf16_cpu_training(x, self) and _gemm_shape(self, x)):
            return super().forward(x)
        xb, wb = x.to(torch.bfloat16), self.weight.to(torch.bfloat16)
        with torch.autocast("cpu", enabled=False):
            y = _GemmConv.apply(xb, wb, _pair(self.kernel_size), _pair(self.stride), _pair(self.padding))
            return _with_bias(y, self.bias)


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d``; in CPU bf16 training, small-map strided layers compute their gradients as GEMMs."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or tuple(self.output_padding) != (0, 0) or not (_bf16_cpu_training(x, self) and _gemm_shape(self, x)):
            return super().forward(x, output_size)
        xb, wb = x.to(torch.bfloat16), self.weight.to(torch.bfloat16)
        with torch.autocast("cpu", enabled=False):
            y = _GemmConvTranspose.apply(xb, wb, _pair(self.kernel_size), _pair(self.stride), _pair(self.padding))
            return _with_bias(y, self.bias)
