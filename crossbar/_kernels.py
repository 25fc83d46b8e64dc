"""Every numba kernel of the crossbar: arrays and scalars in, arrays out.

Kernels assume valid input (the public modules check it). They are serial (``parallel``
off: two thread pools in one process stall each other, DESIGN.md) and cached on disk.
Matrix products are not here: BLAS (numpy matmul) does them; these kernels do the
elementwise work around them. Random numbers come in as filled buffers.
Rounding convention: round half up, ``floor(v + 0.5)`` (see :mod:`crossbar.reference`).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_JIT = dict(cache=True, nogil=True, fastmath=False, boundscheck=False)


@njit(inline="always", **_JIT)
def _dac_value(v, clip, levels, inv_l):
    """One DAC conversion in normalised units: ``floor(clip(v, -1, 1) * L + 0.5) / L`` (L = 0: no quantisation)."""
    if clip:
        if v > 1.0:
            v = 1.0
        elif v < -1.0:
            v = -1.0
    if levels > 0:
        v = math.floor(v * levels + 0.5) * inv_l
    return v


@njit(**_JIT)
def dac_rows(x, abs_max, input_range, alpha, levels, clip, out, out_sq, row_scale, sumsq, bounds):
    """DAC with the range found in the kernel (the read pipeline's first step, one pass).

    ``r[b] = max_i |x[b, i]|`` (0 -> 1) when ``abs_max``, else ``input_range``;
    ``out[b, i] = floor(clip(x[b, i] / r[b], -1, 1) L + 0.5) / L``; ``out_sq = out**2``;
    ``row_scale[b] = r[b] * alpha``; ``sumsq[k, b] = sum of out_sq[b, i]`` over row tile k
    (rows ``bounds[k]`` to ``bounds[k + 1]``), accumulated in float64.

    Returns the number of inputs that saturated: ``|x[b, i] / r[b]| > 1`` with ``clip``
    (0 without it).

    Args:
        x: (B, n) inputs.
        abs_max, input_range: the range mode ("abs_max" per vector, or a fixed range).
        alpha: drift-compensation factor folded into ``row_scale``.
        levels: L = 2^(bits-1) - 1 (0: no quantisation). clip: saturate at +-1.
        out: (B, n) result. out_sq: (B, n), or a (0, 0) array to skip it.
        row_scale: (B,) result. sumsq: (n_tiles, B), or a (0, 0) array to skip it.
        bounds: (n_tiles + 1,) int64 row-tile edges (used only with ``sumsq``).
    """
    nb, n = x.shape
    want_sq = out_sq.shape[0] == nb
    want_sum = sumsq.shape[1] == nb
    nt = sumsq.shape[0]
    inv_l = 1.0 / levels if levels > 0 else 0.0
    clipped = 0
    for b in range(nb):
        if abs_max:
            r = 0.0
            for i in range(n):
                a = abs(float(x[b, i]))
                if a > r:
                    r = a
            if r == 0.0:
                r = 1.0
        else:
            r = input_range
        s = 1.0 / r
        row_scale[b] = r * alpha
        for i in range(n):
            u = x[b, i] * s
            if clip and (u > 1.0 or u < -1.0):
                clipped += 1
            v = _dac_value(u, clip, levels, inv_l)
            out[b, i] = v
            if want_sq:
                out_sq[b, i] = v * v
        if want_sum:
            for k in range(nt):
                acc = 0.0
                for i in range(bounds[k], bounds[k + 1]):
                    o = float(out[b, i])
                    acc += o * o
                sumsq[k, b] = acc
    return clipped


@njit(**_JIT)
def noise_adc_tile(p, var, z, a1, c1, a2, c2, scale, levels, out_range, clip, adc_on, acc, first, last, row_scale):
    """One tile's partial sums: noise, ADC, digital scale, accumulation (fused, one pass).

    ``u = p + sqrt(var[b, j] + a1[b] c1[j] + a2[b] c2[j]) z[b, j]`` (the rank-one terms:
    read noise of a column-uniform array, ``||x_tile||^2 sigma_j^2``, and output noise);
    ``u = R floor(clip(u / R, -1, 1) L + 0.5) / L`` when the ADC is on;
    ``acc[b, j] = (0 if first else acc[b, j]) + scale[j] u``; on the last tile
    ``acc[b, j] *= row_scale[b]``.

    Args:
        p: (B, m) noiseless partial sums of this tile (normalised units).
        var: (B, m) per-output read-noise variance, or a (0, 0) array for none.
        z: (B, m) standard normals, or a (0, 0) array when there is no noise at all.
        a1, c1: (B,), (m,) first rank-one variance term, or (0,) arrays for none.
        a2, c2: (B,), (m,) second rank-one variance term, or (0,) arrays for none.
        scale: (m,) digital scale of each column.
        levels, out_range, clip, adc_on: the ADC (levels 0: clip only).
        acc: (B, m) accumulator, written in place.
        first, last: first / last tile of the sum.
        row_scale: (B,) factor applied on the last tile (DAC range, drift compensation).

    Returns:
        The number of conversions that saturated, ``|u / R| > 1`` (0 when the ADC is off
        or does not clip).
    """
    nb, m = p.shape
    has_var = var.shape[0] == nb
    has_z = z.shape[0] == nb
    has_1 = a1.shape[0] == nb
    has_2 = a2.shape[0] == nb
    inv_r = 1.0 / out_range
    inv_l = 1.0 / levels if levels > 0 else 0.0
    clipped = 0
    for b in range(nb):
        rs = row_scale[b]
        w1 = a1[b] if has_1 else 0.0
        w2 = a2[b] if has_2 else 0.0
        for j in range(m):
            u = p[b, j]
            if has_z:
                v = 0.0
                if has_var:
                    v += var[b, j]
                if has_1:
                    v += w1 * c1[j]
                if has_2:
                    v += w2 * c2[j]
                u += math.sqrt(v) * z[b, j]
            if adc_on:
                w = u * inv_r
                if clip:
                    if w > 1.0:
                        w = 1.0
                        clipped += 1
                    elif w < -1.0:
                        w = -1.0
                        clipped += 1
                if levels > 0:
                    w = math.floor(w * levels + 0.5) * inv_l
                u = w * out_range
            c = scale[j] * u
            if not first:
                c += acc[b, j]
            if last:
                c *= rs
            acc[b, j] = c
    return clipped


@njit(**_JIT)
def noise_adc_accumulate(p, var, z, out_var_b, inv_s2, scale, levels, out_range, clip, adc_on,
                         acc, first, last, row_scale):
    """:func:`noise_adc_tile` with one rank-one term: ``v = var[b, j] + out_var_b[b] inv_s2[j]``."""
    e = out_var_b[:0]
    return noise_adc_tile(p, var, z, out_var_b, inv_s2, e, e, scale, levels, out_range, clip, adc_on,
                   acc, first, last, row_scale)


@njit(**_JIT)
def add_scaled(y, z, sigma):
    """``y += sigma * z`` in place (the paper's output noise on the digital path)."""
    nb, m = y.shape
    for b in range(nb):
        for j in range(m):
            y[b, j] += sigma * z[b, j]


@njit(**_JIT)
def mean_square(y):
    """Mean of squares of all elements, accumulated in float64."""
    nb, m = y.shape
    s = 0.0
    for b in range(nb):
        for j in range(m):
            v = float(y[b, j])
            s += v * v
    return s / (nb * m)


@njit(**_JIT)
def mean_square_tiles(parts, scale, row_scale):
    """Mean square of ``y0[b, j] = row_scale[b] sum_t scale[t, j] parts[t, b, j]`` (float64)."""
    nt, nb, m = parts.shape
    s = 0.0
    for b in range(nb):
        rs = float(row_scale[b])
        for j in range(m):
            v = 0.0
            for t in range(nt):
                v += float(scale[t, j]) * float(parts[t, b, j])
            v *= rs
            s += v * v
    return s / (nb * m)


def warm() -> None:
    """Compile (or load from cache) every kernel for float32 and float64 once, with the
    argument types the read pipeline passes."""
    bounds = np.array([0, 3], np.int64)
    for dt in (np.float32, np.float64):
        x = np.ones((2, 3), dt)
        r = np.ones(2, dt)
        o = np.empty((2, 3), dt)
        e = np.empty((0, 0), dt)
        e1 = np.empty(0, dt)
        dac_rows(x, True, 1.0, 1.0, 127, True, o, o.copy(), r, np.empty((1, 2), dt), bounds)
        dac_rows(x, False, 1.0, 1.0, 0, False, o, e, r, e, bounds)
        s = np.ones(3, dt)
        noise_adc_accumulate(x, x, x, r, s, s, 127, 12.0, True, True, o, True, True, r)
        noise_adc_accumulate(x, e, e, r, s, s, 0, 12.0, False, False, o, False, False, r)
        noise_adc_tile(x, x, x, r, s, r, s, s, 127, 12.0, True, True, o, True, True, r)
        noise_adc_tile(x, e, e, e1, e1, e1, e1, s, 0, 12.0, False, False, o, False, False, r)
        add_scaled(o, x, 0.5)
        mean_square(x)
        mean_square_tiles(x[None], s[None], r)
        standard_normal(np.random.default_rng(0), o)


# ---------------------------------------------------------------------------------------
# Standard normals: splitmix64 bits + the Marsaglia-Tsang (2000) ziggurat with 128 layers.
# The layer index comes from the low 7 bits and the value from the high 32 bits of one
# 64-bit draw, so they are independent. Seeded per call from the caller's Generator.


def _ziggurat_tables():
    m1 = 2147483648.0
    dn = tn = 3.442619855899
    vn = 9.91256303526217e-3
    kn = np.zeros(128, np.int64)
    wn = np.zeros(128)
    fn = np.zeros(128)
    q = vn / math.exp(-0.5 * dn * dn)
    kn[0] = int((dn / q) * m1)
    kn[1] = 0
    wn[0] = q / m1
    wn[127] = dn / m1
    fn[0] = 1.0
    fn[127] = math.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vn / dn + math.exp(-0.5 * dn * dn)))
        kn[i + 1] = int((dn / tn) * m1)
        tn = dn
        fn[i] = math.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn


