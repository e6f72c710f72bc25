"""ADGAN: the vectorised Algorithm 1 against a per-image, per-seed loop; real data.

The checks every model shares (save/load, batch independence, bad input, resume)
are in test_model_contract.py.
"""

import importlib.util
import pathlib

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import ganad
from ganad.data.transforms import to_model_input
from ganad.latent_search import adam_step_, adgan_search, per_image_normal, unit_forward
from ganad.models.adgan import ADGAN
from ganad.nets.dcgan import DCGANDecoder
from ganad.nets.init import init_dcgan
from ganad.nets.mlp import MLPDecoder
from ganad.nets.resnet import ResNetGenerator

from helpers import assert_parts, assert_scoring_leaves_nets_alone, assert_separates, digits_fixture, fitted_fixture

torch.set_num_threads(1)
# calibration_fraction=0: these tests measure the method on all of its training images
# (their floors were set that way); threshold calibration is tested in test_calibration.py
SMALL = dict(calibration_fraction=0.0, width=16, nz=16, batch_size=16, epochs=40, lr=2e-3, n_seed=16, device="cpu", random_state=0)

# the loop reference lives in the benchmark (outside the library); load it by path
_spec = importlib.util.spec_from_file_location(
    "adgan_speed", pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "adgan_speed.py"
)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

digits = digits_fixture(4)  # digit 4 is normal: untrained nets score it like the other digits (AUROC ~0.37)
fitted = fitted_fixture(ADGAN, SMALL)


def _randomise_bn_stats(g):
    torch.manual_seed(1)
    for m in g.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return g.eval()


def test_separates_held_out_fours_from_other_digits(fitted, digits):
    # Measured (16 seeds, k=5, 40 epochs, lr 2e-3): seeds 0-3 give 0.986-0.989;
    # the same seeds untrained give 0.37-0.39.
    assert_separates(fitted, SMALL, digits, floor=0.95, margin=0.3)


def test_gradient_penalty_training_separates_and_has_no_batchnorm_critic(digits):
    # WGAN-GP path: Adam (0, 0.9), penalty 10, LayerNorm critic (BatchNorm would mix the
    # per-sample gradients the penalty constrains).
    train, test, labels = digits
    det = ADGAN(**{**SMALL, "lr": 1e-3}, lipschitz="gp").fit(train)
    # 8x8 digits leave the critic without normalised layers; build a 32x32 one to check the norm
    critic = ADGAN(lipschitz="gp", width=4, nz=4, n_seed=1, epochs=0, threshold_images=1).fit(
        np.zeros((2, 1, 32, 32), np.float32)).nets_["d"]
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    assert any(isinstance(m, torch.nn.LayerNorm) for m in critic.modules())
    auroc = roc_auc_score(labels, det.decision_function(test))
    assert auroc >= 0.95, f"AUROC {auroc:.3f}"


@pytest.mark.parametrize("adapt", [True, False])
def test_detector_scores_equal_the_loop_reference(fitted, digits, adapt):
    det = fitted.set_params(adapt_generator=adapt, n_seed=6)
    try:
        x = digits[1][::50]
        parts = det.score_parts(x)
        ref = bench.loop_scores(det.nets_["g"], to_model_input(x, "cpu", det.image_size_), det.initial_latents(x),
                                k=5, lr_z=0.25, lr_theta=5e-5, betas=(0.5, 0.999), adapt_generator=adapt)
    finally:
        det.set_params(adapt_generator=True, n_seed=SMALL["n_seed"])
    np.testing.assert_allclose(parts["score"], ref.mean(1).numpy(), rtol=1e-5)


