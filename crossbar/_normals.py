"""xbarsim's standard-normal generator: counter-based SplitMix64 words and the Box-Muller
transform in float32, written so that LLVM vectorises the loop (numba has no vector math
library here, so log, sin and cos are polynomials of our own).

The stream (``normal_generator="boxmuller"``, the default since 2026-11-30; definition
frozen 2026-11-30 08:10 UTC). Every operation below is one IEEE float32 operation
(round to nearest even) in the order written, unless it says integer:

* Words. A fill of ``n`` normals from key ``k`` (uint64) uses the 64-bit words
  ``w_i = mix(k + (i + 1) GAMMA)`` (integer, mod 2^64) for the pairs
  ``i = 0 .. p - 1``, ``p = ceil(n/2)``: the outputs of SplitMix64 (Steele, Lea and Flood
  2014) started at state ``k``; ``GAMMA = 0x9E3779B97F4A7C15``; ``mix(z)``:
  ``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
  z ^= z >> 31``. Pair ``i`` depends on ``(k, i)`` only, never on ``n``.
* Radius, from the top 30 bits ``a = w_i >> 34``: ``v = float32(2a + 1)`` (rounded),
  ``u = v 2^-31`` in (0, 1]. ``v = 2^(e+31) m`` with ``m`` in [sqrt(1/2), sqrt(2)) and
  ``e`` an integer (integer operations on the bits, exact); ``s = (m - 1) / (m + 1)``,
  ``q = s * s``, ``L = (-2 ln 2) * e + ((-4) * s + (s * q) * ((Q3 * q + Q2) * q + Q1))``
  (``-2 ln 2`` rounded to float32; ``-4 + Q1 q + Q2 q^2 + Q3 q^3`` is a minimax fit of
  ``-4 atanh(s)/s = -2 ln(m)/s`` for ``q`` in [0, 0.02944], relative error 8e-10; the
  constants ``_Q1, _Q2, _Q3``); ``R = sqrt(L)`` (correctly rounded): float32
  ``sqrt(-2 ln u)``.
* Angle, from the low 32 bits ``b = w_i mod 2^32``: ``J`` = the int32 ``(b << 2) | 2``
  (integer: bits 0..29 of ``b`` moved up, plus 2), ``t = float32(J) * float32(pi 2^-33)``
  in (-pi/4, pi/4) on a grid symmetric about 0, ``z = t * t``,
  ``S = t + (t * z) * ((S3 * z + S2) * z + S1)``,
  ``C = (((C4 * z + C3) * z + C2) * z - 1/2) * z + 1`` (Cephes' sinf and cosf coefficients
  for [-pi/4, pi/4]). The pair is ``(x, y) = (C, S)`` if ``J > 0`` and ``(S, C)`` if
  ``J < 0``; then ``x`` changes sign if bit 31 of ``b`` is set and ``y`` if bit 30 is (a
  flip of the sign bit, exact). These eight reflections of ``t`` give
  ``(x, y) = (cos phi, sin phi)`` for an angle ``phi`` uniform on the circle (up to the
  grid), ``(R x, R y)`` two independent standard normals.
* Constants (each the float32 nearest to the decimal): ``Q1 = -1.3333355``,
  ``Q2 = -0.79955155``, ``Q3 = -0.5974171``, ``S1 = -1.6666654611e-1``,
  ``S2 = 8.3321608736e-3``, ``S3 = -1.9515295891e-4``, ``C2 = 4.166664568298827e-2``,
  ``C3 = -1.388731625493765e-3``, ``C4 = 2.443315711809948e-5``; ``float32(pi 2^-33)``,
  ``float32(-2 ln 2)``.
* Layout. ``out[i] = R_i x_i`` for ``i < p`` and ``out[p + i] = R_i y_i`` for
  ``i < n - p``: the first half holds the ``x`` ("cosines"), the second the ``y``
  ("sines"); an odd ``n`` drops the last pair's ``y``. So fills of ``n`` and ``n + 1``
  share the ``x`` of the first ``ceil(n/2)`` pairs and the ``y`` of the first ``n // 2``.
* Accuracy (tests/crossbar/test_normals.py, against float64 numpy over the whole input
  ranges): ``L`` within 1.7 ulp of ``-2 ln u`` and ``R`` within 1.5 ulp of
  ``sqrt(-2 ln u)`` (all 2^30 values of ``a``); ``S`` within 0.8 ulp and ``C`` within
  1.2 ulp of ``sin t``, ``cos t`` (all 2^30 values of ``J``); each output within 4.4 ulp
  of exact Box-Muller at the exact angle ``J pi 2^-33``, of which rounding ``J`` to
  float32 alone is up to 1.75 ulp. ``u >= 2^-31`` bounds ``|z|`` by
  ``sqrt(62 ln 2) = 6.5555``, a cut tail of probability 5.5e-11 (torch's float32 normals
  stop near 5.8); ``a = 2^30 - 1`` rounds ``v`` to 2^31: ``u = 1``, ``R = 0``.
* Bit for bit the same on any x86-64 machine: IEEE float32 operations only, no fused
  multiply-add (numba's fastmath off: LLVM contracts nothing), no math library (sqrt is
  the LLVM intrinsic, an instruction); the vectorised loop and its scalar remainder do
  the same operations.

Callers that fill in pieces (one per row or per step) derive one key per piece with
:func:`derive_key` from the call's seed, so a piece's numbers do not depend on how the
others were drawn.

Speed (``xbarsim bench normals``, one thread, AMD EPYC Zen 2 with AVX2, the fill called
from a numba loop): 1.1-1.15 ns per normal for n = 512 and 32768, against 3.0 for the
legacy ziggurat; torch's ``normal_`` takes 4.5 (the table in crossbar/README.md).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic
from llvmlite import ir

# error_model "numpy": no ZeroDivisionError branch inside loops (it blocks vectorisation)
_JIT = dict(cache=True, nogil=True, fastmath=False, boundscheck=False, error_model="numpy")

_f32 = np.float32
_i32 = np.int32

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)

# radius: v = 2a + 1 as float32; its bits minus _LOGOFF give the exponent e of
# u = v 2^-31 = 2^e m with m in [sqrt(1/2), sqrt(2)) (0x3F3504F3 = float32 sqrt(1/2))
_SQRT_HALF_BITS = np.int32(0x3F3504F3)
_LOGOFF = np.int32(0x3F3504F3 + (31 << 23))
_MANT = np.int32(0x007FFFFF)
_M2LN2 = _f32(-2.0 * math.log(2.0))
#: -4 atanh(s)/s = Q0 + Q1 q + Q2 q^2 + Q3 q^3 (q = s^2 <= 0.0294373), relative error 8e-10
_Q0 = _f32(-4.0)
_Q1 = _f32(-1.3333355)
_Q2 = _f32(-0.79955155)
_Q3 = _f32(-0.5974171)

# angle: t = float32((b << 2) | 2) * pi 2^-33
_ANGLE_SCALE = _f32(math.pi * 2.0 ** -33)
#: Cephes sinf on [-pi/4, pi/4]: sin t = t + t z (S1 + z (S2 + z S3)), z = t^2
_S1 = _f32(-1.6666654611E-1)
_S2 = _f32(8.3321608736E-3)
_S3 = _f32(-1.9515295891E-4)
#: Cephes cosf on [-pi/4, pi/4]: cos t = 1 + z (-1/2 + z (C2 + z (C3 + z C4)))
_C2C = _f32(4.166664568298827E-2)
_C3C = _f32(-1.388731625493765E-3)
_C4C = _f32(2.443315711809948E-5)
_SIGN = np.int32(-0x80000000)

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_TWO63 = 1 << 63
_TWO64 = 1 << 64


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


@intrinsic
def _sqrt_f32(typingctx, x):
    """IEEE sqrt of a float32 (the LLVM intrinsic: an instruction, vectorises; never libm)."""
    sig = types.float32(types.float32)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.sqrt", [ir.FloatType()])
        return builder.call(fn, args)
    return sig, codegen


@njit(inline="always", **_JIT)
def _mix(x):
    """SplitMix64's output function (Steele, Lea and Flood 2014)."""
    z = (x ^ (x >> np.uint64(30))) * _C1
    z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


