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


# ------------------------------------------------------------------ validation anomalies, contamination, Berg layout
def test_exact_validation_anomaly_counts(toy):
    s = P.one_class(*toy, normal_class=3, val_anomalies=4)
    assert s.val.n_anomalous == 4 and (s.val.y == 0).sum() == 5
    assert ids(s.train) == ids(P.one_class(*toy, normal_class=3, val_anomalies=0).train)  # training unchanged
    a = P.one_anomalous(*toy, anomalous_class=7, val_anomalies=6)
    assert a.val.n_anomalous == 6 and (a.val.labels[a.val.y == 1] == 7).all() and a.test.y.sum() == 20
    pooled = P.one_anomalous(*toy, anomalous_class=7, pooled=True, val_anomalies=6)
    assert pooled.val.n_anomalous == 6 and pooled.test.y.sum() == 70 - 6
    assert_disjoint(pooled)


@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.2])
def test_contamination_gamma_and_no_test_image_in_training(toy, gamma):
    s = P.contamination(*toy, normal_class=2, gamma=gamma, val_fraction=0.2)
    one = P.one_class(*toy, normal_class=2, val_fraction=0.2)
    n_a = s.train.y.sum()
    assert n_a == round(gamma * 40 / (1 - gamma)) and s.info["n_anomalies_in_train"] == n_a
    assert set(s.train.labels[s.train.y == 0]) == {2} and (s.train.labels[s.train.y == 1] != 2).all()
    assert all(i < 1000 for i in ids(s.train)) and not ids(s.train) & ids(s.test)  # no test image in training
    assert ids(s.test) == ids(one.test) and len(s.test) == 200
    assert_disjoint(s)
    if gamma == 0:  # N_a = 0: the one-class training set
        assert ids(s.train) == ids(one.train)


def test_contamination_training_does_not_depend_on_validation_anomalies(toy):
    a = P.contamination(*toy, normal_class=4, gamma=0.2, val_anomalies=0, random_state=3)
    b = P.contamination(*toy, normal_class=4, gamma=0.2, val_anomalies=9, random_state=3)
    assert ids(a.train) == ids(b.train) and a.val.n_anomalous == 0 and b.val.n_anomalous == 9
    assert not ids(b.train) & ids(b.val)


def test_berg_test_layout(toy):
    labels = toy[3]
    idx = P.berg_test_layout(labels, 5, random_state=0)
    assert len(idx) == 40 and len(np.unique(idx)) == 40 and idx.min() >= 0 and idx.max() < len(labels)
    assert (labels[idx] == 5).sum() == 20 and set(np.flatnonzero(labels == 5)) <= set(idx.tolist())
    assert np.array_equal(idx, P.berg_test_layout(labels, 5, random_state=0))
    assert not np.array_equal(idx, P.berg_test_layout(labels, 5, random_state=1))
    with pytest.raises(ValueError, match="no test image"):
        P.berg_test_layout(labels, 11)


@needs_fmnist
def test_berg_test_layout_fashion_mnist_counts():
    s = datasets.fashion_mnist(protocol="contamination", normal_class=6, gamma=0.05, random_state=2)
    idx = P.berg_test_layout(s.test.labels, 6, random_state=2)
    assert len(idx) == 2000 and s.test.y[idx].sum() == 1000 and (s.test.labels[idx][s.test.y[idx] == 0] == 6).all()
    assert len(s.train) == 5400 + round(0.05 * 5400 / 0.95) and s.train.y.sum() == 284


# ------------------------------------------------------------------ out-of-distribution sets
def _unique_images(n, start):
    """(n, 4, 4) uint8 images, each with its id in the top row, the rest zero (so a flip or inversion
    of one is no image of the set)."""
    x = np.zeros((n, 4, 4), np.uint8)
    i = np.arange(start, start + n)
    x[:, 0, 0], x[:, 0, 1], x[:, 0, 2] = i // 256, i % 256, 1
    return x


def _img_ids(x):
    return {bytes(a.tobytes()) for a in np.asarray(x).reshape(len(x), -1)}


