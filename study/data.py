"""Sequence classification data sets for the main job (no downloads at run time).

Every loader returns a :class:`SequenceData`: float32 inputs ``(N, T, F)``, int64 labels
``(N,)`` in ``[0, n_classes)``, optional valid lengths ``(N,)`` (a sequence of length L uses
time steps ``0..L-1``; the rest is zero padding), for a train and a test split.

Sources (see docs/MAIN_JOB.md for the file schemas):

- ``"digits"``: scikit-learn's embedded 8x8 digits, read row by row (8 steps x 8 features),
  scaled to [0, 1]; a stratified split with a fixed seed.
- ``"mnist"``: row-by-row MNIST (28 steps x 28 features) from a path: an ``.npz`` with
  ``x_train, y_train, x_test, y_test`` or a folder with the four standard IDX files.
- a path to a user ``.npz`` or HDF5 file: ``X (N, T, F)``, ``y (N,)``, optional ``lengths``,
  optional ``X_test``/``y_test``/``lengths_test``.
- ``"japanese_vowels"``: the UCI JapaneseVowels speech features (CC BY 4.0), bundled with
  the package (``datasets/japanese_vowels.npz``; ``data_path`` may name another copy).

A file that does not match its schema raises :class:`DataError` naming the file and the
problem.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "DataError",
    "SequenceData",
    "BUILTIN",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "load_sequence_file",
    "load_japanese_vowels",
    "pad_ragged",
]

#: names that are not paths
BUILTIN = ("digits", "mnist", "japanese_vowels")

_MNIST_IDX = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


class DataError(ValueError):
    """A data set could not be loaded: the message names the source and the problem."""


@dataclass
class SequenceData:
    """A sequence classification data set with a train and a test split.

    Attributes:
        name: short name of the source ("digits", "mnist", a file name, ...).
        x_train, x_test: float32 arrays of shape (N, T, F).
        y_train, y_test: int64 labels of shape (N,) in [0, n_classes).
        lengths_train, lengths_test: int64 valid lengths (N,) in [1, T], or None (all T).
        n_classes: number of classes.
        source: where it came from (path or description), recorded in results.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    lengths_train: np.ndarray | None = None
    lengths_test: np.ndarray | None = None
    source: str = ""
    info: dict = field(default_factory=dict)

    @property
    def seq_len(self) -> int:
        """Number of time steps T."""
        return int(self.x_train.shape[1])

    @property
    def n_features(self) -> int:
        """Number of features per step F."""
        return int(self.x_train.shape[2])

    def describe(self) -> dict:
        """A JSON-ready summary for configs and result attributes."""
        return {
            "name": self.name,
            "source": self.source,
            "n_train": int(self.x_train.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            "seq_len": self.seq_len,
            "n_features": self.n_features,
            "n_classes": int(self.n_classes),
            "variable_length": self.lengths_train is not None or self.lengths_test is not None,
            **self.info,
        }

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> "SequenceData":
        """A random subset (fixed seed) of at most n_train / n_test examples of each split."""

        def pick(n_all: int, n: int | None, salt: int) -> np.ndarray | None:
            if n is None or n >= n_all:
                return None
            if n < 1:
                raise ValueError(f"subset sizes must be >= 1, got {n}")
            return np.sort(np.random.default_rng([seed, salt]).permutation(n_all)[:n])

        out = SequenceData(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        for split, n, salt in (("train", n_train, 1), ("test", n_test, 2)):
            idx = pick(getattr(self, f"x_{split}").shape[0], n, salt)
            if idx is None:
                continue
            for key in (f"x_{split}", f"y_{split}", f"lengths_{split}"):
                arr = getattr(out, key)
                if arr is not None:
                    setattr(out, key, arr[idx])
        return out


# --------------------------------------------------------------------------- helpers
_SPLIT_NAMES = {split: (f"{split} inputs", f"{split} labels", f"{split} lengths") for split in ("train", "test")}


def _check_split(src: str, x, y, lengths, names: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray | None]:
    """Validate one split; return (float32 x, int64 y, int64 lengths or None).

    ``names`` say what the messages call the inputs, labels and lengths (e.g. ``"array 'X'"``).
    """
    xn, yn, ln = names
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 3:
        raise DataError(f"{src}: {xn} must have shape (N, T, F), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(f"{src}: {xn} must be non-empty, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{src}: {xn} must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{src}: {xn} contain(s) NaN or Inf (or values beyond float32)")
    if y.ndim != 1:
        raise DataError(f"{src}: {yn} must have shape (N,), got shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"{src}: {yn} has {y.shape[0]} entries but {xn} has N={x.shape[0]}")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise DataError(f"{src}: {yn} must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64, copy=False)
    if y.min() < 0:
        raise DataError(f"{src}: {yn} must be >= 0, got minimum {int(y.min())}")
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (x.shape[0],):
            raise DataError(f"{src}: {ln} must have shape ({x.shape[0]},), got {lengths.shape}")
        if not np.issubdtype(lengths.dtype, np.integer):
            raise DataError(f"{src}: {ln} must be integers, got dtype {lengths.dtype}")
        lengths = lengths.astype(np.int64)
        if lengths.min() < 1 or lengths.max() > x.shape[1]:
            raise DataError(
                f"{src}: {ln} must lie in [1, T={x.shape[1]}], got range "
                f"[{int(lengths.min())}, {int(lengths.max())}]"
            )
    return x, y, lengths


def _few(values) -> str:
    values = sorted(int(v) for v in values)
    return ", ".join(map(str, values[:5])) + (f", ... ({len(values)} in all)" if len(values) > 5 else "")


def _check_classes(src: str, y_tr: np.ndarray, y_te: np.ndarray) -> int:
    """Number of classes K; the labels must be 0..K-1, each seen in training, at least two."""
    seen = np.unique(y_tr)
    if seen.size < 2:
        raise DataError(f"{src}: the training labels hold only one class ({int(seen[0])}); a classifier needs "
                        "at least 2 (every accuracy would be 1.0)")
    unseen = np.setdiff1d(np.unique(y_te), seen)
    if unseen.size:
        raise DataError(f"{src}: test label(s) {_few(unseen)} never occur in the training labels; the model could "
                        "not learn them (fix the split or the labels)")
    k = int(seen.max()) + 1
    if seen.size != k:
        missing = np.setdiff1d(np.arange(k), seen)
        raise DataError(f"{src}: labels must be the class indices 0..K-1 with every class present in training; the "
                        f"largest label is {k - 1} but {missing.size} class(es) below it never occur (e.g. "
                        f"{_few(missing)}); relabel the {seen.size} classes as 0..{seen.size - 1}")
    return k


def _finish(name, src, x_tr, y_tr, l_tr, x_te, y_te, l_te, info=None, names=None) -> SequenceData:
    names = names or _SPLIT_NAMES
    x_tr, y_tr, l_tr = _check_split(src, x_tr, y_tr, l_tr, names["train"])
    x_te, y_te, l_te = _check_split(src, x_te, y_te, l_te, names["test"])
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DataError(
            f"{src}: train and test inputs must share (T, F), got {x_tr.shape[1:]} and {x_te.shape[1:]}"
        )
    n_classes = _check_classes(src, y_tr, y_te)
    return SequenceData(name, x_tr, y_tr, x_te, y_te, n_classes, l_tr, l_te, src, dict(info or {}))


def _split(n: int, y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test indices with a fixed seed (plain random when a class is tiny)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    try:
        tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=stratify)
    except ValueError:  # too few examples per class for the test size: fall back to plain random
        tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed)
    return np.sort(tr), np.sort(te)


# --------------------------------------------------------------------------- digits
def load_digits(test_fraction: float = 0.25, seed: int = 0) -> SequenceData:
    """scikit-learn's embedded 8x8 digits read row by row: 8 steps x 8 features in [0, 1].

    Args:
        test_fraction: share of the 1797 images held out (stratified by class).
        seed: seed of the split.
    """
    from sklearn.datasets import load_digits as _sk

    d = _sk()
    x = (d.images / 16.0).astype(np.float32)  # (1797, 8, 8): row r is time step r
    y = d.target.astype(np.int64)
    tr, te = _split(len(y), y, test_fraction, seed)
    return _finish(
        "digits", "sklearn.datasets.load_digits", x[tr], y[tr], None, x[te], y[te], None,
        {"split_seed": int(seed), "test_fraction": float(test_fraction)},
    )


# --------------------------------------------------------------------------- MNIST
def _read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped): magic 0x0000 0x08 ndim, big-endian dims, uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: IDX header says shape {dims} ({int(np.prod(dims))} bytes), file has {body.size}")
    return body.reshape(dims)


def _find_idx(folder: Path, key: str) -> Path | None:
    for stem in _MNIST_IDX[key]:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def load_mnist(path: str | os.PathLike, n_train: int | None = None, n_test: int | None = None,
               seed: int = 0) -> SequenceData:
    """Row-by-row MNIST: 28 steps x 28 features in [0, 1].

    Args:
        path: an ``.npz`` with ``x_train (N, 28, 28), y_train (N,), x_test, y_test``; or a folder
            holding ``mnist.npz`` or the four IDX files (``train-images-idx3-ubyte``,
            ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
            optionally gzipped).
        n_train, n_test: keep a seeded random subset of at most this many examples.
        seed: seed of the subset.

    Raises:
        DataError: the path is missing or a file does not match the schema.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: MNIST path does not exist (give an mnist.npz or a folder with the IDX files)")
    arrays: dict[str, np.ndarray] = {}
    if p.is_dir():
        if (p / "mnist.npz").is_file():
            p = p / "mnist.npz"
        else:
            missing = [k for k in _MNIST_IDX if _find_idx(p, k) is None]
            if missing:
                raise DataError(
                    f"{p}: folder has neither mnist.npz nor the IDX files "
                    f"{', '.join(_MNIST_IDX[k][0] for k in missing)}"
                )
            for k in _MNIST_IDX:
                arrays[k] = _read_idx(_find_idx(p, k))
    if not arrays:
        arrays = _read_npz(p, required=("x_train", "y_train", "x_test", "y_test"))
    src = str(p)
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        if x.ndim == 2 and x.shape[1] == 784:
            x = x.reshape(-1, 28, 28)
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{src}: x_{split} must have shape (N, 28, 28), got {x.shape}")
        arrays[f"x_{split}"] = x
    scale = 255.0 if arrays["x_train"].dtype == np.uint8 or arrays["x_train"].max() > 1.0 else 1.0
    data = _finish(
        "mnist", src,
        arrays["x_train"].astype(np.float32) / scale, arrays["y_train"], None,
        arrays["x_test"].astype(np.float32) / scale, arrays["y_test"], None,
    )
    if data.n_classes > 10 or data.y_train.max() > 9:
        raise DataError(f"{src}: MNIST labels must lie in [0, 9], got maximum {data.n_classes - 1}")
    data.n_classes = 10
    return data.subset(n_train, n_test, seed)


# --------------------------------------------------------------------------- user files
def _read_npz(p: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    import zipfile

    if p.is_file() and not zipfile.is_zipfile(p):
        raise DataError(f"{p}: not a .npz file (an .npz is a zip archive of arrays, as written by numpy.savez); "
                        f"{'the file is empty' if p.stat().st_size == 0 else 'this file is not a zip archive'}")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{p}: cannot read as .npz: {exc}") from exc
    missing = [k for k in required if k not in arrays]
    if missing:
        raise DataError(f"{p}: missing array(s) {', '.join(missing)}; found {', '.join(sorted(arrays)) or 'none'}")
    return arrays


def _read_h5(p: Path) -> dict[str, np.ndarray]:
    import h5py

    try:
        with h5py.File(p, "r") as f:
            arrays = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
            if not ("X" in arrays and "y" in arrays):
                found = []
                f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset)
                             and name.rsplit("/", 1)[-1] in ("X", "y") and "/" in name else None)
                if found:
                    raise DataError(f"{p}: the arrays must be top-level datasets (f['X'], f['y']); found "
                                    f"{', '.join(sorted(found)[:4])} inside group(s): move them to the root or "
                                    "write the file with X and y at the top level")
            return arrays
    except OSError as exc:
        raise DataError(f"{p}: cannot read as HDF5: {exc}") from exc


def load_sequence_file(path: str | os.PathLike, test_fraction: float = 0.25, seed: int = 0) -> SequenceData:
    """A user's sequence set from ``.npz`` or HDF5 (``.h5``/``.hdf5``).

    Schema (top-level arrays/datasets):
        ``X`` (N, T, F) numbers; ``y`` (N,) integer labels >= 0;
        optional ``lengths`` (N,) integers in [1, T] (padding after the end is ignored);
        optional ``X_test``, ``y_test``, ``lengths_test``: a given test split. Without them
        a stratified ``test_fraction`` of the examples is held out with ``seed``.

    Raises:
        DataError: naming the file and the problem (missing key, bad shape or dtype, ...).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p}: data file does not exist")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        arrays = _read_npz(p)
    elif suffix in (".h5", ".hdf5", ".hdf"):
        arrays = _read_h5(p)
    else:
        raise DataError(f"{p}: unknown data file type {suffix or '(none)'}; expected .npz, .h5 or .hdf5")
    valid = {"X", "y", "lengths", "X_test", "y_test", "lengths_test"}
    for key in ("X", "y"):
        if key not in arrays:
            raise DataError(
                f"{p}: missing required array {key!r}; found {', '.join(sorted(arrays)) or 'none'} "
                f"(schema: {', '.join(sorted(valid))})"
            )
    unknown = sorted(set(arrays) - valid)
    if unknown:
        raise DataError(f"{p}: unknown array(s) {', '.join(unknown)}; valid names are {', '.join(sorted(valid))}")
    has_test = [k in arrays for k in ("X_test", "y_test")]
    if any(has_test) and not all(has_test):
        raise DataError(f"{p}: give both X_test and y_test or neither")
    if "lengths_test" in arrays and "X_test" not in arrays:
        raise DataError(f"{p}: lengths_test given without X_test")
    src = str(p)
    file_names = {"train": ("array 'X'", "array 'y'", "array 'lengths'"),
                  "test": ("array 'X_test'", "array 'y_test'", "array 'lengths_test'")}
    x, y, lengths = _check_split(src, arrays["X"], arrays["y"], arrays.get("lengths"), file_names["train"])
    if all(has_test):
        if ("lengths" in arrays) and ("lengths_test" not in arrays):
            raise DataError(f"{p}: lengths given for X but lengths_test missing for X_test")
        return _finish(p.stem, src, x, y, lengths, arrays["X_test"], arrays["y_test"], arrays.get("lengths_test"),
                       {"split": "file"}, names=file_names)
    tr, te = _split(len(y), y, test_fraction, seed)
    lt = None if lengths is None else lengths[tr]
    le = None if lengths is None else lengths[te]
    return _finish(p.stem, src, x[tr], y[tr], lt, x[te], y[te], le,
                   {"split": "random", "split_seed": int(seed), "test_fraction": float(test_fraction)})


