"""xbarsim's standard-normal generator: counter-based splitmix64 bits and the Box-Muller
transform in float32, written so that LLVM vectorises it (numba has no vector math
library here, so log, sin and cos are polynomials of our own).

The stream (``normal_generator="boxmuller"``, the default since 2026-11-30):

* A fill of ``n`` normals from key ``k`` takes the 64-bit words
  ``w_i = splitmix64_mix(k + (i + 1) * GAMMA)`` for pairs ``i = 0 .. ceil(n/2) - 1`` (the
  outputs of a SplitMix64 generator seeded with ``k``, computed independently so the loop
  vectorises).
* The high 31 bits of ``w_i`` (without the top bit) give ``u = (r + 1/2) 2^-31`` in
  (0, 1); the low 32 bits give the angle: 2 bits pick the quadrant, 30 bits the angle in it.
* ``R = sqrt(-2 ln u)``; ``out[i] = R cos(phi_i)`` for ``i < p = ceil(n/2)`` and
  ``out[p + i] = R sin(phi_i)`` for ``i < n - p`` (the first half holds the cosines, the
  second the sines; an odd ``n`` drops the last pair's sine).
* Exactly N(0, 1) up to float32 rounding: the polynomials are within 2 ulp of log, sin and
  cos on their ranges (tested); ``u >= 2^-32`` bounds ``|z|`` by ``sqrt(64 ln 2) = 6.66``,
  which cuts a tail of probability 2.7e-11 (torch's float32 normals stop at 5.8).
* A fill depends on ``(k, n)`` only: same key, same numbers, on any machine (IEEE float32
  operations only, no fused multiply-add, no math library).

Callers that fill in pieces (one per row or per step) derive one key per piece with
:func:`derive_key` from the call's seed, so a piece's numbers do not depend on how the
others were drawn.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic
from llvmlite import ir

# error_model "numpy": no ZeroDivisionError branch inside loops (it blocks vectorisation)
_JIT = dict(cache=True, nogil=True, fastmath=False, boundscheck=False, error_model="numpy")

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_LN2 = np.float32(0.6931471805599453)
_HALF_PI = np.float32(math.pi / 2)
_TWO_M31 = np.float32(2.0 ** -31)
_TWO_M30 = np.float32(2.0 ** -30)


@intrinsic
def _f32_from_bits(typingctx, x):
    """Reinterpret an int32 as float32 (an LLVM bitcast; vectorises)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return sig, codegen


@intrinsic
def _bits_from_f32(typingctx, x):
    """Reinterpret a float32 as int32 (an LLVM bitcast; vectorises)."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return sig, codegen


@njit(inline="always", **_JIT)
def _mix(x):
    """SplitMix64's output function (Steele, Lea and Flood 2014)."""
    z = (x ^ (x >> np.uint64(30))) * _C1
    z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


@njit(**_JIT)
def derive_key(seed, index):
    """The key of piece ``index`` of the fills seeded with ``seed`` (both uint64-convertible)."""
    return _mix(np.uint64(seed) ^ _mix(np.uint64(index) + GAMMA))


@njit(inline="always", **_JIT)
def _log(u):
    """ln(u) for a positive normal float32 ``u`` (Cephes logf's polynomial; ~1 ulp)."""
    b = _bits_from_f32(u)
    e = (b >> 23) - 127
    m = _f32_from_bits((b & 0x007FFFFF) | 0x3F800000)
    big = m > np.float32(1.41421356)
    m = np.float32(0.5) * m if big else m
    ef = np.float32(e) + (np.float32(1.0) if big else np.float32(0.0))
    x = m - np.float32(1.0)
    z = x * x
    y = np.float32(7.0376836292E-2)
    y = y * x - np.float32(1.1514610310E-1)
    y = y * x + np.float32(1.1676998740E-1)
    y = y * x - np.float32(1.2420140846E-1)
    y = y * x + np.float32(1.4249322787E-1)
    y = y * x - np.float32(1.6668057665E-1)
    y = y * x + np.float32(2.0000714765E-1)
    y = y * x - np.float32(2.4999993993E-1)
    y = y * x + np.float32(3.3333331174E-1)
    y = y * x * z
    y = y - np.float32(0.5) * z
    return ef * _LN2 + (x + y)


