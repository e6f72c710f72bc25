"""Latent-space figures after Berg, Ahlberg & Felsberg 2019 (section 4.2.1, Figs. 2-4).

The paper looks at the codes z_hat = E(x) of normal and anomalous images:

* a t-SNE map of the codes (perplexity 30; Figs. 2 and 4), showing whether
  normals and anomalies occupy different regions of the latent space;
* histograms of the codes (Fig. 3), from which it argues that with the jointly
  trained encoder anomalies lie nearer the origin, the basis of its score
  L_o = -||z_hat||_2 / sqrt(N_z) (Eq. 4).  Here the histogram is of the norm
  ||z_hat||_2 itself, normals against anomalies, with the AUROC of -||z_hat||
  (the ranking L_o gives) in the title.

:func:`encode` works for any detector with an encoder, i.e. a
``_encode_batch(batch) -> (B, nz)`` method (berg, fanogan, ganomaly's E1,
egbad, alad, ama; :func:`encoder_models` lists them).  It runs in the
detector's scoring context (eval mode, inference mode, its precision), one
batch at a time, so BatchNorm uses its running statistics and an image's code
does not depend on its batch mates.

    >>> codes = encode(det, x_test)                      # (N, nz)
    >>> latent_figures(det, x_test, y_test, "out/", "berg")   # [t-SNE PNG, norm histogram PNG]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .plots import _as_labels, _fmt, _save, _shared_bins  # sets the Agg backend first

import matplotlib.pyplot as plt  # noqa: E402

__all__ = [
    "MAX_TSNE_POINTS",
    "encode",
    "encoder_models",
    "has_encoder",
    "latent_figures",
    "norm_histogram_png",
    "report_figures",
    "tsne_png",
]

#: t-SNE maps at most this many codes (a seeded subsample, stratified by label): Barnes-Hut
#: t-SNE of 2,000 points takes ~10-30 s on one thread (unstored)
MAX_TSNE_POINTS = 2000

_CLASSES = ((0, "normal", "tab:blue"), (1, "anomalous", "tab:red"))  # as score_histogram_png


def has_encoder(det: Any) -> bool:
    """Whether ``det`` (a detector or its class) maps images to latent codes (``_encode_batch``)."""
    return callable(getattr(det, "_encode_batch", None))


def encoder_models() -> list[str]:
    """The registered model names whose detectors have an encoder."""
    from ..registry import available_models, get_class

    return [name for name in available_models() if has_encoder(get_class(name))]


def encode(det: Any, X: Any, batch_size: int | None = None) -> np.ndarray:
    """The codes z_hat = E(x) of the images ``X`` as a float32 array (N, nz).

    ``det`` is a fitted detector with an encoder (:func:`encoder_models`); images
    are checked and prepared as for scoring.  ``batch_size``: images encoded at a
    time (default: the detector's scoring batch); the codes do not depend on it.
    Raises ValueError for a detector without an encoder.
    """
    name = getattr(det, "name", None) or type(det).__name__
    if not has_encoder(det):
        raise ValueError(f"{name} has no encoder, so it has no latent codes to plot; the models with one: "
                         f"{', '.join(encoder_models())}")
    det._check_fitted()
    x = det._validate(X, fitting=False)
    chunks: list[np.ndarray] = []
    with det._scoring() as prepare:
        for batch in map(prepare, det._iter_batches(x, batch_size)):
            chunks.append(det._encode_batch(batch).detach().flatten(1).float().cpu().numpy())
    return np.concatenate(chunks).astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- checks
def _as_codes(codes: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(codes, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"codes must be a non-empty (N, nz) array, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"codes contain {int(np.count_nonzero(~np.isfinite(z)))} non-finite value(s)")
    return z, _as_labels(y, z.shape[0])


def _subsample(y: np.ndarray, n: int, random_state: int | None) -> np.ndarray:
    """Sorted indices of at most ``n`` samples, drawn per label in proportion to its count
    (each present label keeps at least one), seeded."""
    if len(y) <= n:
        return np.arange(len(y))
    rng = np.random.default_rng(random_state)
    keep = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        k = max(1, round(n * len(idx) / len(y)))
        keep.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


# ----------------------------------------------------------------------------- figures
def tsne_png(
    codes: Any,
    y: Any,
    path: str | Path,
    title: str | None = None,
    perplexity: float = 30.0,
    random_state: int | None = 0,
    max_points: int | None = None,
) -> Path:
    """2-D t-SNE map (scikit-learn, Barnes-Hut, PCA initialisation) of the codes, normals
    blue and anomalies red, as Berg et al.'s Figs. 2 and 4 (perplexity 30).

    More than ``max_points`` codes (default :data:`MAX_TSNE_POINTS`) are subsampled
    (seeded by ``random_state``, in proportion to the labels) and the title says so; with few points the perplexity
    is lowered to (n - 1) / 3, also stated.
    """
    from sklearn.manifold import TSNE

    z, yy = _as_codes(codes, y)
    max_points = MAX_TSNE_POINTS if max_points is None else max_points
    if int(max_points) < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    if not perplexity > 0:
        raise ValueError(f"perplexity must be > 0, got {perplexity}")
    n_all = len(z)
    idx = _subsample(yy, int(max_points), random_state)
    z, yy = z[idx], yy[idx]
    n = len(z)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 codes, got {n}")
    perp = float(min(perplexity, (n - 1) / 3.0))
    emb = TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto",
               random_state=random_state).fit_transform(z)
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    # the larger class first, so that the smaller one stays visible on top
    order = sorted(_CLASSES, key=lambda c: -int(np.count_nonzero(yy == c[0])))
    for cls, name, color in order:
        part = emb[yy == cls]
        if len(part):
            ax.scatter(part[:, 0], part[:, 1], s=6, alpha=0.6, color=color, linewidths=0,
                       label=f"{name} (n={len(part)})")
    ax.set_xticks([])
    ax.set_yticks([])
    what = f"{n} codes" if n == n_all else f"{n} of {n_all} codes (seeded subsample, stratified by label)"
    ax.set_title((title or "t-SNE of the latent codes") + f"\n{what}, perplexity {_fmt(perp)}", fontsize=9)
    ax.legend(loc="best", fontsize="small", markerscale=2)
    fig.tight_layout()
    return _save(fig, path)


def norm_histogram_png(codes: Any, y: Any, path: str | Path, title: str | None = None) -> Path:
    """Histograms of ||z_hat||_2, normals and anomalies overlaid (shared bins, density),
    with the AUROC of -||z_hat||_2 (Berg et al.'s L_o: a short code = anomalous) in the
    title when both classes are present."""
    from .. import metrics

    z, yy = _as_codes(codes, y)
    norms = np.linalg.norm(z, axis=1)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    bins = _shared_bins(norms)
    for cls, name, color in _CLASSES:
        part = norms[yy == cls]
        if part.size:
            ax.hist(part, bins=bins, density=True, color=color, alpha=0.55, label=f"{name} (n={part.size})")
    head = title or "Norm of the latent codes"
    if np.unique(yy).size == 2:
        head += f"\nAUROC of -||z|| (L_o) = {metrics.roc_auc(yy, -norms):.4f}"
    ax.set_title(head, fontsize=9)
    ax.set_xlabel("||z_hat||_2")
    ax.set_ylabel("density")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def latent_figures(
    det: Any,
    X: Any,
    y: Any,
    out_dir: str | Path,
    prefix: str = "latent",
    *,
    perplexity: float = 30.0,
    random_state: int | None = 0,
    max_points: int | None = None,
) -> list[Path]:
    """Encode ``X`` with ``det`` and write ``<prefix>_tsne.png`` and ``<prefix>_norm.png``
    into ``out_dir``: [t-SNE map, norm histogram].  Every image is encoded (the
    histogram and its AUROC use all of them); the t-SNE maps at most ``max_points``
    (default :data:`MAX_TSNE_POINTS`)."""
    codes = encode(det, X)
    out = Path(out_dir)
    name = getattr(det, "name", None) or type(det).__name__
    return [
        tsne_png(codes, y, out / f"{prefix}_tsne.png", title=f"{name}: t-SNE of z_hat = E(x)",
                 perplexity=perplexity, random_state=random_state, max_points=max_points),
        norm_histogram_png(codes, y, out / f"{prefix}_norm.png", title=f"{name}: ||z_hat||_2 by label"),
    ]


def report_figures(
    det: Any, X: Any, y: Sequence[int] | np.ndarray | None, out_dir: str | Path
) -> list[tuple[str, str]]:
    """The "Latent space" figures of a run report (``ganad fit``): ``(file name, caption)``
    pairs of :func:`latent_figures` in ``out_dir``, or [] when ``det`` has no encoder or
    ``y`` does not hold both normal and anomalous images."""
    if y is None or not has_encoder(det) or np.unique(np.asarray(y)).size != 2:
        return []
    tsne, hist = latent_figures(det, X, y, out_dir, "latent")
    return [
        (tsne.name, (f"t-SNE of the codes z_hat = E(x) of the test images, at most {MAX_TSNE_POINTS} of them "
                     "(the title gives the subsample and the perplexity, 30 unless the set is small); "
                     "after Berg et al. 2019, Fig. 2")),
        (hist.name, ("||z_hat||_2 of normal and anomalous test images; a large norm means normal in "
                     "Berg et al.'s L_o (Eq. 4, Fig. 3)")),
    ]
