"""Model registry: ``ganad.create("kde", ...)`` and ``ganad.available_models()``."""

from __future__ import annotations

import importlib
from typing import Any, Callable, TypeVar

_REGISTRY: dict[str, type] = {}
T = TypeVar("T", bound=type)

# Modules that register models when imported; new methods add a line here.
# Every listed module must exist and import cleanly: a failure is raised, not skipped.
_MODEL_MODULES = (
    "ganad.models.classic",
    "ganad.models.ganomaly",
    "ganad.models.egbad",
    "ganad.models.alad",
    "ganad.models.fanogan",
    "ganad.models.anogan",
    "ganad.models.adgan",
    "ganad.models.dcae",
    "ganad.models.vae",
    "ganad.models.deepsvdd",
    "ganad.models.gaae",
    "ganad.models.ama",
    "ganad.models.typical",
    "ganad.models.berg",
)
_loaded = False


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a detector available as ``ganad.create(name)``."""

    def deco(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} registered twice")
        cls.name = name  # type: ignore[attr-defined]
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _MODEL_MODULES:
        try:
            importlib.import_module(mod)
        except ImportError as exc:  # a listed module is part of the package: never skip it
            raise ImportError(f"model module {mod!r} failed to import: {exc}") from exc
    _loaded = True


def available_models() -> list[str]:
    """Names accepted by :func:`create`, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get_class(name: str) -> type:
    _load_all()
    key = name.lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return _REGISTRY[key]


def create(name: str, **params: Any) -> Any:
    """A new, unfitted detector: ``ganad.create("ganomaly", epochs=15)``."""
    cls = get_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"{name}: {exc}") from exc