@pytest.mark.parametrize("name", ["fashion-mnist-vflip", "fashion-mnist-invert"])
def test_flipped_or_inverted_anomalies_are_not_the_test_normals(name):
    source = datasets.ood_source(name, "fashion-mnist")
    fn = source["holdout_transform"]
    x_tr, x_te = _unique_images(500, 0), _unique_images(100, 500)
    s = P.ood(x_tr, x_te, anomaly_ratio=0.2, val_fraction=0.1, random_state=0, **source)
    anom = s.test.x[s.test.y == 1]
    assert len(anom) == 20 and (s.test.y == 0).sum() == 100 and s.info["anomaly_source"] == "holdout"
    sources = _img_ids(fn(anom))  # the images the anomalies were made of (both transforms are involutions)
    assert sources <= _img_ids(x_tr[:, None])  # training-split images ...
    assert not sources & _img_ids(s.test.x[s.test.y == 0])  # ... none of them a test normal
    assert not sources & (_img_ids(s.train.x) | _img_ids(s.val.x))  # nor trained on, nor in validation
    assert not _img_ids(anom) & _img_ids(np.concatenate([x_tr, x_te])[:, None])  # and transformed
    assert len(s.train) + len(s.val) + 20 == 500 and len(s.val) == 50 - 20
    # the training set does not depend on the anomaly source
    plain = P.ood(x_tr, x_te, _unique_images(50, 1000), anomaly_ratio=0.2, random_state=0)
    assert _img_ids(plain.train.x) == _img_ids(s.train.x)
    # nor does the validation set: the transform pool leaves it for every source
    assert _img_ids(plain.val.x) == _img_ids(s.val.x) and len(plain.val) == 30


@pytest.mark.parametrize("name", ["digits", "uniform-noise", "gaussian-noise"])
def test_ood_sets_shape_dtype_count(name):
    rng = np.random.default_rng(0)
    x_tr = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8)
    x_te = rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    source = datasets.ood_source(name, "fashion-mnist")
    s = P.ood(x_tr, x_te, anomaly_ratio=0.2, random_state=5, **source)
    anom = s.test.x[s.test.y == 1]
    assert anom.shape == (200, 1, 28, 28) and anom.dtype == np.uint8 and (s.test.labels[s.test.y == 1] == -1).all()
    again = P.ood(x_tr, x_te, anomaly_ratio=0.2, random_state=5, **source).test.x
    assert np.array_equal(again, s.test.x)  # seeded
    if name == "digits":
        assert len(source["x_other"]) == 1797 and source["x_other"].shape[1:] == (8, 8)
    else:
        other_seed = P.ood(x_tr, x_te, anomaly_ratio=0.2, random_state=6, **source).test.x
        assert not np.array_equal(other_seed[-200:], anom)
        mean, std = anom.mean() / 255, anom.std() / 255
        if name == "uniform-noise":
            assert abs(mean - 0.5) < 0.01 and abs(std - 1 / np.sqrt(12)) < 0.01
        else:  # N(0.5, 0.25) clipped to [0, 1]: the clipping shrinks the std a little
            assert abs(mean - datasets.GAUSSIAN_NOISE_MEAN) < 0.01 and 0.2 < std < datasets.GAUSSIAN_NOISE_STD


def test_ood_trains_on_the_training_split_less_validation_and_test_subset_keeps_the_ratio():
    s = datasets.digits("ood", other="uniform-noise", random_state=0)
    n_train = len(datasets.digits_arrays()[0])
    assert len(s.train) + len(s.val) == n_train and s.val.y.sum() == 0 and s.train.y.sum() == 0
    assert s.test.y.sum() == round(0.2 * (s.test.y == 0).sum()) and (s.test.y == 0).sum() == 899
    sub = datasets.digits("ood", other="uniform-noise", random_state=0, test_subset=600, train_subset=200)
    assert len(sub.test) == 600 and sub.test.y.sum() == 100 and len(sub.train) == 200
    assert sub.info["test_subset"] == 600 and sub.info["train_subset"] == 200
    with pytest.raises(ValueError, match="unknown out-of-distribution set"):
        datasets.digits("ood", other="no-such-set")


def test_ood_other_from_a_file(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (400, 16, 16), dtype=np.uint8)
    np.save(tmp_path / "other.npy", x)
    s = datasets.digits("ood", other=str(tmp_path / "other.npy"), random_state=0)
    assert s.test.x.shape[1:] == (1, 8, 8) and s.test.y.sum() == 180 and s.info["other"].endswith("other.npy")


@needs_fmnist
def test_fashion_mnist_ood_sets():
    for name in datasets.OOD_SETS:
        kw = {"test_subset": 6000} if name == "digits" else {}
        s = datasets.fashion_mnist("ood", other=name, random_state=0, train_subset=500, **kw)
        n_norm = (s.test.y == 0).sum()
        assert s.test.x.shape[1:] == (1, 28, 28) and s.test.x.dtype == np.uint8, name
        assert s.test.y.sum() == round(0.2 * n_norm) and n_norm == (5000 if name == "digits" else 10000), name
        assert len(s.train) == 500 and set(s.test.labels[s.test.y == 0]) == set(range(10)), name
    with pytest.raises(ValueError, match="digits|anomalies"):  # 2,000 anomalies needed, 1,797 digits
        datasets.fashion_mnist("ood", other="digits", random_state=0)
