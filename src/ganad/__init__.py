"""ganad: anomaly detection with generative adversarial networks.

>>> import ganad
>>> from ganad import datasets, metrics
>>> split = datasets.digits(protocol="one-class", normal_class=0, random_state=0)
>>> det = ganad.create("kde").fit(split.train.x)
>>> auroc = metrics.roc_auc(split.test.y, det.decision_function(split.test.x))
"""

from .base import BaseDetector, load
from .exceptions import NotFittedError, TrainingDivergedError
from .registry import available_models, create, register

__version__ = "0.1.0"

__all__ = [
    "BaseDetector",
    "NotFittedError",
    "TrainingDivergedError",
    "available_models",
    "create",
    "load",
    "register",
    "datasets",
    "metrics",
]


def __getattr__(name: str):  # lazy: `ganad.datasets`, `ganad.metrics` without import cost
    import importlib

    if name in ("datasets", "metrics", "data", "models", "report", "bench", "nets", "losses", "train"):
        return importlib.import_module(f"ganad.{name}")
    raise AttributeError(f"module 'ganad' has no attribute {name!r}")
