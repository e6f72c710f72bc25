"""Declared parameter constraints, checked in one place (scikit-learn's ``_parameter_constraints``).

A detector class declares ``_parameter_constraints = {"lr": [POSITIVE], ...}``:
each parameter maps to a list of allowed forms, and a value is valid if any
form accepts it (``None`` in the list allows None).  ``check_params`` merges
the dicts of the class and its bases (the subclass wins) and raises one
``ValueError`` naming the parameter, what it must be and what it got.
Hyper-parameters shared by many models (nz, width, lr, betas, epochs, batch
size, device, precision) are declared once, their constraints in
:data:`SHARED` and their one-line meanings in :data:`SHARED_DOCS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Iterable, Mapping


class Constraint:
    def accepts(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of ``kind`` (int or float) in [low, high], with open ends as stated."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right", "neither"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, Integral if self.kind is int else Real):
            return False
        if not math.isfinite(float(value)):
            return False
        lo_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        hi_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return lo_ok and hi_ok

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.low is None and self.high is None:
            return what
        if self.high is None:
            return f"{what} {'>=' if self.closed in ('both', 'left') else '>'} {self.low:g}"
        if self.low is None:
            return f"{what} {'<=' if self.closed in ('both', 'right') else '<'} {self.high:g}"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        return f"{what} in {left}{self.low:g}, {self.high:g}{right}"


@dataclass(frozen=True)
class Options(Constraint):
    """One of the listed values."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


class _Bool(Constraint):
    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool) or type(value).__name__ == "bool_"

    def describe(self) -> str:
        return "True or False"


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list or tuple of ``length`` (any when None) items each accepted by ``item``."""

    item: Constraint
    length: int | None = None
    min_length: int = 0

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)):
            return False
        if (self.length is not None and len(value) != self.length) or len(value) < self.min_length:
            return False
        return all(self.item.accepts(v) for v in value)

    def describe(self) -> str:
        n = f"{self.length} " if self.length is not None else ""
        return f"a list of {n}values, each {self.item.describe()}"


class _Path(Constraint):
    def accepts(self, value: Any) -> bool:
        import os

        return isinstance(value, (str, os.PathLike)) and bool(str(value))

    def describe(self) -> str:
        return "a path (str)"


BOOL = _Bool()
Path = _Path()
POSITIVE_INT = Interval(int, 1)
NON_NEGATIVE_INT = Interval(int, 0)
POSITIVE = Interval(float, 0, None, "neither")
NON_NEGATIVE = Interval(float, 0)
UNIT = Interval(float, 0, 1)  # [0, 1]
BETA = Interval(float, 0, 1, "left")  # [0, 1): Adam's betas, EMA decays
SHARE = Interval(float, 0, 0.5, "left")  # [0, 0.5): held-out shares

PRECISIONS = ("fp32", "bf16")


class _Device(Constraint):
    """A non-empty device string (``TorchDetector`` checks that torch can parse it)."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value)

    def describe(self) -> str:
        return "a device name ('auto', 'cpu', 'cuda', 'cuda:N', ...)"


DEVICE = _Device()

# Hyper-parameters many models share, each declared once: its allowed forms and its
# one-line meaning.  A model whose docstring documents the parameter (its own default,
# an optimiser other than Adam) overrides the meaning in ``ganad models``; the
# constraint is taken as ``SHARED[name]`` in the model's ``_parameter_constraints``.
_SHARED_TABLE: dict[str, tuple[list[Any], str]] = {
    "nz": ([POSITIVE_INT], "latent size: the number of dimensions of the code z."),
    "width": ([Interval(int, 2)], "base channel count of the conv nets (their capacity; the layers' channel counts scale with it)."),
    "lr": ([POSITIVE], "learning rate of the nets' optimiser."),
    "beta1": ([BETA], "Adam's beta1, the decay of its running mean of gradients."),
    "beta2": ([BETA], "Adam's beta2, the decay of its running mean of squared gradients."),
    "weight_decay": ([NON_NEGATIVE], "weight decay of the optimiser (0 = none)."),
    "epochs": ([NON_NEGATIVE_INT], "training epochs (some methods set their own default)."),
    "batch_size": ([POSITIVE_INT], "images per training step; scoring runs max(batch_size, 256) at a time."),
    "device": ([DEVICE], '"auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...'),
    "precision": (
        [Options(PRECISIONS)],
        (
            '"fp32" (default) or "bf16": bfloat16 autocast (CPU and CUDA) for training and scoring, with fp32 '
            "master weights, optimiser state, losses and BatchNorm statistics; the WGAN-GP penalty is computed "
            "in fp32.  Saved with the model; a loaded model scores in it."
        ),
    ),
}

#: the allowed forms of the hyper-parameters many models share, declared once
SHARED: dict[str, list[Any]] = {name: options for name, (options, _) in _SHARED_TABLE.items()}
#: their one-line meanings (what ``ganad models NAME`` says when a model's docstring does not)
SHARED_DOCS: dict[str, str] = {name: doc for name, (_, doc) in _SHARED_TABLE.items()}


def merged_constraints(cls: type) -> dict[str, list[Any]]:
    """The ``_parameter_constraints`` of ``cls`` and its bases, the most derived winning."""
    out: dict[str, list[Any]] = {}
    for klass in reversed(cls.__mro__):
        out.update(klass.__dict__.get("_parameter_constraints", {}))
    return out


def describe(options: Iterable[Any]) -> str:
    return " or ".join("None" if c is None else c.describe() for c in options)


def check_params(obj: Any, constraints: Mapping[str, list[Any]]) -> None:
    """Raise ``ValueError`` for the first parameter of ``obj`` no declared form accepts."""
    for name, options in constraints.items():
        if not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        if any((c is None and value is None) or (c is not None and c.accepts(value)) for c in options):
            continue
        raise ValueError(f"{name} must be {describe(options)}; got {value!r}")
