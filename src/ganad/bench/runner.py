"""``ganad bench``: models x dataset x protocol x classes x seeds (x gammas / other sets) -> the result store.

Each cell: build the protocol split, fit the declared configuration
(selection regime ``none``) or choose grid hyper-parameters on K labelled
validation anomalies (``labelled:K``; :mod:`ganad.bench.selection`), fit on
the training split, score the test split, compute metrics, append one JSON
line.  Cells already in the store are skipped, so an interrupted benchmark
resumes where it stopped.  The threshold for F1/precision/recall is the
detector's own ``threshold_`` (a quantile of its training scores); test
labels only enter the metrics.

Besides the metrics, a record carries ``selection`` (the regime),
``n_val_anomalies`` (validation anomalies read), ``test_informed``
(:mod:`ganad.bench.provenance`), and per protocol: ``gamma``,
``n_train_anomalies`` and ``auroc_berg_layout`` (contamination: AUROC on
Berg et al.'s section 4.1.1 test layout, from the same scores), ``other``
(ood), and ``updates``: the optimiser steps per network of the fit
(``"<phase>/<optimiser>"``: count; None for models without a training loop).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import metrics
from ..data.protocols import berg_test_layout
from ..datasets import make_split
from ..progress import progress as progress_bar
from . import configs
from .provenance import is_test_informed
from .selection import (
    DEFAULT_LABELLED,
    declared_grid,
    fit_declared,
    normal_only_validation,
    regime,
    select_on_validation,
)
from .reuse import FitReuse, score_blocks
from .store import ResultStore, store_path
from .twins import stored_twin


def typical_auroc(det: Any, split: Any, test_scores: np.ndarray, reuse: FitReuse | None) -> dict[str, Any]:
    """The A-score's test AUROC for a fitted detector: its score made two-sided by the
    Gaussian of its scores on ``split.val`` (normal-only here: the caller removed any
    validation anomaly).  Empty when the validation split has fewer than 2 images."""
    from ..models.typical import a_score, gaussian

    if len(split.val) < 2 or split.val.n_anomalous:
        return {}
    val = split.val.x
    val_scores = det.decision_function(val) if reuse is None else reuse.scores("score", val, det.decision_function)[0]
    mu, sigma = gaussian(val_scores)
    return {"auroc_typical": metrics.roc_auc(split.test.y, a_score(test_scores, mu, sigma)),
            "typical_gaussian": {"mu": mu, "sigma": sigma, "n": int(len(val))}}


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except Exception:  # noqa: BLE001 - not a git checkout
        return "unknown"


def reset_peak_rss() -> None:
    """Reset the kernel's high-water mark of this process (Linux only)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def device_name(det: Any) -> str:
    dev = getattr(det, "device_", None)
    if dev is not None and getattr(dev, "type", "cpu") == "cuda":
        import torch

        return f"cuda:{torch.cuda.get_device_name(dev)}"
    return f"cpu:{platform.processor() or platform.machine()}:{os.cpu_count()}cores"


@dataclass
class Cell:
    model: str
    dataset: str
    protocol: str
    klass: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    protocol_options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    selection: str = "none"  # "none" or "labelled" (selection.SELECTIONS)
    labelled: int = DEFAULT_LABELLED  # validation anomalies of the labelled regime

    @property
    def class_key(self) -> str:
        return "anomalous_class" if self.protocol == "one-anomalous" else "normal_class"

    @property
    def regime(self) -> str:
        """The recorded selection regime: "none" or "labelled:K" (only with a grid to choose from)."""
        return regime(self.selection, configs.grid_for(self.model), self.labelled)

    def key_record(self) -> dict[str, Any]:
        return {
            "model": self.model, "dataset": self.dataset, "protocol": self.protocol,
            "protocol_options": self.protocol_options, self.class_key: self.klass, "seed": self.seed,
            "config": self.config(), "selection": self.regime,
        }

    def config(self) -> dict[str, Any]:
        """What was asked for: fixed parameters and the validation grid (none in the ``none``
        regime, which fits the declared configuration: only one-value grid entries are kept)."""
        grid = configs.grid_for(self.model)
        return {"params": self.params, "grid": grid if self.regime != "none" else declared_grid(grid)}

    def describe(self) -> str:
        extra = "".join(f" {k} {self.protocol_options[k]}" for k in ("gamma", "other") if k in self.protocol_options)
        klass = "" if self.klass is None else f" class {self.klass}"
        return f"{self.model} {self.dataset} {self.protocol}{extra}{klass} seed {self.seed} [{self.regime}]"