@njit(inline="always", **_JIT)
def _sincos(t):
    """(sin t, cos t) for t in [0, pi/2] (Taylor to degree 13 / 14: error < 1e-9)."""
    t2 = t * t
    sn = np.float32(1.0 / 6227020800.0)
    sn = sn * t2 - np.float32(1.0 / 39916800.0)
    sn = sn * t2 + np.float32(1.0 / 362880.0)
    sn = sn * t2 - np.float32(1.0 / 5040.0)
    sn = sn * t2 + np.float32(1.0 / 120.0)
    sn = sn * t2 - np.float32(1.0 / 6.0)
    sn = (sn * t2 + np.float32(1.0)) * t
    cs = np.float32(-1.0 / 87178291200.0)
    cs = cs * t2 + np.float32(1.0 / 479001600.0)
    cs = cs * t2 - np.float32(1.0 / 3628800.0)
    cs = cs * t2 + np.float32(1.0 / 40320.0)
    cs = cs * t2 - np.float32(1.0 / 720.0)
    cs = cs * t2 + np.float32(1.0 / 24.0)
    cs = cs * t2 - np.float32(0.5)
    cs = cs * t2 + np.float32(1.0)
    return sn, cs


@njit(inline="always", **_JIT)
def _bits(hi, lo, key):
    """The 64-bit words of pairs 0 .. len(hi)-1 from ``key``, split into int32 halves."""
    for i in range(hi.shape[0]):
        r = _mix(key + np.uint64(i + 1) * GAMMA)
        hi[i] = np.int32(np.uint32(r >> np.uint64(32)))
        lo[i] = np.int32(np.uint32(r & np.uint64(0xFFFFFFFF)))


@njit(inline="always", **_JIT)
def _box_muller(o0, o1, hi, lo):
    """``o0[i], o1[i] = R cos(phi), R sin(phi)`` from the words ``hi[i], lo[i]``."""
    for i in range(hi.shape[0]):
        r2 = lo[i]
        u = (np.float32(hi[i] & np.int32(0x7FFFFFFF)) + np.float32(0.5)) * _TWO_M31
        rad = np.sqrt(np.float32(-2.0) * _log(u))
        f = (np.float32(r2 & np.int32(0x3FFFFFFF)) + np.float32(0.5)) * _TWO_M30
        sn, cs = _sincos(f * _HALF_PI)
        q = (r2 >> 30) & 3
        odd = (q & 1) == 1
        x = sn if odd else cs
        y = cs if odd else sn
        sa = np.float32(-1.0) if (q == 1) | (q == 2) else np.float32(1.0)
        sb = np.float32(-1.0) if q >= 2 else np.float32(1.0)
        o0[i] = rad * (x * sa)
        o1[i] = rad * (y * sb)


#: pairs per block (the int32 words of a block stay in L1)
_BLOCK = 1024


@njit(**_JIT)
def fill_normals(out, key):
    """Fill the 1-D float32 array ``out`` with the standard normals of key ``key`` (uint64)."""
    n = out.shape[0]
    n2 = n // 2           # sines
    npairs = n - n2       # pairs = cosines
    hi = np.empty(min(_BLOCK, max(npairs, 1)), np.int32)
    lo = np.empty_like(hi)
    last = np.empty(1, np.float32)
    k = np.uint64(key)
    for s in range(0, npairs, _BLOCK):
        m = min(_BLOCK, npairs - s)
        h = hi[:m]
        w = lo[:m]
        _bits(h, w, k + np.uint64(s) * GAMMA)
        if s + m <= n2:
            _box_muller(out[s:s + m], out[npairs + s:npairs + s + m], h, w)
        else:  # odd n: the last pair's sine is dropped
            m1 = m - 1
            _box_muller(out[s:s + m1], out[npairs + s:npairs + s + m1], h[:m1], w[:m1])
            _box_muller(out[s + m1:s + m], last, h[m1:], w[m1:])


def fill_standard_normal(out: np.ndarray, key: int) -> None:
    """Fill ``out`` (any shape, C-contiguous, float32 or float64) with the standard normals
    of ``key`` (an int in [0, 2^64)): the ``"boxmuller"`` generator, exported as
    ``crossbar.fill_standard_normal``. A float64 ``out`` gets the float32 normals, widened.

    Raises:
        ValueError: ``out`` is not a C-contiguous, writeable float32/float64 array, or
            ``key`` is not an int in [0, 2^64).
    """
    if not isinstance(out, np.ndarray) or out.dtype not in (np.float32, np.float64):
        raise ValueError(f"out must be a float32 or float64 numpy array, got "
                         f"{type(out).__name__} {getattr(out, 'dtype', '')}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"out must be a C-contiguous, writeable array to be filled in place, got "
                         f"shape {out.shape}, strides {out.strides}, writeable={out.flags.writeable}")
    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)) or not 0 <= int(key) < 1 << 64:
        raise ValueError(f"key must be an int in [0, 2**64), got {key!r}")
    flat = out.reshape(-1)
    if out.dtype == np.float32:
        fill_normals(flat, np.uint64(int(key)))
    else:
        tmp = np.empty(flat.shape[0], np.float32)
        fill_normals(tmp, np.uint64(int(key)))
        flat[:] = tmp
