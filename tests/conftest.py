"""Shared fixtures: small real data (scikit-learn's digits) and thread limits."""

import os

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
needs_fmnist = pytest.mark.skipif(
    not os.path.exists(os.path.join(FMNIST_DIR, "train-images-idx3-ubyte.gz"))
    and not os.environ.get("GANAD_DATA"),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist, or set GANAD_DATA)",
)


@pytest.fixture(scope="session")
def digits_split():
    from ganad import datasets

    return datasets.digits(protocol="one-class", normal_class=0, random_state=0)


@pytest.fixture(scope="session")
def digits_arrays():
    from ganad.datasets import digits_arrays

    return digits_arrays()


def digit_case(normal: int, n_train: int = 120, n_others: int = 200, seed: int = 0):
    """One digit of scikit-learn's 8x8 digits as the normal class, as uint8 images:
    (n_train training images of it, test = its other images + n_others images of
    the other digits, test labels with 1 = anomalous)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * 255 / 16).round().astype(np.uint8)
    rng = np.random.RandomState(seed)
    normal_idx = rng.permutation(np.flatnonzero(d.target == normal))
    others = rng.permutation(np.flatnonzero(d.target != normal))[:n_others]
    test = np.concatenate([x[normal_idx[n_train:]], x[others]])
    labels = np.r_[np.zeros(len(normal_idx) - n_train), np.ones(len(others))]
    return x[normal_idx[:n_train]], test, labels


@pytest.fixture
def rng():
    return np.random.default_rng(0)


#: per-model changes to ``ganad.bench.calibration.fast_params`` for the suites that fit every
#: model (a key a model does not take is ignored).  GANomaly's min_steps would raise ``epochs``
#: on 80 images to 75 (slow, and epochs 1 and 2 would be the same run, so a resume check would
#: check nothing); the latent searches get enough steps that batch mates could leak into them.
TINY_OVERRIDES: dict[str, dict] = {
    "ganomaly": {"min_steps": 0},
    "skipganomaly": {"min_steps": 0},
    "anogan": {"search_steps": 20},
    "adgan": {"k": 5},
    # AMA's SNGAN nets at their reference widths (256/128) cost seconds per tiny fit
    "ama": {"nz": 8, "enc_width": 4, "gen_width": 8, "critic_width": 8, "batch_size": 32, "device": "cpu"},
    # the A-score wrapper around a tiny DCAE (the contract then covers an image-only base; its
    # default base, kde, is covered by test_typical.py and test_calibration.py)
    "typical": {"base": "dcae", "base_params": {"width": 8, "nz": 8, "batch_size": 32, "epochs": 1, "device": "cpu"}},
    # progressive growth 4 -> 8 px within the first epoch (72 images in 4 batches of 16)
    "berg": {"width": 8, "nz": 8, "batch_size": 16, "images_per_stage": 16, "device": "cpu"},
}


def tiny(name: str, **extra) -> dict:
    """Short settings for fitting ``name`` in a test: ``fast_params`` + TINY_OVERRIDES + ``extra``."""
    from ganad.bench.calibration import fast_params
    from ganad.registry import get_class

    takes = get_class(name)._param_names()
    over = {k: v for k, v in TINY_OVERRIDES.get(name, {}).items() if k in takes}
    return {**fast_params(name), "random_state": 0, **over, **extra}


@pytest.fixture(scope="module")
def fitted(digits_split):
    """``fitted(name)``: the tiny model of ``name`` fitted on the digit-0 training images, once per module."""
    import ganad

    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = ganad.create(name, **tiny(name)).fit(digits_split.train.x)
        return cache[name]

    return get
