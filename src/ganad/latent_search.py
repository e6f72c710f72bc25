"""Batched test-time latent search: the machinery behind AnoGAN and ADGAN scoring.

Both methods score an image by how well a trained generator can be made to
reproduce it, which takes gradient steps at test time.  Everything here runs
for many images (and, for ADGAN, many seeds per image) at once, with no
Python loop over images or seeds in the search, and without letting them
interact:

* :func:`per_image_normal` draws the starting latents of each image from a
  generator seeded by a hash of *the image's own bytes* and a base seed, so a
  score is a deterministic function of the image: it does not depend on the
  batch it came in, its position in it, or how the work was chunked.
* :func:`adam_step_` is Adam (the formula and operation order of
  ``torch.optim.Adam``'s single-tensor path, no weight decay, no amsgrad) on
  tensors with any leading batch dimensions.  Adam is element-wise, so one call
  updates thousands of independent copies at once.
* :func:`search_latent` (AnoGAN): one Adam over a (B, d) latent tensor
  minimising the *sum* of per-image objectives; each image's z only receives
  the gradient of its own loss.
* :func:`adgan_search` (ADGAN, Deecke et al. 2018, Algorithm 1): for every
  (image, seed) pair, k joint Adam steps on z and on a private copy of the
  generator parameters theta, squared L2 loss; returns the final losses and
  latents.  The per-pair parameter copies are batched tensors (U, *shape)
  with U = images x seeds; one forward/backward pass of the whole batch gives
  every pair's own gradient, because pair u's loss depends on theta_u alone.
  Two interchangeable batched forwards are available (``backend``):

  - ``"bmm"``: layer by layer with batched matrix products (transposed
    convolution = bmm + ``fold``, convolution = ``unfold`` + bmm, BatchNorm in
    eval mode as a per-pair affine map).  Covers DCGAN generators and MLP
    decoders built from ConvTranspose2d / Conv2d / Linear / BatchNorm /
    element-wise activations; faster than ``vmap`` on CPU, where the
    grouped convolutions ``vmap`` turns per-pair weights into are slow.
  - ``"vmap"``: ``torch.func.functional_call`` under ``torch.func.vmap``,
    for any generator.
  - ``"auto"`` (default): ``"bmm"`` when the generator is supported.

  Parameter copies cost 4 x (parameters) floats per pair (theta, grad, and
  Adam's two moments), so pairs are processed in chunks (``chunk_size``,
  default: about 64 MiB of such state, 2 pairs for the 1.7M-parameter
  default ADGAN generator, ~600 for a 4k-parameter one).

Nets must be in eval mode (BatchNorm with running statistics), otherwise
samples in a batch would couple: :func:`adgan_search` puts the generator in
eval mode for the search and restores its previous mode afterwards;
:func:`search_latent` only sees an objective, so its caller does it.
Buffers (BatchNorm running statistics) are shared and never adapted; only
parameters are.  Both searches run with gradients enabled even when called
under ``torch.no_grad`` or ``torch.inference_mode``.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

UnitForward = Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]

#: default memory for the per-pair parameter state of one chunk; small chunks are
#: faster on CPU (cache reuse, no page faults), and cost little per-call overhead
CHUNK_BYTES = 64 << 20
MAX_CHUNK = 4096
_BACKENDS = ("auto", "bmm", "vmap")
_FLT_MIN = float(torch.finfo(torch.float32).tiny)


# ----------------------------------------------------------------- seeding
def image_seeds(x: np.ndarray, seed: int) -> list[int]:
    """One 63-bit seed per sample: a keyed BLAKE2b hash of the sample's pixels as uint8.

    Identical images get identical seeds (and hence identical scores);
    different images get independent ones.  Float images in [0, 1] are hashed
    as ``round(255 x)``, so an image given as uint8 or as ``x / 255`` is the
    same image and starts its search from the same point.
    """
    key = (int(seed) % (1 << 64)).to_bytes(8, "little")
    if x.dtype != np.uint8 and x.size and 0.0 <= float(x.min()) and float(x.max()) <= 1.0:
        x = np.round(np.asarray(x, dtype=np.float64) * 255.0).astype(np.uint8)  # images: their uint8 pixels
    out = []
    for row in x:
        h = hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=8, key=key)
        out.append(int.from_bytes(h.digest(), "little") >> 1)
    return out


def per_image_normal(x: np.ndarray, shape: Sequence[int], seed: int) -> torch.Tensor:
    """Standard normal draws of ``shape`` per sample of ``x``, as a (N, *shape) CPU tensor.

    Sample i's draws depend only on ``x[i]``'s bytes and ``seed`` (see
    :func:`image_seeds`), never on the other samples.
    """
    shape = tuple(int(s) for s in shape)
    out = torch.empty((len(x), *shape))
    g = torch.Generator()
    for i, s in enumerate(image_seeds(x, seed)):
        g.manual_seed(s)
        out[i] = torch.randn(shape, generator=g)
    return out


def search_seed(random_state: int | None) -> int:
    """The base seed a detector hashes images with, fixed at fit time and saved with it:
    derived from ``random_state``, or fresh entropy when it is None."""
    entropy = None if random_state is None else [int(random_state) % (1 << 63), 0x5EA4C4]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


class SearchScoring:
    """What the detectors that score by a latent search (AnoGAN, ADGAN) share, as a mixin
    before their :class:`~ganad.models.torch_base.TorchDetector` base: scoring with
    gradients (``_search_parts(x)``, the subclass's), and ``search_seed_`` (set by
    ``_train``, :func:`search_seed`) saved and loaded with the model."""

    score_fit_data = False  # decision_scores_ = the calibration scores (scoring is a search)

    def _score_parts(self: Any, x: np.ndarray) -> dict[str, np.ndarray]:
        # the search needs gradients, whatever the caller's mode
        with torch.inference_mode(False), self._search_precision():
            return self._search_parts(x)

    def _search_precision(self: Any) -> Any:
        """The precision context of the search: the detector's autocast, without its weight
        cache, which would keep the bf16 copy of z (and theta) from before each update."""
        return self._autocast(cache=False)

    def _extra_state(self: Any) -> dict[str, Any]:
        return {"search_seed": torch.tensor(self.search_seed_, dtype=torch.int64)}

    def _load_extra_state(self: Any, state: dict[str, Any]) -> None:
        self.search_seed_ = int(state["search_seed"])


# -------------------------------------------------------------------- Adam
@torch.no_grad()
def adam_step_(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: Sequence[torch.Tensor],
    exp_avg_sqs: Sequence[torch.Tensor],
    step: int,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    fused: bool = False,
) -> None:
    """One Adam update, in place, on tensors of any shape (``step`` counts from 1).

    Same arithmetic as ``torch.optim.Adam`` (single-tensor path): m <- lerp(m, g, 1-b1),
    v <- b2 v + (1-b2) g^2, p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
    Element-wise, so a leading (pairs, ...) dimension makes it one vectorised
    update of many independent optimisers that share ``step`` and ``lr``.

    The gradients are used as scratch space for the denominator and are
    overwritten: no tensor is allocated, which matters when the state is
    gigabytes (fresh allocations that size cost a page fault per 4 KiB).
    sqrt(v) is taken as sqrt(max(v, FLT_MIN)): on the CPU measured (AMD EPYC,
    AVX2; not stored) torch's sqrt of 0 is ~7x slower than of a positive number, and zeros
    are common here (every weight behind a dead ReLU has g = 0); the float32
    denominator is the same, since sqrt(FLT_MIN) / sqrt(1 - b2^t) < 4e-18
    vanishes against eps (for eps >= 1e-12).

    ``fused=True``: torch's fused Adam kernel, one pass over (p, g, m, v) instead
    of nine, for ADGAN's per-pair generator copies, where the update streams the
    whole parameter state of every pair through memory each step.  Same formula,
    different rounding (within rtol 1e-5 of ``torch.optim.Adam`` over seven steps:
    tests/test_adgan.py); the path above where the kernel is not available.
    """
    kernel = getattr(torch, "_fused_adam_", None)
    if fused and kernel is not None and params and params[0].device.type in ("cpu", "cuda"):
        steps = [torch.full((), float(step), device=p.device) for p in params]
        grads = [g.contiguous() for g in grads]  # the kernel walks memory linearly (vmap's gradients can be strided)
        kernel(list(params), grads, list(exp_avgs), list(exp_avg_sqs), [], steps, lr=lr, beta1=beta1,
               beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)
        return
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    step_size = lr / bias_correction1
    for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = torch.clamp_min(v, _FLT_MIN, out=g).sqrt_().div_(bias_correction2_sqrt).add_(eps)
        p.addcdiv_(m, denom, value=-step_size)


# --------------------------------------------------------------- eval mode
@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Every submodule in eval mode inside the block; each gets its own mode back after."""
    saved = [(m, m.training) for mod in modules for m in mod.modules()]
    for mod in modules:
        mod.eval()
    try:
        yield
    finally:
        for m, training in saved:
            m.training = training