# --------------------------------------------------------------------------- JapaneseVowels
def pad_ragged(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad a list of (T_i, F) arrays to (N, max T_i, F); return it and the lengths."""
    if not series:
        raise ValueError("pad_ragged needs at least one series")
    feats = {s.shape[1] for s in series}
    if len(feats) != 1:
        raise ValueError(f"all series must have the same number of features, got {sorted(feats)}")
    lengths = np.array([s.shape[0] for s in series], dtype=np.int64)
    out = np.zeros((len(series), int(lengths.max()), feats.pop()), dtype=np.float32)
    for i, s in enumerate(series):
        out[i, : s.shape[0]] = s
    return out, lengths


def _labels_to_int(y_tr, y_te) -> tuple[np.ndarray, np.ndarray, list[str]]:
    classes = sorted({str(v) for v in np.concatenate([np.asarray(y_tr), np.asarray(y_te)])}, key=lambda s: (len(s), s))
    index = {c: i for i, c in enumerate(classes)}
    return (np.array([index[str(v)] for v in y_tr], dtype=np.int64),
            np.array([index[str(v)] for v in y_te], dtype=np.int64), classes)


#: the bundled JapaneseVowels file and its SHA-256 (see datasets/README.md: source, licence, conversion)
JAPANESE_VOWELS = Path(__file__).parent / "datasets" / "japanese_vowels.npz"
_JAPANESE_VOWELS_SHA256 = "1dff95e305fe07f6b323ee73c90ec6f555dcf6c040ad39385ebf590b45348c2a"
JAPANESE_VOWELS_LICENCE = ("UCI Machine Learning Repository, Japanese Vowels (M. Kudo, J. Toyama, M. Shimbo, 1999), "
                           "CC BY 4.0, https://doi.org/10.24432/C5NS47")


def load_japanese_vowels(path: str | os.PathLike | None = None) -> SequenceData:
    """UCI JapaneseVowels: 9 speakers, 12 LPC cepstrum features, 7-29 frames; 270 train / 370 test.

    The data ship with xbarsim (``datasets/japanese_vowels.npz``, 0.44 MB, CC BY 4.0; see
    ``datasets/README.md`` for the source, the licence and how the file was made). Sequences
    are zero-padded to 29 steps with their lengths; labels are the speakers 1..9 as 0..8.

    Args:
        path: another file of the same layout (``x_train`` (sum of lengths, 12) float32,
            ``lengths_train``, ``y_train`` and the same for ``test``); None: the bundled one,
            whose SHA-256 is checked.

    Raises:
        DataError: the file is missing, damaged (checksum) or does not match the layout.
    """
    import hashlib

    p = JAPANESE_VOWELS if path is None else Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p}: JapaneseVowels file does not exist"
                        + (" (the package data is missing: reinstall xbarsim)" if path is None else ""))
    if path is None:
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        if digest != _JAPANESE_VOWELS_SHA256:
            raise DataError(f"{p}: checksum mismatch (sha256 {digest[:12]}..., expected "
                            f"{_JAPANESE_VOWELS_SHA256[:12]}...): the bundled data are damaged; reinstall xbarsim")
    arrays = _read_npz(p, required=tuple(f"{k}_{s}" for s in ("train", "test") for k in ("x", "lengths", "y")))
    series, labels = {}, {}
    for split in ("train", "test"):
        x, lengths = arrays[f"x_{split}"], np.asarray(arrays[f"lengths_{split}"], dtype=np.int64)
        if x.ndim != 2 or lengths.ndim != 1 or lengths.min(initial=1) < 1 or lengths.sum() != x.shape[0]:
            raise DataError(f"{p}: x_{split} must be (sum of lengths_{split}, F) with lengths >= 1, got x_{split} "
                            f"{x.shape} and lengths summing to {int(lengths.sum())}")
        series[split] = np.split(np.asarray(x, dtype=np.float32), np.cumsum(lengths)[:-1])
        labels[split] = arrays[f"y_{split}"]
    xa, la = pad_ragged(series["train"] + series["test"])
    n = len(series["train"])
    ya, yb, classes = _labels_to_int(labels["train"], labels["test"])
    return _finish("japanese_vowels", str(p) if path is not None else "UCI JapaneseVowels (bundled with xbarsim)",
                   xa[:n], ya, la[:n], xa[n:], yb, la[n:], {"classes": classes, "licence": JAPANESE_VOWELS_LICENCE})


# --------------------------------------------------------------------------- dispatcher
def load_dataset(name: str, data_path: str | os.PathLike | None = None, *, seed: int = 0,
                 test_fraction: float = 0.25, n_train: int | None = None, n_test: int | None = None) -> SequenceData:
    """Load a data set by name or path.

    Args:
        name: "digits", "mnist", "japanese_vowels", or the path of a ``.npz``/``.h5`` sequence file.
        data_path: where the MNIST files are (an ``.npz`` or a folder); required for "mnist". For
            "japanese_vowels": another copy of the bundled file (None: the bundled one).
        seed: seed of random splits and subsets.
        test_fraction: held-out share where the source has no test split.
        n_train, n_test: keep a seeded random subset of at most this many examples.

    Raises:
        DataError: unknown name, missing path, or a file that does not match its schema.
    """
    key = str(name).strip()
    low = key.lower().replace("-", "_")
    if low == "digits":
        data = load_digits(test_fraction, seed)
    elif low == "mnist":
        if data_path is None:
            raise DataError("mnist: give the MNIST location with --data-path (an mnist.npz or a folder of IDX files)")
        return load_mnist(data_path, n_train, n_test, seed)
    elif low in ("japanese_vowels", "japanesevowels"):
        data = load_japanese_vowels(data_path)
    else:
        p = Path(key).expanduser()
        if p.suffix.lower() in (".npz", ".h5", ".hdf5", ".hdf") or p.exists():
            data = load_sequence_file(p, test_fraction, seed)
        else:
            raise DataError(
                f"{key}: unknown data set; expected one of {', '.join(BUILTIN)} or the path of a .npz/.h5 file"
            )
    return data.subset(n_train, n_test, seed)
