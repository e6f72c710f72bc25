"""Classic baselines of the ADGAN paper's section 4.2, on PCA features.

All four flatten images to pixels in [0, 1], project them on the first
``n_components`` principal components of the training data, and score there
(higher = more anomalous):

* ``kde``: Gaussian kernel density; bandwidth h by maximum likelihood over
  10-fold cross-validation with h in {2^0, 2^0.5, ..., 2^4}; score = -log p(x).
* ``ocsvm``: one-class SVM, Gaussian kernel, nu = 0.1; the kernel's inverse
  length scale gamma is tuned without labels by the rule of Evangelista et
  al. (2007), the ADGAN paper's reference [16]: maximise the ratio
  variance / (mean + eps) of the off-diagonal kernel values on the training
  data.  Score = minus the SVM decision value.
* ``iforest``: Isolation Forest (100 trees, 256 samples per tree); score =
  the mean path-length score of Liu et al. (2008).  Deviation: its default
  is raw pixels (``n_components=None``), and the benchmark's grid adds raw
  pixels to the PCA dimensions: the forest splits on single axes, and on
  Fashion-MNIST pixel axes beat principal axes on the validation split.
* ``gmm``: Gaussian mixture, 2..20 components chosen by BIC; score = -log p(x).

The PCA dimension is a hyper-parameter; the paper picks it from
{20, 40, ..., 100} on a small hold-out set.  ``ganad bench`` does that on the
protocol's *validation* split (training-split images only), see
:func:`ganad.bench.selection.select_on_validation`.

Persistence without pickle: the PCA basis, the training features and the
chosen hyper-parameters are saved as tensors/JSON, and ``load`` re-fits the
scikit-learn estimator on them with the same seed.  These estimators are
deterministic given their data and seed, so the loaded model's scores are
identical (a test checks this), and a re-fit takes under a second (unstored).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.ensemble import IsolationForest
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold
from sklearn.svm import OneClassSVM

from ..base import BaseDetector
from ..data.arrays import flatten
from ..params import POSITIVE, POSITIVE_INT, Interval, Options, ListOf
from ..registry import register

PCA_GRID = (20, 40, 60, 80, 100)
KDE_BANDWIDTHS = tuple(2.0 ** (k / 2) for k in range(9))  # 2^0, 2^0.5, ..., 2^4


class PCADetector(BaseDetector):
    """Flatten -> PCA(n_components) -> a scikit-learn density or boundary estimator.

    Parameters
    ----------
    n_components : principal components of the training images the estimator sees
        (None = the raw pixels); capped at the pixel count and at what the smallest
        cross-fitting fold can support.
    """

    def __init__(
        self,
        n_components: int | None = 50,
        contamination: float = 0.1,
        random_state: int | None = 0,
        value_range: tuple[float, float] | None = None,
    ):
        super().__init__(contamination=contamination, random_state=random_state, value_range=value_range)
        self.n_components = n_components

    _parameter_constraints = {"n_components": [POSITIVE_INT, None]}

    # --- PCA, fitted on training data only
    def _fit_pca(self, x: np.ndarray, k: int | None = None) -> np.ndarray:
        """PCA on ``x`` with ``k`` components (default :meth:`_pca_size`)."""
        flat = flatten(x).astype(np.float64)
        if self.n_components is None:  # raw pixels: keep the pixel axes (Isolation Forest splits on them)
            self.mean_ = np.zeros(flat.shape[1])
            self.components_ = np.zeros((0, flat.shape[1]))
            return flat
        self.mean_ = flat.mean(axis=0)
        k = self._pca_size(*flat.shape) if k is None else k
        # the right singular vectors of the centred data are the principal axes
        _, _, vt = np.linalg.svd(flat - self.mean_, full_matrices=False)
        self.components_ = vt[:k]
        return self._project(x)

    def _pca_size(self, n: int, d: int) -> int:
        """Components kept for ``n`` training samples of dimension ``d``: ``n_components``,
        at most ``d`` and at most the rank of the centred data of the smallest
        cross-fitting part (its size less one), so that the full fit and the fold
        copies of :meth:`_calibration_scores` score in the same space.  Without
        that cap, on small data sets the folds kept fewer axes than the full fit and
        their scores (a log-density's scale follows the dimension) set a threshold
        that flagged every new normal."""
        folds = min(self.calibration_folds, n)
        smallest_part = n - -(-n // folds)  # n - ceil(n / folds)
        return max(1, min(int(self.n_components), d, smallest_part - 1))

    def _project(self, x: np.ndarray) -> np.ndarray:
        flat = flatten(x).astype(np.float64)
        if len(self.components_) == 0:
            return flat
        return (flat - self.mean_) @ self.components_.T

    # --- hooks
    def _fit(self, x: np.ndarray) -> None:
        self.train_features_ = self._fit_pca(x)
        self._fit_estimator(self.train_features_)

    def _score_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {"score": self._score_features(self._project(x))}

    # --- threshold calibration by cross-fitting: these models are cheap to refit,
    # and all training samples are fitted and calibrated on
    min_samples = 10
    calibration_folds = 5

    def _calibration_split(self, x: np.ndarray) -> tuple[np.ndarray, None]:
        return x, None

    def _calibration_scores(self, x_fit: np.ndarray, x_cal: None) -> np.ndarray:
        """Out-of-fold scores: each fold scored by a copy fitted (PCA included) on the
        other folds with the hyper-parameters the full fit chose (bandwidth, gamma,
        mixture size), so that no sample is scored by a model that saw it."""
        folds = KFold(min(self.calibration_folds, len(x_fit)), shuffle=True, random_state=self.random_state)
        scores = np.empty(len(x_fit))
        for tr, te in folds.split(x_fit):
            part = type(self)(**self.get_params())
            k = len(self.components_) or None  # the full fit's axes (raw pixels: None)
            part._fit_estimator(part._fit_pca(x_fit[tr], k), chosen=self._chosen() or None)
            scores[te] = part._score_features(part._project(x_fit[te]))
        return scores

    def _fit_estimator(self, f: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_features(self, f: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _chosen(self) -> dict[str, Any]:
        """Hyper-parameters chosen during fit (saved, reused on load)."""
        return {}

    def _fitted_meta(self) -> dict[str, Any]:
        return {**super()._fitted_meta(), "chosen": self._chosen()}

    def _get_state(self) -> dict[str, Any]:
        return {
            "mean": torch.from_numpy(self.mean_),
            "components": torch.from_numpy(self.components_),
            "train_features": torch.from_numpy(self.train_features_),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.mean_ = state["mean"].numpy()
        self.components_ = state["components"].numpy()
        self.train_features_ = state["train_features"].numpy()
        self._fit_estimator(self.train_features_, chosen=getattr(self, "_loaded_chosen", None))

    def _restore_meta(self, meta: dict[str, Any]) -> None:
        # the chosen hyper-parameters must be known before _set_state re-fits
        self._loaded_chosen = meta.get("chosen") or None


def _sq_distances(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return (ta.pow(2).sum(1, keepdim=True) + tb.pow(2).sum(1) - 2 * ta @ tb.T).clamp_min_(0)


def gaussian_kde_logpdf(query: np.ndarray, data: np.ndarray, bandwidth: float, chunk: int = 2048) -> np.ndarray:
    """Exact log p(x) of a Gaussian KDE, by batched matrix products and logsumexp.

    log p(x) = logsumexp_i(-||x - x_i||^2 / 2h^2) - log n - d/2 log(2 pi h^2).
    scikit-learn's tree-based KernelDensity takes minutes on 5,400 x 100 and,
    at small bandwidths, returns values tens of nats off (an unstored comparison);
    this is exact and fast.
    """
    n, d = data.shape
    const = -np.log(n) - 0.5 * d * np.log(2 * np.pi * bandwidth**2)
    out = [
        torch.logsumexp(-_sq_distances(query[i : i + chunk], data) / (2 * bandwidth**2), dim=1).numpy()
        for i in range(0, len(query), chunk)
    ]
    return np.concatenate(out) + const


@register("kde")
class KDE(PCADetector):
    """Gaussian KDE on PCA features; bandwidth by 10-fold CV likelihood (ADGAN 4.2 (i)).

    Parameters
    ----------
    bandwidth : the Gaussian kernel's width h in feature units: "cv" picks it from
        {2^0, 2^0.5, ..., 2^4} by 10-fold cross-validated log-likelihood; a number fixes it.
    """

    _parameter_constraints = {"bandwidth": [POSITIVE, Options(("cv",))]}

    def __init__(
        self,
        n_components: int | None = 50,
        bandwidth: float | str = "cv",
        contamination: float = 0.1,
        random_state: int | None = 0,
        value_range: tuple[float, float] | None = None,
    ):
        super().__init__(
            n_components=n_components, contamination=contamination, random_state=random_state, value_range=value_range
        )
        self.bandwidth = bandwidth

    def _select_bandwidth(self, f: np.ndarray) -> float:
        """The h of the grid with the highest 10-fold cross-validated log-likelihood."""
        folds = KFold(n_splits=min(10, len(f)), shuffle=True, random_state=self.random_state)
        total = np.zeros(len(KDE_BANDWIDTHS))
        for tr, va in folds.split(f):
            d2 = _sq_distances(f[va], f[tr])  # computed once per fold, reused for every h
            for j, h in enumerate(KDE_BANDWIDTHS):
                ll = torch.logsumexp(-d2 / (2 * h**2), dim=1) - np.log(len(tr)) - 0.5 * f.shape[1] * np.log(2 * np.pi * h**2)
                total[j] += float(ll.sum())
        return float(KDE_BANDWIDTHS[int(np.argmax(total))])

    def _fit_estimator(self, f: np.ndarray, chosen: dict[str, Any] | None = None) -> None:
        if chosen:
            self.bandwidth_ = chosen["bandwidth"]
        elif self.bandwidth == "cv":
            self.bandwidth_ = self._select_bandwidth(f)
        else:
            self.bandwidth_ = float(self.bandwidth)
        self.data_ = f

    def _score_features(self, f: np.ndarray) -> np.ndarray:
        return -gaussian_kde_logpdf(f, self.data_, self.bandwidth_)

    def _chosen(self) -> dict[str, Any]:
        return {"bandwidth": self.bandwidth_}


def evangelista_gamma(f: np.ndarray, max_samples: int = 1000, random_state: int | None = 0, eps: float = 1e-6) -> float:
    """Gamma of exp(-gamma ||a - b||^2) maximising var / (mean + eps) of off-diagonal kernel values.

    Evangelista, Embrechts & Szymanski (2007): a good kernel width spreads the
    kernel values (high variance) while keeping them away from 0 (high mean
    is penalised less than a collapsed kernel).  Searched on a log grid around
    1 / median squared distance, on at most ``max_samples`` training points.
    """
    rng = np.random.default_rng(random_state)
    if len(f) > max_samples:
        f = f[rng.choice(len(f), max_samples, replace=False)]
    sq = np.sum(f**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * f @ f.T, 0.0)
    off = d2[~np.eye(len(f), dtype=bool)]
    base = 1.0 / max(np.median(off), 1e-12)
    grid = base * np.logspace(-3, 3, 61)
    ratios = [np.var(k) / (np.mean(k) + eps) for k in (np.exp(-g * off) for g in grid)]
    return float(grid[int(np.argmax(ratios))])


@register("ocsvm")
class OCSVM(PCADetector):
    """One-class SVM, Gaussian kernel, nu = 0.1, gamma by Evangelista's rule (ADGAN 4.2 (ii)).

    Parameters
    ----------
    nu : the SVM's nu: an upper bound on the share of training samples outside the
        boundary and a lower bound on the share of support vectors.
    gamma : inverse length scale of the kernel exp(-gamma ||a - b||^2): "evangelista"
        (Evangelista et al.'s rule, without labels), scikit-learn's "scale" or "auto",
        or a number.
    """

    def __init__(
        self,
        n_components: int | None = 50,
        nu: float = 0.1,
        gamma: float | str = "evangelista",
        contamination: float = 0.1,
        random_state: int | None = 0,
        value_range: tuple[float, float] | None = None,
    ):
        super().__init__(
            n_components=n_components, contamination=contamination, random_state=random_state, value_range=value_range
        )
        self.nu = nu
        self.gamma = gamma

    _parameter_constraints = {"nu": [Interval(float, 0, 1, "right")], "gamma": [POSITIVE, Options(("evangelista", "scale", "auto"))]}

    def _fit_estimator(self, f: np.ndarray, chosen: dict[str, Any] | None = None) -> None:
        if chosen:
            g: float | str = chosen["gamma"]
        elif self.gamma == "evangelista":
            g = evangelista_gamma(f, random_state=self.random_state)
        else:
            g = self.gamma
        self.estimator_ = OneClassSVM(kernel="rbf", nu=self.nu, gamma=g).fit(f)
        self.gamma_ = float(self.estimator_._gamma)

    def _score_features(self, f: np.ndarray) -> np.ndarray:
        return -self.estimator_.decision_function(f)

    def _chosen(self) -> dict[str, Any]:
        return {"gamma": self.gamma_}


@register("iforest")
class IForest(PCADetector):
    """Isolation Forest on PCA features (ADGAN 4.2 (iii)); score = -sklearn's score_samples.

    Parameters
    ----------
    n_estimators : trees in the forest.
    max_samples : samples drawn to build each tree: "auto" = min(256, n), a count, or a
        share of the training samples in (0, 1].
    """

    _parameter_constraints = {
        "n_estimators": [POSITIVE_INT], "max_samples": [POSITIVE_INT, Interval(float, 0, 1, "right"), Options(("auto",))],
    }

    def __init__(
        self,
        n_components: int | None = None,
        n_estimators: int = 100,
        max_samples: int | str = "auto",
        contamination: float = 0.1,
        random_state: int | None = 0,
        value_range: tuple[float, float] | None = None,
    ):
        super().__init__(
            n_components=n_components, contamination=contamination, random_state=random_state, value_range=value_range
        )
        self.n_estimators = n_estimators
        self.max_samples = max_samples

    def _fit_estimator(self, f: np.ndarray, chosen: dict[str, Any] | None = None) -> None:
        self.estimator_ = IsolationForest(
            n_estimators=self.n_estimators, max_samples=self.max_samples, random_state=self.random_state, n_jobs=1
        ).fit(f)

    def _score_features(self, f: np.ndarray) -> np.ndarray:
        return -self.estimator_.score_samples(f)


@register("gmm")
class GMM(PCADetector):
    """Gaussian mixture on PCA features, 2..20 components by BIC (ADGAN 4.2 (iv)).

    Parameters
    ----------
    mixture_components : the mixture sizes tried in order, the one of lowest BIC kept
        (None = 2..20); the search stops at the first size not below the number of
        training samples.
    covariance_type : each component's covariance (scikit-learn's GaussianMixture):
        "full", "tied", "diag" or "spherical".
    """

    _parameter_constraints = {
        "mixture_components": [ListOf(Interval(int, 1), min_length=1), None],
        "covariance_type": [Options(("full", "tied", "diag", "spherical"))],
    }

    def __init__(
        self,
        n_components: int | None = 50,
        mixture_components: list[int] | None = None,
        covariance_type: str = "full",
        contamination: float = 0.1,
        random_state: int | None = 0,
        value_range: tuple[float, float] | None = None,
    ):
        super().__init__(
            n_components=n_components, contamination=contamination, random_state=random_state, value_range=value_range
        )
        self.mixture_components = mixture_components
        self.covariance_type = covariance_type

    def _make(self, k: int) -> GaussianMixture:
        return GaussianMixture(k, covariance_type=self.covariance_type, reg_covar=1e-4, random_state=self.random_state)

    def _fit_estimator(self, f: np.ndarray, chosen: dict[str, Any] | None = None) -> None:
        if chosen:
            self.estimator_ = self._make(min(chosen["k"], len(f) - 1)).fit(f)
        else:
            best = None
            for k in self.mixture_components or range(2, 21):  # the paper's 2..20
                if k >= len(f):
                    break
                gm = self._make(k).fit(f)
                bic = gm.bic(f)
                if best is None or bic < best[0]:
                    best = (bic, gm)
            if best is None:
                raise ValueError(f"too few training samples ({len(f)}) for a mixture of 2 or more components")
            self.estimator_ = best[1]
        self.k_ = int(self.estimator_.n_components)

    def _score_features(self, f: np.ndarray) -> np.ndarray:
        return -self.estimator_.score_samples(f)

    def _chosen(self) -> dict[str, Any]:
        return {"k": self.k_}
