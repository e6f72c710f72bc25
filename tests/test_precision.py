"""precision="bf16": autocast training and scoring that separates like fp32, is saved, and keeps fp32 weights."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import ganad
from ganad.losses import gradient_penalty

from conftest import digit_case

SMALL = dict(width=16, nz=16, batch_size=16, epochs=15, device="cpu", random_state=0, calibration_fraction=0.0)


@pytest.fixture(scope="module")
def digits():
    return digit_case(0)


@pytest.fixture(scope="module")
def bf16_dcae(digits):
    return ganad.create("dcae", precision="bf16", **SMALL).fit(digits[0])


def test_bf16_fit_separates_held_out_digits(bf16_dcae, digits):
    _, test, labels = digits
    untrained = ganad.create("dcae", precision="bf16", **{**SMALL, "epochs": 0}).fit(digits[0])
    auroc = roc_auc_score(labels, bf16_dcae.decision_function(test))
    assert auroc >= 0.95 and auroc >= roc_auc_score(labels, untrained.decision_function(test)) + 0.1
    assert all(p.dtype == torch.float32 for p in bf16_dcae.nets_.parameters())  # fp32 master weights


def test_bf16_and_fp32_scores_of_one_model_agree(bf16_dcae, digits):
    # bf16 has an 8-bit mantissa: per-image scores agree to ~1% and keep their order
    test = digits[1]
    bf16 = bf16_dcae.decision_function(test)
    fp32 = bf16_dcae.set_params(precision="fp32").decision_function(test)
    bf16_dcae.set_params(precision="bf16")
    np.testing.assert_allclose(bf16, fp32, rtol=0.03)
    assert np.corrcoef(np.argsort(np.argsort(bf16)), np.argsort(np.argsort(fp32)))[0, 1] > 0.99


def test_precision_is_saved_and_a_loaded_model_scores_in_it(bf16_dcae, digits, tmp_path):
    bf16_dcae.save(tmp_path / "m.pt")
    loaded = ganad.load(tmp_path / "m.pt")
    assert loaded.precision == "bf16"
    np.testing.assert_array_equal(loaded.decision_function(digits[1]), bf16_dcae.decision_function(digits[1]))
    with pytest.raises(ValueError, match="precision"):
        ganad.create("dcae", precision="fp8", **SMALL).fit(digits[0])


def test_gradient_penalty_is_fp32_under_autocast():
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    real, fake = torch.randn(32, 1, 8, 8), torch.randn(32, 1, 8, 8)
    ref = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert got.dtype == torch.float32 and torch.allclose(got, ref, rtol=1e-6)


@pytest.mark.parametrize("name,kw", [("anogan", dict(search_steps=20)), ("adgan", dict(n_seed=4, k=3, lr=2e-3))])
def test_latent_search_in_bf16_matches_fp32_order(name, kw, digits):
    train, test, labels = digits
    params = {**SMALL, "epochs": 10, **kw}
    det = ganad.create(name, **params).fit(train)
    fp32 = det.decision_function(test)
    bf16 = det.set_params(precision="bf16").decision_function(test)
    # the search takes its steps on bf16 activations: scores move by a few %, AUROC by <= 0.02
    assert abs(roc_auc_score(labels, bf16) - roc_auc_score(labels, fp32)) <= 0.02
    np.testing.assert_allclose(bf16, fp32, rtol=0.15)


@pytest.mark.parametrize("precision, layout", [("bf16", torch.channels_last), ("fp32", torch.contiguous_format)])
def test_bf16_trains_conv_nets_channels_last_and_gives_the_default_layout_back(precision, layout, digits):
    seen: list[bool] = []  # per training forward of the second conv: did its input have ``layout``?
    det = ganad.create("dcae", precision=precision, **{**SMALL, "epochs": 1})
    build = det._build

    def build_with_probe(*a, **k):
        build(*a, **k)
        second = [m for m in det.nets_.modules() if isinstance(m, torch.nn.Conv2d)][1]  # C > 1: layouts differ
        second.register_forward_pre_hook(
            lambda m, args: seen.append(args[0].is_contiguous(memory_format=layout)) if m.training else None)

    det._build = build_with_probe
    det.fit(digits[0])
    assert seen and all(seen)
    assert all(p.is_contiguous() for p in det.nets_.parameters())  # saved weights keep the default layout


@pytest.mark.parametrize("precision, fused", [("bf16", True), ("fp32", None)])
def test_bf16_on_cpu_steps_adam_with_the_fused_kernel(precision, fused, digits, tmp_path):
    det = ganad.create("dcae", precision=precision, checkpoint=tmp_path / "ck.pt", **{**SMALL, "epochs": 1})
    det.fit(digits[0])
    from ganad.train import load_checkpoint

    groups = load_checkpoint(tmp_path / "ck.pt")["state"]["opt"]["param_groups"]
    assert [g.get("fused") for g in groups] == [fused] * len(groups)


def test_bf16_scores_a_batchnorm_folded_copy_and_gives_the_trained_nets_back(digits):
    det = ganad.create("ganomaly", precision="bf16", min_steps=0, **{**SMALL, "epochs": 2})
    det.fit(digits[0])
    test = digits[1]
    trained = det.nets_
    seen = []
    real_score_batch = det._score_batch

    def spy(batch):
        seen.append(det.nets_)
        return real_score_batch(batch)

    det._score_batch = spy
    parts = det.score_parts(test)
    del det._score_batch
    assert det.nets_ is trained and seen and all(n is not trained for n in seen)  # a copy during the pass only
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in seen[0]["g"].modules())  # all of G's BN folded
    assert all(m.weight.is_contiguous() for m in trained.modules() if isinstance(m, torch.nn.Conv2d))
    fp32 = det.set_params(precision="fp32").score_parts(test)  # the nets as trained
    det.set_params(precision="bf16")
    for k in ("latent", "reconstruction"):
        np.testing.assert_allclose(parts[k], fp32[k], rtol=0.05, atol=1e-3)
        assert np.corrcoef(parts[k], fp32[k])[0, 1] > 0.999
