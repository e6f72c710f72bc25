"""Score a stream of images batch by batch, in flat memory (``ganad score``).

:func:`score_stream` runs a fitted detector over a DataLoader of
:mod:`ganad.data.stream`, writes one ``scores.csv`` row per image as it goes
(index, path, score, flag, every ``score_parts`` term, label) and keeps only
what a report needs: the scores, and in bounded heaps the ``table`` highest
rows and the ``thumbs`` most and least anomalous images.  Memory is that of
one batch plus these, however large the folder.
"""

from __future__ import annotations

import csv
import heapq
import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .progress import progress

__all__ = ["StreamResult", "score_stream", "anomaly_maps"]

MAX_NOTES = 100  # skip messages kept for the report; the count is exact


@dataclass
class StreamResult:
    """What a streamed scoring keeps.

    ``scores`` and ``positions`` (into ``names``) are in file order, skipped
    files left out; ``top`` / ``bottom`` are ``(score, position, image)`` with
    the highest (lowest) score first; ``table`` is ``(score, position, parts)``
    of the highest-scoring rows, highest first.
    """

    names: Sequence[str]
    scores: np.ndarray
    positions: np.ndarray
    threshold: float
    part_names: list[str]
    top: list[tuple[float, int, np.ndarray]]
    bottom: list[tuple[float, int, np.ndarray]]
    table: list[tuple[float, int, dict[str, float]]]
    labels: np.ndarray | None = None  # per scored image, aligned with ``scores``
    skipped: int = 0
    converted: int = 0
    notes: list[str] = field(default_factory=list)
    csv_path: Path | None = None


class _Bounded:
    """The ``k`` largest items by ``key`` (a min-heap of size ``k``)."""

    def __init__(self, k: int):
        self.k, self.heap = k, []  # type: ignore[var-annotated]

    def offer(self, key: tuple, item: Any) -> None:
        if self.k <= 0:
            return
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, (key, item))
        elif key > self.heap[0][0]:
            heapq.heapreplace(self.heap, (key, item))

    def would_take(self, key: tuple) -> bool:
        return self.k > 0 and (len(self.heap) < self.k or key > self.heap[0][0])

    def sorted(self) -> list[Any]:
        return [item for _, item in sorted(self.heap, key=lambda e: e[0], reverse=True)]


def score_stream(
    det: Any,
    loader: Iterable[dict[str, Any]],
    names: Sequence[str],
    csv_path: str | os.PathLike,
    *,
    labels: np.ndarray | None = None,
    skip_bad: bool = False,
    thumbs: int = 8,
    table: int = 500,
    show_progress: bool = True,
    desc: str = "scoring",
) -> StreamResult:
    """Score every batch of ``loader`` with ``det.score_parts`` (its ``"score"`` is
    ``decision_function``), writing ``csv_path`` row by row.

    ``labels`` (0/1 per entry of ``names``) adds a label column and is carried
    into the result.  A file that did not load stops the run with a ValueError
    naming it, unless ``skip_bad``: then it is counted and noted.
    """
    threshold = float(det.threshold_)
    scores, positions = array("d"), array("q")
    top, bottom, rows = _Bounded(thumbs), _Bounded(thumbs), _Bounded(table)
    part_names: list[str] | None = None
    skipped = converted = 0
    notes: list[str] = []
    csv_path = Path(csv_path)
    bar, done = None, 0  # the bar starts after the first batch: a bad first file is a one-line error
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        try:
            for batch in loader:
                for pos, message in batch["errors"]:
                    if not skip_bad:
                        raise ValueError(f"{message} (pass --skip-bad to leave such files out)")
                    skipped += 1
                    if len(notes) < MAX_NOTES:
                        notes.append(f"skipped {message}")
                x = batch["x"]
                n_batch = len(batch["index"]) + len(batch["errors"])
                done += n_batch
                if x is None:
                    continue
                converted += int(batch["converted"])
                parts = det.score_parts(x)
                s = np.asarray(parts.pop("score"), dtype=np.float64).reshape(-1)
                if part_names is None:
                    part_names = sorted(parts)
                    w.writerow(["index", "path", "score", "flag", *part_names] + (["label"] if labels is not None else []))
                idx = batch["index"]
                cols = [np.asarray(parts[k], dtype=np.float64).reshape(-1) for k in part_names]
                for j, pos in enumerate(idx.tolist()):
                    sj = float(s[j])
                    row = [pos, names[pos], repr(sj), int(sj > threshold), *(repr(float(c[j])) for c in cols)]
                    if labels is not None:
                        row.append(int(labels[pos]))
                    w.writerow(row)
                    key_hi, key_lo = (sj, -pos), (-sj, -pos)  # ties: the earlier file first, as a stable sort
                    if rows.would_take(key_hi):
                        rows.offer(key_hi, (sj, pos, {k: float(c[j]) for k, c in zip(part_names, cols)}))
                    if top.would_take(key_hi):
                        top.offer(key_hi, (sj, pos, np.array(x[j])))
                    if bottom.would_take(key_lo):
                        bottom.offer(key_lo, (sj, pos, np.array(x[j])))
                scores.extend(s.tolist())
                positions.extend(idx.tolist())
                fh.flush()
                if bar is None:
                    bar = progress(len(names), desc, show_progress)
                    bar.update(done)
                else:
                    bar.update(n_batch)
        finally:
            if bar is not None:
                bar.close()
    if not scores:
        raise ValueError("none of the image files could be read")
    pos_arr = np.frombuffer(positions, dtype=np.int64).copy()
    return StreamResult(
        names=names, scores=np.frombuffer(scores, dtype=np.float64).copy(), positions=pos_arr,
        threshold=threshold, part_names=part_names or [], top=top.sorted(), bottom=bottom.sorted(),
        table=rows.sorted(), labels=None if labels is None else np.asarray(labels)[pos_arr].astype(np.int64),
        skipped=skipped, converted=converted, notes=notes, csv_path=csv_path,
    )


def anomaly_maps(det: Any, images: list[np.ndarray]) -> np.ndarray | None:
    """``det.anomaly_map`` of ``images`` as ``(n, H, W)`` floats at the images' size,
    or None when the detector has none, it raises, or what it returns does not fit."""
    if not images or not hasattr(det, "anomaly_map"):
        return None
    x = np.stack(images)
    try:
        m = np.asarray(det.anomaly_map(x), dtype=np.float64)
    except Exception:  # a detector whose maps do not apply to this input: plain images
        return None
    if m.ndim == 4:
        m = m.mean(axis=1)
    hw = x.shape[-2:]
    if m.ndim != 3 or m.shape[0] != len(images) or not np.isfinite(m).all():
        return None
    if m.shape[1:] != hw:
        from PIL import Image

        m = np.stack([np.asarray(Image.fromarray(v.astype(np.float32)).resize((hw[1], hw[0]),
                                 Image.Resampling.BILINEAR), dtype=np.float64) for v in m])
    return m
