"""Cells of two protocols that are one experiment: unsupervised one-class and contamination at gamma = 0.

The contamination protocol at gamma = 0 mixes no anomaly into training
(:func:`ganad.data.protocols.contamination`), and in the unsupervised regimes
(``none``, ``normal-only``) both protocols draw no validation anomaly
(:func:`ganad.bench.runner.run_cell` passes ``val_anomalies=0``).  The two
splits are then the same images in the same order (training, validation and
test; ``tests/test_bench.py`` checks it on every digits class for two seeds and
on two Fashion-MNIST classes),
so a one-class cell and its contamination twin of the same model, config,
class and seed are the same fit and the same test scores.

The bench therefore fits such a pair once: an unsupervised one-class cell whose
contamination twin is stored is recorded from the twin (:func:`one_class_record`,
marked ``same_fit_as``) instead of being fitted again.  Only this direction is
derived: a contamination record also needs the scores on Berg et al.'s test
layout, which a one-class record does not hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .store import ResultStore, cell_key, is_current, store_path

UNSUPERVISED = ("none", "normal-only")
# what only a contamination record has
CONTAMINATION_KEYS = ("gamma", "n_train_anomalies", "auroc_berg_layout", "berg_layout")


def contamination_twin(key_record: dict[str, Any]) -> dict[str, Any] | None:
    """The key record of the contamination gamma-0 cell that is the same experiment as the
    one-class cell ``key_record``; None when there is none (another protocol or a regime
    that reads validation anomalies)."""
    if key_record.get("protocol") != "one-class" or key_record.get("selection") not in UNSUPERVISED:
        return None
    options = dict(key_record.get("protocol_options") or {})
    if "gamma" in options:
        return None
    return {**key_record, "protocol": "contamination", "protocol_options": {**options, "gamma": 0.0}}


def one_class_record(twin: dict[str, Any]) -> dict[str, Any]:
    """The one-class record of a stored contamination gamma-0 record: the same metrics,
    fit and provenance, less the contamination fields, with ``same_fit_as`` naming the twin."""
    if twin.get("protocol") != "contamination" or float((twin.get("protocol_options") or {}).get("gamma", -1)) != 0.0:
        raise ValueError("only a contamination record at gamma = 0 has a one-class twin")
    if twin.get("n_val_anomalies") != 0 or twin.get("selection") not in UNSUPERVISED:
        raise ValueError("only an unsupervised record that read no validation anomaly has a one-class twin")
    rec = {k: v for k, v in twin.items() if k not in CONTAMINATION_KEYS}
    rec["protocol"] = "one-class"
    rec["protocol_options"] = {k: v for k, v in twin["protocol_options"].items() if k != "gamma"}
    rec["same_fit_as"] = {"protocol": "contamination", "protocol_options": twin["protocol_options"],
                          "timestamp": twin.get("timestamp")}
    return rec


def stored_twin(key_record: dict[str, Any], results_dir: str | Path, current_only: bool = False) -> dict[str, Any] | None:
    """The one-class record derived from the stored contamination twin of ``key_record`` (the
    last one stored; ``current_only``: of the current record format), or None when there is none."""
    twin_key = contamination_twin(key_record)
    if twin_key is None:
        return None
    wanted = cell_key(twin_key)
    store = ResultStore(store_path(results_dir, key_record["dataset"], "contamination"))
    found = [r for r in store.records() if cell_key(r) == wanted and r.get("n_val_anomalies") == 0
             and (is_current(r) or not current_only)]
    return one_class_record(found[-1]) if found else None
