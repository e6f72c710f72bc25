"""Readers for the data formats ganad accepts, in pure numpy/scipy/Pillow.

* IDX files (MNIST, Fashion-MNIST), raw or gzipped: :func:`read_idx`,
  :func:`read_idx_pair`, :func:`load_fashion_mnist_arrays`, :func:`load_mnist_arrays`;
* CIFAR-10 "python version" batches (pickles read with a restricted
  unpickler that cannot run code): :func:`read_cifar10_batch`, :func:`load_cifar10_arrays`;
* SVHN format 2 ``.mat`` files: :func:`read_svhn_mat`, :func:`load_svhn_arrays`;
* folders of PNG/JPEG/BMP images: :func:`read_image_folder`;
* ``.npy``/``.npz`` arrays and numeric CSV tables: :func:`read_array`, :func:`read_csv`.

Every reader validates what it reads and raises a ``ValueError`` that names
the file and the problem rather than return a silently wrong array.  Only a
data set that cannot be found at all is a ``FileNotFoundError``.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Sequence

import numpy as np

PathLike = str | os.PathLike

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")

# --------------------------------------------------------------------------- IDX

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes 1f 8b."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _parse_idx_header(path: Path, f: BinaryIO) -> tuple[np.dtype, tuple[int, ...]]:
    """Read and check the magic number and the dimensions at the start of an IDX stream."""
    magic = f.read(4)
    if len(magic) < 4:
        raise ValueError(f"{path}: not an IDX file: only {len(magic)} byte(s), no 4-byte header")
    if magic[:2] != b"\x00\x00":
        raise ValueError(
            f"{path}: not an IDX file: the magic number must start with two zero bytes, "
            f"got {magic.hex(' ')}"
        )
    code, ndim = magic[2], magic[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX data type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    raw = f.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimension sizes declared")
    dims = struct.unpack(f">{ndim}I", raw)
    return _IDX_DTYPES[code], tuple(int(d) for d in dims)


def _read_idx_payload(path: Path, f: BinaryIO, nbytes: int, file_size: int | None) -> bytes:
    """Read exactly ``nbytes`` after the header; raise on truncation or trailing bytes."""
    if file_size is not None and file_size != nbytes:  # raw file: check before reading
        _raise_idx_size(path, nbytes, file_size)
    data = _read_up_to(f, nbytes)
    if len(data) < nbytes:
        _raise_idx_size(path, nbytes, len(data))
    extra = f.read(1)
    if extra:
        _raise_idx_size(path, nbytes, None)
    return data


def _read_up_to(f: BinaryIO, nbytes: int, chunk: int = 1 << 24) -> bytes:
    """Read at most ``nbytes`` in chunks, so a header with absurd dims cannot exhaust memory."""
    parts, left = [], nbytes
    while left > 0:
        part = f.read(min(chunk, left))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _raise_idx_size(path: Path, expected: int, got: int | None) -> None:
    if got is None:
        raise ValueError(
            f"{path}: trailing bytes after the {expected} payload bytes the IDX header declares"
        )
    what = "truncated" if got < expected else "trailing bytes"
    raise ValueError(
        f"{path}: {what}: the IDX header declares {expected} payload bytes but the file "
        f"holds {got}"
    )


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (MNIST layout), raw or gzipped, into a native-endian array.

    Type code 0x08 gives uint8; big-endian types are converted to native order.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    compressed = _is_gzip(path)
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            dtype, dims = _parse_idx_header(path, f)
            nbytes = math.prod(dims) * dtype.itemsize
            size = None if compressed else path.stat().st_size - 4 - 4 * len(dims)
            data = _read_idx_payload(path, f, nbytes, size)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip stream: {e}") from e
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx_pair(images_path: PathLike, labels_path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an images/labels IDX pair: x uint8 (N, H, W) and y int64 (N,)."""
    x = read_idx(images_path)
    y = read_idx(labels_path)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise ValueError(
            f"{images_path}: expected uint8 images of rank 3 (N, H, W); got {x.dtype} "
            f"with shape {x.shape}"
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"{labels_path}: expected integer labels of rank 1 (N,); got {y.dtype} "
            f"with shape {y.shape}"
        )
    if len(x) != len(y):
        raise ValueError(
            f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels"
        )
    return x, y.astype(np.int64)


