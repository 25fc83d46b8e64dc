"""The paper's output noise with the ``"boxmuller"`` generator, one time step per call, fused:
``y <- ((y + sqrt(var) z) + add) + bias`` in place, with ``var`` from ``y`` itself.

For the fused recurrences of :mod:`models` (and the step-by-step reads, which call the same
kernel so that both give the same bits). Per time step ``t`` of a read sequence seeded with
``key``:

* ``var = per_mean_square * mean(y_t**2) + constant + extra_var`` (the mean over the batch
  and outputs of that step, accumulated in float64; ``extra_var``: e.g. the input
  projection's variance when its noise is drawn together with this read's);
* ``z_t`` = the standard normals of ``fill_standard_normal`` (:mod:`crossbar._normals`) of
  the key ``derive_key(key, t)``, as many as ``y_t`` has elements, in its C order;
* ``y_t <- ((y_t + s z_t) + add_t) + bias`` with ``s = sqrt(var)`` rounded to ``y``'s dtype,
  every operation rounded to ``y``'s dtype (float64 ``y``: the float32 normals widened);
  then the columns ``[dbl_lo, dbl_hi)`` are doubled (``v + v``, exact), as the LSTM's
  ``tanh(x) = 2 sigmoid(2 x) - 1`` wants them.

The normals of a step are generated into an L2-sized scratch and added at once, so no
buffer of all steps' normals is written and read back. numpy arrays in and out; no torch.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._normals import derive_key, fill_normals, kernel_key

__all__ = ["fill_standard_normal_steps", "StepNoise", "lstm_cell_update", "lstm_hidden"]

_JIT = dict(cache=True, nogil=True, fastmath=False, boundscheck=False, error_model="numpy")


@njit(cache=True, nogil=True, boundscheck=False, error_model="numpy", fastmath={"reassoc"})
def _sum_squares(y):
    """sum(y**2) over a 2-D C-contiguous array, in float64 (reassociated so it vectorises:
    the same bits on one machine, not across vector widths)."""
    acc = 0.0
    for i in range(y.shape[0]):
        row = y[i]
        for j in range(row.shape[0]):
            v = np.float64(row[j])
            acc += v * v
    return acc


@njit(**_JIT)
def _fill_steps(out2, key):
    """``out2[s]`` (float32, 2-D C-contiguous) = the normals of ``derive_key(key, s)``."""
    for s in range(out2.shape[0]):
        fill_normals(out2[s], derive_key(key, s))


@njit(**_JIT)
def _noise_step(ys, t, step, key, add, has_add, bias, has_bias, k_ms, const, extra, lo, hi, zs, sc):
    """Step ``t`` of ``ys`` (S, B, N), its normals from ``derive_key(key, step)``; returns var."""
    y = ys[t]
    b, n = y.shape
    var = k_ms * (_sum_squares(y) / (b * n)) + const + extra if k_ms != 0.0 else const + extra
    sc[0] = math.sqrt(var)        # rounded to y's dtype
    s = sc[0]
    z = zs[:b * n]
    fill_normals(z, derive_key(key, step))
    for i in range(b):
        row = y[i]
        zr = z[i * n:(i + 1) * n]
        if has_add and has_bias:
            ar = add[t, i]
            for j in range(n):
                row[j] = ((row[j] + s * zr[j]) + ar[j]) + bias[j]
        elif has_add:
            ar = add[t, i]
            for j in range(n):
                row[j] = (row[j] + s * zr[j]) + ar[j]
        elif has_bias:
            for j in range(n):
                row[j] = (row[j] + s * zr[j]) + bias[j]
        else:
            for j in range(n):
                row[j] = row[j] + s * zr[j]
        for j in range(lo, hi):
            row[j] = row[j] + row[j]
    return var


def _check(name: str, a, ndim: int, dtype=None, writeable: bool = False) -> None:
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64) or a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D float32/float64 numpy array, got "
                         f"{type(a).__name__} {getattr(a, 'dtype', '')} {getattr(a, 'shape', '')}")
    if dtype is not None and a.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {a.dtype}")
    if not a.flags.c_contiguous or (writeable and not a.flags.writeable):
        raise ValueError(f"{name} must be C-contiguous{' and writeable' if writeable else ''}, got shape "
                         f"{a.shape}, strides {a.strides}")


def _check_key(key) -> np.uint64:
    """``key`` checked (:func:`crossbar._normals.kernel_key`), as an np.uint64 (one kernel type)."""
    return np.uint64(kernel_key(key))


def fill_standard_normal_steps(out: np.ndarray, key: int) -> None:
    """Fill ``out`` (S, ...) so that ``out[s]`` holds the standard normals of
    ``fill_standard_normal(out[s], derive_key(key, s))`` (one key per leading index, derived
    from ``key``; a float64 ``out`` gets the float32 normals widened).

    Raises:
        ValueError: ``out`` is not a C-contiguous, writeable float32/float64 array with at least
            one dimension, or ``key`` is not an int in [0, 2^64).
    """
    if not isinstance(out, np.ndarray) or out.ndim < 1:
        raise ValueError(f"out must be a numpy array with a leading step axis, got {type(out).__name__} "
                         f"{getattr(out, 'shape', '')}")
    _check("out", out, out.ndim, writeable=True)
    k = _check_key(key)
    flat = out.reshape(out.shape[0], -1)
    if out.dtype == np.float32:
        _fill_steps(flat, k)
    else:
        tmp = np.empty(flat.shape, np.float32)
        _fill_steps(tmp, k)
        flat[:] = tmp


class StepNoise:
    """The output noise of a sequence of reads ``ys`` (S, B, N), added one step at a time in
    place (module docstring): ``noise(t, step, extra_var)`` turns ``ys[t]`` into
    ``((ys[t] + sqrt(var) z) + add[t]) + bias`` with the normals of ``derive_key(key, step)``
    and doubles the columns ``double_cols``.

    Args:
        ys: (S, B, N) C-contiguous writeable float32/float64 array, the clean reads.
        key: int in [0, 2^64), the key of this read sequence.
        per_mean_square: factor of mean(y_t**2) in the variance (relative, snr_db), >= 0.
        constant: constant variance (absolute convention), output units squared, >= 0.
        add: (S, B, N) array of ``ys``'s dtype added after the noise (e.g. the input
            projection), or None.
        bias: (N,) array of ``ys``'s dtype added last, or None.
        double_cols: (lo, hi): columns doubled at the end (``0 <= lo <= hi <= N``), or None.

    Raises:
        ValueError: wrong types, shapes, dtypes or layouts (expected vs got).

    Example:
        >>> y = np.zeros((2, 3, 4), np.float32)
        >>> StepNoise(y, key=7, per_mean_square=0.0, constant=1.0)(0, 0)   # var of step 0
        1.0
    """

    __slots__ = ("ys", "key", "k_ms", "const", "add", "has_add", "bias", "has_bias", "lo", "hi", "zs", "sc")

    def __init__(self, ys: np.ndarray, key: int, per_mean_square: float, constant: float,
                 add: np.ndarray | None = None, bias: np.ndarray | None = None,
                 double_cols: tuple[int, int] | None = None):
        _check("ys", ys, 3, writeable=True)
        self.ys = ys
        self.key = _check_key(key)
        k, c = float(per_mean_square), float(constant)
        if not (math.isfinite(k) and k >= 0 and math.isfinite(c) and c >= 0):
            raise ValueError(f"per_mean_square and constant must be finite and >= 0, got {per_mean_square!r}, "
                             f"{constant!r}")
        self.k_ms, self.const = k, c
        s, b, n = ys.shape
        if add is not None:
            _check("add", add, 3, ys.dtype)
            if add.shape != ys.shape:
                raise ValueError(f"add must have the shape of ys {ys.shape}, got {add.shape}")
        if bias is not None:
            _check("bias", bias, 1, ys.dtype)
            if bias.shape != (n,):
                raise ValueError(f"bias must have shape ({n},), got {bias.shape}")
        lo, hi = (0, 0) if double_cols is None else (int(double_cols[0]), int(double_cols[1]))
        if not 0 <= lo <= hi <= n:
            raise ValueError(f"double_cols must satisfy 0 <= lo <= hi <= {n}, got {double_cols!r}")
        self.lo, self.hi = lo, hi
        self.has_add, self.has_bias = add is not None, bias is not None
        self.add = add if add is not None else np.zeros((1, 1, 1), ys.dtype)
        self.bias = bias if bias is not None else np.zeros(1, ys.dtype)
        self.zs = np.empty(max(b * n, 1), np.float32)
        self.sc = np.empty(1, ys.dtype)

    def __call__(self, t: int, step: int, extra_var: float = 0.0) -> float:
        """Add the noise of time step ``step`` to ``ys[t]`` (and ``add[t]``, ``bias``); returns
        the variance used. ``extra_var`` (>= 0) is added to the variance."""
        return _noise_step(self.ys, t, step, self.key, self.add, self.has_add, self.bias, self.has_bias,
                           self.k_ms, self.const, extra_var, self.lo, self.hi, self.zs, self.sc)


_ONES = {"f": np.ones(1, np.float32), "d": np.ones(1, np.float64)}


@njit(**_JIT)
def _lstm_cell(acts, cs, tcs, c_prev, t, one_arr):
    one = one_arr[0]   # 1 in the arrays' dtype (a float literal would widen float32 to float64)
    b = acts.shape[1]
    hs = acts.shape[2] // 4
    for i in range(b):
        a = acts[t, i]
        ai, af, ag = a[:hs], a[hs:2 * hs], a[2 * hs:3 * hs]   # separate loops over slices vectorise
        ci = cs[t, i]
        ti = tcs[t, i]
        cp = c_prev[i]
        for j in range(hs):
            ag[j] = (ag[j] + ag[j]) - one
        for j in range(hs):
            c = af[j] * cp[j] + ai[j] * ag[j]
            ci[j] = c
            ti[j] = c + c


@njit(**_JIT)
def _lstm_hidden(acts, tcs, out, t, one_arr):
    one = one_arr[0]
    b = acts.shape[1]
    hs = acts.shape[2] // 4
    for i in range(b):
        a = acts[t, i]
        ti = tcs[t, i]
        oi = out[t, i]
        for j in range(hs):
            s = ti[j]
            tc = (s + s) - one
            ti[j] = tc
            oi[j] = a[3 * hs + j] * tc


def lstm_cell_update(acts: np.ndarray, cs: np.ndarray, tcs: np.ndarray, c_prev: np.ndarray, t: int) -> None:
    """LSTM step ``t``, between the two sigmoids of ``tanh(x) = 2 sigmoid(2 x) - 1``, in place.

    With ``acts[t]`` = (sigmoid(i), sigmoid(f), sigmoid(2 g_pre), sigmoid(o)) (B, 4H):
    ``g = 2 s - 1`` into the g block, ``c_t = f c_prev + i g`` into ``cs[t]`` and ``2 c_t`` into
    ``tcs[t]`` (for the sigmoid of :func:`lstm_hidden`). All arrays C-contiguous, one dtype:
    acts (T, B, 4H), cs and tcs (T, B, H), c_prev (B, H). Kernels assume valid input (the
    caller, :mod:`models.fused`, owns the buffers)."""
    _lstm_cell(acts, cs, tcs, c_prev, t, _ONES[acts.dtype.char])


def lstm_hidden(acts: np.ndarray, tcs: np.ndarray, out: np.ndarray, t: int) -> None:
    """LSTM step ``t`` after the sigmoid of ``tcs[t] = sigmoid(2 c_t)``, in place:
    ``tanh(c_t) = 2 s - 1`` into ``tcs[t]`` and ``h_t = o tanh(c_t)`` into ``out[t]`` (shapes as
    :func:`lstm_cell_update`; out (T, B, H))."""
    _lstm_hidden(acts, tcs, out, t, _ONES[acts.dtype.char])
