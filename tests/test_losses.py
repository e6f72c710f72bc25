"""GAN objectives on small hand-computed cases."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganad import losses as L

torch.set_num_threads(1)


def sp(t: float) -> float:  # softplus
    return math.log1p(math.exp(t))


def t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


def test_bce_losses_by_hand():
    real, fake = t(0.0, 2.0), t(0.0, -1.0)
    want_d = (math.log(2) + sp(-2)) / 2 + (math.log(2) + sp(-1)) / 2
    assert L.d_loss_bce(real, fake).item() == pytest.approx(want_d, rel=1e-12)
    assert L.g_loss_bce(t(0.0)).item() == pytest.approx(math.log(2), rel=1e-12)
    assert L.g_loss_bce(fake).item() == pytest.approx((math.log(2) + sp(1)) / 2, rel=1e-12)


def test_bce_matches_torch_bce_on_probabilities():
    real, fake = torch.randn(7, 1), torch.randn(7, 1)
    ref = F.binary_cross_entropy(torch.sigmoid(real), torch.ones_like(real)) + F.binary_cross_entropy(
        torch.sigmoid(fake), torch.zeros_like(fake)
    )
    assert L.d_loss_bce(real, fake).item() == pytest.approx(ref.item(), rel=1e-5)


def test_bce_stays_finite_for_huge_logits():
    assert math.isfinite(L.d_loss_bce(t(1e4), t(-1e4)).item())
    assert L.g_loss_bce(t(-1e4)).item() == pytest.approx(1e4)


def test_feature_matching_paired_and_batch_means():
    a, b = t(1.0, 2.0).view(1, 2), t(0.0, 0.0).view(1, 2)
    assert L.feature_matching(a, b).item() == pytest.approx(2.5)
    real = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    fake = torch.zeros(2, 2)
    assert L.feature_matching(real, fake, paired=False).item() == pytest.approx(2.0)  # (2^2 + 0) / 2
    assert L.feature_matching(real, fake, paired=True).item() == pytest.approx(2.5)  # (1 + 9) / 4


def test_wgan_losses_and_clipping():
    real, fake = t(1.0, 3.0), t(0.0, 2.0)
    assert L.d_loss_wgan(real, fake).item() == pytest.approx(-1.0)
    assert L.g_loss_wgan(fake).item() == pytest.approx(-1.0)
    lin = nn.Linear(3, 4)
    with torch.no_grad():
        lin.weight.mul_(100)
    L.clip_weights(lin, 0.01)
    assert all(p.abs().max().item() <= 0.01 for p in lin.parameters())


def test_rsgan_losses_pair_samples():
    assert L.d_loss_rsgan(t(1.0), t(0.0)).item() == pytest.approx(sp(-1))
    assert L.g_loss_rsgan(t(1.0), t(0.0)).item() == pytest.approx(sp(1))
    # (N, 1) against (N,) must pair sample i with sample i, not broadcast to (N, N)
    real, fake = t(1.0, 3.0).view(2, 1), t(0.0, 3.0)
    assert L.d_loss_rsgan(real, fake).item() == pytest.approx((sp(-1) + math.log(2)) / 2)


def test_hinge_losses_by_hand():
    real, fake = t(0.5, 2.0), t(-2.0, 0.5)
    assert L.d_loss_hinge(real, fake).item() == pytest.approx(0.25 + 0.75)
    assert L.g_loss_hinge(fake).item() == pytest.approx(0.75)


def _linear_critic(norm: float, dim: int = 12) -> nn.Linear:
    lin = nn.Linear(dim, 1)
    with torch.no_grad():
        w = torch.randn(1, dim)
        lin.weight.copy_(w / w.norm() * norm)
    return lin


def test_gradient_penalty_zero_for_unit_gradient_critic():
    torch.manual_seed(0)
    critic = _linear_critic(1.0)
    real, fake = torch.randn(8, 12), torch.randn(8, 12)
    gp = L.gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_value_and_gradient_for_other_critics():
    torch.manual_seed(0)
    critic = _linear_critic(3.0)
    real, fake = torch.randn(8, 12), torch.randn(8, 12)
    assert L.gradient_penalty(critic, real, fake, weight=10).item() == pytest.approx(10 * (3 - 1) ** 2, rel=1e-5)
    mlp = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 1))
    gp = L.gradient_penalty(mlp, real, fake)
    assert gp.item() > 0
    gp.backward()  # differentiable w.r.t. the critic (create_graph=True)
    assert mlp[0].weight.grad is not None and mlp[0].weight.grad.abs().sum() > 0


def test_gradient_penalty_on_image_and_tuple_inputs():
    torch.manual_seed(0)
    wx, wz = torch.randn(1 * 4 * 4), torch.randn(5)
    scale = torch.cat([wx, wz]).norm()
    wx, wz = wx / scale, wz / scale  # joint gradient has norm 1

    def critic(x, z):
        return x.flatten(1) @ wx + z @ wz

    real = (torch.randn(6, 1, 4, 4), torch.randn(6, 5))
    fake = (torch.randn(6, 1, 4, 4), torch.randn(6, 5))
    assert L.gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    # the norm is joint over x and z: twice the weights -> norm 2 -> penalty 10
    assert L.gradient_penalty(lambda x, z: 2 * critic(x, z), real, fake).item() == pytest.approx(10.0, rel=1e-5)
    g = torch.Generator().manual_seed(3)
    a = L.gradient_penalty(lambda x, z: critic(x, z) ** 2, real, fake, generator=g)
    b = L.gradient_penalty(lambda x, z: critic(x, z) ** 2, real, fake, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)  # the interpolation draws from the given generator
    with pytest.raises(ValueError, match="inputs"):
        L.gradient_penalty(critic, real, fake[:1])
