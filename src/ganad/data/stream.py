"""Stream a folder of images of any size: a ``torch.utils.data.Dataset`` that
loads one file per item, and a ``DataLoader`` that batches them.

>>> ds = ImageFolderStream("photos/", mode="L", size=(28, 28))
>>> for batch in image_loader(ds, batch_size=256, workers=2):
...     batch["x"]        # uint8 (n, H, W) for "L", (n, 3, H, W) for "RGB"
...     batch["index"]    # positions in ds.names of the images that loaded
...     batch["errors"]   # [(position, message)] of the files that did not

The file list is made once (sorted and recursive, as
:func:`ganad.data.readers.read_image_folder` does) and holds only relative
path strings; images live only as long as their batch.  Each image is
converted to the model's channels (grey or RGB) and brought to ``size`` by

* **resize** (the default): bilinear to exactly ``H x W``; an image of
  another aspect ratio is stretched, nothing is cut off;
* **crop** (``crop=True``, ``ganad score --crop``): bilinear scaling that keeps
  the aspect ratio until the image just covers ``H x W``, then the centre
  ``H x W`` is cut out; nothing is stretched, the borders are lost.

A file that cannot be read is not an exception in the worker: it comes back
in ``errors``, and the caller decides (``--skip-bad`` counts and skips it).
Labels of a folder come from :func:`folder_labels` (subfolders ``normal/`` and
``anomalous/``) or :func:`read_labels_csv` (a ``path,label`` table).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch.utils.data

from .readers import _GRAY_MODES, IMAGE_EXTENSIONS, _resolve_size, _to_mode

__all__ = [
    "ImageFolderStream", "ArrayStream", "list_image_names", "image_loader", "collate",
    "folder_labels", "read_labels_csv", "labels_for",
]

NORMAL_DIR, ANOMALOUS_DIR = "normal", "anomalous"


def list_image_names(root: str | os.PathLike) -> tuple[Path, list[str]]:
    """``(base, names)``: the PNG/JPEG/BMP files under ``root`` as paths relative to
    ``base`` (``root``, or its parent when ``root`` is one file), sorted by their
    path components.  Only strings are kept, so a list of 100,000 is a few MB."""
    root = Path(root)
    if not root.exists():
        raise ValueError(f"{root}: no such file or folder")
    if root.is_file():
        base, names = root.parent, ([root.name] if root.suffix.lower() in IMAGE_EXTENSIONS else [])
    else:
        base, names = root, []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            for f in filenames:
                if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(os.path.join(dirpath, f)):
                    names.append(f if rel == "." else os.path.join(rel, f))
        names.sort(key=lambda s: s.split(os.sep))
    if not names:
        exts = "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        raise ValueError(f"{root}: no image files ({exts}) found")
    return base, names


def _bring_to_size(arr: np.ndarray, hw: tuple[int, int], crop: bool) -> np.ndarray:
    """Bilinear resize to ``hw``, or (``crop``) aspect-keeping scale to cover ``hw`` and a centre crop."""
    from PIL import Image

    h, w = arr.shape[:2]
    th, tw = hw
    if (h, w) == (th, tw):
        return arr
    pil = Image.fromarray(arr)
    if not crop:
        return np.asarray(pil.resize((tw, th), Image.Resampling.BILINEAR), dtype=np.uint8)
    s = max(th / h, tw / w)
    nh, nw = max(th, round(h * s)), max(tw, round(w * s))
    if (nh, nw) != (h, w):
        pil = pil.resize((nw, nh), Image.Resampling.BILINEAR)
    top, left = (nh - th) // 2, (nw - tw) // 2
    return np.asarray(pil.crop((left, top, left + tw, top + th)), dtype=np.uint8)


class ImageFolderStream(torch.utils.data.Dataset):
    """The images under ``root``, one per item, as uint8 in the model's layout.

    ``mode`` is ``"L"`` (items ``(H, W)``) or ``"RGB"`` (items ``(3, H, W)``);
    ``size`` (int or ``(h, w)``) is required: a stream cannot look at every
    file first to find a common size.  An item is ``(position, image or None,
    error message or None, converted)``, ``converted`` being True when the
    file's colour had to be changed to ``mode``.
    """

    def __init__(self, root: str | os.PathLike, mode: str, size: int | Sequence[int], crop: bool = False):
        if mode not in ("L", "RGB"):
            raise ValueError(f"mode must be 'L' or 'RGB'; got {mode!r}")
        hw = _resolve_size(size)
        if hw is None:
            raise ValueError("size is required to stream a folder")
        self.root = Path(root)
        self.base, self.names = list_image_names(root)
        self.mode, self.size, self.crop = mode, hw, bool(crop)

    def __len__(self) -> int:
        return len(self.names)

    def load(self, i: int) -> tuple[np.ndarray, bool]:
        """The ``i``-th image and whether its colour was converted; ValueError naming the file."""
        from PIL import Image

        path = os.path.join(self.base, self.names[i])
        try:
            with Image.open(path) as im:
                im.load()
                converted = (im.mode in _GRAY_MODES) != (self.mode == "L")
                arr = _to_mode(im, self.mode)
        except Exception as e:
            raise ValueError(f"{path}: cannot read this image: {e}") from None
        arr = _bring_to_size(arr, self.size, self.crop)
        return (arr.transpose(2, 0, 1) if self.mode == "RGB" else arr), converted

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str | None, bool]:
        try:
            arr, converted = self.load(i)
        except ValueError as exc:
            return i, None, str(exc), False
        return i, np.ascontiguousarray(arr), None, converted


def collate(items: list[tuple[int, np.ndarray | None, str | None, bool]]) -> dict[str, Any]:
    """One batch: ``x`` (uint8, the images that loaded, or None), their ``index``,
    the ``errors`` of the others and how many were ``converted``."""
    good = [it for it in items if it[1] is not None]
    return {
        "x": np.stack([it[1] for it in good]) if good else None,
        "index": np.array([it[0] for it in good], dtype=np.int64),
        "errors": [(it[0], it[2]) for it in items if it[1] is None],
        "converted": sum(bool(it[3]) for it in good),
    }


def image_loader(dataset: ImageFolderStream, batch_size: int = 256, workers: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` in file order, ``workers`` processes loading
    (0: in this process), a batch of ``batch_size`` files at a time."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1; got {batch_size}")
    if workers < 0:
        raise ValueError(f"workers must be >= 0; got {workers}")
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate,
        prefetch_factor=2 if workers else None,
    )


# ------------------------------------------------------------------ labels
def folder_labels(names: Sequence[str]) -> np.ndarray | None:
    """0/1 labels when every name lies in a top-level ``normal/`` or ``anomalous/``
    subfolder (case-insensitive), else None."""
    if not names:
        return None
    out = np.empty(len(names), dtype=np.int8)
    for i, n in enumerate(names):
        parts = n.split(os.sep)
        top = parts[0].lower() if len(parts) > 1 else ""
        if top == NORMAL_DIR:
            out[i] = 0
        elif top == ANOMALOUS_DIR:
            out[i] = 1
        else:
            return None
    return out


_LABEL_WORDS = {"0": 0, "1": 1, "normal": 0, "anomalous": 1, "anomaly": 1, "abnormal": 1, "false": 0, "true": 1}


def read_labels_csv(path: str | os.PathLike, base: str | os.PathLike) -> dict[str, int]:
    """``{name: 0/1}`` from a CSV table with columns ``path,label`` (a header row
    naming them is optional; other columns are ignored).  A path is taken
    relative to ``base`` (the images folder) unless it is absolute; a label is
    0/1, normal/anomalous (anomaly, abnormal) or false/true."""
    path, base = Path(path), Path(base)
    if not path.is_file():
        raise ValueError(f"--labels {path}: no such file")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [[c.strip() for c in r] for r in csv.reader(fh) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"--labels {path}: the file is empty")
    ip, il, first = 0, 1, 1
    head = [c.lower() for c in rows[0]]
    if "path" in head or "label" in head:
        if "path" not in head or "label" not in head:
            raise ValueError(f"--labels {path}: the header must name the columns 'path' and 'label'; got {rows[0]}")
        ip, il, rows, first = head.index("path"), head.index("label"), rows[1:], 2
    out: dict[str, int] = {}
    for line, r in enumerate(rows, first):
        if len(r) <= max(ip, il):
            raise ValueError(f"--labels {path}: row {line} has {len(r)} column(s); expected path,label")
        label = _LABEL_WORDS.get(r[il].lower())
        if label is None:
            raise ValueError(f"--labels {path}: row {line}: label must be 0/1 or normal/anomalous; got {r[il]!r}")
        p = r[ip]
        name = os.path.relpath(p, base) if os.path.isabs(p) else os.path.normpath(p)
        out[name] = label
    return out


def labels_for(names: Sequence[str], table: dict[str, int], source: str) -> np.ndarray:
    """The labels of ``names`` from ``table``; every name must have one."""
    missing = [n for n in names if os.path.normpath(n) not in table]
    if missing:
        raise ValueError(f"--labels {source}: no label for {len(missing)} of the {len(names)} images "
                         f"(first: {missing[0]})")
    return np.array([table[os.path.normpath(n)] for n in names], dtype=np.int8)


class ArrayStream(torch.utils.data.Dataset):
    """An array already in memory (an ``.npy``/``.npz``/``.csv`` input) with the
    item protocol of :class:`ImageFolderStream`, so both are scored and reported alike."""

    def __init__(self, x: np.ndarray, names: Sequence[str]):
        if len(x) != len(names):
            raise ValueError(f"{len(x)} samples but {len(names)} names")
        self.x, self.names = x, list(names)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray, None, bool]:
        return i, self.x[i], None, False
