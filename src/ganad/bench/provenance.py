"""How a stored record's configuration was chosen: its selection regime and
whether test AUROCs informed it.

Selection regimes (``record["selection"]``):

* ``"none"``: the declared defaults (the model's own defaults plus
  :func:`ganad.bench.configs.params_for` and the command line); no grid was
  searched, or a grid was fitted on a validation split without anomalies (its
  first point).  Early stopping that a model does internally on held-out
  *normal* training images (``validation_fraction`` / ``patience``) stays
  ``"none"``.
* ``"normal-only"``: a grid chosen by a criterion computed on normal data only.
* ``"labelled:K"``: a grid chosen on validation AUROC with K labelled
  validation anomalies drawn from the *training* split (semi-supervised).

Records written before the regime was stored carry no ``selection``; they
are read with :func:`record_selection`'s default, the files are not rewritten.

Test-informed configurations (:data:`TEST_INFORMED`) were settled after
reading test AUROCs of earlier runs; their records are never headline numbers.
:func:`record_test_informed` is what the renderer asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

HEADLINE_REGIMES = ("none", "normal-only")


def _n_points(grid: dict[str, list[Any]]) -> int:
    n = 1
    for values in grid.values():
        n *= len(values)
    return n


def _val_anomalies_of_old_record(r: dict[str, Any]) -> int | None:
    """Validation anomalies an old record's split had (it stored only ``n_val``), or
    None when its protocol drew none.  one-class and contamination drew
    ``val_anomaly_ratio`` (default 1.0) anomalies per held-out normal image, from
    the training split; one-anomalous (default ratio 0) and ood drew none."""
    opts = r.get("protocol_options", {}) or {}
    default = 1.0 if r.get("protocol") in ("one-class", "contamination") else 0.0
    ratio = float(opts.get("val_anomaly_ratio", default))
    if r.get("protocol") == "ood" or ratio <= 0:
        return None
    n_val = r.get("n_val")
    if n_val is None:
        return -1  # had anomalies, count unknown
    return int(n_val) - int(round(int(n_val) / (1.0 + ratio)))


@dataclass(frozen=True)
class ConfigChoice:
    """A *fixed* benchmark parameter that was itself chosen on labelled validation
    anomalies (in a probe, before the benchmark): records using it are in that
    regime although their cell searched no grid."""

    model: str
    why: str
    regime: str
    matches: Callable[[dict[str, Any]], bool]  # on the whole record


def _adgan_lr_chosen_on_labels(r: dict[str, Any]) -> bool:
    """lr 5e-4 given explicitly, or left to the default by a record of the regime-aware
    runner (it stores ``selection``; the default was 5e-4 by then).  Older records
    without ``lr`` trained at the previous default 5e-5, chosen on nothing."""
    params = _params(r.get("config", {}) or {})
    if params.get("lipschitz", "clip") != "clip":
        return False
    return params.get("lr") == 5e-4 or ("lr" not in params and "selection" in r)


CONFIG_CHOICES: tuple[ConfigChoice, ...] = (
    # benchmarks/probes/adgan-probe.jsonl: validation AUROC on a seeded 300-image subset
    # of the one-class validation split, about half of it labelled anomalies
    ConfigChoice("adgan", "lr 5e-4 (the weight-clipping default) chosen on labelled validation anomalies",
                 "labelled:150", _adgan_lr_chosen_on_labels),
)


def record_selection(r: dict[str, Any]) -> str:
    """The record's regime: :func:`cell_selection`, then :data:`CONFIG_CHOICES` (a
    fixed parameter chosen on labelled validation anomalies puts a "none" cell in
    that labelled regime)."""
    regime = cell_selection(r)
    if regime == "none":
        for choice in CONFIG_CHOICES:
            if choice.model == r.get("model") and choice.matches(r):
                return choice.regime
    return regime


def cell_selection(r: dict[str, Any]) -> str:
    """The record's selection regime; for records without ``selection`` (written
    before it was stored), the read-time default: ``labelled:<n val anomalies>``
    when the config held a multi-point grid and the validation split held
    anomalies (one-class protocol), else ``none`` (fixed parameters, or a grid
    whose validation split had no anomalies: its first point was fitted)."""
    if r.get("selection"):
        return str(r["selection"])
    grid = (r.get("config", {}) or {}).get("grid", {}) or {}
    if _n_points(grid) > 1:
        n = _val_anomalies_of_old_record(r)
        if n is not None and n != 0:
            return f"labelled:{n if n > 0 else 'unknown'}"
    return "none"


def regime_kind(selection: str) -> str:
    """"unsupervised" (none, normal-only) or "semi-supervised" (labelled:K)."""
    return "unsupervised" if selection in HEADLINE_REGIMES else "semi-supervised"


@dataclass(frozen=True)
class Rule:
    """A configuration chosen after reading test AUROCs: ``model`` and a predicate
    on the record's ``config`` ({"params": ..., "grid": ...})."""

    model: str
    why: str
    matches: Callable[[dict[str, Any]], bool]


def _params(config: dict[str, Any]) -> dict[str, Any]:
    return (config or {}).get("params", {}) or {}


def _grid(config: dict[str, Any]) -> dict[str, list[Any]]:
    return (config or {}).get("grid", {}) or {}


TEST_INFORMED: frozenset[Rule] = frozenset({
    Rule("egbad", "grid with lam = 1.0 (added after reading test AUROCs)",
         lambda c: any(float(v) == 1.0 for v in _grid(c).get("lam", []))),
    Rule("gaae", "epochs = 10 (set after reading the test AUROCs of 3 epochs)",
         lambda c: _params(c).get("epochs") == 10),
    Rule("alad", "epoch chosen on held-out normals (validation_fraction / patience), added after reading test AUROCs",
         lambda c: _params(c).get("patience") is not None),
    Rule("adgan", "width 32 (run after reading the width-16 test AUROCs)",
         lambda c: _params(c).get("width") == 32),
})


def informed_rules(model: str, config: dict[str, Any]) -> list[Rule]:
    return [rule for rule in sorted(TEST_INFORMED, key=lambda x: (x.model, x.why))
            if rule.model == model and rule.matches(config)]


def is_test_informed(model: str, config: dict[str, Any]) -> bool:
    """Whether ``config`` of ``model`` is one of :data:`TEST_INFORMED` (what a new record stores)."""
    return bool(informed_rules(model, config))


def record_test_informed(r: dict[str, Any]) -> bool:
    """The record's ``test_informed`` flag, or its config matching :data:`TEST_INFORMED`
    (read from the stored config, so that old records are classified too)."""
    return bool(r.get("test_informed")) or is_test_informed(str(r.get("model")), r.get("config", {}) or {})


def record_section(r: dict[str, Any]) -> str:
    """Which RESULTS.md table a record belongs to: "test-informed", "unsupervised" or "semi-supervised"."""
    return "test-informed" if record_test_informed(r) else regime_kind(record_selection(r))
