"""A-score wrapper: AMA's two-sided typicality score around any registered detector
(Somepalli, Wu, Balaji, Vinzamuri & Feizi, "Unsupervised anomaly detection with
adversarial mirrored autoencoders", UAI 2021, section 3.4, Eq. 6).

A one-sided score R (higher = more anomalous) misses inputs that score
unusually *low*: the paper's section 3.4 reports that its model and other
autoencoder-based detectors trained on CIFAR-10 give SVHN images lower
R-scores than CIFAR-10's own test images (AUROC 0.442 by R, its Table 1).
Over-smooth images are the same case on small data: the pixel mean of a few
normal digits is reconstructed by a DCAE, and lies near a KDE's mode, better
than almost any real normal digit (tests/test_typical.py measures it), yet
no real digit looks like it.  The A-score compares R(x) with the R-scores of
normal data instead:

    (i)  fit a Gaussian N(mu, sigma^2) to the R-scores of normal samples;
    (ii) A(x) = (R(x) - mu)^2 / sigma^2                      (higher = more anomalous)

Eq. 6 of the paper writes the score as the Gaussian's density at R(x),
1 / (sigma sqrt(2 pi)) exp(-(R(x) - mu)^2 / 2 sigma^2), with lower = more
anomalous.  ``A`` here is -2 log(sigma sqrt(2 pi) * that density): a strictly
decreasing function of it, so it ranks every input the same way (every AUROC
is the same), on ganad's convention (higher = more anomalous) and on a
readable scale (a squared z-score: about 1 for a typical normal, chi-square
with one degree of freedom when R is Gaussian on normals).

Where the Gaussian comes from (``gaussian_on``):

* ``"heldout"`` (default): the R-scores of a seeded share ``holdout_fraction``
  of the training data that the base detector does *not* fit on.  A model
  that fits its training set closely scores it below new normal data (the
  reason ganad calibrates every threshold on held-out scores, see
  :meth:`ganad.base.BaseDetector.fit`); a Gaussian of those in-sample scores
  has its mean too low and its spread too small, and new normals would get
  large A-scores for being merely *unmemorised*.  Held-out R-scores describe
  new normal data.
* ``"train"``: the paper's rule, literally (section 3.4 (i) and its Fig. 1(b):
  the R-scores of the training data the model was trained on): the base fits
  on all of its data and the Gaussian is taken from the base's scores of
  that same data; ``holdout_fraction`` is not used.

The splits compose with ganad's threshold calibration like this: as for every
model, :meth:`ganad.base.BaseDetector.fit` first holds out a seeded
calibration share of ``X`` (10%, at least min(50, N/4) samples); the wrapper
never fits on it, and its ``threshold_`` is the conformal quantile of the
A-scores of those samples.  The Gaussian's hold-out is then drawn (seeded by
``random_state``, a stream of its own) from the remaining fit part, and the
base fits on the rest of it with its own public ``fit`` (so the base also
calibrates a ``threshold_`` of its own, as usual; the wrapper uses only its
scores).  With 80 training images: 20 calibrate, 12 make the Gaussian, the
base is given 48.

The Gaussian's parameters are the maximum-likelihood ones: mu = the mean,
sigma = the standard deviation with ddof=0, floored at
max(1e-6 * |mu|, 1e-12), so that a hold-out whose scores are all equal (a
constant base score) gives finite A-scores.  ``mu_`` and ``sigma_`` are
fitted once; scoring never changes them.

``score_parts``: "score" and "a_score" (both A), "base" (R, the base's own
score) and the base's other score terms prefixed "base_" (e.g. DCAE's
"base_l1"; the base's "score" is "base").  ``anomaly_map`` is the base's map,
the per-pixel form of R (not of A: a pixel has no Gaussian of its own); only
bases with a map have one (``has_anomaly_map`` is the base's on an instance,
False on the class: the default base, kde, has none), and the others raise
the :class:`ganad.exceptions.NoAnomalyMapError` of every model without a map.
Input rules are the base's: an image model takes images only, a classic model
images or feature vectors, and value ranges are checked by the base
(``value_range`` is passed on to it).  The default base
is ``kde``: no training epochs, no device, deterministic, images and feature
vectors alike; and a density is where typicality matters most (a density's
mode is the most likely point yet far from where its samples lie).

``save`` writes the base as a complete ganad model inside the wrapper's
state (its name, parameters, fitted meta and state, read back with the same
checks as a model file of its own) plus mu and sigma, so a loaded wrapper
scores identically.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import torch

from ..base import RUN_ONLY_PARAMS, BaseDetector
from ..params import Constraint, Interval, Options
from ..registry import available_models, get_class, register

NAME = "typical"
#: the default base model (see the module docstring)
DEFAULT_BASE = "kde"
#: sigma's floor: max(SIGMA_FLOOR_REL * |mu|, SIGMA_FLOOR_ABS)
SIGMA_FLOOR_REL = 1e-6
SIGMA_FLOOR_ABS = 1e-12
#: the seed stream of the Gaussian's hold-out (the calibration split uses its own)
_HOLDOUT_STREAM = 0x7E1
#: common parameters the base takes from the wrapper unless ``base_params`` sets them
FOLLOWED = ("random_state", "value_range")


class _BaseModelName(Constraint):
    """The name of a registered model other than the wrapper itself."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value != NAME and value in available_models()

    def describe(self) -> str:
        return f"the name of a registered model other than {NAME!r} ({', '.join(_base_names())})"