# ------------------------------------------------------------------ AnoGAN
def piecewise_lr(lr: float, steps: int) -> Callable[[int], float]:
    """The z-search schedule of the EGBAD authors' AnoGAN baseline (``gan/run_mnist.py``), scaled to ``steps``:
    ``lr`` for the first 40% of the steps, ``lr/10`` up to 60%, ``lr/20`` after
    (0.01 / 1e-3 / 5e-4 at steps 0-199 / 200-299 / 300-499 of 500)."""

    def at(t: int) -> float:
        if t < 0.4 * steps:
            return lr
        return lr * (0.1 if t < 0.6 * steps else 0.05)

    return at


def search_latent(
    objective: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    steps: int,
    lr: float | Callable[[int], float],
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.Tensor:
    """Minimise ``objective(z)`` (shape (B,), one loss per sample) over z = ``z0`` (B, d) with Adam.

    One ``torch.optim.Adam`` over the whole (B, d) tensor on the summed loss:
    Adam is element-wise, so each row only ever sees its own loss's gradient.
    ``lr`` is a number or a function of the 0-based step.  Only z receives
    gradients (``torch.autograd.grad``), never the nets' parameters.
    Returns the final z, detached.
    """
    with torch.inference_mode(False):
        z = z0.detach().clone().requires_grad_(True)
    lr_at = lr if callable(lr) else (lambda _t: lr)
    opt = torch.optim.Adam([z], lr=lr_at(0), betas=betas, eps=eps)
    with torch.inference_mode(False), torch.enable_grad():
        for t in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(t)
            loss = objective(z)
            (z.grad,) = torch.autograd.grad(loss.sum(), z)
            opt.step()
    return z.detach()


# ------------------------------------------------------------------- ADGAN
@dataclass
class SearchResult:
    """ADGAN search output: ``loss`` (B, S) final squared L2 error per image and seed,
    ``z`` (B, S, d) final latents; ``pixel_error`` (B, C, H, W), only with ``return_maps``:
    the final squared error per pixel, averaged over the seeds (its pixel sum is ``loss.mean(1)``)."""

    loss: torch.Tensor
    z: torch.Tensor
    pixel_error: torch.Tensor | None = None


def squared_error(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """||out - x||_2^2 per sample (sum over every non-batch dimension)."""
    return (out - x).pow(2).flatten(1).sum(1)


def default_chunk(n_params: int, adapt_generator: bool) -> int:
    """Pairs per chunk: ~``CHUNK_BYTES`` of per-pair parameter state (6 floats per
    parameter: theta, grad, two Adam moments, two temporaries), at most ``MAX_CHUNK``;
    256 for a z-only search (activations only)."""
    if not adapt_generator:
        return 256
    return int(max(1, min(MAX_CHUNK, CHUNK_BYTES // (24 * max(n_params, 1)))))


def adgan_search(
    generator: nn.Module,
    x: torch.Tensor,
    z0: torch.Tensor,
    *,
    steps: int = 5,
    lr_z: float = 0.25,
    lr_theta: float = 5e-5,
    betas: tuple[float, float] = (0.5, 0.999),
    eps: float = 1e-8,
    adapt_generator: bool = True,
    chunk_size: int | None = None,
    backend: str = "auto",
    return_maps: bool = False,
) -> SearchResult:
    """ADGAN's Algorithm 1 for B images x (B, C, H, W) and S seeds each, z0 (B, S, d).

    For every pair (i, j): theta_ij <- theta; ``steps`` times, with
    l = ||G_theta_ij(z_ij) - x_i||^2, one Adam step on z_ij (``lr_z``) and one
    on theta_ij (``lr_theta``), both with ``betas``; then the loss at the final
    (z, theta).  Each pair has its own Adam state and its own theta copy, reset
    for every call, exactly as per-pair ``torch.optim.Adam`` instances on
    ``copy.deepcopy(generator)`` would.  ``adapt_generator=False`` keeps theta
    fixed (z-only search, one shared generator; much cheaper).

    The generator runs in eval mode (its mode is restored afterwards); its own
    parameters and buffers are never modified.  ``return_maps`` also returns the
    per-pixel squared error at the final (z, theta), averaged over each image's seeds.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}; got {backend!r}")
    if z0.dim() != 3 or len(z0) != len(x):
        raise ValueError(f"z0 must be (images, seeds, d) with {len(x)} images; got {tuple(z0.shape)}")
    b, s, d = z0.shape
    n_units = b * s
    n_params = sum(p.numel() for p in generator.parameters())
    chunk = int(chunk_size) if chunk_size else default_chunk(n_params, adapt_generator)
    image_of = torch.arange(b, device=x.device).repeat_interleave(s)
    z_flat = z0.reshape(n_units, d)
    losses, zs, maps = [], [], []
    with eval_mode(generator), torch.inference_mode(False), torch.enable_grad():
        fwd, ws = None, None
        if adapt_generator and steps > 0:
            fwd = unit_forward(generator, backend)
            ws = _Workspace(generator, min(chunk, n_units))
        for lo in range(0, n_units, chunk):
            zc, xc = z_flat[lo : lo + chunk], x[image_of[lo : lo + chunk]]
            if fwd is None:
                loss, zf, out = _search_z_only(generator, xc, zc, steps, lr_z, betas, eps)
            else:
                loss, zf, out = _search_with_theta(generator, fwd, ws, xc, zc, steps, lr_z, lr_theta, betas, eps)
            losses.append(loss)
            zs.append(zf)
            if return_maps:
                maps.append((out - xc).pow(2).detach())
            del out
    pixel_error = torch.cat(maps).reshape(b, s, *x.shape[1:]).mean(1) if return_maps else None
    return SearchResult(torch.cat(losses).reshape(b, s), torch.cat(zs).reshape(b, s, d), pixel_error)


def _search_z_only(
    g: nn.Module, x: torch.Tensor, z0: torch.Tensor, steps: int, lr: float,
    betas: tuple[float, float], eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z = z0.detach().clone().requires_grad_(True)
    m, v = torch.zeros_like(z), torch.zeros_like(z)
    for t in range(1, steps + 1):
        (grad,) = torch.autograd.grad(squared_error(g(z), x).sum(), z)
        adam_step_([z], [grad], [m], [v], t, lr, *betas, eps)
    with torch.no_grad():
        out = g(z)
        return squared_error(out, x), z.detach(), out


class _Workspace:
    """theta copies and Adam moments for ``chunk`` pairs, allocated once per search and
    reused by every chunk (fresh gigabyte-sized allocations page-fault on every use)."""

    def __init__(self, g: nn.Module, chunk: int):
        def alloc() -> list[torch.Tensor]:
            return [torch.empty((chunk, *p.shape), dtype=p.dtype, device=p.device) for p in g.parameters()]

        self.theta, self.m, self.v = alloc(), alloc(), alloc()

    def take(self, u: int) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        return [t[:u] for t in self.theta], [t[:u] for t in self.m], [t[:u] for t in self.v]


def _search_with_theta(
    g: nn.Module, fwd: UnitForward, ws: _Workspace, x: torch.Tensor, z0: torch.Tensor, steps: int,
    lr_z: float, lr_theta: float, betas: tuple[float, float], eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    u = len(z0)
    names = [n for n, _ in g.named_parameters()]
    theta, m_t, v_t = ws.take(u)
    with torch.no_grad():
        for th, p, m, v in zip(theta, g.parameters(), m_t, v_t):
            th.copy_(p.detach().unsqueeze(0).expand_as(th))
            m.zero_()
            v.zero_()
    theta = [th.detach().requires_grad_(True) for th in theta]  # leaves sharing the workspace
    z = z0.detach().clone().requires_grad_(True)
    m_z, v_z = torch.zeros_like(z), torch.zeros_like(z)
    for t in range(1, steps + 1):
        loss = squared_error(fwd(dict(zip(names, theta)), z), x)
        grads = torch.autograd.grad(loss.sum(), [z, *theta])  # pair u's loss depends on (z_u, theta_u) only
        adam_step_([z], grads[:1], [m_z], [v_z], t, lr_z, *betas, eps)
        adam_step_(theta, grads[1:], m_t, v_t, t, lr_theta, *betas, eps, fused=True)
        del grads, loss
    with torch.no_grad():
        out = fwd(dict(zip(names, theta)), z)
        return squared_error(out, x), z.detach(), out


# ----------------------------------------------- batched per-pair forwards
def unit_forward(module: nn.Module, backend: str = "auto") -> UnitForward:
    """``f(params, z)``: the module's forward with a private parameter set per sample.

    ``params`` maps the module's parameter names to tensors (U, *shape); z is
    (U, ...); row u of the output is ``module`` applied to z[u] with the
    parameters params[.][u] (and the module's own buffers).  The module must be
    in eval mode.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}; got {backend!r}")
    if backend in ("auto", "bmm"):
        ops = _compile(module, "")
        if ops is not None:
            return _bmm_forward(ops)
        if backend == "bmm":
            raise ValueError(f"{type(module).__name__} has layers the bmm backend does not support; use backend='vmap'")
    return _vmap_forward(module)


def _vmap_forward(module: nn.Module) -> UnitForward:
    from torch.func import functional_call, vmap

    buffers = dict(module.named_buffers())

    def one(params: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        return functional_call(module, (params, buffers), (z.unsqueeze(0),)).squeeze(0)

    return vmap(one)


Op = Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]


def _bmm_forward(ops: list[Op]) -> UnitForward:
    def forward(params: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        h = z
        for op in ops:
            h = op(params, h)
        return h

    return forward


_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.GELU, nn.SiLU, nn.Identity, nn.Dropout, nn.Flatten)


def _plain(m: nn.Module) -> bool:
    """No hooks and no parametrisations (spectral norm etc.): parameters are used as stored."""
    return not (m._forward_hooks or m._forward_pre_hooks or parametrize.is_parametrized(m))


def _compile(module: nn.Module, prefix: str) -> list[Op] | None:
    """The module as a list of batched ops, or None when a layer is not supported."""
    from .nets.dcgan import DCGANDecoder
    from .nets.dense_conv import HeadConv2d, ProjectionConvTranspose2d
    from .nets.gemm_conv import Conv2d, ConvTranspose2d
    from .nets.mlp import MLP

    if not _plain(module):
        return None
    if type(module) is DCGANDecoder:
        inner = _compile(module.net, prefix + "net.")
        return None if inner is None else [lambda _p, z: z.reshape(len(z), -1, 1, 1), *inner]
    if isinstance(module, MLP) and type(module).forward is MLP.forward:
        parts = [_compile(module.body, prefix + "body."), _compile(module.head, prefix + "head."),
                 _compile(module.out_act, prefix + "out_act.")]
        if any(p is None for p in parts):
            return None
        return [lambda _p, z: z.flatten(1), *[op for p in parts for op in p]]  # type: ignore[union-attr]
    if type(module) is nn.Sequential:
        ops: list[Op] = []
        for name, child in module.named_children():
            sub = _compile(child, f"{prefix}{name}.")
            if sub is None:
                return None
            ops += sub
        return ops
    # the subclasses have the same parameters and differ only in how they compute; bmm either way
    if type(module) in (nn.ConvTranspose2d, ProjectionConvTranspose2d, ConvTranspose2d):
        return _conv_transpose_op(module, prefix)
    if type(module) in (nn.Conv2d, HeadConv2d, Conv2d):
        return _conv_op(module, prefix)
    if type(module) is nn.Linear:
        return [_linear_op(prefix)]
    if type(module) in (nn.BatchNorm1d, nn.BatchNorm2d):
        return _batchnorm_op(module, prefix)
    if type(module) in _ELEMENTWISE and not any(True for _ in module.parameters()):
        return [lambda _p, h, m=module: m(h)]  # per-sample, parameter-free (dropout is off in eval)
    return None


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _add_bias(out: torch.Tensor, params: dict[str, torch.Tensor], name: str | None) -> torch.Tensor:
    if name is None:
        return out
    b = params[name]
    return out + b.reshape(*b.shape, *([1] * (out.dim() - 2)))


def _conv_transpose_op(m: nn.ConvTranspose2d, prefix: str) -> list[Op] | None:
    if m.groups != 1 or _pair(m.dilation) != (1, 1) or any(_pair(m.output_padding)) or m.padding_mode != "zeros":
        return None
    k, s, p = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
    c_out, w_name = m.out_channels, prefix + "weight"
    b_name = prefix + "bias" if m.bias is not None else None

    def op(params: dict[str, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        u, c_in, hh, ww = h.shape
        w = params[w_name].reshape(u, c_in, c_out * k[0] * k[1])
        cols = torch.bmm(h.reshape(u, c_in, hh * ww).transpose(1, 2), w).transpose(1, 2)  # (u, C_out k k, H W)
        size = ((hh - 1) * s[0] - 2 * p[0] + k[0], (ww - 1) * s[1] - 2 * p[1] + k[1])
        return _add_bias(F.fold(cols, size, k, padding=p, stride=s), params, b_name)

    return [op]


def _conv_op(m: nn.Conv2d, prefix: str) -> list[Op] | None:
    if m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str):
        return None
    k, s, p, dil = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding), _pair(m.dilation)
    c_out, w_name = m.out_channels, prefix + "weight"
    b_name = prefix + "bias" if m.bias is not None else None

    def op(params: dict[str, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        u, _, hh, ww = h.shape
        cols = F.unfold(h, k, dilation=dil, padding=p, stride=s)  # (u, C_in k k, L)
        out = torch.bmm(params[w_name].reshape(u, c_out, -1), cols)
        ho = (hh + 2 * p[0] - dil[0] * (k[0] - 1) - 1) // s[0] + 1
        wo = (ww + 2 * p[1] - dil[1] * (k[1] - 1) - 1) // s[1] + 1
        return _add_bias(out.reshape(u, c_out, ho, wo), params, b_name)

    return [op]


def _linear_op(prefix: str) -> Op:
    w_name, b_name = prefix + "weight", prefix + "bias"

    def op(params: dict[str, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        out = torch.bmm(params[w_name], h.unsqueeze(2)).squeeze(2)
        return out + params[b_name] if b_name in params else out

    return op


def _batchnorm_op(m: nn.modules.batchnorm._BatchNorm, prefix: str) -> list[Op] | None:
    if m.running_mean is None or m.running_var is None:
        return None  # no running statistics: eval mode would still use batch statistics
    mean, var, eps = m.running_mean, m.running_var, m.eps
    affine = m.affine

    def op(params: dict[str, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, *([1] * (h.dim() - 2)))
        inv = torch.rsqrt(var + eps)
        if not affine:
            return (h - mean.reshape(shape)) * inv.reshape(shape)
        u = len(h)
        scale = (params[prefix + "weight"] * inv).reshape(u, -1, *([1] * (h.dim() - 2)))
        bias = params[prefix + "bias"].reshape(u, -1, *([1] * (h.dim() - 2)))
        return (h - mean.reshape(shape)) * scale + bias

    return [op]


__all__ = [
    "SearchResult",
    "adam_step_",
    "adgan_search",
    "default_chunk",
    "eval_mode",
    "image_seeds",
    "per_image_normal",
    "piecewise_lr",
    "search_latent",
    "search_seed",
    "squared_error",
    "unit_forward",
]
