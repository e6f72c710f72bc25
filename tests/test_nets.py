"""Building blocks: DCGAN init really applied, MLP / ResNet shapes and options."""

import pytest
import torch
from torch.nn.utils import parametrize
from torch import nn

from ganad import nets
from ganad.nets import (
    DCGANDecoder,
    DCGANEncoder,
    DiscBlock,
    GenBlock,
    MLPDecoder,
    MLPDiscriminator,
    MLPEncoder,
    ResNetCritic,
    ResNetGenerator,
    dcgan_init,
    init_dcgan,
)

torch.set_num_threads(1)


def test_dcgan_init_is_applied():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(128, 256, 4, bias=True),  # 524k weights: the std estimate is tight
        nn.BatchNorm2d(4096),
        nn.ConvTranspose2d(256, 128, 4),
        nn.Linear(512, 512),
    )
    # PyTorch's default init has a very different scale, so this proves it was replaced
    assert abs(net[0].weight.std().item() - 0.02) > 0.005
    net.apply(dcgan_init)
    for i in (0, 2, 3):
        w = net[i].weight
        assert w.std().item() == pytest.approx(0.02, rel=0.03)
        assert abs(w.mean().item()) < 1e-3
        assert torch.count_nonzero(net[i].bias) == 0
    bn = net[1]
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=2e-3)
    assert bn.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.count_nonzero(bn.bias) == 0


def test_dcgan_init_reaches_spectral_norm_raw_weights():
    conv = nn.utils.spectral_norm(nn.Conv2d(64, 128, 4))
    lin = nn.utils.parametrizations.spectral_norm(nn.Linear(256, 512))
    init_dcgan(conv)
    init_dcgan(lin)
    assert conv.weight_orig.std().item() == pytest.approx(0.02, rel=0.05)
    assert lin.parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.05)


def test_init_dcgan_on_dcgan_nets_returns_the_net():
    enc = DCGANEncoder(32, 1, 100, width=64)
    assert init_dcgan(enc) is enc
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    big = max(convs, key=lambda m: m.weight.numel())
    assert big.weight.std().item() == pytest.approx(0.02, rel=0.05)
    dec = init_dcgan(DCGANDecoder(32, 1, 100, width=8))
    assert dec(torch.randn(2, 100)).shape == (2, 1, 32, 32)


def test_mlp_encoder_decoder_discriminator_shapes():
    x, z = torch.randn(5, 12), torch.randn(5, 3)
    enc = MLPEncoder(12, 3, width=16, depth=2, norm="batch", dropout=0.1)
    dec = MLPDecoder(3, 12, width=16, depth=1, out_act="tanh")
    assert enc(x).shape == (5, 3)
    out = dec(z)
    assert out.shape == (5, 12) and out.abs().max() <= 1
    disc = MLPDiscriminator(12, width=16, depth=3, z_dim=3, sn=True)
    assert disc(x, z).shape == (5, 1)
    assert disc.features(x, z).shape == (5, 16)
    assert any(parametrize.is_parametrized(m, "weight") for m in disc.modules())  # spectral norm is on
    with pytest.raises(ValueError, match="z_dim"):
        disc(x)
    with pytest.raises(ValueError, match="norm"):
        MLPEncoder(12, 3, norm="group")


def test_mlp_dropout_is_off_in_eval():
    torch.manual_seed(0)
    net = MLPEncoder(8, 2, width=32, dropout=0.5).eval()
    x = torch.randn(4, 8)
    assert torch.equal(net(x), net(x))


@pytest.mark.parametrize("size", [8, 32])
def test_resnet_generator_and_critic(size):
    torch.manual_seed(0)
    g = init_dcgan(ResNetGenerator(size, 3, nz=16, width=8))
    c = ResNetCritic(size, 3, width=8, sn=True)
    x = g(torch.randn(2, 16))
    assert x.shape == (2, 3, size, size) and x.abs().max() <= 1
    assert c(x).shape == (2, 1)
    assert c.features(x).shape == (2, 8)
    assert any(parametrize.is_parametrized(m, "weight") for m in c.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in c.modules())  # SN/GP critics have no BN


def test_resnet_blocks_change_resolution():
    x = torch.randn(2, 4, 8, 8)
    assert GenBlock(4, 6)(x).shape == (2, 6, 16, 16)
    assert DiscBlock(4, 6, down=True)(x).shape == (2, 6, 4, 4)
    plain = DiscBlock(4, 4, down=False, sn=False)
    assert plain.skip is None and plain(x).shape == (2, 4, 8, 8)


def test_nets_package_exports():
    for name in ("DCGANEncoder", "DCGANDecoder", "MLP", "ResNetGenerator", "ResNetCritic", "dcgan_init"):
        assert hasattr(nets, name)


# --- dense layers in disguise: the matmul path equals the convolution ---------------------