@njit(**_JIT)
def derive_key(seed, index):
    """The key of piece ``index`` (a row, a step) of the fills seeded with ``seed``.

    ``mix(seed ^ mix(index + GAMMA))`` with SplitMix64's ``mix``, both arguments taken as
    uint64: distinct pieces get unrelated keys, so each piece can be drawn alone and in any
    order. Returns a uint64 (a Python int when called from Python: wrap it in
    ``np.uint64`` before passing a value >= 2^63 to :func:`fill_normals` from Python).
    """
    return _mix(np.uint64(seed) ^ _mix(np.uint64(index) + GAMMA))


# numba widens int32 arithmetic to int64; every integer step below is cast back to int32
# so that LLVM keeps 8 lanes per AVX2 register.

@njit(inline="always", **_JIT)
def _neg2log(v):
    """``-2 ln(v 2^-31)`` in float32 for a float32 ``v`` in [1, 2^31] (module docstring)."""
    b = _i32(_bits_from_f32(v) - _LOGOFF)
    e = _i32(b >> _i32(23))
    m = _f32_from_bits(_i32(_i32(b & _MANT) + _SQRT_HALF_BITS))
    s = (m - _f32(1.0)) / (m + _f32(1.0))
    q = s * s
    # -4 s is exact: the rounding errors sit in the small correction s q P(q)
    return _M2LN2 * _f32(e) + (_Q0 * s + (s * q) * ((_Q3 * q + _Q2) * q + _Q1))


