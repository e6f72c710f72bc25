"""Berg et al. 2019 (progressive WGAN-GP + jointly trained encoder) on real data (scikit-learn's digits).

The checks every model shares (save/load, bad input, determinism, resume after a
kill at the default tiny settings) are in test_model_contract.py.  Here: the
encoder's gradients, the growth schedule and fade-in, batch independence, the
score parts of Eq. 2-5 and Table 2 (also f-AnoGAN's rows a-d), a resume across a
phase boundary, and separation after a short fit.
"""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

import ganad
from ganad import train
from ganad.data.transforms import resize
from ganad.models.berg import Berg, minmax_unit
from ganad.nets.progressive import (
    EqualizedConv2d,
    Level,
    MinibatchStddev,
    ProgressiveCritic,
    ProgressiveEncoder,
    ProgressiveGenerator,
    Stage,
    growth_schedule,
    level_at,
    real_at_level,
)

from helpers import digits_fixture, fitted_fixture

torch.set_num_threads(1)
NORMAL = 2  # as test_fanogan: untrained nets do not separate digit 2 by ink alone
# calibration_fraction=0: the method is measured on all of its training images
SMALL = dict(calibration_fraction=0.0, width=16, nz=32, batch_size=16, images_per_stage=480, epochs=60,
             device="cpu", random_state=0)
TINY = dict(calibration_fraction=0.0, width=4, nz=8, batch_size=16, images_per_stage=16, epochs=1, device="cpu",
            random_state=0)
digits = digits_fixture(NORMAL)
fitted = fitted_fixture(Berg, SMALL)


@pytest.fixture(scope="module")
def untrained(digits):
    return Berg(**{**SMALL, "epochs": 0}).fit(digits[0])


# ------------------------------------------------------------ separation
def test_separates_held_out_normals_from_other_digits(fitted, untrained, digits):
    # Measured (digit 2 normal, 120 training images, 60 epochs: 4 px, fade to 8 px, then 8 px
    # stable), seeds 0 / 1 / 2: l_n 0.968 / 0.979 / 0.976, fanogan_a 0.985 / 0.991 / 0.985,
    # l_r 0.982 / 0.988 / 0.982; untrained (same seeds): l_n 0.57 / 0.54 / 0.32, fanogan_a
    # 0.42 / 0.62 / 0.53.  The paper's score (Eq. 5, lam = 0.05, so mostly the latent norm
    # L_o) does not separate digits at this size: 0.67 / 0.36 / 0.55 (L_o 0.67 / 0.36 / 0.55),
    # so no floor is set on it; it is checked as the convex combination below.
    _, test, labels = digits
    parts = fitted.score_parts(test)
    base = untrained.score_parts(test)
    for name in ("l_n", "fanogan_a", "l_r"):
        auroc, chance = roc_auc_score(labels, parts[name]), roc_auc_score(labels, base[name])
        assert auroc >= 0.93, f"{name}: AUROC {auroc:.3f}"
        assert auroc >= chance + 0.25, f"{name}: AUROC {auroc:.3f} vs {chance:.3f} untrained"
    assert fitted.level_ == Level(2, 1, 8, 1.0)  # scored at full resolution, after the fade-in
    h = fitted.history_
    assert {"d", "d_wasserstein", "d_gp", "d_drift", "g", "e", "resolution", "alpha"} == set(h.losses)
    assert h.losses["d_wasserstein"][-1] > 0  # the critic separates real from generated