def _idx_candidates(prefix: str, kind: str, rank: int) -> list[str]:
    base = [f"{prefix}-{kind}-idx{rank}-ubyte", f"{prefix}-{kind}.idx{rank}-ubyte"]
    return [n + ext for n in base for ext in ("", ".gz")]


def find_idx_files(directory: PathLike, split: str) -> tuple[Path, Path]:
    """Paths of the images and labels IDX files of ``split`` ('train', 'test' or 't10k').

    Raises ``FileNotFoundError`` listing the names looked for.
    """
    prefixes = {"train": "train", "test": "t10k", "t10k": "t10k"}
    if split not in prefixes:
        raise ValueError(f"split must be 'train', 'test' or 't10k'; got {split!r}")
    directory = Path(directory)
    found = []
    for kind, rank in (("images", 3), ("labels", 1)):
        names = _idx_candidates(prefixes[split], kind, rank)
        hit = next((directory / n for n in names if (directory / n).is_file()), None)
        if hit is None:
            raise FileNotFoundError(
                f"no {split} {kind} IDX file in {directory}; looked for {', '.join(names)}"
            )
        found.append(hit)
    return found[0], found[1]


def _has_idx_dataset(directory: Path) -> bool:
    try:
        find_idx_files(directory, "train")
        find_idx_files(directory, "test")
    except FileNotFoundError:
        return False
    return True


def _load_idx_dataset(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x_train, y_train = read_idx_pair(*find_idx_files(directory, "train"))
    x_test, y_test = read_idx_pair(*find_idx_files(directory, "test"))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"{directory}: train images are {x_train.shape[1:]} but test images are "
            f"{x_test.shape[1:]}"
        )
    return x_train, y_train, x_test, y_test


def _search_dirs(data_dir: PathLike | None, subfolder: str, env_itself: bool) -> list[Path]:
    """Folders to search: an explicit ``data_dir`` (and its subfolder) and nothing else,
    so that a wrong path is an error, never a silent fall-back to another copy;
    without one, $GANAD_DATA (the caller adds the system folder)."""
    if data_dir is not None:
        return [Path(data_dir), Path(data_dir) / subfolder]
    dirs: list[Path] = []
    env = os.environ.get("GANAD_DATA")
    if env:
        dirs += ([Path(env)] if env_itself else []) + [Path(env) / subfolder]
    return dirs


def _find_idx_dataset(dirs: Sequence[Path], name: str, hint: str) -> Path:
    for d in dirs:
        if _has_idx_dataset(d):
            return d
    looked = ", ".join(str(d) for d in dirs) or "(no folder: no data_dir given, GANAD_DATA unset)"
    raise FileNotFoundError(
        f"{name} not found; looked for train-images-idx3-ubyte(.gz), "
        f"train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and "
        f"t10k-labels-idx1-ubyte(.gz) in: {looked}. {hint}"
    )


