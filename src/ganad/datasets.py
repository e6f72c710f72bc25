"""Datasets as protocol splits: ``datasets.fashion_mnist(protocol="one-class", normal_class=0)``.

Each function reads the standard train/test arrays (see
:mod:`ganad.data.readers` for where files are looked for) and hands them to
a protocol of :mod:`ganad.data.protocols`.  Images are returned as uint8.

>>> from ganad import datasets
>>> split = datasets.digits(protocol="one-class", normal_class=0)
>>> split.train.x.shape[1:], int(split.test.y.sum()) > 0
((8, 8), True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .data import protocols as P

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def digits_arrays() -> Arrays:
    """scikit-learn's 1797 real 8x8 digits, as uint8 (0..255), split 50/50 stratified (seed 0).

    The split is fixed (it does not follow ``random_state``), so every seed
    of a benchmark is tested on the same images.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, stratify=y, random_state=0)
    return x_tr, y_tr, x_te, y_te


def labelled_file_arrays(path: str) -> Arrays:
    """A labelled data set from a file, for ``ganad bench``: an ``.npz`` holding
    ``x_train, y_train, x_test, y_test``, or ``x`` and ``y`` (split 50/50,
    stratified, seed 0, as the digits), or a ``.csv`` whose header names a
    ``label`` (or ``y``) column."""
    from sklearn.model_selection import train_test_split

    from .data import readers

    lower = path.lower()
    if lower.endswith(".npz"):
        z = readers._np_load(Path(path))
        if all(k in z for k in ("x_train", "y_train", "x_test", "y_test")):
            return z["x_train"], z["y_train"].astype(np.int64), z["x_test"], z["y_test"].astype(np.int64)
        x, y = readers.read_array(path)
    elif lower.endswith(".csv"):
        try:
            x, y = readers.read_csv(path, label_column="label")
        except ValueError:
            x, y = readers.read_csv(path, label_column="y")
    else:
        raise ValueError(f"{path}: a benchmark needs labels; pass an .npz with x and y (or x_train, y_train, "
                         f"x_test, y_test), or a .csv with a 'label' column")
    if y is None:
        raise ValueError(f"{path}: no labels (y) in this file; a benchmark needs them")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y.astype(np.int64), test_size=0.5, stratify=y, random_state=0)
    return x_tr, y_tr, x_te, y_te


def _loader(name: str) -> Callable[..., Arrays]:
    if name.lower().endswith((".npz", ".npy", ".csv")):
        return lambda data_dir=None: labelled_file_arrays(name)
    key = name.lower().replace("_", "-")
    key = {"fmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)
    if key == "digits":
        return lambda data_dir=None: digits_arrays()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    from .data import readers  # only the file-based datasets need the readers

    return getattr(readers, f"load_{key.replace('-', '_')}_arrays")


DATASETS = ("fashion-mnist", "mnist", "cifar10", "svhn", "digits")


def load_arrays(name: str, data_dir: str | None = None) -> Arrays:
    """(x_train, y_train, x_test, y_test) of a named dataset."""
    loader = _loader(name)
    return loader(data_dir) if data_dir is not None else loader()


def make_split(
    name: str,
    protocol: str = "one-class",
    *,
    normal_class: int | None = None,
    anomalous_class: int | None = None,
    gamma: float | None = None,
    other: str | np.ndarray | None = None,
    data_dir: str | None = None,
    random_state: int | None = 0,
    test_subset: int | None = None,
    train_subset: int | None = None,
    **options: Any,
) -> P.Split:
    """A protocol split of a named dataset (the functions below call this).

    ``test_subset`` / ``train_subset``: keep a fixed, seeded subset of that
    many test / training images (:func:`ganad.data.protocols.subsample`)."""
    x_tr, y_tr, x_te, y_te = load_arrays(name, data_dir)
    if protocol == "one-class":
        if normal_class is None:
            raise ValueError("protocol 'one-class' needs normal_class")
        split = P.one_class(x_tr, y_tr, x_te, y_te, normal_class, random_state=random_state, **options)
    elif protocol == "one-anomalous":
        if anomalous_class is None:
            raise ValueError("protocol 'one-anomalous' needs anomalous_class")
        split = P.one_anomalous(x_tr, y_tr, x_te, y_te, anomalous_class, random_state=random_state, **options)
    elif protocol == "contamination":
        if normal_class is None or gamma is None:
            raise ValueError("protocol 'contamination' needs normal_class and gamma")
        split = P.contamination(x_tr, y_tr, x_te, y_te, normal_class, gamma, random_state=random_state, **options)
    elif protocol == "ood":
        if other is None:
            raise ValueError("protocol 'ood' needs other= (a dataset name or an image array)")
        x_other = load_arrays(other)[2] if isinstance(other, str) else np.asarray(other)
        split = P.ood(x_tr, x_te, x_other, random_state=random_state, y_train=y_tr, y_test=y_te, **options)
        split.info["other"] = other if isinstance(other, str) else "array"
    else:
        raise ValueError(f"unknown protocol {protocol!r}; available: {', '.join(P.PROTOCOLS)}")
    split.info["dataset"] = name
    split = P.subsample(split, "train", train_subset, random_state)
    return P.subsample(split, "test", test_subset, random_state)


def fashion_mnist(protocol: str = "one-class", *, data_dir: str | None = None, **kw: Any) -> P.Split:
    """Fashion-MNIST (60k/10k, 28x28): from ``data_dir`` when given (only there), else
    ``$GANAD_DATA``, then ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``)."""
    return make_split("fashion-mnist", protocol, data_dir=data_dir, **kw)


def mnist(protocol: str = "one-class", *, data_dir: str | None = None, **kw: Any) -> P.Split:
    """MNIST in the same IDX layout, from ``data_dir`` or ``$GANAD_DATA/mnist``."""
    return make_split("mnist", protocol, data_dir=data_dir, **kw)


def cifar10(protocol: str = "one-class", *, data_dir: str | None = None, **kw: Any) -> P.Split:
    """CIFAR-10 python batches (``data_batch_1..5``, ``test_batch``) in ``data_dir``."""
    return make_split("cifar10", protocol, data_dir=data_dir, **kw)


def svhn(protocol: str = "one-class", *, data_dir: str | None = None, **kw: Any) -> P.Split:
    """SVHN format 2 (``train_32x32.mat``, ``test_32x32.mat``) in ``data_dir``."""
    return make_split("svhn", protocol, data_dir=data_dir, **kw)


def digits(protocol: str = "one-class", **kw: Any) -> P.Split:
    """scikit-learn's 8x8 digits: the embedded default data (no files needed)."""
    return make_split("digits", protocol, **kw)
