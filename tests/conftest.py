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