def load_fashion_mnist_arrays(
    data_dir: PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST as (x_train, y_train, x_test, y_test), images uint8 (N, 28, 28).

    Looks in ``data_dir`` (and ``data_dir/fashion-mnist``) only, when it is given;
    otherwise in ``$GANAD_DATA`` (and ``$GANAD_DATA/fashion-mnist``), then
    /usr/share/datasets/fashion-mnist.
    """
    dirs = _search_dirs(data_dir, "fashion-mnist", env_itself=True)
    if data_dir is None:
        dirs.append(SYSTEM_FASHION_MNIST)
    hint = (
        "Install it with `apt-get install dataset-fashion-mnist`, or set GANAD_DATA to a "
        "folder holding the four files (or a fashion-mnist subfolder with them)."
    )
    return _load_idx_dataset(_find_idx_dataset(dirs, "Fashion-MNIST", hint))


def load_mnist_arrays(
    data_dir: PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as (x_train, y_train, x_test, y_test) from ``data_dir`` or ``$GANAD_DATA/mnist``."""
    dirs = _search_dirs(data_dir, "mnist", env_itself=False)
    hint = "Pass data_dir, or set GANAD_DATA to a folder with an mnist subfolder holding them."
    return _load_idx_dataset(_find_idx_dataset(dirs, "MNIST", hint))


# --------------------------------------------------------------------------- CIFAR-10


def _dataset_dir(directory: PathLike | None, subfolder: str, name: str) -> Path:
    """``directory``, or ``$GANAD_DATA/subfolder`` when it is None."""
    if directory is not None:
        return Path(directory)
    env = os.environ.get("GANAD_DATA")
    if not env:
        raise FileNotFoundError(
            f"{name}: no folder given; pass data_dir or set GANAD_DATA to a folder with a "
            f"{subfolder} subfolder"
        )
    return Path(env) / subfolder


def _numpy_globals() -> dict[str, Any]:
    """The numpy callables that pickled arrays name, found without private imports."""
    return {
        "_reconstruct": np.empty(0).__reduce__()[0],
        "_frombuffer": np.empty(1).__reduce_ex__(5)[0],
        "scalar": np.float64(0).__reduce__()[0],
    }


def _allowed_globals() -> dict[tuple[str, str], Any]:
    np_funcs = _numpy_globals()
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for pkg in ("numpy.core", "numpy._core"):
        allowed[(f"{pkg}.multiarray", "_reconstruct")] = np_funcs["_reconstruct"]
        allowed[(f"{pkg}.multiarray", "scalar")] = np_funcs["scalar"]
        allowed[(f"{pkg}.numeric", "_frombuffer")] = np_funcs["_frombuffer"]
    safe_builtins = {"dict": dict, "list": list, "tuple": tuple, "set": set,
                     "frozenset": frozenset, "bytes": bytes, "bytearray": bytearray}
    for mod in ("builtins", "__builtin__"):
        allowed.update({(mod, k): v for k, v in safe_builtins.items()})
    allowed[("_codecs", "encode")] = _latin1_encode  # how Python 3 pickles bytes at protocol <= 2
    return allowed


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode`` that only encodes text, as bytes pickles need."""
    if not isinstance(text, str):
        raise pickle.UnpicklingError("_codecs.encode called on a non-string")
    return text.encode(encoding)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array reconstruction and plain containers."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"forbidden global {module}.{name} (only numpy arrays and plain containers "
                f"are allowed)"
            ) from None


def _safe_unpickle(path: Path) -> Any:
    """Load a pickle with :class:`_RestrictedUnpickler`; every failure is a ValueError."""
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except Exception as e:  # any corrupt or hostile pickle
        raise ValueError(f"{path}: cannot read this CIFAR batch pickle: {e}") from e


def _get_key(d: dict, key: str, path: Path) -> Any:
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise ValueError(f"{path}: CIFAR batch has no {key!r} entry; keys: {sorted(map(str, d))}")


def read_cifar10_batch(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch: x uint8 (N, 3, 32, 32) and y int64 (N,)."""
    path = Path(path)
    d = _safe_unpickle(path)
    if not isinstance(d, dict):
        raise ValueError(f"{path}: a CIFAR batch must be a dict; got {type(d).__name__}")
    data, labels = _get_key(d, "data", path), _get_key(d, "labels", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072); got {desc}")
    y = _as_labels(labels, path, "labels")
    if len(y) != len(data):
        raise ValueError(f"{path}: {len(data)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: labels must be in 0..9; got {y.min()}..{y.max()}")
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32)), y


def _as_labels(labels: Any, path: Path, name: str) -> np.ndarray:
    """A 1-d int64 label array, or a ValueError naming the file."""
    try:
        y = np.asarray(labels)
    except Exception as e:
        raise ValueError(f"{path}: cannot read {name!r} as an array: {e}") from e
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        raise ValueError(
            f"{path}: {name!r} must be a 1-d list of integers; got {y.dtype} {y.shape}"
        )
    return y.astype(np.int64)


