"""The result store: one JSON object per line, appended as cells finish.

A benchmark can be killed at any moment and run again: a cell whose key is
already stored is skipped, and a half-written last line (a crash during the
write) is ignored when reading.

A record written before the runner stored the selection regime, the
validation anomalies read and the update counts is *stale* (:func:`is_current`);
``ganad bench --refresh`` runs such cells again.  The store stays append-only:
the new record supersedes the old one for every reader of :func:`all_records`
(the last record of a cell wins), and the old one stays in the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

REQUIRED_KEYS = (
    "model", "dataset", "protocol", "seed", "auroc", "auprc", "f1", "fit_seconds", "score_seconds",
    "peak_rss_mb", "n_train", "n_test", "device", "torch_version", "git_commit", "config",
)


# fields every record of the current runner has (``updates`` is None for models without a training loop)
CURRENT_FIELDS = ("selection", "n_val_anomalies", "updates")


def is_current(record: dict[str, Any]) -> bool:
    """Whether ``record`` has the fields of the current record format (:data:`CURRENT_FIELDS`)."""
    return all(k in record for k in CURRENT_FIELDS)


def latest_per_cell(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per cell: the last one appended (a refreshed cell supersedes its stale record),
    in the order of those last records."""
    last: dict[tuple, dict[str, Any]] = {}
    for r in records:
        key = cell_key(r)
        last.pop(key, None)  # re-inserted below: a cell keeps the place of its latest record
        last[key] = r
    return list(last.values())


def config_id(config: dict[str, Any]) -> str:
    """Short stable hash of a config (sorted JSON)."""
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:10]


def cell_key(record: dict[str, Any]) -> tuple:
    """What makes two runs the same cell: model, config, selection regime, data,
    protocol options, class, seed.  The regime of a record written before it was
    stored is its read-time default (:func:`ganad.bench.provenance.record_selection`)."""
    from .provenance import record_selection

    return (
        record["model"],
        record_selection(record),
        config_id(record.get("config", {})),
        record["dataset"],
        record["protocol"],
        json.dumps(record.get("protocol_options", {}), sort_keys=True),
        record.get("normal_class"),
        record.get("anomalous_class"),
        record["seed"],
    )


class ResultStore:
    """Append-only JSONL file of benchmark records."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        with self.path.open() as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a crash: the cell is simply re-run
                    continue
        return out

    def keys(self, current_only: bool = False) -> set[tuple]:
        return {cell_key(r) for r in self.records() if not current_only or is_current(r)}

    def has(self, record_like: dict[str, Any], current_only: bool = False) -> bool:
        """Whether the cell of ``record_like`` is stored (``current_only``: by a record of the
        current format, :func:`is_current`)."""
        return cell_key(record_like) in self.keys(current_only)

    def append(self, record: dict[str, Any]) -> None:
        missing = [k for k in REQUIRED_KEYS if k not in record]
        if missing:
            raise ValueError(f"record lacks {missing}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, default=str)
        with self.path.open("a+b") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() > 0:  # a line cut by a crash has no newline: start a fresh line
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
            fh.write((line + "\n").encode())
            fh.flush()
            os.fsync(fh.fileno())


def store_path(results_dir: str | os.PathLike, dataset: str, protocol: str) -> Path:
    """``benchmarks/results/<dataset>-<protocol>.jsonl``."""
    return Path(results_dir) / f"{dataset}-{protocol}.jsonl"


SPEED_STORE = "speed.jsonl"  # throughput records (benchmarks/speed.py), not benchmark cells


def is_cell_store(path: Path) -> bool:
    """A benchmark store (``<dataset>-<protocol>.jsonl``), not one of the other record
    files beside them (speed, distributed and search throughput, kernel figures)."""
    from ..data.protocols import PROTOCOLS

    return path.suffix == ".jsonl" and any(path.stem.endswith(f"-{p}") for p in PROTOCOLS)


def all_records(results_dir: str | os.PathLike) -> Iterable[dict[str, Any]]:
    for p in sorted(Path(results_dir).glob("*.jsonl")):
        if is_cell_store(p):
            yield from latest_per_cell(ResultStore(p).records())


def merge(src_dir: str | os.PathLike, dst_dir: str | os.PathLike) -> int:
    """Append to ``dst_dir``'s stores the records of ``src_dir``'s ``*.jsonl`` whose
    cells it lacks (results run elsewhere, e.g. on a lent GPU); return how many."""
    added = 0
    for src in sorted(p for p in Path(src_dir).glob("*.jsonl") if is_cell_store(p)):
        dst = ResultStore(Path(dst_dir) / src.name)
        have = dst.keys()
        for record in ResultStore(src).records():
            key = cell_key(record)
            if key not in have:
                dst.append(record)
                have.add(key)
                added += 1
    return added