@pytest.mark.parametrize(
    "make, backend",
    [
        (lambda: init_dcgan(DCGANDecoder(8, 2, 8, 8)), "bmm"),
        (lambda: init_dcgan(DCGANDecoder(8, 2, 8, 8)), "vmap"),
        (lambda: init_dcgan(DCGANDecoder(16, 1, 8, 4, n_extra_layers=1)), "bmm"),  # Conv2d layers too
        (lambda: MLPDecoder(8, 2 * 8 * 8, 16, 2, norm="batch"), "bmm"),
        (lambda: ResNetGenerator(8, 2, 8, width=8), "auto"),  # not bmm-compilable: vmap fallback
    ],
)
def test_search_equals_loop_on_tiny_generators(make, backend):
    torch.manual_seed(0)
    g = _randomise_bn_stats(make())
    with torch.no_grad():
        shape = g(torch.zeros(1, 8)).shape[1:]
    x = torch.rand(3, *shape) * 2 - 1
    z0 = torch.randn(3, 4, 8)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    got = adgan_search(g, x, z0, steps=5, backend=backend, chunk_size=5)  # chunks cut across images
    ref = bench.loop_scores(g, x, z0, k=5)
    torch.testing.assert_close(got.loss, ref, rtol=1e-5, atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())
    assert got.z.shape == z0.shape and not torch.equal(got.z, z0)  # the final latents come back too


def test_unit_forward_uses_each_rows_own_parameters():
    g = _randomise_bn_stats(init_dcgan(DCGANDecoder(8, 1, 8, 8)))
    names = [n for n, _ in g.named_parameters()]
    copies = [init_dcgan(DCGANDecoder(8, 1, 8, 8)) for _ in range(3)]
    for c in copies:
        c.load_state_dict({**c.state_dict(), **{k: v for k, v in g.state_dict().items() if "running" in k}})
        c.eval()
    params = {n: torch.stack([dict(c.named_parameters())[n].detach() for c in copies]) for n in names}
    z = torch.randn(3, 8)
    want = torch.cat([c(z[i : i + 1]) for i, c in enumerate(copies)])
    with torch.no_grad():
        for backend in ("bmm", "vmap"):
            torch.testing.assert_close(unit_forward(g, backend)(params, z), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="bmm"):
        unit_forward(ResNetGenerator(8, 1, 8, width=8), "bmm")


@pytest.mark.parametrize("fused", [False, True])
def test_adam_step_matches_torch_adam(fused):
    torch.manual_seed(0)
    p0 = torch.randn(4, 3, 5)
    p0[:, 0] = 0.0  # rows with zero gradient stay put
    p_ref = p0.clone().requires_grad_(True)
    opt = torch.optim.Adam([p_ref], lr=0.1, betas=(0.5, 0.999))
    p, m, v = p0.clone(), torch.zeros_like(p0), torch.zeros_like(p0)
    for t in range(1, 8):
        target = torch.randn(4, 3, 5)
        loss_fn = lambda q: ((q - target) * q[:, :1].ne(0)).pow(2).sum()  # noqa: E731
        opt.zero_grad()
        loss_fn(p_ref).backward()
        opt.step()
        q = p.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(q), q)
        adam_step_([p], [grad], [m], [v], t, 0.1, 0.5, 0.999, fused=fused)
    # the single-tensor path exactly; the fused kernel to its rounding (strided gradients:
    # test_search_equals_loop_on_tiny_generators, whose vmap fallback makes them)
    tol = dict(rtol=1e-5, atol=1e-6) if fused else dict(rtol=0, atol=0)
    torch.testing.assert_close(p, p_ref.detach(), **tol)


def test_score_parts_and_training(fitted, digits):
    parts = fitted.score_parts(digits[1][:7])
    assert_parts(parts, {"reconstruction", "prior_nll", "critic", "score"}, 7)
    np.testing.assert_array_equal(parts["score"], parts["reconstruction"])
    z = fitted.initial_latents(digits[1][:7])
    assert z.shape == (7, SMALL["n_seed"], SMALL["nz"])
    h = fitted.history_
    assert h.epochs_run == 40 and {"d", "g", "wasserstein"} <= set(h.losses)
    assert max(p.abs().max().item() for p in fitted.nets_["d"].parameters()) <= fitted.clip + 1e-9


def test_search_lowers_the_loss(fitted, digits):
    x = digits[1][:30]
    searched = fitted.decision_function(x)
    seeds_only = fitted.set_params(k=0).decision_function(x)
    z_only = fitted.set_params(k=5, adapt_generator=False).decision_function(x)
    fitted.set_params(adapt_generator=True)
    # k = 0 scores the seeds as drawn: mean ||G(z_0) - x||^2
    xt = to_model_input(x, "cpu", fitted.image_size_)
    with torch.no_grad():
        z0 = fitted.initial_latents(x)
        direct = (fitted.nets_["g"](z0.flatten(0, 1)) - xt.repeat_interleave(z0.shape[1], 0)).pow(2).flatten(1).sum(1)
    np.testing.assert_allclose(seeds_only, direct.view(len(x), -1).mean(1).numpy(), rtol=1e-5)
    assert np.all(searched < seeds_only) and np.all(z_only < seeds_only)