def load_cifar10_arrays(
    directory: PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR-10 from data_batch_1..5 and test_batch in ``directory``.

    Without ``directory`` it looks in ``$GANAD_DATA/cifar10``.  A folder holding
    the unpacked ``cifar-10-batches-py`` folder works too.
    """
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    directory = _dataset_dir(directory, "cifar10", "CIFAR-10")
    if not (directory / "test_batch").is_file() and (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 batches missing in {directory}: {', '.join(missing)}")
    train = [read_cifar10_batch(directory / n) for n in names[:5]]
    x_test, y_test = read_cifar10_batch(directory / "test_batch")
    x_train = np.concatenate([b[0] for b in train])
    y_train = np.concatenate([b[1] for b in train])
    return x_train, y_train, x_test, y_test


# --------------------------------------------------------------------------- SVHN


def read_svhn_mat(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an SVHN format-2 .mat file: x uint8 (N, 3, 32, 32), y int64 (N,) with 10 -> 0."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        mat = scipy.io.loadmat(path)
    except NotImplementedError as e:  # MATLAB v7.3 (HDF5)
        raise ValueError(f"{path}: MATLAB v7.3 files are not supported: {e}") from e
    except Exception as e:
        raise ValueError(f"{path}: cannot read this .mat file: {e}") from e
    for key in ("X", "y"):
        if key not in mat:
            keys = sorted(k for k in mat if not k.startswith("__"))
            raise ValueError(f"{path}: SVHN file has no {key!r} variable; variables: {keys}")
    X, y = mat["X"], mat["y"]
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3) or X.dtype != np.uint8:
        raise ValueError(
            f"{path}: 'X' must be uint8 of shape (32, 32, 3, N); got {X.dtype} {X.shape}"
        )
    return np.ascontiguousarray(X.transpose(3, 2, 0, 1)), _svhn_labels(y, X.shape[3], path)


def _svhn_labels(y: np.ndarray, n: int, path: Path) -> np.ndarray:
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{path}: 'y' must have shape (N, 1); got {y.dtype} {y.shape}")
    if len(y) != n:
        raise ValueError(f"{path}: 'X' holds {n} images but 'y' holds {len(y)} labels")
    if len(y) and (np.any(y != np.round(y)) or y.min() < 0 or y.max() > 10):
        raise ValueError(f"{path}: 'y' must hold digits 1..10 (10 meaning 0)")
    return (y.astype(np.int64)) % 10


def load_svhn_arrays(
    directory: PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """SVHN from train_32x32.mat and test_32x32.mat in ``directory`` (or ``$GANAD_DATA/svhn``)."""
    directory = _dataset_dir(directory, "svhn", "SVHN")
    names = ("train_32x32.mat", "test_32x32.mat")
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        raise FileNotFoundError(f"SVHN files missing in {directory}: {', '.join(missing)}")
    x_train, y_train = read_svhn_mat(directory / names[0])
    x_test, y_test = read_svhn_mat(directory / names[1])
    return x_train, y_train, x_test, y_test


# --------------------------------------------------------------------------- image folders

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def _list_images(root: Path) -> list[Path]:
    if not root.exists():
        raise ValueError(f"{root}: no such file or folder")
    if root.is_file():
        files = [root] if root.suffix.lower() in IMAGE_EXTENSIONS else []
    else:
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                       and p.is_file())
    if not files:
        exts = "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        raise ValueError(f"{root}: no image files ({exts}) found")
    return files


def _probe(path: Path) -> tuple[str, tuple[int, int]]:
    """Mode and (height, width) of an image, from its header."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.mode, (im.height, im.width)
    except Exception as e:
        raise ValueError(f"{path}: cannot read this image: {e}") from e


def _to_mode(im: Any, mode: str) -> np.ndarray:
    """Pillow image -> uint8 array in mode 'L' (H, W) or 'RGB' (H, W, 3)."""
    if mode == "L" and im.mode.startswith("I"):  # 16-bit grayscale PNG
        return np.round(np.asarray(im, dtype=np.float64) / 257.0).clip(0, 255).astype(np.uint8)
    if mode == "L" and im.mode == "F":
        return np.round(np.asarray(im)).clip(0, 255).astype(np.uint8)
    if mode == "RGB" and im.mode.startswith("I"):
        return np.repeat(_to_mode(im, "L")[..., None], 3, axis=2)
    return np.asarray(im.convert(mode), dtype=np.uint8)


def _load_image(path: Path, mode: str, hw: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            arr = _to_mode(im, mode)
    except Exception as e:
        raise ValueError(f"{path}: cannot read this image: {e}") from e
    if hw is not None and arr.shape[:2] != hw:
        pil = Image.fromarray(arr)
        arr = np.asarray(pil.resize((hw[1], hw[0]), Image.Resampling.BILINEAR), dtype=np.uint8)
    return arr


def _check_sizes(files: list[Path], sizes: list[tuple[int, int]]) -> tuple[int, int]:
    for f, s in zip(files, sizes):
        if s != sizes[0]:
            raise ValueError(
                f"images differ in size: {files[0]} is {sizes[0][1]}x{sizes[0][0]} but {f} is "
                f"{s[1]}x{s[0]} (width x height); pass size= to resize them"
            )
    return sizes[0]


def _folder_labels(root: Path, files: list[Path]) -> tuple[np.ndarray, list[str]]:
    """Labels from each file's immediate subfolder under ``root``."""
    names = []
    for f in files:
        rel = f.relative_to(root) if root.is_dir() else Path(f.name)
        if len(rel.parts) < 2:
            raise ValueError(
                f"{f}: with_labels=True needs every image inside a class subfolder of {root}"
            )
        names.append(rel.parts[0])
    classes = sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[n] for n in names], dtype=np.int64), classes


