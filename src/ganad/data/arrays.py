"""Turn whatever a user passes as ``X`` into one validated numpy array.

Accepted inputs (the input side of the detector contract, :mod:`ganad.base`):

* numpy arrays or torch tensors shaped (N, H, W), (N, C, H, W) or (N, D);
* a ``torch.utils.data.Dataset`` whose items are images or ``(image, label)``;
* a path to a folder of images (read with :func:`ganad.data.readers.read_image_folder`).

Images keep their dtype: uint8 stays uint8 until a batch is drawn, so that
60,000 Fashion-MNIST images cost 47 MB, not 188 MB.  Every problem is a
``ValueError`` that names it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

Array = np.ndarray


def as_array(X: Any, *, name: str = "X") -> Array:
    """Return ``X`` as a validated numpy array of rank 2, 3 or 4.

    Raises ``ValueError`` for empty input, a wrong rank, a non-numeric dtype
    or NaN/inf values.
    """
    if isinstance(X, (str, os.PathLike)):  # a folder of images, an .npy/.npz array or a .csv table
        from .readers import read_any

        X = read_any(X)[0]
    try:
        import torch

        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        elif isinstance(X, torch.utils.data.Dataset):
            X = _dataset_to_array(X)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    if isinstance(X, (list, tuple)):
        X = np.asarray(X)
    if not isinstance(X, np.ndarray):
        raise ValueError(
            f"{name} must be a numpy array, a torch tensor or Dataset, or a folder path; "
            f"got {type(X).__name__}"
        )
    if X.dtype == bool:  # a mask: False/True are the ends of the [0, 1] float range
        X = X.astype(np.float32)
    if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
        raise ValueError(f"{name} must hold numbers; got dtype {X.dtype}")
    if X.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} must have shape (N, D), (N, H, W) or (N, C, H, W); got {X.ndim} "
            f"dimension(s) with shape {X.shape}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it holds 0 samples")
    if any(s == 0 for s in X.shape[1:]):
        raise ValueError(f"{name} has a zero-sized dimension: shape {X.shape}")
    if np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).reshape(len(X), -1).any(axis=1).sum())
        raise ValueError(f"{name} contains NaN or infinite values (in {bad} sample(s))")
    return X


# Float images may stray this far outside [0, 1] (rounding of a resize or a normalisation).
FLOAT_RANGE_TOLERANCE = 1e-3


def check_image_range(x: Array, value_range: tuple[float, float] | None = None, *, name: str = "X") -> Array:
    """Apply the one input convention for images: uint8 in [0, 255], or float in [0, 1].

    ``value_range=(lo, hi)`` states another range explicitly; the images are
    then mapped to float32 in [0, 1] by ``(x - lo) / (hi - lo)``.  Integer
    images of another dtype whose values lie in [0, 255] become uint8.  Any
    other range is a ``ValueError`` that names the range found and the fix,
    because a model fitted on uint8 images would flag every float image in
    [0, 255] as anomalous, without a word.
    """
    if value_range is not None:
        lo, hi = _check_value_range(value_range)
        lo_x, hi_x = float(x.min()), float(x.max())
        if lo_x < lo or hi_x > hi:
            raise ValueError(
                f"{name} has values in [{lo_x:g}, {hi_x:g}], outside the stated value_range ({lo:g}, {hi:g})"
            )
        return ((x.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)).astype(np.float32)
    if x.dtype == np.uint8:
        return x
    lo_x, hi_x = float(x.min()), float(x.max())
    if np.issubdtype(x.dtype, np.integer):
        if lo_x >= 0 and hi_x <= 255:
            return x.astype(np.uint8)
        raise ValueError(
            f"{name} holds {x.dtype} images with values in [{lo_x:g}, {hi_x:g}]; images must be uint8 in "
            f"[0, 255] or float in [0, 1]: rescale them, or pass value_range=({lo_x:g}, {hi_x:g})"
        )
    tol = FLOAT_RANGE_TOLERANCE
    if lo_x >= -tol and hi_x <= 1.0 + tol:
        return x
    if lo_x >= 0 and hi_x <= 255.0 + tol:
        fix = "x / 255 (or value_range=(0, 255))"
    elif lo_x >= -1.0 - tol and hi_x <= 1.0 + tol:
        fix = "(x + 1) / 2 (or value_range=(-1, 1))"
    else:
        fix = "rescale them to [0, 1], or pass value_range=(lo, hi) with the range they come from"
    raise ValueError(
        f"{name} holds float images with values in [{lo_x:g}, {hi_x:g}]; float images must be in [0, 1] "
        f"(uint8 images in [0, 255]): use {fix}"
    )


def _check_value_range(value_range: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be a pair (lo, hi) of numbers; got {value_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"value_range must have finite lo < hi; got {value_range!r}")
    return lo, hi


def _dataset_to_array(ds: Any) -> Array:
    import torch

    items = []
    for i in range(len(ds)):
        item = ds[i]
        if isinstance(item, (tuple, list)):
            item = item[0]
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu().numpy()
        items.append(np.asarray(item))
    if not items:
        raise ValueError("X is an empty Dataset")
    shapes = {it.shape for it in items}
    if len(shapes) > 1:
        raise ValueError(f"the Dataset's items have different shapes: {sorted(shapes)[:3]}")
    return np.stack(items)


def is_image(x: Array) -> bool:
    """Rank 3 or 4 arrays are images; rank 2 arrays are tabular feature vectors."""
    return x.ndim in (3, 4)


def as_nchw(x: Array) -> Array:
    """Add the channel axis to (N, H, W) images; leave (N, C, H, W) as it is.

    A 4-d array whose last axis is 1 or 3 and whose second is not is taken to be
    channels-last (N, H, W, C), as Pillow and matplotlib write images.
    """
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x


def to_unit_float(x: Array) -> Array:
    """Pixels as float32 in [0, 1]: uint8 is divided by 255, floats pass through."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if np.issubdtype(x.dtype, np.integer):
        raise ValueError(
            f"integer images must be uint8 (0..255); got {x.dtype}. Convert to float in [0, 1]."
        )
    return x.astype(np.float32, copy=False)


