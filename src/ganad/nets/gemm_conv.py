"""Strided convolutions as one matrix product when they run in bf16 on a CPU.

Under CPU bf16 autocast, oneDNN runs the DCGAN family's 4x4 stride-2
convolutions well below the matmul rate of the same CPU when the maps are
small: on this project's CPU (one thread, batch 64, forward + backward), a
128 -> 256 convolution of an 8x8 map took as long in bf16 as in fp32, and the
256 -> 128 transposed convolution of a 4x4 map longer (unstored
microbenchmarks; ``benchmarks/results/conv-kernels.jsonl`` stores the
per-layer rates).  Written as im2col + one GEMM (forward) and two GEMMs + col2im
(backward), the same layers use the AMX matmul kernels.

:class:`Conv2d` and :class:`ConvTranspose2d` are drop-in subclasses of
``nn.Conv2d`` / ``nn.ConvTranspose2d`` (same parameters, state-dict keys,
initialisation and parametrisations such as spectral norm).  They take the
GEMM path only inside a CPU ``torch.autocast`` with dtype bf16, for a strided
(stride >= 2), ungrouped, undilated, zero-padded layer whose smaller map has
at most :data:`SMALL_MAP_PIXELS` pixels (where oneDNN is slow); fp32 runs, CUDA
and every other layer go through the convolution unchanged, so fp32 results
do not move.  The GEMM path computes the convolution's sums in another order:
bf16 operands with fp32 accumulation inside each product, and the col2im sum
(at most ceil(k / s)^2 terms per pixel) in fp32 before the bf16 result, equal
to the oneDNN bf16 convolution up to bf16 rounding (tested).  In a whole
GANomaly training step at width 64 only the 8x8 <-> 4x4 layers take it, and
the step gains little (see README's speed section); wider nets (the papers'
512-channel levels) gain most.
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


def _channels_last(n: int, c: int, hw: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty((n, c, hw[0], hw[1]), dtype=dtype, memory_format=torch.channels_last)


def _nhwc_pad(x: torch.Tensor, p: tuple[int, int]) -> torch.Tensor:
    return F.pad(x.permute(0, 2, 3, 1), (0, 0, p[1], p[1], p[0], p[0]))


class _GemmConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, k, s, p):  # type: ignore[override]
        n, c, h, wd = x.shape
        out = ((h + 2 * p[0] - k[0]) // s[0] + 1, (wd + 2 * p[1] - k[1]) // s[1] + 1)
        cols = _im2col(_nhwc_pad(x, p), k, s, out)
        wm = w.permute(0, 2, 3, 1).reshape(len(w), -1)
        ctx.save_for_backward(cols, wm)
        ctx.meta = (n, c, h, wd, out, k, s, p)
        y = _channels_last(n, len(w), out, x.dtype)  # not a view: later layers may work in place
        torch.mm(cols, wm.t(), out=y.permute(0, 2, 3, 1).view(-1, len(w)))
        return y

    @staticmethod
    def backward(ctx, gy):  # type: ignore[override]
        cols, wm = ctx.saved_tensors
        n, c, h, wd, out, k, s, p = ctx.meta
        g = gy.permute(0, 2, 3, 1).reshape(-1, len(wm))
        gw = (g.t() @ cols).view(len(wm), k[0], k[1], c).permute(0, 3, 1, 2)
        gp = _col2im(g @ wm, n, out, k, s, (h + 2 * p[0], wd + 2 * p[1]), c)
        gx = gp[:, p[0]:p[0] + h, p[1]:p[1] + wd, :].to(gy.dtype).permute(0, 3, 1, 2)
        return gx, gw, None, None, None


class _GemmConvTranspose(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, k, s, p):  # type: ignore[override]
        n, cin, h, wd = x.shape
        cout = w.shape[1]
        out = ((h - 1) * s[0] - 2 * p[0] + k[0], (wd - 1) * s[1] - 2 * p[1] + k[1])
        xl = x.permute(0, 2, 3, 1).reshape(-1, cin)
        wt = w.permute(0, 2, 3, 1).reshape(cin, -1)
        yp = _col2im(xl @ wt, n, (h, wd), k, s, (out[0] + 2 * p[0], out[1] + 2 * p[1]), cout)
        yp = yp[:, p[0]:p[0] + out[0], p[1]:p[1] + out[1], :]
        ctx.save_for_backward(xl, wt)
        ctx.meta = (n, cin, h, wd, k, s, p, cout)
        y = _channels_last(n, cout, out, x.dtype)
        y.permute(0, 2, 3, 1).copy_(yp)
        return y

    @staticmethod
    def backward(ctx, gy):  # type: ignore[override]
        xl, wt = ctx.saved_tensors
        n, cin, h, wd, k, s, p, cout = ctx.meta
        gcols = _im2col(_nhwc_pad(gy, p), k, s, (h, wd))
        gx = (gcols @ wt.t()).view(n, h, wd, cin).permute(0, 3, 1, 2)
        gw = (xl.t() @ gcols).view(cin, k[0], k[1], cout).permute(0, 3, 1, 2)
        return gx, gw, None, None, None


def _bf16_cpu(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16)


# the GEMM path is taken when the layer's smaller map (a convolution's output, a transposed
# convolution's input) has at most this many pixels: measured on this project's CPU (one thread,
# batch 64, forward + backward, bf16), at 4x4 the GEMM path took 10.0 vs 18.3 ms (256 -> 128
# transposed), 37 vs 90 ms (256 -> 512 of an 8x8 map), 33.6 vs 96.8 ms (512 -> 256 transposed),
# while at 8x8 oneDNN was faster (128 -> 64 transposed: 11.0 vs 16.4 ms; 64 -> 128 of a 16x16
# map: 10.1 vs 15.0 ms); unstored microbenchmarks, best of 12
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
    """``nn.Conv2d``; strided layers under CPU bf16 autocast run as im2col + GEMM."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (_bf16_cpu(x) and _gemm_shape(self, x)):
            return super().forward(x)
        xb, wb = x.to(torch.bfloat16), self.weight.to(torch.bfloat16)
        with torch.autocast("cpu", enabled=False):
            y = _GemmConv.apply(xb, wb, _pair(self.kernel_size), _pair(self.stride), _pair(self.padding))
            return _with_bias(y, self.bias)


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d``; strided layers under CPU bf16 autocast run as GEMM + col2im."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or tuple(self.output_padding) != (0, 0) or not (_bf16_cpu(x) and _gemm_shape(self, x)):
            return super().forward(x, output_size)
        xb, wb = x.to(torch.bfloat16), self.weight.to(torch.bfloat16)
        with torch.autocast("cpu", enabled=False):
            y = _GemmConvTranspose.apply(xb, wb, _pair(self.kernel_size), _pair(self.stride), _pair(self.padding))
            return _with_bias(y, self.bias)