def _resolve_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        hw: tuple[int, ...] = (int(size), int(size))
    else:
        hw = tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"size must be a positive int or (height, width); got {size!r}")
    return hw  # type: ignore[return-value]


def read_image_folder(
    path: PathLike,
    size: int | Sequence[int] | None = None,
    mode: str | None = None,
    with_labels: bool = False,
    return_paths: bool = False,
    skip_bad: bool = False,
    notes: list[str] | None = None,
) -> Any:
    """Read all PNG/JPEG/BMP images under ``path`` (sorted, recursive) into one uint8 array.

    Returns ``x`` of shape (N, H, W) for mode 'L' or (N, 3, H, W) for 'RGB';
    ``mode=None`` picks 'L' when every image is grayscale.  ``size`` (int or
    (h, w)) resizes with bilinear interpolation; without it all images must
    share one size.  With ``with_labels`` the result is ``(x, y, class_names)``
    (labels from immediate subfolder names); ``return_paths`` appends the list
    of file paths: ``(x, paths)`` or ``(x, y, class_names, paths)``.
    ``skip_bad`` leaves out files that cannot be read instead of failing on the
    first; ``notes`` (a list) receives one line per skipped file and one for
    any colour conversion, for the caller to show.
    """
    root = Path(path)
    if mode not in (None, "L", "RGB"):
        raise ValueError(f"mode must be None, 'L' or 'RGB'; got {mode!r}")
    hw = _resolve_size(size)
    files, probes = [], []
    for f in _list_images(root):
        try:
            probes.append(_probe(f))
            files.append(f)
        except ValueError as exc:
            if not skip_bad:
                raise ValueError(f"{exc} (pass --skip-bad / skip_bad=True to leave such files out)") from None
            if notes is not None:
                notes.append(f"skipped {exc}")
    if not files:
        raise ValueError(f"{root}: none of the image files could be read")
    if mode is None:
        mode = "L" if all(m in _GRAY_MODES for m, _ in probes) else "RGB"
    if notes is not None:
        converted = sum((m in _GRAY_MODES) != (mode == "L") for m, _ in probes)
        if converted:
            what = "colour images to grey" if mode == "L" else "grey images to RGB"
            notes.append(f"converted {converted} {what} (the model was trained on {mode} images)")
    if hw is None:
        hw = _check_sizes(files, [s for _, s in probes])
    x = np.empty((len(files),) + ((3,) if mode == "RGB" else ()) + hw, dtype=np.uint8)
    keep = np.ones(len(files), dtype=bool)
    for i, f in enumerate(files):
        try:
            img = _load_image(f, mode, hw)
        except ValueError as exc:
            if not skip_bad:
                raise ValueError(f"{exc} (pass --skip-bad / skip_bad=True to leave such files out)") from None
            keep[i] = False
            if notes is not None:
                notes.append(f"skipped {exc}")
            continue
        x[i] = img.transpose(2, 0, 1) if mode == "RGB" else img
    if not keep.all():
        x, files = x[keep], [f for f, k in zip(files, keep) if k]
        if not files:
            raise ValueError(f"{root}: none of the image files could be read")
    out: tuple = (x,)
    if with_labels:
        out += _folder_labels(root, files)
    if return_paths:
        out += (files,)
    return out if len(out) > 1 else x