def test_score_does_not_depend_on_chunking(fitted, digits):
    # batch mates: test_model_contract.py
    x = digits[1][:40]
    together = fitted.decision_function(x)
    chunked = fitted.set_params(search_chunk=7).decision_function(x[::-1])[::-1]
    fitted.set_params(search_chunk=None)
    np.testing.assert_allclose(chunked, together, rtol=1e-5)


def test_scoring_is_eval_mode_and_leaves_the_nets_alone(fitted, digits):
    assert_scoring_leaves_nets_alone(fitted, digits[1][:20])


def test_seeds_are_per_image():
    x = np.random.RandomState(0).randint(0, 256, (5, 8, 8), dtype=np.uint8)
    z = per_image_normal(x, (3, 4), seed=7)
    torch.testing.assert_close(per_image_normal(x[[4, 0]], (3, 4), seed=7), z[[4, 0]])
    assert not torch.allclose(z[0], z[1]) and not torch.allclose(per_image_normal(x, (3, 4), seed=8), z)
    assert abs(per_image_normal(np.arange(4000).reshape(1000, 4), (64,), 0).std().item() - 1.0) < 0.01


def test_registry_defaults_and_parameter_checks(digits):
    d = ganad.create("adgan")
    assert isinstance(d, ADGAN)
    assert (d.nz, d.width, d.lipschitz, d.lr, d.n_critic, d.clip, d.critic_norm) == (256, 64, "clip", None, 5, 0.01, None)
    assert (d._resolved("lr"), d._resolved("critic_norm")) == (5e-4, "batch")
    d.set_params(lipschitz="gp")
    assert (d._resolved("lr"), d._resolved("critic_norm")) == (1e-4, "layer")
    assert d.set_params(lr=3e-4, critic_norm="none")._resolved("lr") == 3e-4 and d._resolved("critic_norm") == "none"
    assert (d.n_seed, d.k, d.lr_z, d.lr_theta, d.search_beta1, d.search_beta2) == (64, 5, 0.25, 5e-5, 0.5, 0.999)
    assert d.adapt_generator is True and d.search_chunk is None
    bad = [
        {"n_seed": 0}, {"k": -1}, {"k": 1.5}, {"lr_z": 0}, {"lr_theta": -1e-5}, {"clip": 0.0},
        {"n_critic": 0}, {"critic_norm": "spectral"}, {"adapt_generator": "yes"}, {"search_chunk": 0},
        {"search_beta1": 1.0}, {"nz": 0}, {"n_seed": True}, {"lipschitz": "spectral"}, {"lr": 0.0},
        {"gp_weight": -1.0},
    ]
    for params in bad:
        with pytest.raises(ValueError):
            ADGAN(**{**SMALL, "epochs": 0, **params}).fit(digits[0][:4])
    with pytest.raises(ValueError, match="backend"):
        adgan_search(init_dcgan(DCGANDecoder(8, 1, 4, 4)), torch.zeros(1, 1, 8, 8), torch.zeros(1, 2, 4), backend="jit")


def test_algorithm_1_searches_in_fp32_under_bf16_and_the_z_only_search_does_not(digits):
    # theta's per-pair copies stay fp32: autocast's casts of them cost more than bf16 saves
    x = digits[1][:6]
    kw = {**SMALL, "epochs": 0, "n_seed": 4, "k": 2}
    fp32 = ADGAN(**kw).fit(digits[0][:32])
    bf16 = ADGAN(**{**kw, "precision": "bf16"}).fit(digits[0][:32])
    np.testing.assert_array_equal(bf16.decision_function(x), fp32.decision_function(x))
    z_fp32 = fp32.set_params(adapt_generator=False).decision_function(x)
    z_bf16 = bf16.set_params(adapt_generator=False).decision_function(x)
    assert not np.array_equal(z_bf16, z_fp32)
    np.testing.assert_allclose(z_bf16, z_fp32, rtol=0.15)