def test_score_is_the_convex_combination_of_eq_5(fitted, digits):
    x = digits[1][:12]
    parts = fitted.score_parts(x)
    assert set(parts) == {"fanogan_a", "l_r", "l_n", "l_o", "score"}
    np.testing.assert_allclose(parts["score"], 0.05 * parts["l_n"] + 0.95 * parts["l_o"], rtol=1e-5, atol=1e-7)
    only = copy.deepcopy(fitted).set_params(lam=1.0, kappa=0.0).score_parts(x)  # score params: no refit
    np.testing.assert_allclose(only["score"], parts["l_n"], rtol=1e-6)
    # Eq. 2-4 by hand: w is each image's own min-max scaling, N_X its pixel count
    q = fitted._to_input(x)
    with torch.no_grad():
        z = fitted.nets_["e"].eval()(q)
        rec = fitted.nets_["g_ema"].eval()(z, 8)
    l_n = (minmax_unit(q) - minmax_unit(rec)).norm(dim=1) / 64
    np.testing.assert_allclose(parts["l_n"], l_n.numpy(), rtol=1e-5)
    np.testing.assert_allclose(parts["l_o"], (-z.norm(dim=1) / math.sqrt(32)).numpy(), rtol=1e-5)
    image = (q - rec).pow(2).flatten(1).mean(1).numpy()
    np.testing.assert_allclose(only["fanogan_a"], image, rtol=1e-5)  # kappa = 0: A's image term
    np.testing.assert_allclose(parts["l_r"], 0.5 * np.sqrt(64 * image), rtol=1e-5)  # Eq. 8 on [0, 1] images
    assert (parts["fanogan_a"] > only["fanogan_a"]).all()  # + kappa * the critic-feature term
    assert (parts["l_n"] > 0).all() and (parts["l_n"] <= 1 / 8).all() and (parts["l_o"] < 0).all()
    # the anomaly map is L_n per pixel: its sum over the 8x8 pixels is (N_X L_n)^2
    m = fitted.anomaly_map(x)
    np.testing.assert_allclose(m.sum((1, 2)), (64 * parts["l_n"]) ** 2, rtol=1e-4)


def test_a_batch_of_one_scores_as_a_batch_of_64(fitted, digits):
    x = digits[1][:64]
    together = fitted.score_parts(x)
    for i in range(len(x)):
        alone = fitted.score_parts(x[i : i + 1])
        for k, v in together.items():
            np.testing.assert_allclose(alone[k][0], v[i], rtol=1e-5, atol=1e-7, err_msg=f"{k}, image {i}")


