"""Evaluation protocols of the papers, as seeded, deterministic train/val/test splits.

Every protocol returns a :class:`Split` whose subsets carry ``x`` (images,
dtype as read), ``y`` (1 = anomalous, 0 = normal) and ``labels`` (the
original class labels, -1 for images from another dataset).  No image is in
two subsets (the indices are disjoint by construction and the tests check it).

* :func:`one_class` (P1; Deep SVDD, ALAD, AMA, ADGAN, Berg): class ``c`` is
  normal; train on class ``c`` of the training split less a validation part;
  test on the full test split, every other class anomalous.
* :func:`one_anomalous` (P2, "1 vs 9"; EGBAD, GANomaly, the survey): class
  ``c`` is anomalous, the other nine normal.  ``pooled=True`` gives the
  survey's/GANomaly's split: all normal images of train+test pooled and split
  80/20, the test set gets the normal 20% plus every anomalous image.
* :func:`ood`: normal = the in-distribution test split (every class);
  train on the full training split less the validation hold-out; anomalies =
  another set's images, resized and channel-matched, ``anomaly_ratio`` x the
  number of normals (AMA uses 0.2), or transformed images of the training
  split's hold-out (``holdout_transform``, e.g. flipped).
* :func:`contamination`: like one-class, with a share ``gamma`` of the
  training set made of anomalies, N_a = gamma N_n / (1 - gamma)
  (Berg et al. section 4.1.2); :func:`berg_test_layout` picks Berg et al.'s
  section 4.1.1 test layout out of the full test split.

Validation subsets: ``val_fraction`` of the normal training images are held
out.  ``val_anomaly_ratio`` (default 1.0 for one-class and contamination)
adds anomalies drawn from the *training* split's other classes (never from
the test split), so that hyper-parameters can be chosen on labelled
validation data without touching test labels; ``val_anomalies`` asks for an
exact count instead (``ganad bench --selection labelled --labelled K``).  Set
either to 0 for a normal-only validation set.  The training images do not
depend on how many validation anomalies are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .transforms import match_channels, resize


@dataclass
class Subset:
    """Images ``x``, anomaly labels ``y`` (1 = anomalous) and original class ``labels``."""

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_anomalous(self) -> int:
        return int(self.y.sum())


@dataclass
class Split:
    train: Subset
    val: Subset
    test: Subset
    protocol: str
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{n}={len(s)} ({s.n_anomalous} anomalous)" for n, s in (("train", self.train), ("val", self.val), ("test", self.test))
        )
        return f"Split({self.protocol}, {parts}, {self.info})"


PROTOCOLS = ("one-class", "one-anomalous", "ood", "contamination")


def subsample(split: Split, part: str, n: int | None, random_state: int | None = 0) -> Split:
    """Keep a fixed, seeded subset of ``n`` images of ``split.<part>`` ("train" or
    "test"; all when ``n`` is None or at least its size).  Test subsets are the
    ADGAN paper's 5,000-image subsets (section 4.3) for slow scorers; training
    subsets cap the cost of protocols whose training split is nine classes.
    The subset depends only on ``random_state`` and the subset's size, never on
    labels; ``info["<part>_subset"]`` records it."""
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test'; got {part!r}")
    sub: Subset = getattr(split, part)
    if n is None or n >= len(sub):
        return split
    if n < 2:
        raise ValueError(f"{part}_subset must be at least 2; got {n}")
    # A stream of its own per part, so that one subset does not shift the other.
    rng = np.random.default_rng([0 if random_state is None else int(random_state), 0x7E57 if part == "test" else 0x7A14])
    keep = np.sort(rng.choice(len(sub), size=int(n), replace=False))
    setattr(split, part, Subset(sub.x[keep], sub.y[keep], sub.labels[keep]))
    split.info[f"{part}_subset"] = int(n)
    return split


def subsample_test(split: Split, n: int | None, random_state: int | None = 0) -> Split:
    """:func:`subsample` of the test split."""
    return subsample(split, "test", n, random_state)


def _rng(random_state: int | None) -> np.random.Generator:
    return np.random.default_rng(random_state)


def _check_class(c: int, labels: np.ndarray, what: str) -> int:
    classes = np.unique(labels)
    if c is None or int(c) not in classes:
        raise ValueError(f"{what} must be one of {classes.tolist()}; got {c!r}")
    return int(c)


def _check_fraction(v: float, name: str, lo: float = 0.0, hi: float = 1.0) -> None:
    if not lo <= v < hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}); got {v}")


def _subset(x: np.ndarray, labels: np.ndarray, idx: np.ndarray, anomalous: np.ndarray) -> Subset:
    idx = np.sort(idx)
    return Subset(x[idx], anomalous[idx].astype(np.int64), labels[idx].astype(np.int64))


def _holdout(idx: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (kept, held out) with ``fraction`` held out."""
    idx = rng.permutation(idx)
    n_val = int(round(len(idx) * fraction))
    return idx[n_val:], idx[:n_val]