def read_any(
    path: PathLike,
    size: int | Sequence[int] | None = None,
    mode: str | None = None,
    skip_bad: bool = False,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """What a user points the command line at: a folder (or file) of images, an
    ``.npy`` / ``.npz`` array, or a numeric ``.csv`` table.  Returns ``(x, names)``:
    a name per sample (the file path relative to ``path`` for images, else the row index)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if p.is_file() and suffix in (".npy", ".npz", ".csv"):
        x = read_array(p)[0] if suffix != ".csv" else read_csv(p)[0]
        return x, [f"{p.name}[{i}]" for i in range(len(x))]
    x, files = read_image_folder(p, size=size, mode=mode, return_paths=True, skip_bad=skip_bad, notes=notes)
    base = p if p.is_dir() else p.parent
    return x, [os.path.relpath(f, base) for f in files]


# --------------------------------------------------------------------------- npy / npz / csv


def _check_numeric(a: np.ndarray, path: Path, name: str) -> np.ndarray:
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{path}: array {name!r} must be numeric; got dtype {a.dtype}")
    if a.ndim == 0 or a.shape[0] == 0:
        raise ValueError(f"{path}: array {name!r} is empty or a scalar: shape {a.shape}")
    return a


def _pick_npz_x(keys: list[str], path: Path) -> str:
    for k in ("x", "X"):
        if k in keys:
            return k
    rest = [k for k in keys if k not in ("y", "Y")]
    if len(rest) == 1:
        return rest[0]
    raise ValueError(f"{path}: cannot tell which array is the data: no 'x' or 'X' among {keys}")


def _np_load(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    """``np.load`` without pickles; an .npz is read into a dict. Failures name the file."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # object arrays, corrupt zip, bad header, ...
        raise ValueError(f"{path}: cannot read this array file: {e}") from e


def read_array(path: PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``.npy`` or ``.npz`` (no pickles): returns ``(x, y)`` with ``y`` None when absent.

    In an ``.npz`` the data is ``x``, ``X`` or the only array; labels are ``y`` or ``Y``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix.lower() not in (".npy", ".npz"):
        raise ValueError(f"{path}: expected a .npy or .npz file")
    loaded = _np_load(path)
    if isinstance(loaded, np.ndarray):
        return _check_numeric(loaded, path, "x"), None
    if not loaded:
        raise ValueError(f"{path}: the .npz file holds no arrays")
    kx = _pick_npz_x(list(loaded), path)
    x = _check_numeric(loaded[kx], path, kx)
    ky = next((k for k in ("y", "Y") if k in loaded and k != kx), None)
    if ky is None:
        return x, None
    y = _check_numeric(loaded[ky], path, ky)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{path}: {ky!r} must have shape ({len(x)},); got {y.shape}")
    return x, y


def _parse_float(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank rows of a CSV file with their 1-based line numbers."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            sample = f.read(65536)
            f.seek(0)
            try:
                dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.reader(f, dialect)
            rows = ((reader.line_num, [c.strip() for c in r]) for r in reader)
            return [(line, cells) for line, cells in rows if any(cells)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: cannot read this CSV file: {e}") from e


def _label_index(label_column: int | str | None, header: list[str] | None, ncol: int,
                 path: Path) -> int | None:
    if label_column is None:
        return None
    if isinstance(label_column, str):
        if header is None or label_column not in header:
            raise ValueError(f"{path}: no column named {label_column!r}; header: {header}")
        return header.index(label_column)
    idx = label_column + ncol if label_column < 0 else label_column
    if not 0 <= idx < ncol:
        raise ValueError(f"{path}: label_column {label_column} out of range for {ncol} columns")
    return idx


def _cell_error(path: Path, line: int, col: int, header: list[str] | None, cell: str,
                what: str) -> ValueError:
    name = f" ({header[col]!r})" if header else ""
    return ValueError(f"{path}: row {line}, column {col + 1}{name}: {what}, got {cell!r}")


def read_csv(path: PathLike, label_column: int | str | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a numeric CSV table (optional header row) as float32 (N, D) plus optional labels.

    ``label_column`` (index or header name) is split off as int64 labels.
    Rows are numbered as lines of the file in error messages.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    rows = _read_rows(path)
    if not rows:
        raise ValueError(f"{path}: the CSV file is empty")
    header = None
    if any(_parse_float(c) is None for c in rows[0][1]) and len(rows) > 1:
        header, rows = rows[0][1], rows[1:]
    ncol = len(header) if header else len(rows[0][1])
    li = _label_index(label_column, header, ncol, path)
    values = np.empty((len(rows), ncol), dtype=np.float64)
    for r, (line, cells) in enumerate(rows):
        if len(cells) != ncol:
            raise ValueError(f"{path}: row {line} has {len(cells)} columns, expected {ncol}")
        for c, cell in enumerate(cells):
            v = _parse_float(cell)
            if v is None or (c == li and v != round(v)):
                what = "expected an integer label" if c == li else "expected a finite number"
                raise _cell_error(path, line, c, header, cell, what)
            values[r, c] = v
    if li is None:
        return values.astype(np.float32), None
    y = values[:, li].astype(np.int64)
    x = np.delete(values, li, axis=1).astype(np.float32)
    if x.shape[1] == 0:
        raise ValueError(f"{path}: no feature columns left after the label column")
    return x, y
