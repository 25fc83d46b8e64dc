"""The read kernels of crossbar/_kernels.py as they were before the speed work of issue 16
(main 4e3dc05), frozen here as the seeded reference: every deployed read must stay bit for
bit what these give (committed reproduction results and README figures depend on it).

Test helper only: never change these to follow the library; a difference is a regression.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_JIT = dict(cache=True, nogil=True, fastmath=False, boundscheck=False)
#: float64 conversion inside kernels (numba's ``float(x)`` keeps a float32 ``x`` float32)
f64 = np.float64


# Converter parameters travel as small plain tuples (numba types them fast; a NamedTuple
# costs ~3 us more per call), always unpacked by name on the first line of a kernel:
#   dac = (abs_max, input_range, levels, clip)   -- see dac_params() in crossbar.array
#   adc = (on, levels, full_range, clip)          -- see adc_params() in crossbar.array
# levels L = 2^(bits-1) - 1, 0 for no quantisation.


@njit(inline="always", **_JIT)
def _dac_row_range(x, b, abs_max, input_range):
    """The DAC range of row ``b``: ``max_i |x[b, i]|`` (0 -> 1) when ``abs_max``, else ``input_range``."""
    if abs_max:
        r = 0.0
        for i in range(x.shape[1]):
            a = abs(float(x[b, i]))
            if a > r:
                r = a
        if r == 0.0:
            r = 1.0
        return r
    return input_range


@njit(inline="always", **_JIT)
def _dac_row_values(x, b, s, clip, levels, inv_l, out):
    """``out[b, i] = floor(clip(x[b, i] s, -1, 1) L + 0.5) / L`` (L = 0: no quantisation), in
    float64, one straight-line loop per converter setting (vectorisable); returns the number
    of inputs that saturated, ``|x s| > 1`` (0 without clipping)."""
    n = x.shape[1]
    clipped = 0
    if levels > 0:
        if clip:
            for i in range(n):
                u = x[b, i] * s
                clipped += abs(u) > 1.0
                v = min(max(u, -1.0), 1.0)
                out[b, i] = math.floor(v * levels + 0.5) * inv_l
        else:
            for i in range(n):
                out[b, i] = math.floor(x[b, i] * s * levels + 0.5) * inv_l
    elif clip:
        for i in range(n):
            u = x[b, i] * s
            clipped += abs(u) > 1.0
            out[b, i] = min(max(u, -1.0), 1.0)
    else:
        for i in range(n):
            out[b, i] = x[b, i] * s
    return clipped


@njit(inline="always", **_JIT)
def _dac_row(x, b, dac, alpha, out, row_scale):
    """DAC of row ``b``: range, ``out[b] = DAC(x[b] / r)``, ``row_scale[b] = r alpha``; returns
    the number of saturated inputs."""
    abs_max, input_range, levels, clip = dac
    inv_l = 1.0 / levels if levels > 0 else 0.0
    r = _dac_row_range(x, b, abs_max, input_range)
    s = 1.0 / r
    row_scale[b] = r * alpha
    return _dac_row_values(x, b, s, clip, levels, inv_l, out)


@njit(**_JIT)
def dac_rows(x, dac, alpha, out, row_scale):
    """DAC of every row (the read pipeline's first step, one pass).

    ``r[b] = max_i |x[b, i]|`` (0 -> 1) when ``abs_max``, else ``input_range``;
    ``out[b, i] = floor(clip(x[b, i] / r[b], -1, 1) L + 0.5) / L``; ``row_scale[b] = r[b] alpha``.

    Args:
        x: (B, n) inputs.
        dac: ``(abs_max, input_range, levels, clip)``: range mode (per-vector max or the
            fixed ``input_range``), L (0: no quantisation), saturate at +-1.
        alpha: drift-compensation factor folded into ``row_scale``.
        out: (B, n) result. row_scale: (B,) result.

    Returns:
        The number of inputs that saturated, ``|x[b, i] / r[b]| > 1`` with ``clip`` (0 without it).
    """
    clipped = 0
    for b in range(x.shape[0]):
        clipped += _dac_row(x, b, dac, alpha, out, row_scale)
    return clipped


@njit(**_JIT)
def dac_rows_squares(x, dac, alpha, out, out_sq, row_scale):
    """:func:`dac_rows` and ``out_sq[b, i] = out[b, i]**2`` (squared before rounding to the
    dtype of ``out_sq``), for the general read-noise variance ``x_n^2 @ sigma^2``; returns
    the number of saturated inputs."""
    abs_max, input_range, levels, clip = dac
    inv_l = 1.0 / levels if levels > 0 else 0.0
    n = x.shape[1]
    v = np.empty(n)  # one row of DAC values in float64: out and out_sq are both rounded from it
    v2 = v.reshape(1, n)
    clipped = 0
    for b in range(x.shape[0]):
        r = _dac_row_range(x, b, abs_max, input_range)
        s = 1.0 / r
        row_scale[b] = r * alpha
        clipped += _dac_row_values(x[b:b + 1], 0, s, clip, levels, inv_l, v2)
        for i in range(n):
            out[b, i] = v[i]
            out_sq[b, i] = v[i] * v[i]
    return clipped


@njit(**_JIT)
def dac_rows_tile_sumsq(x, dac, alpha, out, row_scale, bounds, sumsq):
    """:func:`dac_rows` and ``sumsq[k, b] = sum of out[b, i]**2`` over row tile k (rows
    ``bounds[k]`` to ``bounds[k + 1]``; squares in ``out``'s dtype, summed in float64), for a column-uniform
    read-noise variance ``||x_tile||^2 sigma_j^2``.

    Args:
        bounds: (n_tiles + 1,) int64 row-tile edges.
        sumsq: (n_tiles, B) result.
    """
    nt = sumsq.shape[0]
    clipped = 0
    for b in range(x.shape[0]):
        clipped += _dac_row(x, b, dac, alpha, out, row_scale)
        for k in range(nt):
            acc = 0.0
            for i in range(bounds[k], bounds[k + 1]):
                o = float(out[b, i])
                acc += o * o
            sumsq[k, b] = acc
    return clipped


@njit(inline="always", **_JIT)
def _adc_scale_accumulate_row(u, b, adc, scale, acc, first, last, rs):
    """Row ``b`` of one tile: ``acc[b, j] = (acc[b, j] if not first) + scale[j] ADC(u[j])``,
    times ``rs`` on the last tile; ``u`` (float64, m) is overwritten. The loops are split by
    the (row-invariant) flags so that each is straight-line (vectorisable). Returns the
    number of saturated conversions, ``|u / R| > 1`` (0 when the ADC is off or does not clip)."""
    on, levels, full_range, clip = adc
    m = u.shape[0]
    clipped = 0
    if on:
        inv_r = 1.0 / full_range
        if levels > 0:
            inv_l = 1.0 / levels
            if clip:
                for j in range(m):
                    w = u[j] * inv_r
                    clipped += abs(w) > 1.0
                    w = min(max(w, -1.0), 1.0)
                    u[j] = math.floor(w * levels + 0.5) * inv_l * full_range
            else:
                for j in range(m):
                    u[j] = math.floor(u[j] * inv_r * levels + 0.5) * inv_l * full_range
        elif clip:
            for j in range(m):
                w = u[j] * inv_r
                clipped += abs(w) > 1.0
                u[j] = min(max(w, -1.0), 1.0) * full_range
        else:
            for j in range(m):
                u[j] = u[j] * inv_r * full_range
    if first:
        if last:
            for j in range(m):
                acc[b, j] = scale[j] * u[j] * rs
        else:
            for j in range(m):
                acc[b, j] = scale[j] * u[j]
    elif last:
        for j in range(m):
            acc[b, j] = (scale[j] * u[j] + acc[b, j]) * rs
    else:
        for j in range(m):
            acc[b, j] = scale[j] * u[j] + acc[b, j]
    return clipped


@njit(**_JIT)
def adc_accumulate(p, scale, adc, acc, first, last, row_scale):
    """One tile's noiseless partial sums: ADC, digital scale, accumulation (one pass).

    ``u = R floor(clip(p / R, -1, 1) L + 0.5) / L`` when the ADC is on (else ``u = p``);
    ``acc[b, j] = (0 if first else acc[b, j]) + scale[j] u``; on the last tile
    ``acc[b, j] *= row_scale[b]`` (all in float64, stored in ``acc``'s dtype).

    Args:
        p: (B, m) partial sums of this tile (normalised units).
        scale: (m,) digital scale of each column.
        adc: ``(on, levels, full_range, clip)``.
        acc: (B, m) accumulator, written in place.
        first, last: first / last tile of the sum.
        row_scale: (B,) factor applied on the last tile (DAC range, drift compensation).

    Returns:
        The number of conversions that saturated, ``|u / R| > 1`` (0 when the ADC is off
        or does not clip).
    """
    nb, m = p.shape
    u = np.empty(m)
    clipped = 0
    for b in range(nb):
        for j in range(m):
            u[j] = p[b, j]
        clipped += _adc_scale_accumulate_row(u, b, adc, scale, acc, first, last, f64(row_scale[b]))
    return clipped


@njit(**_JIT)
def noise_adc_accumulate(p, z, var, row_terms, col_terms, scale, adc, acc, first, last, row_scale):
    """One tile's partial sums: noise, ADC, digital scale, accumulation (fused, one pass).

    ``u = p + sqrt(v) z`` with the per-output variance written as a dense part plus rank-one
    terms, ``v[b, j] = sum_d var[d, b, j] + sum_r row_terms[r, b] col_terms[r, j]``
    (summed in this order, in float64); then as :func:`adc_accumulate`.
    The rank-one terms are the read noise of a column-uniform array
    (``||x_tile||^2 sigma_j^2``) and the paper's output noise (``sigma_y^2 / (r^2 s_j^2)``).

    Args:
        p: (B, m) noiseless partial sums of this tile (normalised units).
        z: (B, m) standard normals.
        var: (D, B, m) dense variance terms, D = 0 or 1 (the general read noise ``x^2 @ sigma^2``).
        row_terms, col_terms: (R, B) and (R, m), R rank-one variance terms (R >= 0).
        scale, adc, acc, first, last, row_scale: as :func:`adc_accumulate`.

    Returns:
        The number of saturated conversions (as :func:`adc_accumulate`).
    """
    nb, m = p.shape
    nd = var.shape[0]
    nr = row_terms.shape[0]
    u = np.empty(m)
    clipped = 0
    for b in range(nb):
        # u = p + sqrt(v) z; the common term layouts as straight-line loops, the rest generic
        if nd == 1 and nr == 0:
            for j in range(m):
                u[j] = f64(p[b, j]) + math.sqrt(f64(var[0, b, j])) * f64(z[b, j])
        elif nd == 0 and nr == 1:
            r0 = f64(row_terms[0, b])
            for j in range(m):
                u[j] = f64(p[b, j]) + math.sqrt(r0 * f64(col_terms[0, j])) * f64(z[b, j])
        elif nd == 1 and nr == 1:
            r0 = f64(row_terms[0, b])
            for j in range(m):
                v = f64(var[0, b, j]) + r0 * f64(col_terms[0, j])
                u[j] = f64(p[b, j]) + math.sqrt(v) * f64(z[b, j])
        elif nd == 0 and nr == 2:
            r0 = f64(row_terms[0, b])
            r1 = f64(row_terms[1, b])
            for j in range(m):
                v = r0 * f64(col_terms[0, j]) + r1 * f64(col_terms[1, j])
                u[j] = f64(p[b, j]) + math.sqrt(v) * f64(z[b, j])
        else:
            for j in range(m):
                v = 0.0
                for d in range(nd):
                    v += var[d, b, j]
                for r in range(nr):
                    v += f64(row_terms[r, b]) * f64(col_terms[r, j])
                u[j] = f64(p[b, j]) + math.sqrt(v) * f64(z[b, j])
        clipped += _adc_scale_accumulate_row(u, b, adc, scale, acc, first, last, f64(row_scale[b]))
    return clipped


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
    """Fill ``out`` (any shape, C-contiguous) with standard normals seeded from ``rng``.

    Raises:
        ValueError: ``out`` is not C-contiguous or not writeable (``reshape(-1)`` would fill
            a copy and leave ``out`` as it was).
    """
    check_fillable("out", out)
    fill_normal(out.reshape(-1), int(rng.integers(0, 1 << 63)), _KN, _WN, _FN)


def check_fillable(name: str, a: np.ndarray) -> None:
    """Raise ValueError unless ``a`` is a C-contiguous, writeable array (a buffer filled in place)."""
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a C-contiguous, writeable array to be filled in place, got "
                         f"shape {a.shape}, strides {a.strides}, writeable={a.flags.writeable}")