_KN, _WN, _FN = _ziggurat_tables()
_ZIG_R = 3.442619855899


@njit(**_JIT)
def _splitmix64(state):
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(**_JIT)
def _uniform(state):
    state, u = _splitmix64(state)
    return state, (float(u >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(**_JIT)
def fill_normal(out, seed, kn, wn, fn):
    """Fill the 1-D array ``out`` with standard normals (ziggurat); same seed, same numbers."""
    state = np.uint64(seed)
    n = out.shape[0]
    for k in range(n):
        state, u = _splitmix64(state)
        iz = int(u & np.uint64(127))
        hz = np.int64(np.int32(np.uint32(u >> np.uint64(32))))
        if abs(hz) < kn[iz]:
            out[k] = hz * wn[iz]
            continue
        while True:  # the slow path, ~1 % of draws
            x = hz * wn[iz]
            if iz == 0:  # tail beyond r
                while True:
                    state, u1 = _uniform(state)
                    state, u2 = _uniform(state)
                    xt = -math.log(u1) / _ZIG_R
                    yt = -math.log(u2)
                    if yt + yt >= xt * xt:
                        break
                x = _ZIG_R + xt if hz > 0 else -_ZIG_R - xt
                break
            state, u1 = _uniform(state)
            if fn[iz] + u1 * (fn[iz - 1] - fn[iz]) < math.exp(-0.5 * x * x):
                break
            state, u = _splitmix64(state)
            iz = int(u & np.uint64(127))
            hz = np.int64(np.int32(np.uint32(u >> np.uint64(32))))
            if abs(hz) < kn[iz]:
                x = hz * wn[iz]
                break
        out[k] = x


def standard_normal(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill ``out`` (any shape, C-contiguous) with standard normals seeded from ``rng``."""
    fill_normal(out.reshape(-1), int(rng.integers(0, 1 << 63)), _KN, _WN, _FN)
