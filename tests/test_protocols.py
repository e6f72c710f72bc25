"""Protocols: sizes, label orientation (1 = anomalous), determinism, no leakage between splits."""

import numpy as np
import pytest

from ganad import datasets
from ganad.data import protocols as P

from conftest import needs_fmnist


@pytest.fixture(scope="module")
def toy():
    """10 classes; each image's single pixel holds its unique id, so leakage is checkable."""
    rng = np.random.default_rng(1)
    y_tr = np.repeat(np.arange(10), 50)
    y_te = np.repeat(np.arange(10), 20)
    x_tr = np.arange(500, dtype=np.float32).reshape(500, 1, 1)
    x_te = (1000 + np.arange(200, dtype=np.float32)).reshape(200, 1, 1)
    perm = rng.permutation(500)
    return x_tr[perm], y_tr[perm], x_te, y_te


def ids(sub):
    return set(sub.x.reshape(len(sub), -1)[:, 0].tolist())


def assert_disjoint(split):
    a, b, c = ids(split.train), ids(split.val), ids(split.test)
    assert not (a & b) and not (a & c) and not (b & c)
    assert len(a) == len(split.train) and len(b) == len(split.val)


def test_one_class(toy):
    s = P.one_class(*toy, normal_class=3, val_fraction=0.2, random_state=0)
    assert len(s.train) == 40 and s.train.y.sum() == 0 and set(s.train.labels) == {3}
    assert len(s.test) == 200 and s.test.y.sum() == 180
    assert np.array_equal(s.test.y, (s.test.labels != 3).astype(int))
    assert s.val.y.sum() == 10 and (s.val.y == 0).sum() == 10  # anomalies from the training split
    assert all(i < 1000 for i in ids(s.val))  # never test images
    assert_disjoint(s)


def test_one_class_normal_only_validation(toy):
    s = P.one_class(*toy, normal_class=3, val_anomaly_ratio=0.0)
    assert s.val.y.sum() == 0 and len(s.val) == 5


def test_deterministic_and_seeded(toy):
    a = P.one_class(*toy, normal_class=1, random_state=5)
    b = P.one_class(*toy, normal_class=1, random_state=5)
    c = P.one_class(*toy, normal_class=1, random_state=6)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.val.x, b.val.x)
    assert ids(a.val) != ids(c.val)


def test_one_anomalous(toy):
    s = P.one_anomalous(*toy, anomalous_class=7)
    assert s.train.y.sum() == 0 and 7 not in set(s.train.labels)
    assert len(s.train) + len(s.val) == 450
    assert s.test.y.sum() == 20 and np.array_equal(s.test.y, (s.test.labels == 7).astype(int))
    assert_disjoint(s)


def test_one_anomalous_pooled(toy):
    s = P.one_anomalous(*toy, anomalous_class=7, pooled=True, test_fraction=0.2, val_anomaly_ratio=0.0)
    n_normal = 450 + 180
    assert (s.test.y == 0).sum() == round(0.2 * n_normal)
    assert s.test.y.sum() == 70  # every anomaly of train and test
    assert len(s.train) + len(s.val) + (s.test.y == 0).sum() == n_normal
    assert_disjoint(s)


def test_contamination_share(toy):
    s = P.contamination(*toy, normal_class=2, gamma=0.2, val_fraction=0.2)
    n_a = s.train.y.sum()
    assert n_a == round(0.2 * 40 / 0.8) == 10
    assert n_a / len(s.train) == pytest.approx(0.2)
    assert_disjoint(s)


def test_ood_ratio_resize_and_channels():
    rng = np.random.default_rng(0)
    x_tr = rng.integers(0, 256, (100, 8, 8), dtype=np.uint8)
    x_te = rng.integers(0, 256, (50, 8, 8), dtype=np.uint8)
    other = rng.random((40, 3, 16, 16)).astype(np.float32)
    s = P.ood(x_tr, x_te, other, anomaly_ratio=0.2)
    assert s.test.x.shape == (60, 1, 8, 8) and s.test.x.dtype == np.uint8
    assert s.test.y.sum() == 10 and (s.test.labels[s.test.y == 1] == -1).all()
    with pytest.raises(ValueError, match="anomaly_ratio"):
        P.ood(x_tr, x_te, other, anomaly_ratio=1.0)


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"protocol": "one-class"}, "normal_class"),
        ({"protocol": "one-class", "normal_class": 12}, "normal_class must be one of"),
        ({"protocol": "nope", "normal_class": 1}, "unknown protocol"),
        ({"protocol": "contamination", "normal_class": 1, "gamma": 1.5}, "gamma"),
        ({"protocol": "one-class", "normal_class": 1, "val_fraction": 1.2}, "val_fraction"),
    ],
)
def test_bad_protocol_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        datasets.digits(**kw)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.make_split("imagenet", normal_class=0)


def test_digits_split_is_real_and_uint8(digits_split):
    s = digits_split
    assert s.train.x.dtype == np.uint8 and s.train.x.shape[1:] == (8, 8)
    assert s.test.y.mean() == pytest.approx(0.9, abs=0.01)


@needs_fmnist
def test_fashion_mnist_one_class_sizes():
    s = datasets.fashion_mnist(protocol="one-class", normal_class=3, random_state=0)
    assert len(s.train) == 5400 and len(s.test) == 10000 and s.test.y.sum() == 9000
    assert s.train.x.dtype == np.uint8 and s.train.x.shape[1:] == (28, 28)
    assert len(s.val) == 1200 and s.val.y.sum() == 600


def test_test_subset_is_seeded_and_consistent(toy):
    full = P.one_class(*toy, normal_class=2, random_state=0)
    a = P.subsample_test(P.one_class(*toy, normal_class=2, random_state=0), 50, 0)
    b = P.subsample_test(P.one_class(*toy, normal_class=2, random_state=0), 50, 0)
    assert len(a.test) == 50 and a.info["test_subset"] == 50
    assert ids(a.test) == ids(b.test) and ids(a.test) <= ids(full.test)
    # labels travel with their images
    assert np.array_equal(a.test.y, (a.test.labels != 2).astype(int))
    assert np.array_equal(a.train.x, full.train.x)  # only the test split changes
    assert P.subsample_test(full, None).test is full.test
    with pytest.raises(ValueError, match="at least 2"):
        P.subsample_test(P.one_class(*toy, normal_class=2), 1)


def test_make_split_test_and_train_subsets(digits_split):
    s = datasets.digits("one-anomalous", anomalous_class=0, random_state=0, test_subset=100, train_subset=200)
    full = datasets.digits("one-anomalous", anomalous_class=0, random_state=0)
    assert len(s.test) == 100 and s.info["test_subset"] == 100
    assert len(s.train) == 200 and s.info["train_subset"] == 200 and s.train.y.sum() == 0
    assert ids(s.train) <= ids(full.train) and ids(s.val) == ids(full.val)
    with pytest.raises(ValueError, match="part"):
        P.subsample(full, "val", 10)
