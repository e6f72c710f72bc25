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
    key = _canonical(name)
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


# ------------------------------------------------------------------ out-of-distribution sets
#: Offline out-of-distribution sets for the ``ood`` protocol (``ganad bench --other NAME``), besides
#: any dataset name (its test images), a folder of images or an ``.npy``/``.npz``/``.csv`` file.
OOD_SETS = ("digits", "uniform-noise", "gaussian-noise", "fashion-mnist-vflip", "fashion-mnist-invert")
#: Gaussian noise in [0, 1] units, before clipping to [0, 1] and quantising to uint8.
GAUSSIAN_NOISE_MEAN, GAUSSIAN_NOISE_STD = 0.5, 0.25
_TRANSFORMS = ("vflip", "invert")


def _canonical(name: str) -> str:
    key = name.lower().replace("_", "-")
    return {"fmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)


def vflip(x: np.ndarray) -> np.ndarray:
    """Images upside down (flipped along the height axis)."""
    return np.ascontiguousarray(x[..., ::-1, :])


def invert(x: np.ndarray) -> np.ndarray:
    """255 - x for uint8 images, 1 - x for images in [0, 1]."""
    return (255 - x) if x.dtype == np.uint8 else (1.0 - x).astype(x.dtype)


def _noise(kind: str) -> P.Generator:
    """A seeded generator ``(n, like, rng) -> n images`` shaped and typed as ``like``'s images."""

    def generate(n: int, like: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shape = (int(n), *like.shape[1:])
        if kind == "uniform":
            if like.dtype == np.uint8:
                return rng.integers(0, 256, shape, dtype=np.uint8)
            return rng.random(shape, dtype=np.float32)
        unit = np.clip(rng.normal(GAUSSIAN_NOISE_MEAN, GAUSSIAN_NOISE_STD, shape), 0.0, 1.0)
        return np.round(unit * 255).astype(np.uint8) if like.dtype == np.uint8 else unit.astype(np.float32)

    return generate


def digits_images() -> np.ndarray:
    """All 1,797 of scikit-learn's 8x8 digits as uint8 (both halves of :func:`digits_arrays`);
    the ``ood`` protocol resizes them to the in-distribution size (bilinear, e.g. 28x28)."""
    x_tr, _, x_te, _ = digits_arrays()
    return np.concatenate([x_tr, x_te])


def ood_source(other: str | np.ndarray, dataset: str) -> dict[str, Any]:
    """The keyword arguments of :func:`ganad.data.protocols.ood` for ``other``:

    * ``"digits"``: scikit-learn's 1,797 8x8 digits (:func:`digits_images`);
    * ``"uniform-noise"``: uniform uint8 noise; ``"gaussian-noise"``: N(0.5, 0.25)
      in [0, 1] units, clipped to [0, 1]; both generated, seeded by the split's
      ``random_state``, exactly as many as the protocol needs;
    * ``"<dataset>-vflip"`` / ``"<dataset>-invert"`` (e.g. ``fashion-mnist-vflip``):
      when ``<dataset>`` is the in-distribution dataset, images of its
      training split's validation hold-out flipped upside down / inverted
      (255 - x), which then leave the validation set, so that no anomaly is a
      transformed copy of a test normal (nor of a training image); for another
      dataset, its test images transformed;
    * an existing folder of images or ``.npy``/``.npz``/``.csv`` file (read with
      :func:`ganad.data.readers.read_any`);
    * any other dataset name: its test images (found as when it is the dataset
      of a benchmark, without ``data_dir``); an array: those images.
    """
    if not isinstance(other, str):
        return {"x_other": np.asarray(other)}
    import os

    if os.path.exists(other):
        from .data import readers

        return {"x_other": readers.read_any(other)[0]}
    key = _canonical(other)
    if key == "digits":
        return {"x_other": digits_images()}
    if key in ("uniform-noise", "gaussian-noise"):
        return {"x_other": _noise(key.split("-")[0])}
    base, _, kind = key.rpartition("-")
    if kind in _TRANSFORMS and base in DATASETS:
        fn = vflip if kind == "vflip" else invert
        if base == _canonical(dataset):
            return {"holdout_transform": fn}
        return {"x_other": fn(load_arrays(base)[2])}
    if key not in DATASETS and not other.lower().endswith((".npz", ".npy", ".csv")):
        raise ValueError(f"unknown out-of-distribution set {other!r}; available: {', '.join(OOD_SETS)}, "
                         f"a dataset ({', '.join(DATASETS)}), a folder of images or an .npy/.npz/.csv file")
    return {"x_other": load_arrays(other)[2]}


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
    many test / training images (:func:`ganad.data.protocols.subsample`).
    For ``ood`` the test subset is taken of the normal test images before the
    anomalies are drawn (``test_subset / (1 + anomaly_ratio)`` normals), so that
    the anomalies stay ``anomaly_ratio`` x the normals; ``other`` is resolved by
    :func:`ood_source`."""
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
            raise ValueError("protocol 'ood' needs other= (a dataset name, an out-of-distribution set "
                             f"({', '.join(OOD_SETS)}), a folder or file of images, or an image array)")
        source = ood_source(other, name)
        if test_subset is not None:  # ood: the subset is of the normals; anomalies stay anomaly_ratio x them
            ratio = options.get("anomaly_ratio", 0.2)
            options["n_test_normals"] = int(round(test_subset / (1.0 + (ratio or 0.0))))
        split = P.ood(x_tr, x_te, random_state=random_state, y_train=y_tr, y_test=y_te, **source, **options)
        split.info["other"] = other if isinstance(other, str) else "array"
        if test_subset is not None:
            split.info["test_subset"] = int(test_subset)
            test_subset = None
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
