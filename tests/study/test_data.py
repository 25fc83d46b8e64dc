"""Data loaders: built-in digits, MNIST (npz and IDX), user npz/HDF5 files, and clear errors."""
from __future__ import annotations

import gzip
from pathlib import Path

import h5py
import numpy as np
import pytest

from study.data import DataError, load_dataset, load_mnist, load_sequence_file, pad_ragged

MNIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist" / "mnist.npz"


def test_digits_row_by_row():
    d = load_dataset("digits", seed=0)
    assert (d.seq_len, d.n_features, d.n_classes) == (8, 8, 10)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.x_train.shape[0] + d.x_test.shape[0] == 1797
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    # row r of image i is time step r: compare with sklearn's own images
    from sklearn.datasets import load_digits

    images = load_digits().images / 16.0
    assert any(np.array_equal(d.x_train[0], im) for im in images)
    # same seed, same split; another seed, another split; stratified: every class in test
    again = load_dataset("digits", seed=0)
    assert np.array_equal(d.y_test, again.y_test) and np.array_equal(d.x_test, again.x_test)
    assert not np.array_equal(load_dataset("digits", seed=1).x_test, d.x_test)
    assert set(np.unique(d.y_test)) == set(range(10))


def test_subset_is_seeded_and_bounded():
    d = load_dataset("digits", n_train=100, n_test=50, seed=3)
    assert d.x_train.shape == (100, 8, 8) and d.x_test.shape == (50, 8, 8)
    e = load_dataset("digits", n_train=100, n_test=50, seed=3)
    assert np.array_equal(d.x_train, e.x_train)


@pytest.mark.skipif(not MNIST.is_file(), reason="shared MNIST not present")
def test_mnist_npz_from_file_and_folder():
    d = load_mnist(MNIST, n_train=200, n_test=100, seed=0)
    assert d.x_train.shape == (200, 28, 28) and d.x_test.shape == (100, 28, 28)
    assert d.n_classes == 10 and 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    e = load_dataset("mnist", data_path=MNIST.parent, n_train=200, n_test=100, seed=0)
    assert np.array_equal(d.x_test, e.x_test)


def _write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_mnist_idx_folder(tmp_path, rng):
    xs = {s: rng.integers(0, 256, (n, 28, 28)).astype(np.uint8) for s, n in (("train", 30), ("t10k", 12))}
    ys = {s: rng.integers(0, 10, xs[s].shape[0]).astype(np.uint8) for s in xs}
    ys["train"] = (np.arange(30) % 10).astype(np.uint8)  # every class in training (unseen test labels are refused)
    _write_idx(tmp_path / "train-images-idx3-ubyte", xs["train"])
    _write_idx(tmp_path / "train-labels-idx1-ubyte", ys["train"])
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", xs["t10k"], gz=True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", ys["t10k"])
    d = load_dataset("mnist", data_path=tmp_path)
    assert np.allclose(d.x_train * 255.0, xs["train"]) and np.array_equal(d.y_test, ys["t10k"])
    # a truncated IDX file names the file and the size mismatch
    raw = (tmp_path / "train-labels-idx1-ubyte").read_bytes()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(raw[:-3])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: IDX header says shape \(30,\)"):
        load_dataset("mnist", data_path=tmp_path)


def test_mnist_errors(tmp_path):
    with pytest.raises(DataError, match="--data-path"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nope.npz")
    with pytest.raises(DataError, match="neither mnist.npz nor the IDX files"):
        load_mnist(tmp_path)
    bad = tmp_path / "m.npz"
    np.savez(bad, x_train=np.zeros((2, 28, 28)), y_train=np.zeros(2, int), x_test=np.zeros((2, 28, 28)))
    with pytest.raises(DataError, match=r"m\.npz: missing array\(s\) y_test"):
        load_mnist(bad)
    np.savez(bad, x_train=np.zeros((2, 20, 28)), y_train=np.zeros(2, int), x_test=np.zeros((2, 28, 28)),
             y_test=np.zeros(2, int))
    with pytest.raises(DataError, match=r"x_train must have shape \(N, 28, 28\), got \(2, 20, 28\)"):
        load_mnist(bad)


def _user_arrays(rng, n=40, t=6, f=3, variable=False):
    x = rng.normal(size=(n, t, f)).astype(np.float32)
    y = np.arange(n) % 4
    out = {"X": x, "y": y}
    if variable:
        out["lengths"] = rng.integers(2, t + 1, n)
    return out


@pytest.mark.parametrize("fmt", ["npz", "h5"])
def test_user_file_with_and_without_test_split(tmp_path, rng, fmt):
    arrays = _user_arrays(rng, variable=True)
    path = tmp_path / f"seqs.{fmt}"

    def write(d):
        if fmt == "npz":
            np.savez(path, **d)
        else:
            with h5py.File(path, "w") as f:
                for k, v in d.items():
                    f[k] = v

    write(arrays)
    d = load_dataset(str(path), test_fraction=0.25, seed=0)
    assert d.name == "seqs" and (d.seq_len, d.n_features, d.n_classes) == (6, 3, 4)
    assert d.x_train.shape[0] == 30 and d.x_test.shape[0] == 10
    assert d.lengths_train is not None and d.lengths_train.shape == (30,)
    # with a given test split the file's split is used as is
    arrays.update(X_test=arrays["X"][:5], y_test=arrays["y"][:5], lengths_test=arrays["lengths"][:5])
    write(arrays)
    d = load_sequence_file(path)
    assert d.x_train.shape[0] == 40 and np.array_equal(d.x_test, arrays["X"][:5])
    assert d.info["split"] == "file"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("y"), r"missing required array 'y'"),
        (lambda a: a.update(X=a["X"][:, :, 0]), r"array 'X' must have shape \(N, T, F\), got shape \(40, 6\)"),
        (lambda a: a.update(y=a["y"][:-1]), r"array 'y' has 39 entries but array 'X' has N=40"),
        (lambda a: a.update(y=a["y"] - 1), r"array 'y' must be >= 0, got minimum -1"),
        (lambda a: a.update(y=a["y"] + 0.5), r"array 'y' must be integers, got dtype float64"),
        (lambda a: a.update(lengths=np.full(40, 7)), r"array 'lengths' must lie in \[1, T=6\], got range \[7, 7\]"),
        (lambda a: a.update(extra=np.zeros(3)), r"unknown array\(s\) extra; valid names are"),
        (lambda a: a.update(X_test=a["X"][:3]), r"give both X_test and y_test or neither"),
        (lambda a: a.update(X_test=a["X"][:3, :, :2], y_test=a["y"][:3]), r"train and test inputs must share"),
        (lambda a: a["X"].__setitem__((0, 0, 0), np.nan), r"array 'X' contain\(s\) NaN or Inf"),
    ],
)
def test_malformed_user_files_name_the_file_and_problem(tmp_path, rng, change, message):
    arrays = _user_arrays(rng)
    change(arrays)
    path = tmp_path / "broken.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(str(path))
    assert str(path) in str(info.value)


