"""Static PNG figures for anomaly-detection results (matplotlib, Agg backend only).

Every ``*_png`` function writes one PNG at ``path`` (parent folders are created)
and returns the path as a :class:`pathlib.Path`. Scores are 1-D float arrays,
higher = more anomalous; labels are 0 (normal) / 1 (anomalous). Images are
``(N, H, W)`` or ``(N, C, H, W)`` with ``C`` in {1, 3}, either ``uint8`` in
0..255 or float in [0, 1].
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve  # noqa: E402

__all__ = [
    "rank_extremes",
    "roc_curve_png",
    "score_histogram_png",
    "image_grid_png",
    "extremes_grid_png",
    "residual_heatmap_png",
    "pr_curve_png",
    "extremes_maps_png",
    "auroc_vs_gamma_png",
]

DPI = 100
_PANEL_IN = 1.15  # inches per image panel


# ----------------------------------------------------------------------------
# input checks and conversions
# ----------------------------------------------------------------------------


def _as_scores(scores: Sequence[float] | np.ndarray, name: str = "scores") -> np.ndarray:
    """1-D finite float64 array, or ValueError."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:  # accept column/row vectors such as (N, 1)
        s = s.reshape(-1) if s.size == max(s.shape, default=0) else s
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {np.shape(scores)}")
    if s.size == 0:
        raise ValueError(f"{name} is empty")
    bad = int(np.count_nonzero(~np.isfinite(s)))
    if bad:
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return s


