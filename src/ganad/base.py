"""The detector contract every ganad model keeps (modelled on PyOD's API).

A subclass implements three hooks:

* ``_fit(x)`` trains on a validated array (images as (N, C, H, W), tabular
  data as (N, D); dtype as given, uint8 images stay uint8);
* ``_score_parts(x)`` returns a dict of named per-sample score terms
  (numpy, shape (N,)) and must contain the key ``"score"`` (higher = more
  anomalous);
* ``_get_state()`` / ``_set_state(state)`` return and take the fitted state
  as a (nested) dict of tensors, so that ``save`` needs no pickle.

Detectors are unsupervised: ``fit(X)`` takes no labels, and a ``y`` that is
not None is refused with a ``ValueError``.  A detector that can also learn
from known anomalies declares ``supports_labels = True``; ``fit(X, y)`` then
checks ``y`` (one 0/1 label per sample, 1 = known anomaly) and, during
``_fit``, ``self._fit_labels`` holds the labels aligned with the array
``_fit`` gets (None when no ``y`` was given).

Hyper-parameters are the ``__init__`` keyword arguments, stored under the
same names (scikit-learn's rule), so ``get_params`` and the JSON config in a
saved file come for free.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from typing import Any, ClassVar

import numpy as np

from .data.arrays import _check_value_range, as_array, as_nchw, check_image_range, check_same_layout, is_image
from .exceptions import NoAnomalyMapError, NotFittedError
from .params import NON_NEGATIVE_INT, Interval, ListOf, check_params, merged_constraints

FORMAT_VERSION = 1


class BaseDetector:
    """Base class of all detectors: fit on normal data, score anything.

    Parameters common to every detector:

    contamination : float in (0, 0.5]
        Expected share of anomalies; sets ``threshold_`` so that about this
        share of *new* normal samples is flagged (see ``fit``).
    random_state : int or None
        Seeds every random choice the detector makes.
    value_range : (lo, hi) or None
        Images are uint8 in [0, 255] or float in [0, 1]; any other range is an
        error unless stated here, e.g. ``value_range=(0, 255)`` for float
        images in [0, 255].  It is saved with the model and applies to every
        input it scores.
    """

    #: registry name, set by :func:`ganad.registry.register`
    name: ClassVar[str] = ""
    #: "image", "tabular" or "any"
    input_kind: ClassVar[str] = "any"
    # Parameters that change only how a fitted model scores (not training): a
    # validation grid over them needs one fit, then ``set_params`` + ``rescore_training``.
    score_params: ClassVar[tuple[str, ...]] = ()
    #: True for a detector whose training can use labels: ``fit(X, y)`` with y = 1 for
    #: known anomalies (see the module docstring); every other one refuses a ``y``
    supports_labels: ClassVar[bool] = False

    def __init__(
        self, contamination: float = 0.1, random_state: int | None = 0, value_range: tuple[float, float] | None = None
    ):
        self.contamination = contamination
        self.random_state = random_state
        self.value_range = value_range

    # ------------------------------------------------------------------ params
    @classmethod
    def _param_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    if p.name not in names:
                        names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in self._param_names()}

    def set_params(self, **params: Any) -> "BaseDetector":
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {k!r}; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    #: each parameter's allowed forms (:mod:`ganad.params`); subclasses add theirs
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "contamination": [Interval(float, 0, 0.5, "right")],
        "random_state": [NON_NEGATIVE_INT, None],
        "value_range": [ListOf(Interval(float), length=2), None],
    }

    def _check_params(self) -> None:
        """Validate every declared constraint; subclasses add cross-parameter checks and call super()."""
        check_params(self, merged_constraints(type(self)))
        if self.value_range is not None:
            _check_value_range(self.value_range)

    # ------------------------------------------------------------------- input
    def _validate(self, X: Any, *, fitting: bool) -> np.ndarray:
        x = as_array(X)
        if is_image(x):
            if self.input_kind == "tabular":
                raise ValueError(
                    f"{self.name or type(self).__name__} works on feature vectors (N, D); "
                    f"got images of shape {x.shape}. Flatten them first."
                )
            x = check_image_range(as_nchw(x), self.value_range)
        elif self.input_kind == "image":
            hint = " (one image? pass x[None])" if x.shape[0] > 1 and x.shape[1] > 1 else ""
            raise ValueError(
                f"{self.name or type(self).__name__} works on images (N, H, W) or (N, C, H, W); "
                f"got shape {x.shape}{hint}"
            )
        if fitting:
            self.input_shape_ = tuple(int(s) for s in x.shape[1:])
        else:
            check_same_layout(x, self.input_shape_)
        return x

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(X) before scoring"
            )

    # ---------------------------------------------------------------- contract
    def fit(self, X: Any, y: Any = None) -> "BaseDetector":
        """Train on (mostly) normal data ``X``.

        ``y`` must be None (the detectors are unsupervised), except for a detector
        with ``supports_labels``: there ``y`` may give one label per sample of
        ``X``, 1 = a known anomaly, 0 = normal (or unlabelled), which its training
        uses (see the detector's docstring).  Known anomalies are never held out
        for calibration: they stay in the training part, and ``threshold_`` is
        calibrated on held-out samples labelled 0 only.

        ``threshold_`` is calibrated on scores the model did not train on
        (:meth:`_calibration_scores`): in-sample scores of a model that fits its
        training set closely sit below those of new normals, so a quantile of
        them flags far more than ``contamination`` of new normal data.
        """
        self._check_params()
        self._check_labels_allowed(y)
        x = self._validate(X, fitting=True)
        labels = None if y is None else _check_labels(y, len(x), self.name or type(self).__name__)
        if len(x) < self.min_samples:
            raise ValueError(
                f"{self.name or type(self).__name__} needs at least {self.min_samples} training samples; got {len(x)}"
            )
        x_fit, x_cal, labels_fit = self._split_for_calibration(x, labels)
        start = time.perf_counter()
        self._fit_labels = labels_fit
        try:
            self._fit(x_fit)
        finally:
            self._fit_labels = None
        self.fit_seconds_ = time.perf_counter() - start
        self._score_training(x_fit, x_cal)
        return self

    def rescore_training(self, X: Any, y: Any = None) -> "BaseDetector":
        """Recompute ``decision_scores_`` and ``threshold_`` on the training data ``X``
        (and the ``y`` it was fitted with, if any) after a change of one of
        ``score_params`` (no refit)."""
        self._check_fitted()
        self._check_labels_allowed(y)
        x = self._validate(X, fitting=False)
        labels = None if y is None else _check_labels(y, len(x), self.name or type(self).__name__)
        self._check_params()
        x_fit, x_cal, _ = self._split_for_calibration(x, labels)
        self._score_training(x_fit, x_cal)
        return self

    def _check_labels_allowed(self, y: Any) -> None:
        if y is None or self.supports_labels:
            return
        from .registry import available_models, get_class

        name = self.name or type(self).__name__
        takers = [n for n in available_models() if get_class(n).supports_labels]
        raise ValueError(
            f"{name} is unsupervised: fit(X) takes no labels (y must be None); "
            f"models that also train on known anomalies: {', '.join(takers) or 'none'}"
        )

    def _split_for_calibration(
        self, x: np.ndarray, labels: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(samples to fit, held-out samples to calibrate on, the fit part's labels).

        Without labels: :meth:`_calibration_split`.  With labels the same split
        is made on the sample indices, then the held-out known anomalies move to
        the fit part (they are training signal, and a threshold is a quantile of
        *normal* scores)."""
        if labels is None:
            return (*self._calibration_split(x), None)
        idx_fit, idx_cal = self._calibration_split(np.arange(len(x)))
        if idx_cal is not None:
            idx_fit = np.union1d(idx_fit, idx_cal[labels[idx_cal] == 1])
            idx_cal = idx_cal[labels[idx_cal] == 0]
            if len(idx_cal) == 0:
                idx_cal = None  # nothing normal held out: in-sample scores
        return x[idx_fit], None if idx_cal is None else x[idx_cal], labels[idx_fit]

    # --------------------------------------------------------- calibration
    #: fewest training samples ``fit`` accepts (one to fit, one to calibrate on)
    min_samples: ClassVar[int] = 2
    #: share of the training data held out of the fit to calibrate ``threshold_``
    calibration_fraction: ClassVar[float] = 0.1
    #: ... but at least this many samples (capped at a quarter of the data), so
    #: that the quantile of a small data set is not taken from a handful of scores
    calibration_min: ClassVar[int] = 50

    def _calibration_size(self, n: int) -> int:
        return max(1, min(n - 1, max(round(self.calibration_fraction * n), min(self.calibration_min, n // 4))))

    def _calibration_split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(samples to fit, held-out samples to calibrate ``threshold_`` on), seeded by
        ``random_state``.  Detectors that cross-fit return ``(x, None)``."""
        rng = np.random.default_rng([0 if self.random_state is None else int(self.random_state), 0xCA1])
        order = rng.permutation(len(x))
        n_cal = self._calibration_size(len(x))
        return x[np.sort(order[n_cal:])], x[np.sort(order[:n_cal])]

    def _calibration_scores(self, x_fit: np.ndarray, x_cal: np.ndarray | None) -> np.ndarray:
        """Scores of samples the fitted model never trained on (default: the held-out
        part; None: no hold-out was asked for, and the in-sample scores are used)."""
        return self.decision_scores_ if x_cal is None else self._score(x_cal)

    #: False for detectors whose scoring is slow (a search per image): their
    #: ``decision_scores_`` are the held-out calibration scores, not a second pass
    score_fit_data: ClassVar[bool] = True

    def _score_training(self, x_fit: np.ndarray, x_cal: np.ndarray | None) -> None:
        # training scores first: some detectors fit a score normaliser on them
        if self.score_fit_data:
            self.decision_scores_ = np.asarray(self._training_scores(x_fit), dtype=np.float64)
        self.calibration_scores_ = np.asarray(self._calibration_scores(x_fit, x_cal), dtype=np.float64)
        if not self.score_fit_data:
            self.decision_scores_ = self.calibration_scores_
        self._set_threshold(self.calibration_scores_)
        self._score_min_ = float(np.min(self.decision_scores_))
        self._score_max_ = float(np.max(self.decision_scores_))

    def _set_threshold(self, calibration_scores: np.ndarray) -> None:
        """The conformal quantile: the ceil((n + 1)(1 - contamination))-th smallest of n
        held-out scores, so that a new normal sample exceeds it with probability at
        most ``contamination`` (and about that when n is large)."""
        s = np.sort(np.asarray(calibration_scores, dtype=np.float64))
        k = int(np.ceil((len(s) + 1) * (1.0 - self.contamination)))
        self.threshold_ = float(s[min(k, len(s)) - 1])

    def decision_function(self, X: Any) -> np.ndarray:
        """One anomaly score per sample; higher = more anomalous."""
        self._check_fitted()
        x = self._validate(X, fitting=False)
        return np.asarray(self._score(x), dtype=np.float64)

    def score_parts(self, X: Any) -> dict[str, np.ndarray]:
        """The named terms a method's score is built from, plus ``"score"``."""
        self._check_fitted()
        x = self._validate(X, fitting=False)
        parts = self._score_parts(x)
        return {k: np.asarray(v, dtype=np.float64) for k, v in parts.items()}

    #: True for the detectors that reconstruct their input: they have :meth:`anomaly_map`
    has_anomaly_map: ClassVar[bool] = False

    def anomaly_map(self, X: Any) -> np.ndarray:
        """Per-pixel anomaly map (N, H, W) float32 at the input's size, higher = more anomalous.

        The residual between each image and the model's reconstruction of it,
        per pixel, with the error of the model's own reconstruction term (|x -
        x_hat| or (x - x_hat)^2, in [-1, 1] pixel units) averaged over the
        channels; the nets' padding (28 -> 32) is cropped off.  Each model's
        class docstring or ``_map_batch`` says which term it follows.  Detectors
        that do not reconstruct their input (``has_anomaly_map`` False) raise
        :class:`ganad.exceptions.NoAnomalyMapError` (a ``ValueError``).
        """
        if not self.has_anomaly_map:
            raise NoAnomalyMapError(_no_map_message(self))
        self._check_fitted()
        x = self._validate(X, fitting=False)
        return np.asarray(self._anomaly_map(x), dtype=np.float32)

    def _anomaly_map(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:
        """0 = normal, 1 = anomalous, by ``threshold_``."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, 2) array [P(normal), P(anomalous)] by min-max scaling of the
        score against the *training* scores' range (PyOD's "linear" method),
        clipped to [0, 1]."""
        s = self.decision_function(X)
        span = max(self._score_max_ - self._score_min_, 1e-12)
        p = np.clip((s - self._score_min_) / span, 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=1)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X, y)``, then the labels of every sample of ``X`` (held-out ones included);
        ``y`` as for :meth:`fit` (None, unless the detector ``supports_labels``)."""
        return self.fit(X, y).predict(X)

    # ----------------------------------------------------------------- hooks
    def _fit(self, x: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _score(self, x: np.ndarray) -> np.ndarray:
        """The score alone; a subclass may skip the work of the other parts."""
        return self._score_parts(x)["score"]

    def _training_scores(self, x: np.ndarray) -> np.ndarray:
        """Scores of the training data that ``threshold_`` is taken from (all of it;
        detectors whose scoring is slow may score a seeded subset)."""
        return self._score(x)

    def _get_state(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_state(self, state: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------ persistence
    def _fitted_meta(self) -> dict[str, Any]:
        """JSON-able fitted attributes shared by all detectors."""
        return {
            "input_shape": list(self.input_shape_),
            "threshold": self.threshold_,
            "score_min": self._score_min_,
            "score_max": self._score_max_,
        }

    def _payload(self) -> dict[str, Any]:
        """The fitted model as the dict :meth:`save` writes (tensors and JSON strings only)."""
        import torch

        return {
            "format": "ganad",
            "format_version": FORMAT_VERSION,
            "model": self.name,
            "config": json.dumps(_jsonable(_saved_config(self))),
            "meta": json.dumps(_jsonable(self._fitted_meta())),
            "decision_scores": torch.as_tensor(self.decision_scores_),
            "state": self._get_state(),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted detector to one file: JSON config + tensor state.

        Read it back with :func:`ganad.load`, which uses ``weights_only=True``.
        """
        import torch

        self._check_fitted()
        payload = self._payload()
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"  # this process's own: concurrent saves never share one
        try:
            torch.save(payload, tmp)
            os.replace(tmp, path)  # never leave a half-written model behind
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    @classmethod
    def _from_payload(cls, payload: dict[str, Any]) -> "BaseDetector":
        det = cls(**json.loads(payload["config"]))
        meta = json.loads(payload["meta"])
        det.input_shape_ = tuple(meta["input_shape"])
        det.threshold_ = meta["threshold"]
        det._score_min_ = meta["score_min"]
        det._score_max_ = meta["score_max"]
        det.decision_scores_ = payload["decision_scores"].numpy()
        det._restore_meta(meta)
        det._set_state(payload["state"])
        return det

    def _restore_meta(self, meta: dict[str, Any]) -> None:
        """Hook: read back what ``_fitted_meta`` added beyond the common fields."""


def _check_labels(y: Any, n: int, name: str) -> np.ndarray:
    """``y`` of ``fit(X, y)`` -> an int64 array (n,) of 0 (normal) / 1 (known anomaly), or a ValueError."""
    if hasattr(y, "detach"):  # a torch tensor
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"{name}: y must hold one label per sample of X ({n}); got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: y must be 0 (normal) or 1 (known anomaly); got dtype {arr.dtype}")
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: y must be 0 (normal) or 1 (known anomaly); got {arr[first]!r} at index {first}")
    if not (arr == 0).any():
        raise ValueError(f"{name}: y labels every sample an anomaly; fit needs normal samples (y = 0)")
    return arr.astype(np.int64)


def _no_map_message(det: BaseDetector) -> str:
    from .registry import available_models, get_class

    name = det.name or type(det).__name__
    with_maps = [n for n in available_models() if get_class(n).has_anomaly_map]
    return f"{name} has no anomaly map: it does not reconstruct its input; models with maps: {', '.join(with_maps)}"


def load(path: str | os.PathLike) -> BaseDetector:
    """Load a detector written by ``save``; no pickled code is executed.

    The file is validated as a whole: every problem (a foreign or pickled file,
    a missing or malformed field, parameters ``create`` would refuse, weights
    that do not fit the model) is one ``ValueError`` "<path>: invalid model
    file: <what>".
    """
    import torch

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, foreign, or a pickle that needs code to load
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            first = "it holds pickled Python objects, which ganad never loads"
        raise ValueError(f"{path}: not a ganad model file ({first[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != "ganad":
        raise ValueError(f"{path}: not a ganad model file")
    try:
        return _from_checked_payload(payload)
    except _InvalidModelFile as exc:
        raise ValueError(f"{path}: invalid model file: {exc}") from None


class _InvalidModelFile(Exception):
    pass


def _from_checked_payload(payload: dict[str, Any]) -> BaseDetector:
    """Check every field of a loaded payload, then build the detector from it."""
    import torch

    from .registry import get_class

    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _InvalidModelFile(f"format_version is {version!r}, not an integer")
    if version > FORMAT_VERSION:
        raise _InvalidModelFile(f"written by a newer ganad (format {version}; this one reads up to {FORMAT_VERSION})")
    if version < 1:
        raise _InvalidModelFile(f"unknown format_version {version}")
    name = payload.get("model")
    if not isinstance(name, str):
        raise _InvalidModelFile(f"'model' is {name!r}, not a model name")
    try:
        cls = get_class(name)
    except ValueError as exc:
        raise _InvalidModelFile(str(exc)) from None
    fields = {}
    for key in ("config", "meta"):
        try:
            fields[key] = json.loads(payload[key])
        except KeyError:
            raise _InvalidModelFile(f"no {key!r}") from None
        except (TypeError, ValueError):
            raise _InvalidModelFile(f"{key!r} is not JSON") from None
        if not isinstance(fields[key], dict):
            raise _InvalidModelFile(f"{key!r} is a {type(fields[key]).__name__}, not a mapping")
    config, meta = fields["config"], fields["meta"]
    for key in RUN_ONLY_PARAMS:  # files of older versions carried them
        config.pop(key, None)
    unknown = sorted(set(config) - set(cls._param_names()))
    if unknown:
        raise _InvalidModelFile(f"{name} has no parameter(s) {unknown}")
    for key in ("input_shape", "threshold", "score_min", "score_max"):
        if key not in meta:
            raise _InvalidModelFile(f"meta has no {key!r}")
    shape = meta["input_shape"]
    if not (isinstance(shape, list) and shape and all(isinstance(v, int) and v > 0 for v in shape)):
        raise _InvalidModelFile(f"input_shape {shape!r} is not a list of positive sizes")
    if not all(isinstance(meta[k], (int, float)) for k in ("threshold", "score_min", "score_max")):
        raise _InvalidModelFile("threshold / score range are not numbers")
    if not isinstance(payload.get("decision_scores"), torch.Tensor):
        raise _InvalidModelFile("no decision_scores tensor")
    if not isinstance(payload.get("state"), dict):
        raise _InvalidModelFile("no 'state' (the fitted weights)")
    try:
        det = cls(**config)
        det._check_params()
    except (TypeError, ValueError) as exc:
        raise _InvalidModelFile(f"parameters refused: {exc}") from None
    try:
        return cls._from_payload({**payload, "config": json.dumps(config)})
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _InvalidModelFile(f"the state does not fit a {name} with these parameters ({what[:200]})") from None


#: settings of one training run, not of the model: a saved model must not carry
#: them, or fitting a loaded model would resume (and return) the run that made it
RUN_ONLY_PARAMS = ("checkpoint", "resume")


def _saved_config(det: BaseDetector) -> dict[str, Any]:
    """The parameters ``save`` writes: ``get_params()`` without :data:`RUN_ONLY_PARAMS`."""
    return {k: v for k, v in det.get_params().items() if k not in RUN_ONLY_PARAMS}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