def test_unreadable_and_unknown_sources(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=r"junk\.npz: not a \.npz file \(an \.npz is a zip archive"):
        load_dataset(str(junk))
    junk_h5 = tmp_path / "junk.h5"
    junk_h5.write_bytes(b"not hdf5")
    with pytest.raises(DataError, match=r"junk\.h5: cannot read as HDF5"):
        load_dataset(str(junk_h5))
    with pytest.raises(DataError, match=r"missing\.npz: data file does not exist"):
        load_dataset(str(tmp_path / "missing.npz"))
    with pytest.raises(DataError, match="unknown data set; expected one of digits, mnist, japanese_vowels"):
        load_dataset("cifar")


def test_japanese_vowels_is_bundled_with_its_licence():
    d = load_dataset("japanese_vowels")
    assert (d.x_train.shape, d.x_test.shape) == ((270, 29, 12), (370, 29, 12))
    assert d.n_classes == 9 and np.bincount(d.y_train).tolist() == [30] * 9
    assert (d.lengths_train.min(), d.lengths_test.max()) == (7, 29)
    assert np.all(d.x_train[np.arange(d.seq_len) >= d.lengths_train[:, None]] == 0)   # zero padding
    assert d.x_train[0, 0, 0] == np.float32(1.860936)   # first value of the UCI training file
    assert "CC BY 4.0" in d.describe()["licence"]


def test_japanese_vowels_damaged_copy_is_refused(tmp_path):
    from study.data import JAPANESE_VOWELS

    raw = bytearray(JAPANESE_VOWELS.read_bytes())
    copy = tmp_path / "jv.npz"
    copy.write_bytes(bytes(raw))
    assert load_dataset("japanese_vowels", str(copy)).n_classes == 9   # another copy by path
    copy.write_bytes(bytes(raw[:1000]))
    with pytest.raises(DataError, match=r"jv\.npz: (cannot read as \.npz|not a \.npz)"):
        load_dataset("japanese_vowels", str(copy))


@pytest.mark.parametrize("labels, message", [
    (lambda y: np.zeros_like(y), r"the training labels hold only one class \(0\); a classifier needs at least 2"),
    (lambda y: np.where(y == 3, 1_000_000, y), r"labels must be the class indices 0\.\.K-1 .*the largest label is 1000000 but 999997 class\(es\) below it never "
                                                r"occur \(e\.g\. 3, 4, 5, 6, 7, \.\.\. \(999997 in all\)\); relabel the 4 "
                                                r"classes as 0\.\.3"),
])
def test_degenerate_labels_are_refused(tmp_path, rng, labels, message):
    arrays = _user_arrays(rng)
    arrays["y"] = labels(arrays["y"])
    path = tmp_path / "lab.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=r"lab\.npz: " + message):
        load_dataset(str(path))


def test_test_label_unseen_in_training_is_refused(tmp_path, rng):
    arrays = _user_arrays(rng)
    arrays.update(X_test=arrays["X"][:3], y_test=np.array([0, 1, 7]))
    path = tmp_path / "split.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=r"split\.npz: test label\(s\) 7 never occur in the training labels"):
        load_dataset(str(path))


def test_arrays_inside_an_hdf5_group_get_a_hint(tmp_path, rng):
    arrays = _user_arrays(rng)
    path = tmp_path / "grouped.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("data")
        g["X"], g["y"] = arrays["X"], arrays["y"]
    with pytest.raises(DataError, match=r"grouped\.h5: the arrays must be top-level datasets .*found data/X, data/y "
                                        r"inside group"):
        load_dataset(str(path))


def test_ragged_series_are_padded_with_lengths():
    a = np.arange(6, dtype=np.float32).reshape(3, 2)  # (T=3, F=2)
    b = np.arange(10, dtype=np.float32).reshape(5, 2)
    x, lengths = pad_ragged([a, b])
    assert x.shape == (2, 5, 2) and list(lengths) == [3, 5]
    assert np.array_equal(x[0, :3], a) and np.all(x[0, 3:] == 0)
    with pytest.raises(ValueError, match="same number of features"):
        pad_ragged([np.zeros((3, 2)), np.zeros((3, 4))])