from ganad.nets.dense_conv import HeadConv2d, ProjectionConvTranspose2d  # noqa: E402


def _as_conv(m: nn.Module, cls: type) -> nn.Module:
    ref = cls.__new__(cls)
    ref.__dict__ = m.__dict__  # same parameters, the parent's forward
    return ref


def _assert_same_as_the_convolution(m, cls, x, xin, shape):
    """m(xin) equals the parent class's convolution, in value and in the gradients of x and the weight."""
    y, y_ref = m(xin), _as_conv(m, cls)(xin)
    assert y.shape == y_ref.shape == shape
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(y.square().sum(), (x, m.weight))
    grads_ref = torch.autograd.grad(y_ref.square().sum(), (x, m.weight))
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)
    return y_ref


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_head_conv_matmul_equals_the_convolution(bias, channels_last):
    torch.manual_seed(0)
    m = HeadConv2d(16, 7, 4, bias=bias)
    x = torch.randn(5, 16, 4, 4, requires_grad=True)
    xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    _assert_same_as_the_convolution(m, nn.Conv2d, x, xin, (5, 7, 1, 1))
    big = torch.randn(2, 16, 8, 8)  # not the dense shape: the convolution runs
    assert m(big).shape == (2, 7, 5, 5)


@pytest.mark.parametrize("bias", [False, True])
def test_projection_conv_transpose_matmul_equals_the_convolution(bias):
    torch.manual_seed(0)
    m = ProjectionConvTranspose2d(10, 6, 4, bias=bias)
    z = torch.randn(3, 10, 1, 1, requires_grad=True)
    y_ref = _assert_same_as_the_convolution(m, nn.ConvTranspose2d, z, z, (3, 6, 4, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yb = m(z)
    assert yb.dtype == torch.bfloat16
    torch.testing.assert_close(yb.float(), y_ref, rtol=2e-2, atol=2e-2)


def test_dense_layers_keep_the_convolutions_state_dict_and_spectral_norm():
    head, proj = HeadConv2d(8, 3, 4, bias=False), ProjectionConvTranspose2d(8, 3, 4, bias=False)
    assert head.state_dict().keys() == nn.Conv2d(8, 3, 4, bias=False).state_dict().keys()
    assert proj.state_dict().keys() == nn.ConvTranspose2d(8, 3, 4, bias=False).state_dict().keys()
    sn = torch.nn.utils.parametrizations.spectral_norm(HeadConv2d(8, 3, 4))
    x = torch.randn(2, 8, 4, 4)
    sn.eval()
    torch.testing.assert_close(sn(x), nn.functional.conv2d(x, sn.weight, sn.bias), rtol=1e-5, atol=1e-5)
    enc, dec = DCGANEncoder(32, 1, 5, width=8), DCGANDecoder(32, 1, 5, width=8)
    assert isinstance(enc.head, HeadConv2d) and isinstance(dec.net[0], ProjectionConvTranspose2d)


# --- BatchNorm folded into the convolution before it (bf16 scoring) ---------------------

from ganad.nets.fold import fold_batchnorm, folded_for_scoring, has_foldable  # noqa: E402


def _trained_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2.0)
        if bn.affine:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return bn


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_computes_the_same_function(affine, bias):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 4, 2, 1, bias=bias), _trained_bn(nn.BatchNorm2d(8, affine=affine)), nn.ReLU(),
        nn.ConvTranspose2d(8, 5, 4, 2, 1, bias=bias), _trained_bn(nn.BatchNorm2d(5, affine=affine)), nn.Tanh(),
        nn.BatchNorm2d(5),  # not after a convolution: kept
    ).eval()
    folded, n = fold_batchnorm(net)
    assert n == 2 and isinstance(folded[1], nn.Identity) and isinstance(folded[4], nn.Identity)
    assert isinstance(folded[6], nn.BatchNorm2d) and isinstance(net[1], nn.BatchNorm2d)  # the original is untouched
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)


def test_fold_leaves_training_mode_and_spectral_norm_nets_alone():
    sn = nn.Sequential(torch.nn.utils.parametrizations.spectral_norm(nn.Conv2d(3, 4, 3)), nn.BatchNorm2d(4)).eval()
    assert not has_foldable(sn) and folded_for_scoring(sn) is None
    train_mode = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    assert not has_foldable(train_mode)