class _Params(Constraint):
    """A dict of keyword arguments (string keys)."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)

    def describe(self) -> str:
        return "a dict of the base model's parameters"


def _base_names() -> list[str]:
    return [n for n in available_models() if n != NAME]


class _FromBase:
    """A class attribute of the base model's class, read on a wrapper instance
    (``on_class`` on the wrapper class itself, or while the base is not a valid name)."""

    def __init__(self, on_class: Any):
        self.on_class = on_class

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = name

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self.on_class
        cls = obj._base_class()
        return self.on_class if cls is None else getattr(cls, self.attr)


def gaussian(scores: np.ndarray) -> tuple[float, float]:
    """(mu, sigma) of the maximum-likelihood Gaussian of ``scores``, sigma floored
    at max(SIGMA_FLOOR_REL * |mu|, SIGMA_FLOOR_ABS)."""
    s = np.asarray(scores, dtype=np.float64)
    mu = float(np.mean(s))
    sigma = max(float(np.std(s)), SIGMA_FLOOR_REL * abs(mu), SIGMA_FLOOR_ABS)
    return mu, sigma


def a_score(r: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """A = (R - mu)^2 / sigma^2 (float64)."""
    return ((np.asarray(r, dtype=np.float64) - mu) / sigma) ** 2


@register(NAME)
class Typical(BaseDetector):
    """A-score of any detector (AMA, section 3.4): A = (R - mu)^2 / sigma^2 of its score R, flagging too-low scores too.

    Parameters
    ----------
    base : the registered model whose score R is wrapped (default "kde"; not "typical").
    base_params : the base model's parameters (None = its defaults); random_state
        and value_range follow the wrapper's unless set here.
    holdout_fraction : share of the fit data (after the calibration hold-out) held
        out of the base's fit, whose R-scores make the Gaussian; in (0, 0.5], at
        least 2 samples.
    gaussian_on : "heldout" (default): the Gaussian of the held-out R-scores, which
        describe new normal data; "train": the paper's rule, the Gaussian of the
        base's scores of its own training data (no hold-out).
    """

    input_kind = _FromBase("any")  # type: ignore[assignment]
    has_anomaly_map = _FromBase(False)  # type: ignore[assignment]
    score_fit_data = _FromBase(True)  # type: ignore[assignment]

    def __init__(
        self,
        base: str = DEFAULT_BASE,
        base_params: dict[str, Any] | None = None,
        holdout_fraction: float = 0.2,
        gaussian_on: str = "heldout",
        contamination: float = 0.1,
        random_state: int | None = 0,
        value_range: tuple[float, float] | None = None,
    ):
        super().__init__(contamination=contamination, random_state=random_state, value_range=value_range)
        self.base = base
        self.base_params = base_params
        self.holdout_fraction = holdout_fraction
        self.gaussian_on = gaussian_on

    _parameter_constraints = {
        "base": [_BaseModelName()],
        "base_params": [_Params(), None],
        "holdout_fraction": [Interval(float, 0, 0.5, "right")],
        "gaussian_on": [Options(("heldout", "train"))],
    }

    # ------------------------------------------------------------- the base
    def _base_class(self) -> type | None:
        if hasattr(self, "base_"):
            return type(self.base_)
        if _BaseModelName().accepts(self.base):
            return get_class(self.base)
        return None

    def _base_kwargs(self) -> dict[str, Any]:
        own = copy.deepcopy(self.base_params or {})
        return {**{k: getattr(self, k) for k in FOLLOWED}, **own}

    def _make_base(self) -> BaseDetector:
        """A new, unfitted base model; a parameter it refuses is a ``ValueError`` naming base_params."""
        cls = get_class(self.base)
        try:
            det = cls(**self._base_kwargs())
            det._check_params()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"base_params for {self.base}: {exc}") from None
        return det

    def _check_params(self) -> None:
        super()._check_params()
        own = self.base_params or {}
        theirs = own.get("value_range")
        if self.value_range is not None and theirs is not None and tuple(theirs) != tuple(self.value_range):
            raise ValueError(
                f"value_range {tuple(self.value_range)} and base_params value_range {tuple(theirs)} "
                "disagree: set one of them"
            )
        self._make_base()

    # --------------------------------------------------------------- splits
    def _holdout_size(self, n_fit: int) -> int:
        return max(2, round(self.holdout_fraction * n_fit))

    def _sizes(self, n: int) -> tuple[int, int]:
        """(samples the base is given, samples of the Gaussian's hold-out) of ``n`` training samples."""
        n_fit = n - self._calibration_size(n)
        if self.gaussian_on == "train":
            return n_fit, 0
        n_hold = self._holdout_size(n_fit)
        return n_fit - n_hold, n_hold

    @property
    def min_samples(self) -> int:  # type: ignore[override]
        """Fewest training samples: enough that the base gets its own minimum after the
        calibration and Gaussian hold-outs, and the Gaussian at least 2 scores."""
        # the base ``fit`` will make (``base``), not a fitted one of another name
        cls = get_class(self.base) if _BaseModelName().accepts(self.base) else None
        need = 2 if cls is None else int(cls.min_samples)
        for n in range(2, 100_000):
            n_base, n_hold = self._sizes(n)
            if n_base >= need and (self.gaussian_on == "train" or n_hold >= 2):
                return n
        return 100_000  # pragma: no cover - unreachable for any real base

    def _gaussian_split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(samples the base fits on, the Gaussian's held-out samples or None for
        ``gaussian_on="train"``) of the fit part ``x``, seeded by ``random_state``."""
        if self.gaussian_on == "train":
            return x, None
        rng = np.random.default_rng([0 if self.random_state is None else int(self.random_state), _HOLDOUT_STREAM])
        order = rng.permutation(len(x))
        n_hold = self._holdout_size(len(x))
        return x[np.sort(order[n_hold:])], x[np.sort(order[:n_hold])]

    # ---------------------------------------------------------------- hooks
    def _validate(self, X: Any, *, fitting: bool) -> np.ndarray:
        # the base's input rules (image models take images only, ...); when fitting, a
        # fresh base validates (the one that fits is made in _fit)
        base = self._make_base() if fitting else self.base_
        x = base._validate(X, fitting=fitting)
        if fitting:
            self.input_shape_ = tuple(base.input_shape_)
        return x

    def _fit(self, x: np.ndarray) -> None:
        x_base, x_hold = self._gaussian_split(x)
        self.base_ = self._make_base().fit(x_base)
        self.gaussian_scores_ = self.base_.decision_function(x_base if x_hold is None else x_hold)
        self.mu_, self.sigma_ = gaussian(self.gaussian_scores_)

    def _score(self, x: np.ndarray) -> np.ndarray:
        return a_score(self.base_.decision_function(x), self.mu_, self.sigma_)

    def _score_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        parts = self.base_.score_parts(x)
        r = parts["score"]
        a = a_score(r, self.mu_, self.sigma_)
        out = {"score": a, "a_score": a, "base": r}
        out.update({f"base_{k}": v for k, v in parts.items() if k != "score"})
        return out

    def _anomaly_map(self, x: np.ndarray) -> np.ndarray:
        # the base's map (of R); without one, BaseDetector.anomaly_map raises the
        # NoAnomalyMapError every model without a map raises
        return self.base_.anomaly_map(x)

    # ---------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, Any]:
        b = self.base_
        return {
            "base": b._payload(),  # a complete model payload, as BaseDetector.save writes one
            "gaussian": torch.tensor([self.mu_, self.sigma_], dtype=torch.float64),
            "gaussian_scores": torch.as_tensor(np.asarray(self.gaussian_scores_, dtype=np.float64)),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        from ..base import _from_checked_payload, _InvalidModelFile

        nested = state["base"]
        if not isinstance(nested, dict) or nested.get("model") != self.base:
            saved = nested.get("model") if isinstance(nested, dict) else None
            raise ValueError(f"the saved base model is {saved!r}, the parameters say base={self.base!r}")
        try:
            self.base_ = _from_checked_payload(nested)
        except _InvalidModelFile as exc:
            raise ValueError(f"base model: {exc}") from None
        mu, sigma = (float(v) for v in state["gaussian"].tolist())
        if not (np.isfinite(mu) and np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"mu {mu} / sigma {sigma} are not a Gaussian")
        self.mu_, self.sigma_ = mu, sigma
        self.gaussian_scores_ = state["gaussian_scores"].numpy()

    @classmethod
    def _from_payload(cls, payload: dict[str, Any]) -> Typical:
        # the base's run-only settings (its checkpoint) belong to the run that made the
        # file, not to the model: a loaded wrapper must not resume that run when refitted
        config = json.loads(payload["config"])
        if isinstance(config.get("base_params"), dict):
            config["base_params"] = {k: v for k, v in config["base_params"].items() if k not in RUN_ONLY_PARAMS}
        return super()._from_payload({**payload, "config": json.dumps(config)})  # type: ignore[return-value]