def test_encoder_codes_do_not_depend_on_batch_mates_even_in_train_mode(fitted, digits):
    # the reference encoder has the critic's minibatch-stddev layer; this one has not
    e, d = fitted.nets_["e"], fitted.nets_["d"]
    assert not any(isinstance(m, MinibatchStddev) for m in e.modules())
    assert any(isinstance(m, MinibatchStddev) for m in d.modules())
    x = fitted._to_input(digits[1][:8])
    with torch.no_grad():
        e.train(), d.train()
        z_all, z_one = e(x), torch.cat([e(x[i : i + 1]) for i in range(8)])
        d_all, d_one = d(x), torch.cat([d(x[i : i + 1]) for i in range(8)])
        e.eval(), d.eval()
    torch.testing.assert_close(z_all, z_one, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(d_all, d_one, rtol=1e-3)  # the critic's stddev feature does


# -------------------------------------------------------- encoder step
@pytest.mark.parametrize("target,loss", [("ema", "image"), ("g", "image"), ("g", "latent")])
def test_encoder_step_gives_gradients_to_the_encoder_only(digits, target, loss):
    det = Berg(**{**TINY, "epochs": 0, "encoder_target": target, "encoder_loss": loss}).fit(digits[0][:32])
    lv = Level(1, 1, 8, 0.5)  # mid fade-in: both toRGB / fromRGB paths are live
    opts = det._make_optimizers()
    e_params = list(det.nets_["e"].parameters())
    torch.manual_seed(5)
    expected = torch.autograd.grad(det._e_loss(torch.randn(16, 8), lv), e_params)
    before = {k: [p.detach().clone() for p in det.nets_[k].parameters()] for k in ("g", "g_ema", "d", "e")}
    for p in det.nets_.parameters():
        p.grad = None
    torch.manual_seed(5)  # the step draws the same z
    det._e_update(16, lv, opts["opt_e"], torch.device("cpu"))
    for k in ("g", "g_ema", "d"):
        assert all(p.grad is None for p in det.nets_[k].parameters()), f"{k} got a gradient from L_E"
        assert all(torch.equal(a, b) for a, b in zip(before[k], det.nets_[k].parameters())), f"{k} changed"
    for p, want in zip(e_params, expected):  # E's gradient is L_E's, nothing else
        torch.testing.assert_close(p.grad, want)
    assert any(not torch.equal(a, b) for a, b in zip(before["e"], e_params))
    assert sum(float(w.abs().sum()) for w in expected) > 0
    if loss == "latent":  # Eq. 7, d_z = mean |z - E(G(z))|
        z = torch.randn(4, 8)
        with torch.no_grad():
            want = (z - det.nets_["e"](det.nets_["g"](z, 8, 0.5), 0.5)).abs().mean()
            torch.testing.assert_close(det._e_loss(z, lv), want)


@pytest.mark.parametrize("loss", ["image", "latent"])
def test_the_image_loss_never_trains_the_length_of_the_code(digits, loss):
    """G pixel-normalises its input, so G(c z) = G(z) for c > 0 and Eq. 6's d_I is flat along
    ||E(G(z))||: the length that L_o (Eq. 4) scores is never trained; Eq. 7's d_z trains it."""
    det = Berg(**{**TINY, "epochs": 0, "encoder_loss": loss}).fit(digits[0][:32])
    lv = Level(1, 1, 8, 0.5)
    gen, e = det._generator_for_encoder(), det.nets_["e"]
    torch.manual_seed(3)
    z = torch.randn(16, 8)
    with torch.no_grad():
        x_fake = gen(z, lv.resolution, lv.alpha)
        torch.testing.assert_close(gen(3.0 * z, lv.resolution, lv.alpha), x_fake, rtol=1e-5, atol=1e-6)
        z_hat = e(x_fake, lv.alpha)
    scale = torch.ones((), requires_grad=True)  # d L_E / d (the codes' common length) at the trained point
    if loss == "image":
        l_e = (x_fake - gen(scale * z_hat, lv.resolution, lv.alpha)).abs().mean()
    else:
        l_e = (z - scale * z_hat).abs().mean()
    (grad,) = torch.autograd.grad(l_e, scale)
    if loss == "image":
        assert abs(float(grad)) < 1e-6
    else:
        assert abs(float(grad)) > 1e-3


# ------------------------------------------------------- growth schedule
def test_schedule_is_pggans_fade_and_stable_phases():
    sched = growth_schedule(32, 100)
    assert sched == (Stage(4, 0, 100), Stage(8, 100, 100), Stage(16, 100, 100), Stage(32, 100, None))
    points = {
        0: Level(0, 0, 4, 1.0), 99: Level(0, 0, 4, 1.0), 100: Level(1, 1, 8, 0.0), 150: Level(1, 1, 8, 0.5),
        200: Level(2, 1, 8, 1.0), 300: Level(3, 2, 16, 0.0), 499: Level(4, 2, 16, 1.0), 500: Level(5, 3, 32, 0.0),
        575: Level(5, 3, 32, 0.75), 600: Level(6, 3, 32, 1.0), 10**7: Level(6, 3, 32, 1.0),
    }
    for images, want in points.items():
        assert level_at(sched, images) == want, images
    assert [s.resolution for s in growth_schedule(8, 5)] == [4, 8]


def test_real_images_at_lower_levels_are_pooled_and_blended():
    x = torch.randn(3, 1, 32, 32)
    torch.testing.assert_close(real_at_level(x, 32), x)
    torch.testing.assert_close(real_at_level(x, 8), F.avg_pool2d(x, 4))
    low = F.interpolate(F.avg_pool2d(x, 8), scale_factor=2, mode="nearest")
    torch.testing.assert_close(real_at_level(x, 8, 0.0), low)
    torch.testing.assert_close(real_at_level(x, 8, 0.25), 0.75 * low + 0.25 * F.avg_pool2d(x, 4))


def test_growth_reaches_32px_through_the_fade_in_with_optimiser_resets(digits, monkeypatch):
    # 40 images (28x28, padded to 32) in batches of 8, 16 images per phase: two steps per phase
    seen = []
    real_update = Berg._d_update

    def spy(self, xb, lv, opt):
        seen.append((lv, len(opt.state), xb.shape[-1]))
        return real_update(self, xb, lv, opt)

    monkeypatch.setattr(Berg, "_d_update", spy)
    x = resize(digits[0][:40], 28)
    det = Berg(**{**TINY, "batch_size": 8, "epochs": 3}).fit(x)
    levels = [s[0] for s in seen]
    assert [(lv.resolution, lv.alpha) for lv in levels] == [
        (4, 1.0), (4, 1.0), (8, 0.0), (8, 0.5), (8, 1.0), (8, 1.0), (16, 0.0), (16, 0.5), (16, 1.0), (16, 1.0),
        (32, 0.0), (32, 0.5), (32, 1.0), (32, 1.0), (32, 1.0),
    ]
    assert all(side == 32 for *_, side in seen)  # the batch comes at full size; the step pools it
    new_phase = [t == 0 or levels[t].phase != levels[t - 1].phase for t in range(len(levels))]
    assert [n == 0 for _, n, _ in seen] == new_phase  # Adam's state is fresh exactly at each new phase
    assert det.level_ == Level(6, 3, 32, 1.0) and det.image_size_ == 32
    with torch.no_grad():
        assert det.nets_["g_ema"](torch.randn(2, 8), det.level_.resolution).shape == (2, 1, 32, 32)
    assert det.anomaly_map(x[:3]).shape == (3, 28, 28) and np.isfinite(det.decision_function(x[:3])).all()


def test_a_run_too_short_to_grow_says_so_and_scores_at_the_level_it_reached(digits):
    with pytest.warns(UserWarning, match="ends at 4 px"):
        det = Berg(**{**TINY, "images_per_stage": 1000}).fit(digits[0][:32])
    assert det.level_ == Level(0, 0, 4, 1.0)
    assert np.isfinite(det.decision_function(digits[1][:4])).all()


def test_resume_across_a_phase_boundary_equals_an_uninterrupted_run(digits, tmp_path, monkeypatch):
    # 64 images in batches of 16: epoch 1 is 4 px (steps 0-1) and the fade to 8 px (steps 2-3);
    # the first step after the kill (step 4) starts the 8 px stable phase and resets Adam
    x, test = digits[0][:64], digits[1][:20]
    kw = {**TINY, "images_per_stage": 32, "epochs": 2}
    straight = Berg(**kw).fit(x)
    ck = str(tmp_path / "ck.pt")
    real_save = train._save_checkpoint

    def save_then_die(path, payload):
        real_save(path, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        Berg(**{**kw, "checkpoint": ck}).fit(x)
    monkeypatch.setattr(train, "_save_checkpoint", real_save)
    det = Berg(**{**kw, "checkpoint": ck}).fit(x)
    assert det.history_.resumed_from == 1 and det.level_ == straight.level_ == Level(2, 1, 8, 1.0)
    np.testing.assert_array_equal(det.decision_function(test), straight.decision_function(test))


# ------------------------------------------------------------------ nets
def test_fused_resampling_convs_equal_upsample_then_conv_and_conv_then_pool():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8, 8)
    up, down, plain = (EqualizedConv2d(5, 7, 3, resample=r) for r in ("up", "down", None))
    with torch.no_grad():
        plain.bias.normal_()
        for m in (up, down):
            m.weight.copy_(plain.weight), m.bias.copy_(plain.bias)
        torch.testing.assert_close(up(x), plain(F.interpolate(x, scale_factor=2, mode="nearest")), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(down(x), F.avg_pool2d(plain(x), 2), rtol=1e-5, atol=1e-5)


def test_the_paper_nets_have_512_channels_at_every_level_to_32px():
    g, d = ProgressiveGenerator(32, 3, 512, 512), ProgressiveCritic(32, 3, 512)
    e = ProgressiveEncoder(32, 3, 512, 512)
    assert g.dense.weight.shape == (512 * 16, 512) and all(b[1].weight.shape[:2] == (512, 512) for b in g.blocks)
    assert [m.weight.shape[0] for m in d.from_rgb] == [512] * 4 and d.conv4.weight.shape[1] == 513  # + stddev map
    assert e.conv4.weight.shape[1] == 512 and e.dense0.weight.shape == (512, 512 * 16)
    assert d.dense1.weight.shape == (1, 512) and not hasattr(e, "dense1")
    small = ProgressiveGenerator(64, 1, 32, 64)  # nf halves above 32 px: min(16 w / 2^s, w)
    assert [b[1].weight.shape[0] for b in small.blocks] == [64, 64, 64, 32]


# ----------------------------------------------------------- precision
def test_bf16_training_and_scoring(digits):
    det = Berg(**{**TINY, "precision": "bf16", "epochs": 2}).fit(digits[0][:32])
    parts = det.score_parts(digits[1][:8])
    assert all(np.isfinite(v).all() for v in parts.values())
    assert all(np.isfinite(v).all() for v in det.history_.losses.values())


# ------------------------------------------- f-AnoGAN's rows of Table 2
def test_fanogan_scores_table_2_rows_a_to_d_from_one_fit(digits):
    from ganad.models.fanogan import FAnoGAN

    det = FAnoGAN(width=4, nz=4, batch_size=8, epochs=1, encoder_epochs=1, device="cpu", random_state=0).fit(digits[0][:32])
    x = digits[1][:9]
    parts = det.score_parts(x)
    assert {"image", "feature", "score", "l_r", "l_n", "l_o"} == set(parts)
    np.testing.assert_allclose(parts["score"], parts["image"] + parts["feature"], rtol=1e-6)  # A, the default
    np.testing.assert_allclose(parts["l_r"], 0.5 * np.sqrt(64 * parts["image"]), rtol=1e-5)
    q = det._to_input(x)
    with torch.no_grad():
        z = det.nets_["e"].eval()(q)
        rec = det.nets_["g"].eval()(z)
    np.testing.assert_allclose(parts["l_o"], (-z.norm(dim=1) / 2).numpy(), rtol=1e-5)
    np.testing.assert_allclose(parts["l_n"], ((minmax_unit(q) - minmax_unit(rec)).norm(dim=1) / 64).numpy(), rtol=1e-5)


# -------------------------------------------------------------- params
def test_registry_defaults_and_parameter_checks(digits):
    d = ganad.create("berg")
    assert isinstance(d, Berg)
    assert (d.nz, d.lr, d.beta1, d.beta2, d.gp_weight, d.drift, d.ema_decay) == (512, 1e-3, 0.0, 0.99, 10.0, 1e-3, 0.999)
    assert (d.lam, d.kappa, d.encoder_loss, d.encoder_target, d.stddev_group, d.batch_size) == (0.05, 1.0, "image", "ema", 4, 64)
    bad = [
        ("encoder_loss", "l2"), ("encoder_target", "d"), ("lam", 1.5), ("images_per_stage", 0), ("drift", -1.0),
        ("ema_decay", 1.0), ("stddev_group", -1), ("width", 1), ("nz", 2.5), ("kappa", float("nan")),
    ]
    for name, value in bad:
        with pytest.raises(ValueError, match=name):
            Berg(**{**TINY, name: value}).fit(digits[0][:16])