def _as_labels(y: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """1-D int array of 0/1 labels of length ``n``, or ValueError."""
    arr = np.asarray(y)
    if arr.ndim != 1:  # accept column/row vectors such as (N, 1)
        arr = arr.reshape(-1) if arr.size == max(arr.shape, default=0) else arr
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {np.shape(y)}")
    if len(arr) != n:
        raise ValueError(f"length mismatch: y has {len(arr)} entries but scores has {n}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("y contains NaN or inf")
    if not np.all(np.isin(arr, (0, 1))):
        raise ValueError(f"y must contain only 0 (normal) and 1 (anomalous), got {np.unique(arr)[:5]}")
    return arr.astype(np.int64)


def _both_classes(
    y: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, curve: str
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) checked as by :func:`_as_scores` and :func:`_as_labels`, and ValueError
    unless the labels hold both classes: the inputs every ROC or PR ``curve`` needs."""
    s = _as_scores(scores)
    yy = _as_labels(y, s.size)
    if np.unique(yy).size < 2:
        raise ValueError(f"{curve} curve needs both classes in y (0 normal and 1 anomalous)")
    return s, yy


def _as_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Images as ``(N, H, W)`` or ``(N, H, W, 3)``; channel-first input is moved last.

    Also accepts channel-last ``(N, H, W, C)`` when the layout is unambiguous.
    """
    x = np.asarray(images)
    if x.ndim == 3:
        out = x
    elif x.ndim == 4:
        if x.shape[1] in (1, 3):
            out = np.moveaxis(x, 1, -1)
        elif x.shape[-1] in (1, 3):
            out = x
        else:
            raise ValueError(f"{name}: need C in {{1, 3}} for 4-D input (N, C, H, W), got shape {x.shape}")
        if out.shape[-1] == 1:
            out = out[..., 0]
    else:
        raise ValueError(f"{name} must be (N, H, W) or (N, C, H, W), got shape {x.shape}")
    if out.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if x.dtype.kind not in "uif" and x.dtype != np.bool_:
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
    return out


def _value_range(x: np.ndarray) -> float:
    """Upper end of the data range: 255 for integer images, else 1 (255 if floats exceed 1)."""
    if x.dtype.kind in "ui":
        return 255.0
    if x.dtype == np.bool_:
        return 1.0
    finite = x[np.isfinite(x)]
    return 255.0 if finite.size and float(finite.max()) > 1.0 + 1e-6 else 1.0


def _to_unit(x: np.ndarray) -> np.ndarray:
    """Float32 copy scaled to [0, 1] according to :func:`_value_range`."""
    return np.clip(x.astype(np.float32) / _value_range(x), 0.0, 1.0)


def _show(ax, img: np.ndarray, vmax: float) -> None:
    """Draw one image with a fixed range (gray colormap for single-channel)."""
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", vmin=0.0, vmax=vmax, interpolation="nearest")
    else:  # RGB: matplotlib needs float in [0, 1] (or uint8)
        rgb = img if img.dtype == np.uint8 else np.clip(img.astype(np.float32) / vmax, 0.0, 1.0)
        ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _fmt(v: float) -> str:
    """Short number for captions."""
    return f"{v:.3g}"


def _save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG at ``path`` and close it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=DPI, format="png")
    plt.close(fig)
    return p


# ----------------------------------------------------------------------------
# ranking helper
# ----------------------------------------------------------------------------


def rank_extremes(scores: Sequence[float] | np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` highest scores (descending) and the ``k`` lowest (ascending).

    ``k`` is clipped to the number of scores; ties keep the original order.
    """
    s = _as_scores(scores)
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(int(k), s.size)
    top = np.argsort(-s, kind="stable")[:k]
    bottom = np.argsort(s, kind="stable")[:k]
    return top, bottom


# ----------------------------------------------------------------------------
# score plots
# ----------------------------------------------------------------------------


def roc_curve_png(
    y: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """ROC curve with AUROC in the legend and the chance diagonal.

    Raises ValueError unless ``y`` contains both classes.
    """
    s, yy = _both_classes(y, scores, "ROC")
    fpr, tpr, _ = roc_curve(yy, s)
    auc = float(roc_auc_score(yy, s))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, color="tab:blue", lw=2, label=f"AUROC = {auc:.4f}")
    ax.plot([0, 1], [0, 1], color="gray", lw=1, ls="--", label="chance")
    return _save_curve(fig, ax, path, "false positive rate", "true positive rate", title or "ROC curve", "lower right")


def pr_curve_png(
    y: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Precision-recall curve (anomalies positive) with AUPRC (average precision) in the
    legend and the chance level (the share of anomalies) dashed.

    Raises ValueError unless ``y`` contains both classes.
    """
    s, yy = _both_classes(y, scores, "PR")
    precision, recall, _ = precision_recall_curve(yy, s)
    ap = float(average_precision_score(yy, s))
    base = float(yy.mean())
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.step(recall, precision, where="post", color="tab:red", lw=2, label=f"AUPRC = {ap:.4f}")
    ax.axhline(base, color="gray", lw=1, ls="--", label=f"chance = {base:.3f}")
    return _save_curve(fig, ax, path, "recall (anomalies found)", "precision", title or "Precision-recall curve",
                       "lower left")


def _save_curve(fig: Any, ax: Any, path: str | Path, xlabel: str, ylabel: str, title: str, legend: str) -> Path:
    """The unit-square axes a ROC or PR curve is drawn on, then the PNG."""
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc=legend)
    ax.set_aspect("equal")
    fig.tight_layout()
    return _save(fig, path)


def _shared_bins(s: np.ndarray) -> np.ndarray:
    """Common bin edges for all scores (10..60 bins)."""
    lo, hi = float(s.min()), float(s.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    nbins = int(np.clip(round(2 * math.sqrt(s.size)), 10, 60))
    return np.linspace(lo, hi, nbins + 1)


def score_histogram_png(
    scores: Sequence[float] | np.ndarray,
    path: str | Path,
    y: Sequence[int] | np.ndarray | None = None,
    threshold: float | None = None,
    title: str | None = None,
) -> Path:
    """Histogram of scores; normal vs anomalous overlaid (shared bins, density) when ``y`` is given.

    A dashed vertical line marks ``threshold`` if given.
    """
    s = _as_scores(scores)
    bins = _shared_bins(s if threshold is None else np.append(s, float(threshold)))
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    if y is None:
        ax.hist(s, bins=bins, color="tab:blue", alpha=0.8, label=f"all (n={s.size})")
        ax.set_ylabel("count")
    else:
        yy = _as_labels(y, s.size)
        for cls, name, color in ((0, "normal", "tab:blue"), (1, "anomalous", "tab:red")):
            part = s[yy == cls]
            if part.size:
                ax.hist(part, bins=bins, density=True, color=color, alpha=0.55, label=f"{name} (n={part.size})")
        ax.set_ylabel("density")
    if threshold is not None:
        t = float(threshold)
        if not math.isfinite(t):
            plt.close(fig)
            raise ValueError(f"threshold must be finite, got {threshold}")
        ax.axvline(t, color="black", ls="--", lw=1.5, label=f"threshold = {_fmt(t)}")
    ax.set_xlabel("anomaly score (higher = more anomalous)")
    ax.set_title(title or "Score distribution")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


# ----------------------------------------------------------------------------
# image plots
# ----------------------------------------------------------------------------


def image_grid_png(
    images: np.ndarray,
    path: str | Path,
    ncols: int = 8,
    captions: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Grid of images, ``ncols`` per row, with optional captions under each panel.

    Grayscale uses the gray colormap with the fixed data range (0..255 or 0..1),
    so intensities are comparable across panels.
    """
    x = _as_images(images)
    n = x.shape[0]
    if captions is not None and len(captions) != n:
        raise ValueError(f"length mismatch: captions has {len(captions)} entries but images has {n}")
    if int(ncols) < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    ncols = min(int(ncols), n)
    nrows = math.ceil(n / ncols)
    vmax = _value_range(x)
    cap_h = 0.25 if captions is not None else 0.0
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(ncols * _PANEL_IN, nrows * (_PANEL_IN + cap_h) + (0.4 if title else 0.1)),
        squeeze=False,
    )
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        _show(ax, x[i], vmax)
        if captions is not None:
            ax.set_xlabel(str(captions[i]), fontsize=8, labelpad=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout(pad=0.3)
    return _save(fig, path)


def extremes_grid_png(
    images: np.ndarray,
    scores: Sequence[float] | np.ndarray,
    path: str | Path,
    k: int = 16,
) -> Path:
    """Two rows: the ``k`` most anomalous images (highest score first), then the ``k`` least.

    Panels are captioned with their scores; ``k`` is clipped to the number of images.
    """
    x = _as_images(images)
    s = _as_scores(scores)
    if x.shape[0] != s.size:
        raise ValueError(f"length mismatch: images has {x.shape[0]} entries but scores has {s.size}")
    top, bottom = rank_extremes(s, k)
    k = top.size
    vmax = _value_range(x)
    fig, axes = plt.subplots(2, k, figsize=(max(k * _PANEL_IN + 0.3, 3.6), 2 * (_PANEL_IN + 0.3) + 0.4), squeeze=False)
    for row, (idx, label) in enumerate(((top, "most anomalous"), (bottom, "least anomalous"))):
        for j, i in enumerate(idx):
            ax = axes[row, j]
            _show(ax, x[i], vmax)
            ax.set_xlabel(_fmt(s[i]), fontsize=8, labelpad=2)
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"Highest scores (top) and lowest (bottom), k={k}", fontsize=9)
    fig.tight_layout(pad=0.3)
    return _save(fig, path)


def residual_heatmap_png(
    images: np.ndarray,
    reconstructions: np.ndarray,
    path: str | Path,
    k: int = 8,
) -> Path:
    """Rows: original, reconstruction, and |difference| heat map for the first ``k`` images.

    Both inputs are scaled to [0, 1] before differencing; colour images are averaged
    over channels for the heat map, which shares one colour scale across panels.
    """
    x = _as_images(images, "images")
    r = _as_images(reconstructions, "reconstructions")
    if x.shape[0] != r.shape[0]:
        raise ValueError(f"length mismatch: images has {x.shape[0]} entries but reconstructions has {r.shape[0]}")
    if x.shape != r.shape:
        raise ValueError(f"shape mismatch: images {x.shape} vs reconstructions {r.shape}")
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(int(k), x.shape[0])
    xu, ru = _to_unit(x[:k]), _to_unit(r[:k])
    diff = np.abs(xu - ru)
    if diff.ndim == 4:
        diff = diff.mean(axis=-1)
    dmax = float(diff.max()) or 1.0
    fig, axes = plt.subplots(
        3, k, figsize=(max(k * _PANEL_IN, 3.0) + 0.8, 3 * _PANEL_IN + 0.6), squeeze=False, layout="constrained"
    )
    im = None
    for j in range(k):
        _show(axes[0, j], xu[j], 1.0)
        _show(axes[1, j], ru[j], 1.0)
        im = axes[2, j].imshow(diff[j], cmap="inferno", vmin=0.0, vmax=dmax, interpolation="nearest")
        axes[2, j].set_xticks([])
        axes[2, j].set_yticks([])
        axes[2, j].set_xlabel(f"mean {diff[j].mean():.3f}", fontsize=7, labelpad=2)
    for row, label in enumerate(("original", "reconstruction", "|difference|")):
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.suptitle("Reconstruction residuals", fontsize=10)
    if im is not None:
        fig.colorbar(im, ax=axes[2, :].tolist(), shrink=0.9, pad=0.01, label="|diff|")
    return _save(fig, path)


def extremes_maps_png(
    top: Sequence[np.ndarray],
    top_scores: Sequence[float],
    bottom: Sequence[np.ndarray],
    bottom_scores: Sequence[float],
    path: str | Path,
    top_maps: np.ndarray | None = None,
    bottom_maps: np.ndarray | None = None,
    captions: tuple[Sequence[str], Sequence[str]] | None = None,
) -> Path:
    """Two rows of images already chosen: ``top`` (most anomalous first) and ``bottom``
    (least anomalous first), captioned with their scores (or ``captions``).

    With ``top_maps`` / ``bottom_maps`` (``(n, H, W)`` anomaly maps) each image is
    drawn in grey with its map overlaid as a semi-transparent heat map; all maps
    share one colour scale, shown by a colour bar.
    """
    rows = [(list(top), list(top_scores), top_maps, "most anomalous"),
            (list(bottom), list(bottom_scores), bottom_maps, "least anomalous")]
    rows = [r for r in rows if r[0]]
    if not rows:
        raise ValueError("no images to draw")
    for imgs, sc, maps, label in rows:
        if len(imgs) != len(sc) or (maps is not None and len(maps) != len(imgs)):
            raise ValueError(f"length mismatch in the {label} row")
    with_maps = any(r[2] is not None for r in rows)
    all_maps = [m for r in rows if r[2] is not None for m in np.asarray(r[2], dtype=np.float64)]
    lo = float(min(m.min() for m in all_maps)) if all_maps else 0.0
    hi = float(max(m.max() for m in all_maps)) if all_maps else 1.0
    if hi <= lo:
        hi = lo + 1e-12
    k = max(len(r[0]) for r in rows)
    fig, axes = plt.subplots(len(rows), k, squeeze=False, layout="constrained",
                             figsize=(max(k * _PANEL_IN, 3.6) + (0.9 if with_maps else 0), len(rows) * (_PANEL_IN + 0.35) + 0.4))
    im = None
    for r, (imgs, sc, maps, label) in enumerate(rows):
        x = _as_images(np.stack(imgs))
        vmax = _value_range(x)
        for j in range(k):
            ax = axes[r, j]
            if j >= len(imgs):
                ax.axis("off")
                continue
            if maps is not None:
                grey = _to_unit(x[j])
                _show(ax, grey.mean(axis=-1) if grey.ndim == 3 else grey, 1.0)
                im = ax.imshow(np.asarray(maps[j], dtype=np.float64), cmap="inferno", alpha=0.5, vmin=lo, vmax=hi,
                               interpolation="bilinear")
            else:
                _show(ax, x[j], vmax)
            cap = captions[r][j] if captions is not None else _fmt(float(sc[j]))
            ax.set_xlabel(cap, fontsize=7, labelpad=2)
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle("Most anomalous (top) and least anomalous (bottom)" + (", anomaly maps overlaid" if with_maps else ""),
                 fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, pad=0.01, label="anomaly map")
    return _save(fig, path)


# ----------------------------------------------------------------------------
# contamination study
# ----------------------------------------------------------------------------


def auroc_vs_gamma_png(
    curves: dict[str, dict[float, float]],
    path: str | Path,
    title: str = "AUROC against training contamination",
    berg_curves: dict[str, dict[float, float]] | None = None,
) -> Path:
    """AUROC against the contamination gamma of the training data (Berg et al. section 4.1.2),
    one line per model: ``curves`` maps a label to {gamma: mean AUROC}.  With ``berg_curves``
    (the same on Berg et al.'s section 4.1.1 test layout) a second panel shows them."""
    if not curves or not any(curves.values()):
        raise ValueError("no (gamma, AUROC) points to plot")
    panels = [("full test split", curves)] + ([("Berg et al. 4.1.1 layout", berg_curves)] if berg_curves else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.4), squeeze=False, sharey=True)
    colours = {label: f"C{i % 10}" for i, label in enumerate(sorted(curves))}
    for ax, (name, data) in zip(axes[0], panels):
        for label in sorted(data):
            pts = data[label]
            if not pts:
                continue
            g = sorted(pts)
            short = label if len(label) <= 50 else label[:49] + "\u2026"
            ax.plot(g, [pts[v] for v in g], marker="o", lw=1.5, color=colours.get(label), label=short)
        ax.set_xlabel("contamination of the training data (gamma)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[0][0].set_ylabel("mean test AUROC over classes")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