@njit(inline="always", **_JIT)
def _radius(word):
    """``R = sqrt(-2 ln u)`` from the top 30 bits of a uint64 word."""
    v = _f32(_i32(_i32(word >> np.uint64(33)) | _i32(1)))
    return _sqrt_f32(_neg2log(v))


@njit(inline="always", **_JIT)
def _sin_cos(t):
    """(sin t, cos t) in float32 for t in [-pi/4, pi/4] (Cephes' polynomials)."""
    z = t * t
    sn = t + (t * z) * ((_S3 * z + _S2) * z + _S1)
    cs = (((_C4C * z + _C3C) * z + _C2C) * z - _f32(0.5)) * z + _f32(1.0)
    return sn, cs


@njit(inline="always", **_JIT)
def _polar(rad, b):
    """``(rad cos phi, rad sin phi)`` for the angle of the int32 ``b`` (module docstring)."""
    j = _i32(_i32(b << _i32(2)) | _i32(2))
    sn, cs = _sin_cos(_f32(j) * _ANGLE_SCALE)
    swap = j < _i32(0)                           # t < 0: (sin t, cos t)
    x = sn if swap else cs
    y = cs if swap else sn
    neg_x = _i32(b & _SIGN)                      # bit 31 of b
    neg_y = _i32(_i32(b << _i32(1)) & _SIGN)     # bit 30 of b
    return (_f32_from_bits(_i32(_bits_from_f32(rad * x) ^ neg_x)),
            _f32_from_bits(_i32(_bits_from_f32(rad * y) ^ neg_y)))


@njit(inline="always", **_JIT)
def _pair(word):
    """The pair of normals (R cos phi, R sin phi) of one SplitMix64 word."""
    return _polar(_radius(word), _i32(np.uint32(word & _LOW32)))


