"""Tests for ganad.data.readers: real on-disk formats written into tmp_path."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from ganad.data import readers
from ganad.data.readers import (
    find_idx_files,
    load_cifar10_arrays,
    load_fashion_mnist_arrays,
    load_mnist_arrays,
    load_svhn_arrays,
    read_array,
    read_cifar10_batch,
    read_csv,
    read_idx,
    read_idx_pair,
    read_image_folder,
    read_svhn_mat,
)

RNG = np.random.default_rng(0)

# --------------------------------------------------------------------------- IDX helpers

_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
          np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(a: np.ndarray) -> bytes:
    """Serialize ``a`` in IDX layout: 00 00 code ndim, big-endian uint32 dims, big-endian data."""
    big = a.dtype.newbyteorder(">") if a.dtype.itemsize > 1 else a.dtype
    header = struct.pack(">BBBB", 0, 0, _CODES[big], a.ndim)
    header += struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(big).tobytes()


def write_idx(path: Path, a: np.ndarray, gz: bool = True) -> Path:
    data = idx_bytes(a)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_idx_dataset(d: Path, n_train: int = 12, n_test: int = 5, side: int = 28) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    arrs = {
        "x_train": RNG.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "y_train": RNG.integers(0, 10, n_train).astype(np.uint8),
        "x_test": RNG.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "y_test": RNG.integers(0, 10, n_test).astype(np.uint8),
    }
    write_idx(d / "train-images-idx3-ubyte.gz", arrs["x_train"])
    write_idx(d / "train-labels-idx1-ubyte.gz", arrs["y_train"])
    write_idx(d / "t10k-images-idx3-ubyte.gz", arrs["x_test"])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", arrs["y_test"])
    return arrs


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_uint8_round_trip(tmp_path, gz):
    a = RNG.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    out = read_idx(write_idx(tmp_path / "imgs", a, gz=gz))
    assert out.dtype == np.uint8 and out.shape == (7, 28, 28)
    np.testing.assert_array_equal(out, a)
    out[0, 0, 0] = 1  # writable


@pytest.mark.parametrize("dtype", [np.int8, ">i2", ">i4", ">f4", ">f8"])
def test_idx_other_types_become_native(tmp_path, dtype):
    a = (RNG.standard_normal((3, 4)) * 100).astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", a, gz=False))
    assert out.dtype.isnative and out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, a)


def test_idx_gzip_detected_by_magic_not_extension(tmp_path):
    a = RNG.integers(0, 256, (3, 5), dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "plain-name", a, gz=True)), a)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "raw.gz", a, gz=False)), a)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_truncated(tmp_path, gz):
    data = idx_bytes(RNG.integers(0, 256, (4, 6, 6), dtype=np.uint8))[:-10]
    p = tmp_path / "trunc"
    p.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match=r"trunc.*truncated.*144 payload bytes.*134"):
        read_idx(p)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_trailing_bytes(tmp_path, gz):
    data = idx_bytes(RNG.integers(0, 256, (4, 6, 6), dtype=np.uint8)) + b"\x00\x01"
    p = tmp_path / "trail"
    p.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match=r"trail.*trailing bytes"):
        read_idx(p)


@pytest.mark.parametrize(
    "header, message",
    [
        (b"\x01\x00\x08\x01", "two zero bytes"),
        (b"\x00\x00\x07\x01", "unknown IDX data type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00", "no 4-byte header"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
    ],
)
def test_idx_bad_header(tmp_path, header, message):
    p = tmp_path / "bad-magic"
    p.write_bytes(header)
    with pytest.raises(ValueError, match=message) as e:
        read_idx(p)
    assert "bad-magic" in str(e.value)


def test_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(RNG.integers(0, 256, (20, 28, 28), dtype=np.uint8)))
    corrupt = bytearray(good)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 16] = b"\xff" * 16
    for name, data in [("corrupt.gz", bytes(corrupt)), ("cut.gz", good[: len(good) // 2]),
                       ("badcrc.gz", good[:-8] + b"\x00" * 8)]:
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ValueError, match=rf"{name}.*gzip"):
            read_idx(p)


def test_idx_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_idx(tmp_path / "nope")


def test_idx_pair(tmp_path):
    x = RNG.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    y = np.arange(6, dtype=np.uint8)
    xi, yi = write_idx(tmp_path / "x.gz", x), write_idx(tmp_path / "y.gz", y)
    xr, yr = read_idx_pair(xi, yi)
    assert xr.dtype == np.uint8 and yr.dtype == np.int64
    np.testing.assert_array_equal(xr, x)
    np.testing.assert_array_equal(yr, y)
    write_idx(tmp_path / "y5.gz", y[:5])
    with pytest.raises(ValueError, match=r"x\.gz holds 6 images but .*y5\.gz holds 5 labels"):
        read_idx_pair(xi, tmp_path / "y5.gz")
    with pytest.raises(ValueError, match="rank 3"):
        read_idx_pair(yi, yi)
    with pytest.raises(ValueError, match="rank 1"):
        read_idx_pair(xi, xi)


def test_find_idx_files(tmp_path):
    write_idx_dataset(tmp_path)
    assert find_idx_files(tmp_path, "train")[0].name == "train-images-idx3-ubyte.gz"
    assert find_idx_files(tmp_path, "test")[1].name == "t10k-labels-idx1-ubyte.gz"
    assert find_idx_files(tmp_path, "t10k") == find_idx_files(tmp_path, "test")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\.gz"):
        find_idx_files(tmp_path, "test")
    with pytest.raises(ValueError, match="split"):
        find_idx_files(tmp_path, "val")


def test_ganad_data_lookup(tmp_path, monkeypatch):
    arrs = write_idx_dataset(tmp_path / "root" / "fashion-mnist")
    monkeypatch.setenv("GANAD_DATA", str(tmp_path / "root"))
    x_train, y_train, x_test, y_test = load_fashion_mnist_arrays()
    np.testing.assert_array_equal(x_train, arrs["x_train"])
    np.testing.assert_array_equal(y_test, arrs["y_test"])
    assert y_train.dtype == np.int64 and x_test.shape == (5, 28, 28)
    # GANAD_DATA pointing straight at the folder works too; data_dir comes first.
    monkeypatch.setenv("GANAD_DATA", str(tmp_path / "root" / "fashion-mnist"))
    assert len(load_fashion_mnist_arrays()[0]) == 12
    other = write_idx_dataset(tmp_path / "mine", n_train=3, n_test=2)
    np.testing.assert_array_equal(load_fashion_mnist_arrays(tmp_path / "mine")[0], other["x_train"])
    # MNIST looks only in data_dir and GANAD_DATA/mnist.
    mnist = write_idx_dataset(tmp_path / "root" / "mnist", n_train=4, n_test=3)
    monkeypatch.setenv("GANAD_DATA", str(tmp_path / "root"))
    np.testing.assert_array_equal(load_mnist_arrays()[2], mnist["x_test"])


def test_fashion_mnist_not_found_message(tmp_path, monkeypatch):
    monkeypatch.setenv("GANAD_DATA", str(tmp_path))
    monkeypatch.setattr(readers, "SYSTEM_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as e:
        load_fashion_mnist_arrays()
    assert "GANAD_DATA" in str(e.value) and str(tmp_path) in str(e.value)
    monkeypatch.delenv("GANAD_DATA")
    with pytest.raises(FileNotFoundError, match="MNIST not found"):
        load_mnist_arrays()


def test_corrupt_dataset_file_is_not_skipped(tmp_path, monkeypatch):
    write_idx_dataset(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    monkeypatch.delenv("GANAD_DATA", raising=False)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz"):
        load_fashion_mnist_arrays(tmp_path)


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="system Fashion-MNIST absent (apt-get install dataset-fashion-mnist)",
)
def test_system_fashion_mnist(monkeypatch):
    monkeypatch.delenv("GANAD_DATA", raising=False)
    x_train, y_train, x_test, y_test = load_fashion_mnist_arrays()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [1000] * 10)
    assert y_train.min() == 0 and y_train.max() == 9


# --------------------------------------------------------------------------- CIFAR-10


def _py2_str(b: bytes) -> bytes:
    """A Python 2 ``str`` in protocol 2: SHORT_BINSTRING or BINSTRING."""
    if len(b) < 256:
        return b"U" + bytes([len(b)]) + b
    return b"T" + struct.pack("<i", len(b)) + b


def _py2_int(i: int) -> bytes:
    return b"K" + bytes([i]) if 0 <= i < 256 else b"J" + struct.pack("<i", i)


def _py2_ndarray(a: np.ndarray) -> bytes:
    """A uint8 C-order array as Python 2 numpy pickled it (numpy.core.multiarray._reconstruct)."""
    shape = b"(" + b"".join(_py2_int(d) for d in a.shape) + b"t"
    dtype = (b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"K\x00K\x01\x87R(K\x03" + _py2_str(b"|")
             + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b")
            + b"\x87R(K\x01" + shape + dtype + b"\x89" + _py2_str(a.tobytes()) + b"tb")


def py2_cifar_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """Bytes laid out like the real CIFAR-10 batches (cPickle protocol 2 from Python 2)."""
    out = b"\x80\x02}(" + _py2_str(b"batch_label") + _py2_str(b"training batch 1 of 5")
    out += _py2_str(b"labels") + b"](" + b"".join(_py2_int(i) for i in labels) + b"e"
    out += _py2_str(b"data") + _py2_ndarray(data)
    out += _py2_str(b"filenames") + b"](" + b"".join(_py2_str(b"f%d.png" % i)
                                                      for i in range(len(labels))) + b"e"
    return out + b"u."


def cifar_arrays(n: int) -> tuple[np.ndarray, list[int]]:
    return RNG.integers(0, 256, (n, 3072), dtype=np.uint8), [int(i) for i in RNG.integers(0, 10, n)]


def test_cifar_py2_layout_round_trip(tmp_path):
    data, labels = cifar_arrays(4)
    p = tmp_path / "data_batch_1"
    p.write_bytes(py2_cifar_pickle(data, labels))
    x, y = read_cifar10_batch(p)
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x.reshape(4, -1), data)
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_py3_pickles(tmp_path, protocol):
    data, labels = cifar_arrays(3)
    d = {b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data,
         b"filenames": [b"a.png", b"b.png", b""]}
    p = tmp_path / "test_batch"
    p.write_bytes(pickle.dumps(d, protocol=protocol))
    x, y = read_cifar10_batch(p)
    np.testing.assert_array_equal(x.reshape(3, -1), data)
    np.testing.assert_array_equal(y, labels)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_forbidden_global_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "data_batch_1"
    data, labels = cifar_arrays(2)
    p.write_bytes(pickle.dumps({b"data": data, b"labels": labels, b"x": _Evil(marker)}, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_1.*forbidden global (posix|os|nt)\.system"):
        read_cifar10_batch(p)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload, message",
    [
        ({b"labels": [1]}, "no 'data' entry"),
        ({b"data": np.zeros((1, 3072), np.uint8)}, "no 'labels' entry"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [1, 2]}, r"shape \(N, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}, "uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "2 images but 1 labels"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [12]}, "0..9"),
        ([1, 2, 3], "must be a dict"),
    ],
)
def test_cifar_bad_content(tmp_path, payload, message):
    p = tmp_path / "data_batch_2"
    p.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(ValueError, match=message) as e:
        read_cifar10_batch(p)
    assert "data_batch_2" in str(e.value)


def test_cifar_garbage_file(tmp_path):
    p = tmp_path / "test_batch"
    p.write_bytes(b"\x80\x02}(U\x04data")
    with pytest.raises(ValueError, match="test_batch"):
        read_cifar10_batch(p)


def test_load_cifar10_arrays(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = cifar_arrays(2)
        (d / name).write_bytes(py2_cifar_pickle(*batches[name]))
    x_train, y_train, x_test, y_test = load_cifar10_arrays(tmp_path)
    assert x_train.shape == (10, 3, 32, 32) and x_test.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(x_train[8:].reshape(2, -1), batches["data_batch_5"][0])
    np.testing.assert_array_equal(y_test, batches["test_batch"][1])
    (d / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10_arrays(d)


def test_cifar_and_svhn_ganad_data_lookup(tmp_path, monkeypatch):
    d = tmp_path / "cifar10"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (d / name).write_bytes(py2_cifar_pickle(*cifar_arrays(1)))
    svhn_file(tmp_path / "svhn" / "train_32x32.mat", n=2)
    svhn_file(tmp_path / "svhn" / "test_32x32.mat", n=1)
    monkeypatch.setenv("GANAD_DATA", str(tmp_path))
    assert load_cifar10_arrays()[0].shape == (5, 3, 32, 32)
    assert load_svhn_arrays()[2].shape == (1, 3, 32, 32)
    monkeypatch.delenv("GANAD_DATA")
    with pytest.raises(FileNotFoundError, match="GANAD_DATA"):
        load_cifar10_arrays()


# --------------------------------------------------------------------------- SVHN


def svhn_file(path: Path, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    path.parent.mkdir(parents=True, exist_ok=True)
    X = RNG.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = RNG.integers(1, 11, (n, 1)).astype(np.uint8)
    y[0, 0] = 10
    scipy.io.savemat(path, {"X": X, "y": y})
    return X, y


def test_svhn_round_trip(tmp_path):
    X, y = svhn_file(tmp_path / "train_32x32.mat")
    x, labels = read_svhn_mat(tmp_path / "train_32x32.mat")
    assert x.shape == (5, 3, 32, 32) and x.dtype == np.uint8 and labels.dtype == np.int64
    np.testing.assert_array_equal(x[2, 1], X[:, :, 1, 2])
    np.testing.assert_array_equal(labels, y[:, 0] % 10)
    assert labels[0] == 0
    svhn_file(tmp_path / "test_32x32.mat", n=3)
    x_train, y_train, x_test, y_test = load_svhn_arrays(tmp_path)
    assert len(x_train) == 5 and x_test.shape == (3, 3, 32, 32) and len(y_test) == 3


@pytest.mark.parametrize(
    "content, message",
    [
        ({"X": np.zeros((5, 32, 32, 3), np.uint8), "y": np.ones((5, 1))},
         r"shape \(32, 32, 3, N\)"),
        ({"X": np.zeros((32, 32, 5), np.uint8), "y": np.ones((5, 1))}, r"shape \(32, 32, 3, N\)"),
        ({"X": np.zeros((32, 32, 3, 5), np.uint8), "y": np.ones((4, 1))},
         "5 images but 'y' holds 4"),
        ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((2, 2))}, r"shape \(N, 1\)"),
        ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1], [11]])}, "1..10"),
        ({"X": np.zeros((32, 32, 3, 2), np.uint8)}, "no 'y' variable"),
        ({"images": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((2, 1))}, "no 'X' variable"),
    ],
)
def test_svhn_bad_content(tmp_path, content, message):
    p = tmp_path / "svhn_bad.mat"
    scipy.io.savemat(p, content)
    with pytest.raises(ValueError, match=message) as e:
        read_svhn_mat(p)
    assert "svhn_bad.mat" in str(e.value)


def test_svhn_not_a_mat_file(tmp_path):
    p = tmp_path / "junk.mat"
    p.write_bytes(b"this is not matlab" * 20)
    with pytest.raises(ValueError, match="junk.mat"):
        read_svhn_mat(p)
    with pytest.raises(FileNotFoundError, match="train_32x32.mat"):
        load_svhn_arrays(tmp_path)


# --------------------------------------------------------------------------- image folders


def save(path: Path, arr: np.ndarray, **kw) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return arr


def test_image_folder_gray_png_round_trip(tmp_path):
    imgs = [save(tmp_path / f"{i}.png", RNG.integers(0, 256, (9, 7), dtype=np.uint8))
            for i in range(3)]
    save(tmp_path / "sub" / "z.bmp", imgs[0])
    (tmp_path / "notes.txt").write_text("ignored")
    x, paths = read_image_folder(tmp_path, return_paths=True)
    assert x.shape == (4, 9, 7) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:3], np.stack(imgs))
    np.testing.assert_array_equal(x[3], imgs[0])
    assert [p.name for p in paths] == ["0.png", "1.png", "2.png", "z.bmp"]
    assert isinstance(read_image_folder(tmp_path), np.ndarray)


def test_image_folder_rgb_and_mixed_modes(tmp_path):
    rgb = save(tmp_path / "a.png", RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    gray = save(tmp_path / "b.png", RNG.integers(0, 256, (6, 5), dtype=np.uint8))
    x = read_image_folder(tmp_path)
    assert x.shape == (2, 3, 6, 5)
    np.testing.assert_array_equal(x[0], rgb.transpose(2, 0, 1))
    for c in range(3):
        np.testing.assert_array_equal(x[1, c], gray)
    assert read_image_folder(tmp_path, mode="L").shape == (2, 6, 5)


def test_image_folder_jpeg_and_16bit(tmp_path):
    save(tmp_path / "a.jpg", np.full((8, 8, 3), 128, np.uint8), quality=95)
    x = read_image_folder(tmp_path)
    assert x.shape == (1, 3, 8, 8) and abs(int(x.mean()) - 128) <= 2
    d16 = tmp_path / "sixteen"
    save(d16 / "a.png", np.array([[0, 65535], [257 * 100, 257 * 200]], dtype=np.uint16))
    np.testing.assert_array_equal(read_image_folder(d16)[0], [[0, 255], [100, 200]])


def test_image_folder_resize(tmp_path):
    save(tmp_path / "a.png", np.full((10, 20), 200, np.uint8))
    save(tmp_path / "b.png", np.full((5, 5), 50, np.uint8))
    x = read_image_folder(tmp_path, size=(4, 6))
    assert x.shape == (2, 4, 6)
    assert (x[0] == 200).all() and (x[1] == 50).all()
    assert read_image_folder(tmp_path, size=8).shape == (2, 8, 8)
    with pytest.raises(ValueError, match="size"):
        read_image_folder(tmp_path, size=(4, 0))


def test_image_folder_mixed_sizes_names_files(tmp_path):
    save(tmp_path / "a.png", np.zeros((10, 20), np.uint8))
    save(tmp_path / "b.png", np.zeros((5, 5), np.uint8))
    with pytest.raises(ValueError, match=r"a\.png is 20x10 but .*b\.png is 5x5.*size="):
        read_image_folder(tmp_path)


def test_image_folder_labels(tmp_path):
    for cls, n in [("normal", 2), ("anomaly", 1)]:
        for i in range(n):
            save(tmp_path / cls / f"{i}.png", np.full((4, 4), i, np.uint8))
    save(tmp_path / "normal" / "deep" / "9.png", np.zeros((4, 4), np.uint8))
    x, y, classes, paths = read_image_folder(tmp_path, with_labels=True, return_paths=True)
    assert classes == ["anomaly", "normal"]
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 1, 1]
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "anomaly/0.png", "normal/0.png", "normal/1.png", "normal/deep/9.png"]
    x2, y2, classes2 = read_image_folder(tmp_path, with_labels=True)
    assert x2.shape == (4, 4, 4) and classes2 == classes
    save(tmp_path / "loose.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"loose\.png.*class subfolder"):
        read_image_folder(tmp_path, with_labels=True)


def test_image_folder_corrupt_png(tmp_path):
    save(tmp_path / "good.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ValueError, match=r"broken\.png.*cannot read"):
        read_image_folder(tmp_path)


def test_image_folder_truncated_png(tmp_path):
    save(tmp_path / "big.png", RNG.integers(0, 256, (64, 64), dtype=np.uint8))
    data = (tmp_path / "big.png").read_bytes()
    (tmp_path / "big.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"big\.png"):
        read_image_folder(tmp_path)


def test_image_folder_empty_and_missing(tmp_path):
    with pytest.raises(ValueError, match="no image files"):
        read_image_folder(tmp_path)
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no image files"):
        read_image_folder(tmp_path)
    with pytest.raises(ValueError, match="no such file or folder"):
        read_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="mode"):
        read_image_folder(tmp_path, mode="CMYK")


# --------------------------------------------------------------------------- npy / npz / csv


def test_read_npy_and_npz(tmp_path):
    x = RNG.standard_normal((5, 3)).astype(np.float32)
    y = np.arange(5)
    np.save(tmp_path / "a.npy", x)
    rx, ry = read_array(tmp_path / "a.npy")
    np.testing.assert_array_equal(rx, x)
    assert ry is None
    np.savez(tmp_path / "b.npz", X=x, y=y)
    rx, ry = read_array(tmp_path / "b.npz")
    np.testing.assert_array_equal(rx, x)
    np.testing.assert_array_equal(ry, y)
    np.savez_compressed(tmp_path / "c.npz", images=x)
    np.testing.assert_array_equal(read_array(tmp_path / "c.npz")[0], x)


def test_read_array_errors(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match=r"obj\.npz.*cannot read"):
        read_array(tmp_path / "obj.npz")
    np.save(tmp_path / "obj.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy"):
        read_array(tmp_path / "obj.npy")
    np.savez(tmp_path / "two.npz", a=np.zeros(3), b=np.zeros(3))
    with pytest.raises(ValueError, match=r"two\.npz.*no 'x' or 'X'"):
        read_array(tmp_path / "two.npz")
    np.savez(tmp_path / "ylen.npz", x=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(ValueError, match=r"ylen\.npz.*'y' must have shape \(4,\)"):
        read_array(tmp_path / "ylen.npz")
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"s\.npy.*numeric"):
        read_array(tmp_path / "s.npy")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"bad\.npz"):
        read_array(tmp_path / "bad.npz")
    (tmp_path / "t.txt").write_text("1")
    with pytest.raises(ValueError, match=r"\.npy or \.npz"):
        read_array(tmp_path / "t.txt")


def test_read_csv_with_and_without_header(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("f1,f2,label\n1.5,2,0\n\n-3,4e-1,1\n")
    x, y = read_csv(p, label_column="label")
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, np.array([[1.5, 2], [-3, 0.4]], np.float32))
    assert y.dtype == np.int64 and y.tolist() == [0, 1]
    x, y = read_csv(p)
    assert x.shape == (2, 3) and y is None
    q = tmp_path / "n.csv"
    q.write_text("1;2;3\n4;5;6\n")
    x, y = read_csv(q, label_column=-1)
    np.testing.assert_array_equal(x, [[1, 2], [4, 5]])
    assert y.tolist() == [3, 6]


def test_read_csv_errors(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(ValueError, match=r"t\.csv: row 3, column 2 \('b'\).*'oops'"):
        read_csv(p)
    p.write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="row 2 has 1 columns, expected 2"):
        read_csv(p)
    p.write_text("1,2\n3,nan\n")
    with pytest.raises(ValueError, match="row 2, column 2"):
        read_csv(p)
    p.write_text("1,0.5\n2,1\n")
    with pytest.raises(ValueError, match="integer label"):
        read_csv(p, label_column=1)
    with pytest.raises(ValueError, match="no column named"):
        read_csv(p, label_column="label")
    p.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_csv(p)


def test_an_explicit_data_dir_without_the_files_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    # the system copy (Debian's package) or $GANAD_DATA may hold Fashion-MNIST: an explicit
    # folder that does not must still be an error, naming the folder
    from ganad.cli import main
    from ganad.data import readers

    monkeypatch.setenv("GANAD_DATA", str(tmp_path))
    monkeypatch.setattr(readers, "_has_idx_dataset", lambda d: str(d) == str(tmp_path))  # "found" only there
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        readers.load_fashion_mnist_arrays(missing)
    assert readers._find_idx_dataset(readers._search_dirs(None, "fashion-mnist", True), "x", "") == tmp_path
    assert main(["fit", "ocsvm", "--data", "fashion-mnist", "--data-dir", str(missing), "--out", str(tmp_path / "r")]) == 2