def flatten(x: Array) -> Array:
    """(N, ...) -> (N, D) float32; images scaled to [0, 1] first."""
    x = to_unit_float(x) if is_image(x) or x.dtype == np.uint8 else x.astype(np.float32)
    return x.reshape(len(x), -1)


def check_same_layout(x: Array, fitted_shape: tuple[int, ...], *, name: str = "X") -> None:
    """Raise a clear ``ValueError`` when ``x`` does not match the training layout.

    ``fitted_shape`` is the per-sample shape seen by ``fit`` after :func:`as_nchw`.
    """
    shape = tuple(x.shape[1:])
    if shape == tuple(fitted_shape):
        return
    if len(fitted_shape) == 3 and x.ndim == 2 and tuple(x.shape) == tuple(fitted_shape[1:]):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}: one {x.shape[0]}x{x.shape[1]} image? Pass x[None] "
            f"(a batch of one); the detector takes (N, H, W) or (N, C, H, W)"
        )
    if len(fitted_shape) == 3 and len(shape) == 3 and shape[0] != fitted_shape[0]:
        raise ValueError(
            f"{name} has {shape[0]} channel(s) but the detector was trained on "
            f"{fitted_shape[0]} channel(s)"
        )
    if len(fitted_shape) == 3 and len(shape) == 3:
        raise ValueError(
            f"{name} has images of size {shape[1]}x{shape[2]} but the detector was trained on "
            f"{fitted_shape[1]}x{fitted_shape[2]}; resize them with ganad.data.transforms.resize"
        )
    raise ValueError(
        f"{name} has per-sample shape {shape} but the detector was trained on {tuple(fitted_shape)}"
    )