def test_folded_copy_is_reused_until_the_weights_change():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), _trained_bn(nn.BatchNorm2d(4))).eval()
    a = folded_for_scoring(net)
    assert a is not None and folded_for_scoring(net) is a
    with torch.no_grad():
        net[0].weight.add_(1.0)  # an optimiser step would do the same
    b = folded_for_scoring(net)
    assert b is not a
    moved = net[0].weight.data.clone()  # new storage, as a move to another device gives ...
    while moved._version < net[0].weight._version:  # ... at the same version count
        moved.add_(0.0)
    net[0].weight.data = moved
    b2 = folded_for_scoring(net)
    assert b2 is not b and folded_for_scoring(net) is b2
    b = b2
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(b(x), net(x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ strided convolutions as GEMMs under bf16
from ganad.nets import gemm_conv  # noqa: E402

GEMM_CASES = [  # (transposed, c_in, c_out, kernel, stride, padding, side)
    (False, 1, 8, 4, 2, 1, 16), (False, 6, 10, 4, 2, 1, 8), (False, 5, 7, 3, 2, 1, 9), (False, 3, 4, 5, 2, 2, 12),
    (False, 3, 5, 6, 3, 2, 11), (True, 10, 6, 4, 2, 1, 4), (True, 6, 1, 4, 2, 1, 8), (True, 4, 3, 3, 2, 1, 5),
    (True, 3, 5, 4, 2, 0, 5), (True, 2, 4, 6, 3, 2, 4),
]


def _reference_and_gemm(transposed, c_in, c_out, k, s, p, side):
    torch.manual_seed(0)
    x = torch.randn(3, c_in, side, side + 1)
    w = torch.randn(*((c_in, c_out) if transposed else (c_out, c_in)), k, k)
    ref_op = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    gemm = gemm_conv._GemmConvTranspose if transposed else gemm_conv._GemmConv
    return x, w, ref_op, gemm


@pytest.mark.parametrize("case", GEMM_CASES)
def test_gemm_convolution_equals_the_convolution_in_fp32(case):
    transposed, c_in, c_out, k, s, p, side = case
    x, w, ref_op, gemm = _reference_and_gemm(*case)
    xr, wr, xg, wg = (t.clone().requires_grad_() for t in (x, w, x, w))
    ref = ref_op(xr, wr, stride=s, padding=p)
    out = gemm.apply(xg, wg, (k, k), (s, s), (p, p))
    assert out.shape == ref.shape
    gy = torch.randn_like(ref)
    ref.backward(gy)
    out.backward(gy)
    for a, b in ((out, ref), (xg.grad, xr.grad), (wg.grad, wr.grad)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


@pytest.mark.parametrize("transposed", [False, True])
def test_gemm_layers_take_the_gemm_path_only_under_cpu_bf16_autocast(transposed, monkeypatch):
    torch.manual_seed(1)
    cls, plain = (gemm_conv.ConvTranspose2d, nn.ConvTranspose2d) if transposed else (gemm_conv.Conv2d, nn.Conv2d)
    layer, ref = cls(8, 16, 4, 2, 1, bias=True), plain(8, 16, 4, 2, 1, bias=True)
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(4, 8, 4, 4) if transposed else torch.randn(4, 8, 8, 8)  # the smaller map 4x4
    calls = []
    fn = gemm_conv._GemmConvTranspose if transposed else gemm_conv._GemmConv
    real = fn.apply
    monkeypatch.setattr(fn, "apply", lambda *a: calls.append(1) or real(*a))
    assert torch.equal(layer(x), ref(x)) and not calls  # fp32: the convolution itself
    xs = [x.clone().requires_grad_() for _ in range(2)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, want = layer(xs[0]), ref(xs[1])
    assert calls and out.dtype == want.dtype == torch.bfloat16
    assert torch.allclose(out.float(), want.float(), rtol=2e-2, atol=2e-2 * want.abs().max().item())
    out.float().square().sum().backward()
    want.float().square().sum().backward()
    for a, b in ((xs[0].grad, xs[1].grad), (layer.weight.grad, ref.weight.grad), (layer.bias.grad, ref.bias.grad)):
        assert a.dtype == torch.float32 and torch.allclose(a, b, rtol=3e-2, atol=3e-2 * b.abs().max().item())
    calls.clear()
    stride1 = (gemm_conv.ConvTranspose2d if transposed else gemm_conv.Conv2d)(8, 8, 3, 1, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stride1(x)
        layer(torch.randn(4, 8, 16, 16))  # the smaller map 8x8 (or 16x16): oneDNN is faster there
    assert not calls  # oneDNN's convolution


def test_gemm_conv_keeps_spectral_norm():
    layer = nn.utils.parametrizations.spectral_norm(gemm_conv.Conv2d(3, 8, 4, 2, 1))
    assert parametrize.is_parametrized(layer, "weight") and isinstance(layer, nn.Conv2d)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    y.float().sum().backward()
    assert layer.parametrizations.weight.original.grad is not None and y.shape == (2, 8, 4, 4)


def test_gemm_outputs_can_be_modified_in_place_by_the_next_layer():
    net = nn.Sequential(gemm_conv.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                        gemm_conv.ConvTranspose2d(8, 3, 4, 2, 1), nn.ReLU(inplace=True))
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x)
    y.float().sum().backward()
    assert y.shape == x.shape and x.grad is not None