@njit(**_JIT)
def fill_normals(out, key):
    """Fill the 1-D float32 array ``out`` with the standard normals of ``key`` (uint64, or
    a non-negative int64); exported as ``crossbar.fill_normals`` for numba code.

    The stream and layout are in the module docstring: pair ``i`` comes from SplitMix64
    word ``i`` of ``key``; ``out[:ceil(n/2)]`` holds the x, the rest the y. No allocation.
    A vectorised loop makes pairs ``i`` and ``q + i`` together (``q`` = n/4 rounded down to
    a multiple of 8: two independent chains per iteration keep the core busy, 9% faster
    than one, and no scalar remainder); the up to 15 pairs left over go one chain at a
    time, as whole vectors that may redo pairs already written (counter based: the same
    values) when there are more than two, which keeps sizes like 510 or 127 as fast as
    512 or 128; an odd ``n`` ends with the last pair's x.
    """
    n = out.shape[0]
    h = n // 2
    p = np.uint64(n - h)
    q = np.uint64((h // 2) & ~7)
    k = np.uint64(key)
    x0 = k
    x1 = k + q * GAMMA
    # unsigned indices: no negative-index wraparound, no views (nothing to count or free)
    for i in range(q):
        x0 += GAMMA
        x1 += GAMMA
        c0, s0 = _pair(_mix(x0))
        c1, s1 = _pair(_mix(x1))
        out[i] = c0
        out[p + i] = s0
        out[q + i] = c1
        out[p + q + i] = s1
    r = h - 2 * ((h // 2) & ~7)                       # pairs left: 0 .. 15
    if r > 0:
        start = max(h - r if r <= 2 else h - ((r + 7) & ~7), 0)
        x = k + np.uint64(start) * GAMMA
        for i in range(np.uint64(start), np.uint64(h)):
            x += GAMMA
            c, s = _pair(_mix(x))
            out[i] = c
            out[p + i] = s
    if p > np.uint64(h):                              # n odd: the last pair's x, its y dropped
        c, s = _pair(_mix(k + (np.uint64(h) + np.uint64(1)) * GAMMA))
        out[np.uint64(h)] = c


def kernel_key(key):
    """``key`` checked to be an int in [0, 2^64) and in the form the kernels take: an
    ``np.uint64`` as it is, a Python int below 2^63 as it is (numba passes it as int64, 0.7 us
    faster than making an np.uint64; the kernels read either as the same uint64), anything
    larger as an ``np.uint64``; other numpy integers are converted. The checks cost ~0.3 us.

    Raises:
        ValueError: ``key`` is not an int (bools are not) or lies outside [0, 2^64).
    """
    if type(key) is np.uint64:
        return key
    if type(key) is not int:
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
            raise ValueError(f"key must be an int in [0, 2**64), got {key!r}")
        key = int(key)
    if not 0 <= key < _TWO64:
        raise ValueError(f"key must be an int in [0, 2**64), got {key!r}")
    return key if key < _TWO63 else np.uint64(key)


def fill_standard_normal(out: np.ndarray, key: int) -> None:
    """Fill ``out`` in place with the standard normals of ``key``: the ``"boxmuller"``
    generator (stream in :mod:`crossbar._normals`), exported as ``crossbar.fill_standard_normal``.

    Args:
        out: any shape, C-contiguous, writeable, float32 or float64; filled in its flat
            (C) order. A float64 ``out`` gets the float32 normals, widened exactly.
        key: an int in [0, 2^64); the same key and size give the same numbers.

    Raises:
        ValueError: ``out`` is not a C-contiguous, writeable float32/float64 numpy array, or
            ``key`` is not an int in [0, 2^64).

    Example:
        >>> z = np.empty(4, np.float32); fill_standard_normal(z, 7)
    """
    k = kernel_key(key)
    if not isinstance(out, np.ndarray) or (out.dtype != _F32 and out.dtype != _F64):
        raise ValueError(f"out must be a float32 or float64 numpy array, got "
                         f"{type(out).__name__} {getattr(out, 'dtype', '')}")
    flags = out.flags
    if not (flags.c_contiguous and flags.writeable):
        raise ValueError(f"out must be a C-contiguous, writeable array to be filled in place, got "
                         f"shape {out.shape}, strides {out.strides}, writeable={flags.writeable}")
    flat = out if out.ndim == 1 else out.reshape(-1)
    if out.dtype == _F32:
        fill_normals(flat, k)
    else:
        tmp = np.empty(flat.shape[0], np.float32)
        fill_normals(tmp, k)
        flat[:] = tmp


# ---- the pieces over arrays, for tests/crossbar/test_normals.py (accuracy on dense grids)

@njit(**_JIT)
def _neg2log_array(v, out):
    """``out[i] = L`` (float32 ``-2 ln(v[i] 2^-31)``) for float32 ``v[i]`` in [1, 2^31]."""
    for i in range(v.shape[0]):
        out[i] = _neg2log(v[i])


@njit(**_JIT)
def _radius_array(words, out):
    """``out[i] = R`` of the uint64 ``words[i]`` (from their top 30 bits)."""
    for i in range(words.shape[0]):
        out[i] = _radius(words[i])


@njit(**_JIT)
def _sin_cos_array(t, sin_out, cos_out):
    """The float32 sine and cosine polynomials at ``t[i]`` in [-pi/4, pi/4]."""
    for i in range(t.shape[0]):
        sn, cs = _sin_cos(t[i])
        sin_out[i] = sn
        cos_out[i] = cs


@njit(**_JIT)
def _pairs_array(words, cos_out, sin_out):
    """``(R cos phi, R sin phi)`` of each uint64 word, as :func:`fill_normals` makes them."""
    for i in range(words.shape[0]):
        c, s = _pair(words[i])
        cos_out[i] = c
        sin_out[i] = s