def run_cell(cell: Cell, *, progress: bool = False, reuse: FitReuse | None = None) -> dict[str, Any]:
    """Fit and score one cell; return its record (not yet stored).

    ``progress``: show the detector's scoring bar (images/s) on the test split.
    ``reuse`` (ood): a detector fitted for an earlier cell with the same training set
    is scored again instead of refitted, and test images it scored before (the
    in-distribution normals) are not scored again (:mod:`ganad.bench.reuse`); the
    record says so (``fit_reused``, ``n_scored``).  An ood record also carries
    ``auroc_typical``: the AUROC of the same fit's A-score, the Gaussian typicality
    (:func:`ganad.models.typical.a_score`) of its score, fitted on the validation
    split's held-out training normals.
    """
    import torch

    mode = cell.regime
    options = dict(cell.protocol_options)
    labelled = mode.startswith("labelled:")
    if labelled and cell.protocol == "ood":
        raise ValueError(f"{cell.model}: --selection labelled needs labelled validation anomalies from the training "
                         "split; the ood protocol has none (use --selection none)")
    if cell.protocol != "ood":  # exactly K validation anomalies, or none at all
        options["val_anomalies"] = cell.labelled if labelled else 0
    split = make_split(
        cell.dataset, cell.protocol, random_state=cell.seed, data_dir=cell.data_dir,
        **{cell.class_key: cell.klass}, **options,
    )
    grid = configs.grid_for(cell.model)
    params = {"random_state": cell.seed, **cell.params}
    if labelled:
        if split.val.n_anomalous != cell.labelled:
            raise ValueError(f"{cell.describe()}: --labelled {cell.labelled} asks for {cell.labelled} validation "
                             f"anomalies; the protocol could draw {split.val.n_anomalous}")
    else:
        split = normal_only_validation(split)  # nothing below can read a validation anomaly
    reset_peak_rss()
    reuse_key = None if reuse is None else FitReuse.key(cell.key_record(), split.train.x)
    kept = None if reuse_key is None else reuse.get(reuse_key)
    t0 = time.perf_counter()
    if kept is not None:
        det, chosen, trials, fit_seconds = kept
    else:
        if labelled:
            det, chosen, trials = select_on_validation(cell.model, params, grid, split)
        else:
            det, chosen, trials = fit_declared(cell.model, params, grid, split), {}, []
        fit_seconds = time.perf_counter() - t0
        if reuse is not None:
            reuse.put(reuse_key, (det, chosen, trials, fit_seconds))
    verbose = getattr(det, "verbose", None)
    if progress and verbose is not None:
        det.verbose = True  # scoring only (the record does not hold it): a search over 10,000 images takes hours
    t1 = time.perf_counter()
    scores, n_scored = score_blocks(split.test.x, split.test.y, "score", det.decision_function, reuse)
    score_seconds = time.perf_counter() - t1
    result = metrics.evaluate(split.test.y, scores, threshold=det.threshold_)
    part_auroc = None
    if configs.record_parts(cell.model):  # the score's terms and the paper's alternative scores
        parts, _ = score_blocks(split.test.x, split.test.y, "parts", det.score_parts, reuse)
        part_auroc = {
            k: metrics.roc_auc(split.test.y, v) for k, v in parts.items() if k != "score" and np.isfinite(v).all()
        }
    if verbose is not None:
        det.verbose = verbose
    history = getattr(det, "history_", None)
    extra: dict[str, Any] = {}
    if cell.protocol == "contamination":
        layout = berg_test_layout(split.test.labels, cell.klass, cell.seed)
        extra = {
            "gamma": cell.protocol_options.get("gamma"),
            "n_train_anomalies": int(split.train.n_anomalous),
            "auroc_berg_layout": metrics.roc_auc(split.test.y[layout], scores[layout]),
            "berg_layout": {"n_normal": int((split.test.y[layout] == 0).sum()),
                            "n_anomalous": int(split.test.y[layout].sum())},
        }
    if cell.protocol == "ood":
        extra = {"other": cell.protocol_options.get("other"), "anomaly_source": split.info.get("anomaly_source"),
                 **typical_auroc(det, split, scores, reuse)}
    config = cell.config()
    return {
        **cell.key_record(),
        "selection": mode if not labelled else f"labelled:{split.val.n_anomalous}",
        "n_val_anomalies": int(split.val.n_anomalous),
        "test_informed": is_test_informed(cell.model, config),
        **extra,
        "auroc": result["auroc"], "auprc": result["auprc"], "f1": result["f1"],
        "precision": result["precision"], "recall": result["recall"], "specificity": result["specificity"],
        "part_auroc": part_auroc,
        "threshold": det.threshold_, "selected": chosen, "selection_trials": trials,
        "fit_seconds": fit_seconds, "fit_reused": kept is not None, "score_seconds": score_seconds,
        "n_scored": n_scored, "score_images_per_second": n_scored / max(score_seconds, 1e-9),
        "train_images_per_second": getattr(history, "images_per_second", None),
        "updates": getattr(det, "updates_", None),
        "peak_rss_mb": peak_rss_mb(),
        "n_train": len(split.train), "n_val": len(split.val), "n_test": len(split.test),
        "test_anomalies": split.test.n_anomalous,
        "device": device_name(det), "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "load_avg_1min": os.getloadavg()[0],
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def plan(
    models: list[str], dataset: str, protocol: str, classes: list[int | None], seeds: list[int],
    params: dict[str, dict[str, Any]] | None = None, protocol_options: dict[str, Any] | None = None,
    data_dir: str | None = None, *, selection: str = "none", labelled: int = DEFAULT_LABELLED,
    gammas: list[float] | None = None, others: list[str] | None = None,
) -> list[Cell]:
    """The cells of models x classes x seeds (x ``gammas`` for contamination, x ``others``
    for ood: each value a cell, stored in ``protocol_options``).  ``selection``: "none"
    (the declared configuration) or "labelled" (grids chosen on ``labelled`` validation
    anomalies); the ood protocol has no class (pass ``classes=[None]``)."""
    params = params or {}
    variants: list[dict[str, Any]] = [dict(protocol_options or {})]
    if gammas is not None:
        variants = [{**v, "gamma": float(g)} for v in variants for g in gammas]
    if others is not None:
        variants = [{**v, "other": o} for v in variants for o in others]
    cells = [
        Cell(m, dataset, protocol, c, s, {**configs.params_for(m), **params.get(m, {})}, dict(v), data_dir,
             selection, int(labelled))
        for m in models for c in classes for s in seeds for v in variants
    ]
    for cell in cells:
        if protocol == "ood" and cell.regime != "none":
            raise ValueError(f"{cell.model}: --selection labelled needs labelled validation anomalies from the "
                             "training split; the ood protocol has none (use --selection none)")
    return cells


def run_bench(
    cells: list[Cell], results_dir: str | os.PathLike, *, log: Callable[[str], None] = print, progress: bool = True,
    refresh: bool = False,
) -> list[dict[str, Any]]:
    """Run the cells not yet stored; return the new records.  ``refresh``: also run the cells
    stored only by a stale record (:func:`ganad.bench.store.is_current`); the new record
    supersedes it.  An unsupervised one-class cell whose contamination gamma-0 twin is stored
    (current, with ``refresh``) is recorded from it, not fitted (:mod:`ganad.bench.twins`)."""
    new: list[dict[str, Any]] = []
    todo = []
    for cell in cells:
        store = ResultStore(store_path(results_dir, cell.dataset, cell.protocol))
        if store.has(cell.key_record(), current_only=refresh):
            continue
        twin = stored_twin(cell.key_record(), results_dir, current_only=refresh)
        if twin is not None:  # the same fit, stored as the contamination gamma-0 cell
            store.append(twin)
            new.append(twin)
            log(f"{cell.describe()}: AUROC {twin['auroc']:.4f}, recorded from its stored contamination "
                "gamma-0 twin (the same split and fit)")
            continue
        todo.append((cell, store))
    log(f"{len(cells) - len(todo)} of {len(cells)} cells already stored; running {len(todo)}")
    reuse = FitReuse()  # ood cells that differ only in their anomaly source share one fit
    # one bar over the cells (cell/s), its postfix the last cell's test-scoring rate (img/s);
    # each cell's scoring shows its own img/s bar under it while it runs
    with progress_bar(len(todo), "bench", progress and bool(todo), unit="cell", leave=True) as bar:
        for cell, store in todo:
            if store.has(cell.key_record(), current_only=refresh):  # another process sharing the store ran it meanwhile
                log(f"{cell.describe()}: stored meanwhile, skipped")
                bar.update(1)
                continue
            rec = run_cell(cell, progress=progress, reuse=reuse if cell.protocol == "ood" else None)
            store.append(rec)
            new.append(rec)
            also = f" (Berg layout {rec['auroc_berg_layout']:.4f})" if "auroc_berg_layout" in rec else ""
            also += f" (A-score {rec['auroc_typical']:.4f})" if rec.get("auroc_typical") is not None else ""
            log(
                f"{cell.describe()}: "
                f"AUROC {rec['auroc']:.4f}{also} AUPRC {rec['auprc']:.4f} fit {rec['fit_seconds']:.1f}s "
                f"score {rec['score_seconds']:.1f}s selected {json.dumps(rec['selected'])}"
            )
            bar.set_postfix(score=f"{rec['score_images_per_second']:.1f} img/s", refresh=False)
            bar.update(1)
    return new


def parse_value(text: str) -> Any:
    """Command-line parameter values: JSON where it parses (numbers, null, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
