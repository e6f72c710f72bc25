"""``ganad bench``: models x dataset x protocol x classes x seeds -> the result store.

Each cell: build the protocol split, choose grid hyper-parameters on the
validation split (:mod:`ganad.bench.selection`), fit on the training split,
score the test split, compute metrics, append one JSON line.  Cells already
in the store are skipped, so an interrupted benchmark resumes where it
stopped.  The threshold for F1/precision/recall is the detector's own
``threshold_`` (a quantile of its training scores); test labels only enter
the metrics.
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
from ..datasets import make_split
from ..progress import progress as progress_bar
from . import configs
from .selection import select_on_validation
from .store import ResultStore, store_path


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

    @property
    def class_key(self) -> str:
        return "anomalous_class" if self.protocol == "one-anomalous" else "normal_class"

    def key_record(self) -> dict[str, Any]:
        return {
            "model": self.model, "dataset": self.dataset, "protocol": self.protocol,
            "protocol_options": self.protocol_options, self.class_key: self.klass, "seed": self.seed,
            "config": self.config(),
        }

    def config(self) -> dict[str, Any]:
        """What was asked for: fixed parameters and the validation grid."""
        return {"params": self.params, "grid": configs.grid_for(self.model)}


def run_cell(cell: Cell, *, progress: bool = False) -> dict[str, Any]:
    """Fit and score one cell; return its record (not yet stored).

    ``progress``: show the detector's scoring bar (images/s) on the test split.
    """
    import torch

    split = make_split(
        cell.dataset, cell.protocol, random_state=cell.seed, data_dir=cell.data_dir,
        **{cell.class_key: cell.klass}, **cell.protocol_options,
    )
    params = {"random_state": cell.seed, **cell.params}
    reset_peak_rss()
    t0 = time.perf_counter()
    det, chosen, trials = select_on_validation(cell.model, params, configs.grid_for(cell.model), split)
    fit_seconds = time.perf_counter() - t0
    verbose = getattr(det, "verbose", None)
    if progress and verbose is not None:
        det.verbose = True  # scoring only (the record does not hold it): a search over 10,000 images takes hours
    t1 = time.perf_counter()
    scores = det.decision_function(split.test.x)
    score_seconds = time.perf_counter() - t1
    result = metrics.evaluate(split.test.y, scores, threshold=det.threshold_)
    part_auroc = None
    if configs.record_parts(cell.model):  # the score's terms and the paper's alternative scores
        parts = det.score_parts(split.test.x)
        part_auroc = {
            k: metrics.roc_auc(split.test.y, v) for k, v in parts.items() if k != "score" and np.isfinite(v).all()
        }
    if verbose is not None:
        det.verbose = verbose
    history = getattr(det, "history_", None)
    return {
        **cell.key_record(),
        "auroc": result["auroc"], "auprc": result["auprc"], "f1": result["f1"],
        "precision": result["precision"], "recall": result["recall"], "specificity": result["specificity"],
        "part_auroc": part_auroc,
        "threshold": det.threshold_, "selected": chosen, "selection_trials": trials,
        "fit_seconds": fit_seconds, "score_seconds": score_seconds,
        "score_images_per_second": len(split.test) / max(score_seconds, 1e-9),
        "train_images_per_second": getattr(history, "images_per_second", None),
        "peak_rss_mb": peak_rss_mb(),
        "n_train": len(split.train), "n_val": len(split.val), "n_test": len(split.test),
        "test_anomalies": split.test.n_anomalous,
        "device": device_name(det), "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "load_avg_1min": os.getloadavg()[0],
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def plan(
    models: list[str], dataset: str, protocol: str, classes: list[int], seeds: list[int],
    params: dict[str, dict[str, Any]] | None = None, protocol_options: dict[str, Any] | None = None,
    data_dir: str | None = None,
) -> list[Cell]:
    params = params or {}
    return [
        Cell(m, dataset, protocol, c, s, {**configs.params_for(m), **params.get(m, {})}, dict(protocol_options or {}), data_dir)
        for m in models for c in classes for s in seeds
    ]


def run_bench(
    cells: list[Cell], results_dir: str | os.PathLike, *, log: Callable[[str], None] = print, progress: bool = True
) -> list[dict[str, Any]]:
    """Run the cells not yet stored; return the new records."""
    new: list[dict[str, Any]] = []
    todo = []
    for cell in cells:
        store = ResultStore(store_path(results_dir, cell.dataset, cell.protocol))
        if store.has(cell.key_record()):
            continue
        todo.append((cell, store))
    log(f"{len(cells) - len(todo)} of {len(cells)} cells already stored; running {len(todo)}")
    # one bar over the cells (cell/s), its postfix the last cell's test-scoring rate (img/s);
    # each cell's scoring shows its own img/s bar under it while it runs
    with progress_bar(len(todo), "bench", progress and bool(todo), unit="cell", leave=True) as bar:
        for cell, store in todo:
            if store.has(cell.key_record()):  # another process sharing the store ran it meanwhile
                log(f"{cell.model} {cell.dataset} {cell.protocol} class {cell.klass} seed {cell.seed}: stored meanwhile, skipped")
                bar.update(1)
                continue
            rec = run_cell(cell, progress=True) if progress else run_cell(cell)
            store.append(rec)
            new.append(rec)
            log(
                f"{cell.model} {cell.dataset} {cell.protocol} class {cell.klass} seed {cell.seed}: "
                f"AUROC {rec['auroc']:.4f} AUPRC {rec['auprc']:.4f} fit {rec['fit_seconds']:.1f}s "
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


def mean_auroc(records: list[dict[str, Any]]) -> float:
    return float(np.mean([r["auroc"] for r in records])) if records else float("nan")
