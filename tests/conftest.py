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


@pytest.fixture
def rng():
    return np.random.default_rng(0)
