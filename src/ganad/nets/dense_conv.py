"""Convolutions that are matrix products, computed as one.

The DCGAN family's generator starts with a stride-1, unpadded transposed
convolution of the 1x1 code (z -> a k x k map) and its encoders end with a
k x k convolution of the last k x k map (-> the code or a logit).  Both are a
dense layer in disguise, but oneDNN runs them as convolutions at a small
fraction of the matmul rate: on this project's CPU, one thread, batch 256, the
100 -> 128 x 4 x 4 projection took 23.6 ms as a bf16 transposed convolution and
0.39 ms as a matmul (10.1 ms vs 1.5 ms in fp32); the 128 x 4 x 4 -> 100 head 5.2
ms vs 0.45 ms in bf16 (an unstored microbenchmark).  The modules below keep ``nn.Conv2d`` /
``nn.ConvTranspose2d``'s parameters, state-dict keys, initialisation and
parametrisations (spectral norm), and take the matmul path only when the
input has exactly the shape that makes the layer dense; any other input goes
through the convolution.  The two paths compute the same sums in a different
order (equal up to rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectionConvTranspose2d(nn.ConvTranspose2d):
    """``ConvTranspose2d(c_in, c_out, k, stride=1, padding=0)``; a (N, c_in, 1, 1) input is one matmul."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, 1, 0, bias=bias)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (1, 1) or output_size is not None:
            return super().forward(x, output_size)
        w = self.weight  # (c_in, c_out, k, k): out[n, o, i, j] = sum_c x[n, c] w[c, o, i, j]
        y = F.linear(x.flatten(1), w.flatten(1).t()).view(len(x), self.out_channels, *self.kernel_size)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1).to(y.dtype)


class HeadConv2d(nn.Conv2d):
    """``Conv2d(c_in, c_out, k, stride=1, padding=0)``; a (N, c_in, k, k) input is one matmul."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, 1, 0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[-2:]) != self.kernel_size:
            return super().forward(x)
        w = self.weight  # (c_out, c_in, k, k)
        if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            # channels-last maps flatten without a copy in (h, w, c) order; the weight follows
            xf, wf = x.permute(0, 2, 3, 1).reshape(len(x), -1), w.permute(0, 2, 3, 1).reshape(len(w), -1)
        else:
            xf, wf = x.reshape(len(x), -1), w.reshape(len(w), -1)
        return F.linear(xf, wf, self.bias).view(len(x), -1, 1, 1)