def _val_anomalies(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(pool, size=min(n, len(pool)), replace=False) if n > 0 else pool[:0]


def _stream(random_state: int | None, tag: int) -> np.random.Generator:
    """A random stream of its own (``tag``) for one seed, so that one draw does not shift another."""
    return np.random.default_rng(None if random_state is None else [int(random_state), tag])


def _n_val_anomalies(n_val_normal: int, val_anomaly_ratio: float, val_anomalies: int | None) -> int:
    if val_anomalies is not None:
        if int(val_anomalies) < 0:
            raise ValueError(f"val_anomalies must be >= 0; got {val_anomalies}")
        return int(val_anomalies)
    return int(round(n_val_normal * val_anomaly_ratio))


def _one_class_indices(
    y_train: np.ndarray, c: int, val_fraction: float, val_anomaly_ratio: float, rng: np.random.Generator,
    val_anomalies: int | None = None, exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices) of the one-class protocol; the validation
    anomalies are drawn from the other classes less ``exclude``."""
    train_idx, val_norm = _holdout(np.flatnonzero(y_train == c), val_fraction, rng)
    pool = np.flatnonzero(y_train != c)
    if exclude is not None:
        pool = np.setdiff1d(pool, exclude)
    val_anom = _val_anomalies(pool, _n_val_anomalies(len(val_norm), val_anomaly_ratio, val_anomalies), rng)
    return train_idx, np.concatenate([val_norm, val_anom])


def one_class(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    normal_class: int,
    *,
    val_fraction: float = 0.1,
    val_anomaly_ratio: float = 1.0,
    val_anomalies: int | None = None,
    random_state: int | None = 0,
) -> Split:
    """P1: ``normal_class`` normal, every other class anomalous."""
    c = _check_class(normal_class, y_train, "normal_class")
    _check_fraction(val_fraction, "val_fraction")
    train_idx, val_idx = _one_class_indices(
        y_train, c, val_fraction, val_anomaly_ratio, _rng(random_state), val_anomalies
    )
    anom_train = (y_train != c).astype(np.int64)
    return Split(
        train=_subset(x_train, y_train, train_idx, anom_train),
        val=_subset(x_train, y_train, val_idx, anom_train),
        test=_subset(x_test, y_test, np.arange(len(y_test)), (y_test != c).astype(np.int64)),
        protocol="one-class",
        info={"normal_class": c, "random_state": random_state},
    )


def one_anomalous(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    anomalous_class: int,
    *,
    pooled: bool = False,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    val_anomaly_ratio: float = 0.0,
    val_anomalies: int | None = None,
    random_state: int | None = 0,
) -> Split:
    """P2 ("1 vs 9"): ``anomalous_class`` anomalous, all other classes normal.

    ``pooled=False``: train on the normal classes of the training split,
    test on the full test split.  ``pooled=True`` (GANomaly's and the
    survey's split): normal images of train and test are pooled and split
    ``1 - test_fraction`` / ``test_fraction``; the test set gets the normal
    part plus every anomalous image of both splits, except those kept for
    validation when ``val_anomaly_ratio > 0`` or ``val_anomalies > 0`` (at
    most half of the anomalies).
    """
    a = _check_class(anomalous_class, y_train, "anomalous_class")
    _check_fraction(val_fraction, "val_fraction")
    _check_fraction(test_fraction, "test_fraction")
    rng = _rng(random_state)
    if not pooled:
        anom_train = (y_train == a).astype(np.int64)
        train_idx, val_norm = _holdout(np.flatnonzero(y_train != a), val_fraction, rng)
        n_val_anom = _n_val_anomalies(len(val_norm), val_anomaly_ratio, val_anomalies)
        val_anom = _val_anomalies(np.flatnonzero(y_train == a), n_val_anom, rng)
        return Split(
            train=_subset(x_train, y_train, train_idx, anom_train),
            val=_subset(x_train, y_train, np.concatenate([val_norm, val_anom]), anom_train),
            test=_subset(x_test, y_test, np.arange(len(y_test)), (y_test == a).astype(np.int64)),
            protocol="one-anomalous",
            info={"anomalous_class": a, "pooled": False, "random_state": random_state},
        )
    x_all = np.concatenate([x_train, x_test])
    labels = np.concatenate([y_train, y_test])
    anom = (labels == a).astype(np.int64)
    normal_idx = rng.permutation(np.flatnonzero(labels != a))
    n_test = int(round(len(normal_idx) * test_fraction))
    test_norm, rest = normal_idx[:n_test], normal_idx[n_test:]
    train_idx, val_norm = _holdout(rest, val_fraction, rng)
    anom_idx = rng.permutation(np.flatnonzero(labels == a))
    n_val_anom = min(_n_val_anomalies(len(val_norm), val_anomaly_ratio, val_anomalies), len(anom_idx) // 2)
    val_anom, test_anom = anom_idx[:n_val_anom], anom_idx[n_val_anom:]
    return Split(
        train=_subset(x_all, labels, train_idx, anom),
        val=_subset(x_all, labels, np.concatenate([val_norm, val_anom]), anom),
        test=_subset(x_all, labels, np.concatenate([test_norm, test_anom]), anom),
        protocol="one-anomalous",
        info={"anomalous_class": a, "pooled": True, "test_fraction": test_fraction, "random_state": random_state},
    )


def contamination(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    normal_class: int,
    gamma: float,
    *,
    val_fraction: float = 0.1,
    val_anomaly_ratio: float = 1.0,
    val_anomalies: int | None = None,
    random_state: int | None = 0,
) -> Split:
    """One-class with a share ``gamma`` of anomalies mixed into training.

    Berg et al. section 4.1.2: with N_n normal training images,
    N_a = gamma N_n / (1 - gamma) anomalies (drawn uniformly from the other
    classes of the training split) are added, so anomalies are a fraction
    gamma of the training set (gamma = 0: none, the one-class training set).
    They are drawn from a random stream of their own before the validation
    anomalies (which avoid them), so the training set does not depend on the
    number of validation anomalies.  ``train.y`` marks them; the detector is
    not shown ``y``.  The test split is the full test split, as one-class
    (:func:`berg_test_layout` gives Berg et al.'s section 4.1.1 subset).
    """
    c = _check_class(normal_class, y_train, "normal_class")
    _check_fraction(val_fraction, "val_fraction")
    _check_fraction(gamma, "gamma", 0.0, 1.0)
    rng = _rng(random_state)
    n_normal = len(np.flatnonzero(y_train == c))
    n_train_normal = n_normal - int(round(n_normal * val_fraction))
    n_anom = int(round(gamma * n_train_normal / (1.0 - gamma)))
    pool = np.flatnonzero(y_train != c)
    if n_anom > len(pool):
        raise ValueError(f"gamma={gamma} needs {n_anom} anomalies but only {len(pool)} are available")
    added = _stream(random_state, 0xC047).choice(pool, size=n_anom, replace=False)
    train_idx, val_idx = _one_class_indices(
        y_train, c, val_fraction, val_anomaly_ratio, rng, val_anomalies, exclude=added
    )
    anom_train = (y_train != c).astype(np.int64)
    return Split(
        train=_subset(x_train, y_train, np.concatenate([train_idx, added]), anom_train),
        val=_subset(x_train, y_train, val_idx, anom_train),
        test=_subset(x_test, y_test, np.arange(len(y_test)), (y_test != c).astype(np.int64)),
        protocol="contamination",
        info={"normal_class": c, "gamma": gamma, "n_anomalies_in_train": n_anom, "random_state": random_state},
    )


def berg_test_layout(test_labels: np.ndarray, normal_class: int, random_state: int | None = 0) -> np.ndarray:
    """Berg et al.'s section 4.1.1 test layout, as sorted indices into the test split:
    every test image of ``normal_class`` (1,000 for Fashion-MNIST) plus as many
    test images drawn at random (seeded by ``random_state``) from the other
    classes, so that half of the layout is anomalous.  Scores of the full test
    split are indexed with it; nothing is re-scored."""
    labels = np.asarray(test_labels)
    own = np.flatnonzero(labels == normal_class)
    if len(own) == 0:
        raise ValueError(f"no test image of class {normal_class}")
    others = np.flatnonzero(labels != normal_class)
    pick = _stream(random_state, 0xBE26).choice(others, size=min(len(own), len(others)), replace=False)
    return np.sort(np.concatenate([own, pick]))


Generator = Callable[[int, np.ndarray, np.random.Generator], np.ndarray]


def ood(
    x_train: np.ndarray,
    x_test: np.ndarray,
    x_other: np.ndarray | Generator | None = None,
    *,
    anomaly_ratio: float | None = 0.2,
    val_fraction: float = 0.1,
    random_state: int | None = 0,
    y_train: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    n_test_normals: int | None = None,
    holdout_transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Split:
    """Out-of-distribution pair: in-distribution test images vs another set.

    Normal: the in-distribution test split, every class (or a seeded subset of
    ``n_test_normals`` of it).  Training: the full training split less the
    validation hold-out (``val_fraction``); the validation set is normal-only.
    Anomalies, ``anomaly_ratio`` per normal test image (AMA: 0.2; ``None``:
    all of ``x_other``), are, resized to the in-distribution image size and
    converted to its channel count:

    * ``x_other`` an array: drawn from it without replacement;
    * ``x_other`` a callable ``(n, like, rng) -> images``: generated (noise);
    * ``holdout_transform``: ``holdout_transform(images)`` of images drawn from
      the training split's validation hold-out, which then leave the
      validation set: no anomaly is a transformed copy of a test normal or of
      a training or validation image (e.g. flipped Fashion-MNIST).

    Neither the training nor the validation set depends on the anomaly source:
    the hold-out is drawn first, and the images a transformed source would use
    (one per anomaly) leave the validation set whatever the source, unless the
    hold-out is too small to spare them and the source needs none.
    """
    rng = _rng(random_state)
    x_train = _as_nchw(x_train)
    x_test = _as_nchw(x_test)
    y_train = np.zeros(len(x_train), np.int64) if y_train is None else np.asarray(y_train)
    y_test = np.zeros(len(x_test), np.int64) if y_test is None else np.asarray(y_test)
    train_idx, val_idx = _holdout(np.arange(len(x_train)), val_fraction, rng)
    if n_test_normals is not None and int(n_test_normals) < len(x_test):
        if int(n_test_normals) < 1:
            raise ValueError(f"n_test_normals must be >= 1; got {n_test_normals}")
        keep = np.sort(_stream(random_state, 0x7E57).choice(len(x_test), size=int(n_test_normals), replace=False))
        x_test, y_test = x_test[keep], y_test[keep]
    pick_rng = _stream(random_state, 0x0D)
    # The pool that transformed anomalies are made of leaves the validation set for
    # every source, so that training and validation images do not depend on the
    # source: one fit serves every out-of-distribution set of a benchmark run.
    n_pool = 0 if anomaly_ratio is None else int(round(len(x_test) * anomaly_ratio))
    if n_pool >= len(val_idx) and holdout_transform is None:
        n_pool = 0  # too small a hold-out to spare: only a transformed source needs the pool
    pool_idx = np.sort(_stream(random_state, 0x9001).choice(val_idx, size=min(n_pool, len(val_idx)), replace=False))
    val_idx = np.setdiff1d(val_idx, pool_idx)
    if holdout_transform is not None:
        if anomaly_ratio is None:
            raise ValueError("holdout_transform needs an anomaly_ratio")
        n_other = n_pool
        if len(val_idx) < 1:
            raise ValueError(f"anomaly_ratio={anomaly_ratio} needs {n_other} anomalies and a validation image; "
                             f"the validation hold-out has {len(pool_idx) + len(val_idx)} images (raise "
                             "val_fraction or take fewer test normals)")
        other = _match(holdout_transform(x_train[pool_idx]), x_test)
        source = "holdout"
    elif callable(x_other):
        if anomaly_ratio is None:
            raise ValueError("a generated other set needs an anomaly_ratio")
        n_other = int(round(len(x_test) * anomaly_ratio))
        other = _match(np.asarray(x_other(n_other, x_test, pick_rng)), x_test)
        source = "generated"
    else:
        if x_other is None:
            raise ValueError("ood needs x_other or holdout_transform")
        other = _match(np.asarray(x_other), x_test)
        n_other = len(other) if anomaly_ratio is None else int(round(len(x_test) * anomaly_ratio))
        if n_other > len(other):
            raise ValueError(f"anomaly_ratio={anomaly_ratio} needs {n_other} anomalies; the other set has "
                             f"{len(other)} (take fewer test normals, e.g. ganad bench --test-subset)")
        other = other[np.sort(pick_rng.choice(len(other), size=n_other, replace=False))]
        source = "array"
    if len(other) != n_other:
        raise ValueError(f"the other set gave {len(other)} images; {n_other} were asked for")
    zeros = np.zeros(len(x_train), np.int64)
    test = Subset(
        np.concatenate([x_test, other]),
        np.concatenate([np.zeros(len(x_test), np.int64), np.ones(n_other, np.int64)]),
        np.concatenate([y_test, -np.ones(n_other, np.int64)]),
    )
    return Split(
        train=_subset(x_train, y_train, train_idx, zeros),
        val=_subset(x_train, y_train, val_idx, zeros),
        test=test,
        protocol="ood",
        info={"anomaly_ratio": anomaly_ratio, "n_anomalies": n_other, "n_test_normals": len(x_test),
              "anomaly_source": source, "random_state": random_state},
    )


def _as_nchw(x: np.ndarray) -> np.ndarray:
    return x[:, None] if x.ndim == 3 else x


def _match(other: np.ndarray, like: np.ndarray) -> np.ndarray:
    other = _as_nchw(other)
    if other.dtype != like.dtype and like.dtype == np.uint8:
        other = np.round(np.clip(other, 0, 1) * 255).astype(np.uint8)
    other = match_channels(other, like.shape[1])
    if other.shape[-2:] != like.shape[-2:]:
        other = resize(other, like.shape[-2:])
    return other
