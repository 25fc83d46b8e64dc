"""The numba kernels of the crossbar's reads and of the IR-drop dissection (programming
for training has its own, :mod:`crossbar._program_kernels`): arrays and scalars in, arrays out.

Kernels assume valid input (the public modules check it; the DAC pass also counts NaN/Inf
inputs for the read's finiteness check). They are serial (``parallel`` off: two thread
pools in one process stall each other, DESIGN.md) and cached on disk.
Matrix products are not here: BLAS (numpy matmul) does them; these kernels do the
elementwise work around them. Random numbers come in as filled buffers, or as the seed
that a read's noise + ADC pass draws its normals from, a row at a time inside the pass:
:func:`noise_adc_tiles_bm` (``normal_generator="boxmuller"``, the default: each row of each
tile filled by :func:`crossbar._normals.fill_normals` from its own key) or
:func:`noise_adc_tiles` (``"legacy"``: the splitmix64/ziggurat stream, the numbers
:func:`fill_normal` puts in a buffer).
Arithmetic precision: a float64 read, and every "legacy" read, converts in float64 (the old
numbers bit for bit). A float32 "boxmuller" read computes in float32 where that is the work
of every element: its DAC (:func:`dac_rows32` and co., up to 13 bits: the values ``c / L``
and ``c^2 / L^2`` are the float64 DAC's for the same code ``c``, which can differ from the
float64 DAC's code only where ``x L / r`` lies within float32 rounding of a half-integer)
and its common noise + ADC row (general read noise into a quantising, clipping ADC,
:func:`_dense_quantised_row32`); float32 has 8 lanes per AVX2 register where float64 has 4.
Rounding convention: round half up, ``floor(v + 0.5)`` (see :mod:`crossbar.reference`),
with ``np.floor``: numba lowers ``math.floor`` to a float -> int64 -> float round trip that
keeps loops from vectorising (same value for |v| < 2^63).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._normals import derive_key, fill_normals, fill_standard_normal

_JIT = dict(cache=True, nogil=True, fastmath=False, boundscheck=False)
#: float64 conversion inside kernels (numba's ``float(x)`` keeps a float32 ``x`` float32)
f64 = np.float64


# Converter parameters travel as small plain tuples (numba types them fast; a NamedTuple
# costs ~3 us more per call), always unpacked by name on the first line of a kernel:
#   dac = (abs_max, input_range, levels, clip)   -- see dac_params() in crossbar.array
#   adc = (on, levels, full_range, clip)          -- see adc_params() in crossbar.array
# levels L = 2^(bits-1) - 1, 0 for no quantisation.


#: the largest finite float64: ``not (|v| <= _FINITE_MAX)`` holds exactly for NaN and +-Inf
_FINITE_MAX = 1.7976931348623157e308


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
def _dac_row_values(x, b, s, clip, levels, inv_l, out, out_sq, sq):
    """``v = floor(clip(x[b, i] s, -1, 1) L + 0.5) / L`` (L = 0: no quantisation) in float64,
    ``out[b, i] = v`` and, when ``sq``, ``out_sq[b, i] = v * v`` (each rounded to its array's
    dtype); one straight-line loop per converter setting (vectorised: ``np.floor`` stays a
    float, where ``math.floor`` would round-trip through int64). Returns (the number of
    inputs that saturated, ``|x s| > 1`` (0 without clipping); the number that are NaN or Inf)."""
    n = x.shape[1]
    clipped = 0
    bad = 0
    if levels > 0:
        if clip:
            for i in range(n):
                xv = f64(x[b, i])
                bad += not (abs(xv) <= _FINITE_MAX)
                u = xv * s
                clipped += abs(u) > 1.0
                v = np.floor(min(max(u, -1.0), 1.0) * levels + 0.5) * inv_l
                out[b, i] = v
                if sq:
                    out_sq[b, i] = v * v
        else:
            for i in range(n):
                xv = f64(x[b, i])
                bad += not (abs(xv) <= _FINITE_MAX)
                v = np.floor(xv * s * levels + 0.5) * inv_l
                out[b, i] = v
                if sq:
                    out_sq[b, i] = v * v
    elif clip:
        for i in range(n):
            xv = f64(x[b, i])
            bad += not (abs(xv) <= _FINITE_MAX)
            u = xv * s
            clipped += abs(u) > 1.0
            v = min(max(u, -1.0), 1.0)
            out[b, i] = v
            if sq:
                out_sq[b, i] = v * v
    else:
        for i in range(n):
            xv = f64(x[b, i])
            bad += not (abs(xv) <= _FINITE_MAX)
            v = xv * s
            out[b, i] = v
            if sq:
                out_sq[b, i] = v * v
    return clipped, bad


@njit(inline="always", **_JIT)
def _dac_row(x, b, dac, alpha, out, out_sq, sq, row_scale):
    """DAC of row ``b``: range, ``out[b] = DAC(x[b] / r)`` (and its squares when ``sq``),
    ``row_scale[b] = r alpha``; returns (saturated inputs, NaN/Inf inputs)."""
    abs_max, input_range, levels, clip = dac
    inv_l = 1.0 / levels if levels > 0 else 0.0
    r = _dac_row_range(x, b, abs_max, input_range)
    s = 1.0 / r
    row_scale[b] = r * alpha
    return _dac_row_values(x, b, s, clip, levels, inv_l, out, out_sq, sq)


@njit(**_JIT)
def dac_rows(x, dac, alpha, out, row_scale):
    """DAC of every row (the read pipeline's first step, one pass).

    ``r[b] = max_i |x[b, i]|`` (0 -> 1) when ``abs_max``, else ``input_range``;
    ``out[b, i] = floor(clip(x[b, i] / r[b], -1, 1) L + 0.5) / L``; ``row_scale[b] = r[b] alpha``.
    The same pass counts the inputs that are NaN or Inf (the read's finiteness check).

    Args:
        x: (B, n) inputs.
        dac: ``(abs_max, input_range, levels, clip)``: range mode (per-vector max or the
            fixed ``input_range``), L (0: no quantisation), saturate at +-1.
        alpha: drift-compensation factor folded into ``row_scale``.
        out: (B, n) result. row_scale: (B,) result.

    Returns:
        (the number of inputs that saturated, ``|x[b, i] / r[b]| > 1`` with ``clip`` (0
        without it); the number of NaN or Inf inputs: when it is not 0, ``out`` is undefined).
    """
    clipped = 0
    bad = 0
    for b in range(x.shape[0]):
        c, nb = _dac_row(x, b, dac, alpha, out, out, False, row_scale)
        clipped += c
        bad += nb
    return clipped, bad


@njit(**_JIT)
def dac_rows_squares(x, dac, alpha, out, out_sq, row_scale):
    """:func:`dac_rows` and ``out_sq[b, i] = out[b, i]**2`` (squared in float64 before rounding
    to the dtype of ``out_sq``), for the general read-noise variance ``x_n^2 @ sigma^2``;
    returns (saturated inputs, NaN/Inf inputs)."""
    clipped = 0
    bad = 0
    for b in range(x.shape[0]):
        c, nb = _dac_row(x, b, dac, alpha, out, out_sq, True, row_scale)
        clipped += c
        bad += nb
    return clipped, bad


@njit(**_JIT)
def dac_rows_tile_sumsq(x, dac, alpha, out, row_scale, bounds, sumsq):
    """:func:`dac_rows` and ``sumsq[k, b] = sum of out[b, i]**2`` over row tile k (rows
    ``bounds[k]`` to ``bounds[k + 1]``; squares in ``out``'s dtype, summed in float64), for a column-uniform
    read-noise variance ``||x_tile||^2 sigma_j^2``; returns (saturated inputs, NaN/Inf inputs).

    Args:
        bounds: (n_tiles + 1,) int64 row-tile edges.
        sumsq: (n_tiles, B) result.
    """
    nt = sumsq.shape[0]
    clipped = 0
    bad = 0
    for b in range(x.shape[0]):
        c, nb = _dac_row(x, b, dac, alpha, out, out, False, row_scale)
        clipped += c
        bad += nb
        for k in range(nt):
            acc = 0.0
            for i in range(bounds[k], bounds[k + 1]):
                o = float(out[b, i])
                acc += o * o
            sumsq[k, b] = acc
    return clipped, bad


# ---------------------------------------------------------------------------------------
# The float32 DAC of a float32 "boxmuller" read: the same converter with its arithmetic in
# float32 (8 lanes per AVX2 register where float64 has 4; saturated and NaN/Inf inputs
# counted per column, so that no horizontal reduction sits in the loop). The float64 DAC
# above stays the float64 read's and the "legacy" read's (bit for bit the old numbers).

#: the largest finite float32: ``not (|v| <= _F32_MAX)`` holds exactly for NaN and +-Inf
_F32_MAX = np.float32(3.4028234663852886e38)
_f32 = np.float32


@njit(inline="always", **_JIT)
def _dac_row_values32(x, b, r, clip, levels, out, out_sq, sq, n_clip, n_bad):
    """Row ``b`` of the float32 DAC (every operation one IEEE float32 operation):
    ``e = x[b, i] * float32(L / r)``, ``c = floor(clip(e, -L, L) + 0.5)``, ``out = c / float32(L)``,
    ``out_sq = (c * c) / float32(L * L)`` when ``sq`` (the factors rounded once from float64);
    without levels ``e = x[b, i] * float32(1 / r)``, ``out = clip(e, -1, 1)``, ``out_sq = out *
    out``. Adds 1 to ``n_clip[i]`` where ``|x[b, i]| > r`` with ``clip`` (compared exactly:
    against ``r`` rounded down to float32, which is ``r`` itself for a per-vector range;
    testing the rounded ``|e| > L`` instead would count the largest input of an ``abs_max``
    row as saturated whenever ``float32(L / r)`` rounds up), and to ``n_bad[i]`` where
    ``x[b, i]`` is NaN or Inf. One straight-line loop per converter setting (vectorised)."""
    n = x.shape[1]
    rc = _f32(r)   # the largest float32 <= r: |x| > rc exactly when |x| > r, for float32 x
    if f64(rc) > r:
        rc = np.nextafter(rc, _f32(0.0))
    if levels > 0:
        sl = _f32(levels / r)
        lv = _f32(levels)
        l2 = _f32(levels * levels)
        half = _f32(0.5)
        if clip:
            for i in range(n):
                xv = x[b, i]
                n_bad[i] += not (abs(xv) <= _F32_MAX)
                e = xv * sl
                n_clip[i] += abs(xv) > rc
                c = np.floor(min(max(e, -lv), lv) + half)
                out[b, i] = c / lv
                if sq:
                    out_sq[b, i] = (c * c) / l2
        else:
            for i in range(n):
                xv = x[b, i]
                n_bad[i] += not (abs(xv) <= _F32_MAX)
                c = np.floor(xv * sl + half)
                out[b, i] = c / lv
                if sq:
                    out_sq[b, i] = (c * c) / l2
    else:
        s = _f32(1.0 / r)
        one = _f32(1.0)
        if clip:
            for i in range(n):
                xv = x[b, i]
                n_bad[i] += not (abs(xv) <= _F32_MAX)
                e = xv * s
                n_clip[i] += abs(xv) > rc
                v = min(max(e, -one), one)
                out[b, i] = v
                if sq:
                    out_sq[b, i] = v * v
        else:
            for i in range(n):
                xv = x[b, i]
                n_bad[i] += not (abs(xv) <= _F32_MAX)
                v = xv * s
                out[b, i] = v
                if sq:
                    out_sq[b, i] = v * v


@njit(inline="always", **_JIT)
def _dac_rows32(x, dac, alpha, out, out_sq, sq, row_scale, bounds, sumsq, tile_sums):
    """Every row of the float32 DAC (:func:`_dac_row_values32`); the range ``r`` and
    ``row_scale[b] = r alpha`` as :func:`_dac_row`; with ``tile_sums`` the per-tile sums of
    squares as :func:`dac_rows_tile_sumsq`. Returns (saturated inputs, NaN/Inf inputs)."""
    abs_max, input_range, levels, clip = dac
    n = x.shape[1]
    n_clip = np.zeros(n, np.int32)
    n_bad = np.zeros(n, np.int32)
    for b in range(x.shape[0]):
        r = _dac_row_range(x, b, abs_max, input_range)
        row_scale[b] = r * alpha
        _dac_row_values32(x, b, r, clip, levels, out, out_sq, sq, n_clip, n_bad)
        if tile_sums:
            for k in range(sumsq.shape[0]):
                acc = 0.0
                for i in range(bounds[k], bounds[k + 1]):
                    o = float(out[b, i])
                    acc += o * o
                sumsq[k, b] = acc
    clipped = 0
    bad = 0
    for i in range(n):
        clipped += n_clip[i]
        bad += n_bad[i]
    return clipped, bad


@njit(**_JIT)
def dac_rows32(x, dac, alpha, out, row_scale):
    """:func:`dac_rows` for float32 ``x`` with the arithmetic in float32
    (:func:`_dac_row_values32`); returns (saturated inputs, NaN/Inf inputs)."""
    return _dac_rows32(x, dac, alpha, out, out, False, row_scale, _NO_BOUNDS, out[:0], False)


@njit(**_JIT)
def dac_rows_squares32(x, dac, alpha, out, out_sq, row_scale):
    """:func:`dac_rows_squares` in float32 arithmetic (``out_sq = out * out`` in float32)."""
    return _dac_rows32(x, dac, alpha, out, out_sq, True, row_scale, _NO_BOUNDS, out[:0], False)


@njit(**_JIT)
def dac_rows_tile_sumsq32(x, dac, alpha, out, row_scale, bounds, sumsq):
    """:func:`dac_rows_tile_sumsq` with the DAC in float32 arithmetic (the sums of squares
    as there: each ``out`` squared and summed in float64)."""
    return _dac_rows32(x, dac, alpha, out, out, False, row_scale, bounds, sumsq, True)


_NO_BOUNDS = np.zeros(1, np.int64)


@njit(inline="always", **_JIT)
def _scaled_accumulate(u, b, f, acc, first, last, rs):
    """``acc[b, j] = ((acc[b, j] if not first) + u[j] f[j])``, times ``rs`` on the last tile
    (``u[j] f[j]`` and ``f[j] u[j]`` are the same float: a product is commutative); one
    straight-line loop per flag setting, so each vectorises."""
    m = u.shape[0]
    if first:
        if last:
            for j in range(m):
                acc[b, j] = u[j] * f[j] * rs
        else:
            for j in range(m):
                acc[b, j] = u[j] * f[j]
    elif last:
        for j in range(m):
            acc[b, j] = (u[j] * f[j] + acc[b, j]) * rs
    else:
        for j in range(m):
            acc[b, j] = u[j] * f[j] + acc[b, j]


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
                    u[j] = np.floor(w * levels + 0.5) * inv_l * full_range
            else:
                for j in range(m):
                    u[j] = np.floor(u[j] * inv_r * levels + 0.5) * inv_l * full_range
        elif clip:
            for j in range(m):
                w = u[j] * inv_r
                clipped += abs(w) > 1.0
                u[j] = min(max(w, -1.0), 1.0) * full_range
        else:
            for j in range(m):
                u[j] = u[j] * inv_r * full_range
    _scaled_accumulate(u, b, scale, acc, first, last, rs)
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


@njit(inline="always", **_JIT)
def _noise_row(p, z, b, var, nd, row_terms, col_terms, u):
    """``u[j] = p[b, j] + sqrt(v[b, j]) z[j]`` (float64) with ``v = sum_d var[d, b, j] + sum_r
    row_terms[r, b] col_terms[r, j]``, summed in this order; the term layouts of the read
    pipeline as straight-line loops, the rest generic. ``var`` is (D, B, m) with ``nd = D``."""
    m = u.shape[0]
    nr = row_terms.shape[0]
    if nd == 1 and nr == 0:
        for j in range(m):
            u[j] = f64(p[b, j]) + math.sqrt(f64(var[0, b, j])) * f64(z[j])
    elif nd == 0 and nr == 1:
        r0 = f64(row_terms[0, b])
        for j in range(m):
            u[j] = f64(p[b, j]) + math.sqrt(r0 * f64(col_terms[0, j])) * f64(z[j])
    elif nd == 1 and nr == 1:
        r0 = f64(row_terms[0, b])
        for j in range(m):
            v = f64(var[0, b, j]) + r0 * f64(col_terms[0, j])
            u[j] = f64(p[b, j]) + math.sqrt(v) * f64(z[j])
    elif nd == 0 and nr == 2:
        r0 = f64(row_terms[0, b])
        r1 = f64(row_terms[1, b])
        for j in range(m):
            v = r0 * f64(col_terms[0, j]) + r1 * f64(col_terms[1, j])
            u[j] = f64(p[b, j]) + math.sqrt(v) * f64(z[j])
    else:
        for j in range(m):
            v = 0.0
            for d in range(nd):
                v += var[d, b, j]
            for r in range(nr):
                v += f64(row_terms[r, b]) * f64(col_terms[r, j])
            u[j] = f64(p[b, j]) + math.sqrt(v) * f64(z[j])


@njit(**_JIT)
def noise_adc_accumulate(p, z, var, row_terms, col_terms, scale, adc, acc, first, last, row_scale):
    """One tile's partial sums: noise, ADC, digital scale, accumulation (fused, one pass).

    ``u = p + sqrt(v) z`` with the per-output variance written as a dense part plus rank-one
    terms, ``v[b, j] = sum_d var[d, b, j] + sum_r row_terms[r, b] col_terms[r, j]``
    (summed in this order, in float64); then as :func:`adc_accumulate`.
    The rank-one terms are the read noise of a column-uniform array
    (``||x_tile||^2 sigma_j^2``) and the paper's output noise (``sigma_y^2 / (r^2 s_j^2)``).
    The read pipeline uses :func:`noise_adc_tiles` (the same arithmetic, normals drawn
    inside); this one takes the normals as a buffer.

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
    u = np.empty(m)
    clipped = 0
    for b in range(nb):
        _noise_row(p, z[b], b, var, nd, row_terms, col_terms, u)
        clipped += _adc_scale_accumulate_row(u, b, adc, scale, acc, first, last, f64(row_scale[b]))
    return clipped


@njit(**_JIT)
def noise_adc_tiles(parts, seed, var, row_terms, col_terms, scale, adc, acc, row_scale, kn, wn, fn):
    """Every tile of a read: normals, noise, ADC, digital scale, accumulation over the tiles
    (one call, one pass; the normals are drawn a row at a time into a buffer that stays in cache).

    Tile by tile, row by row: ``z`` = the next m normals of the ziggurat stream seeded by
    ``seed`` (:func:`fill_normal`'s numbers, in the order of a (n_tiles, B, m) buffer),
    rounded to ``parts``' dtype; then as :func:`noise_adc_accumulate` for tile k
    (``first = k == 0``, ``last = k == n_tiles - 1``). Bit for bit the same as
    :func:`fill_normal` into a (n_tiles, B, m) buffer followed by one
    :func:`noise_adc_accumulate` per tile.

    Args:
        parts: (T, B, m) noiseless partial sums of the T row tiles (normalised units).
        seed: the stream's seed (int in [0, 2^63)).
        var: (T, B, m) dense variance of each tile, or (0, B, m) for none.
        row_terms, col_terms: (T, R, B) and (T, R, m), R rank-one variance terms per tile.
        scale: (T, m) digital scale of each tile's columns. adc, acc, row_scale: as
            :func:`adc_accumulate`. kn, wn, fn: the ziggurat tables (module constants).

    Returns:
        The number of saturated conversions over all tiles.
    """
    nt, nb, m = parts.shape
    dense = var.shape[0] > 0
    u = np.empty(m)
    z = np.empty(m, parts.dtype)
    state = np.uint64(seed)
    clipped = 0
    for k in range(nt):
        p = parts[k]
        vk = var[k:k + 1] if dense else var
        nd = 1 if dense else 0
        rows = row_terms[k]
        cols = col_terms[k]
        sk = scale[k]
        first = k == 0
        last = k == nt - 1
        for b in range(nb):
            state = _normals(z, state, kn, wn, fn)
            _noise_row(p, z, b, vk, nd, rows, cols, u)
            clipped += _adc_scale_accumulate_row(u, b, adc, sk, acc, first, last, f64(row_scale[b]))
    return clipped


@njit(inline="always", **_JIT)
def _noise_row_bm(p, z, b, dense, var, nd, row_terms, col_terms, k, u):
    """:func:`_noise_row` for the ``"boxmuller"`` read, times the ADC's input factor ``k``
    (:func:`_adc_factors`): ``u[j] = (p[b, j] + sqrt(v[b, j]) z[j]) k`` in float64, except
    that with one dense term and no rank-one term (the general read noise) the noise term
    ``sqrt(v) z`` is formed in the dtype of ``var`` (a float32 read: the correctly rounded
    float32 square root and product, relative error below 2^-23, the precision of the
    float32 normals themselves) and widened; every other layout sums as :func:`_noise_row`.
    ``dense`` is ``var[0]`` as a C-contiguous (B, m) array (its rows load as vectors)."""
    m = u.shape[0]
    if nd == 1 and row_terms.shape[0] == 0:
        for j in range(m):
            u[j] = (f64(p[b, j]) + f64(np.sqrt(dense[b, j]) * z[j])) * k
    else:
        _noise_row(p, z, b, var, nd, row_terms, col_terms, u)
        for j in range(m):
            u[j] = u[j] * k


@njit(inline="always", **_JIT)
def _adc_factors(adc, scale, f):
    """The boxmuller read's ADC in factors (:func:`_adc_row_bm`): returns ``k``, the factor
    that takes a partial sum to the converter's input (``L / R`` quantising, ``1 / R`` without
    levels, 1 without an ADC), and fills ``f[j]``, the float64 factor that takes the
    converter's output to digital units (``(R / L) scale[j]``, ``R scale[j]``, ``scale[j]``)."""
    on, levels, full_range, clip = adc
    if on and levels > 0:
        k = f64(levels) / full_range
        c = full_range / f64(levels)
    elif on:
        k = 1.0 / full_range
        c = full_range
    else:
        k = 1.0
        c = 1.0
    for j in range(f.shape[0]):
        f[j] = c * f64(scale[j])
    return k


@njit(inline="always", **_JIT)
def _quantised_accumulate(u, b, lv, f, acc, first, last, rs):
    """``acc[b, j] = ((acc[b, j] if not first) + f[j] floor(clip(u[j], -L, L) + 0.5))``, times
    ``rs`` on the last tile: the quantising, clipping ADC's codes scaled and accumulated in
    one loop (one straight-line loop per flag setting, so each vectorises)."""
    m = u.shape[0]
    if first:
        if last:
            for j in range(m):
                acc[b, j] = np.floor(min(max(u[j], -lv), lv) + 0.5) * f[j] * rs
        else:
            for j in range(m):
                acc[b, j] = np.floor(min(max(u[j], -lv), lv) + 0.5) * f[j]
    elif last:
        for j in range(m):
            acc[b, j] = (np.floor(min(max(u[j], -lv), lv) + 0.5) * f[j] + acc[b, j]) * rs
    else:
        for j in range(m):
            acc[b, j] = np.floor(min(max(u[j], -lv), lv) + 0.5) * f[j] + acc[b, j]


@njit(inline="always", **_JIT)
def _adc_row_bm(u, b, adc, f, acc, first, last, rs):
    """Row ``b`` of one tile for the boxmuller read: ``acc[b, j] = (acc[b, j] if not first) +
    f[j] ADC(u[j])``, times ``rs`` on the last tile, where ``u`` is already in converter units
    (:func:`_noise_row_bm`) and ``ADC(u) = floor(clip(u, -L, L) + 0.5)``, the integer code
    (``clip(u, -1, 1)`` without levels, ``u`` without an ADC). This is
    :func:`_adc_scale_accumulate_row`'s ``R floor(clip(p / R, -1, 1) L + 0.5) / L scale``
    with its float64 products associated as ``(p (L / R))`` and ``code ((R / L) scale)``:
    the same code and value up to float64 rounding (a few ulp of float64, far below the
    float32 of a read). The common converter (quantising, clipping) is one fused loop per
    tile position; ``u`` may be overwritten. Returns the number of saturated conversions,
    ``|u| > L`` (``|u| > 1`` without levels; 0 when the ADC is off or does not clip)."""
    on, levels, full_range, clip = adc
    m = u.shape[0]
    lv = f64(levels)
    clipped = 0
    if on and clip:
        bound = lv if levels > 0 else 1.0
        for j in range(m):
            clipped += abs(u[j]) > bound
    if on and levels > 0 and clip:   # the common converter: quantise, scale and accumulate in one loop
        _quantised_accumulate(u, b, lv, f, acc, first, last, rs)
        return clipped
    if on:
        if levels > 0:
            for j in range(m):
                u[j] = np.floor(u[j] + 0.5)
        elif clip:
            for j in range(m):
                u[j] = min(max(u[j], -1.0), 1.0)
    _scaled_accumulate(u, b, f, acc, first, last, rs)
    return clipped


@njit(inline="always", **_JIT)
def _dense_quantised_row(p, dense, z, b, k, lv, f, acc, first, last, rs, u):
    """:func:`_noise_row_bm` (one dense term, no rank-one term) then :func:`_adc_row_bm` for a
    quantising, clipping ADC, written out: the same operations in the same order."""
    m = u.shape[0]
    for j in range(m):
        u[j] = (f64(p[b, j]) + f64(np.sqrt(dense[b, j]) * z[j])) * k
    clipped = 0
    for j in range(m):
        clipped += abs(u[j]) > lv
    _quantised_accumulate(u, b, lv, f, acc, first, last, rs)
    return clipped


@njit(inline="always", **_JIT)
def _dense_quantised_row32(p, dense, z, b, k, lv, f, acc, first, last, rs, n_clip):
    """:func:`_dense_quantised_row` of a float32 read in float32 arithmetic, one loop:
    ``u = (p[b, j] + sqrt(v[b, j]) z[j]) k``, ``acc[b, j] = floor(clip(u, -L, L) + 0.5) f[j]``
    (``+ acc[b, j]`` unless first, ``* rs`` on the last tile), every operation one IEEE
    float32 operation in that order; ``k``, ``L``, ``f`` and ``rs`` float32. Adds 1 to
    ``n_clip[j]`` where ``|u| > L``."""
    m = z.shape[0]
    half = _f32(0.5)
    if first:
        if last:
            for j in range(m):
                u = (p[b, j] + np.sqrt(dense[b, j]) * z[j]) * k
                n_clip[j] += abs(u) > lv
                acc[b, j] = np.floor(min(max(u, -lv), lv) + half) * f[j] * rs
        else:
            for j in range(m):
                u = (p[b, j] + np.sqrt(dense[b, j]) * z[j]) * k
                n_clip[j] += abs(u) > lv
                acc[b, j] = np.floor(min(max(u, -lv), lv) + half) * f[j]
    elif last:
        for j in range(m):
            u = (p[b, j] + np.sqrt(dense[b, j]) * z[j]) * k
            n_clip[j] += abs(u) > lv
            acc[b, j] = (np.floor(min(max(u, -lv), lv) + half) * f[j] + acc[b, j]) * rs
    else:
        for j in range(m):
            u = (p[b, j] + np.sqrt(dense[b, j]) * z[j]) * k
            n_clip[j] += abs(u) > lv
            acc[b, j] = np.floor(min(max(u, -lv), lv) + half) * f[j] + acc[b, j]


@njit(**_JIT)
def noise_adc_tiles_bm(parts, seed, var, row_terms, col_terms, scale, adc, acc, row_scale):
    """:func:`noise_adc_tiles` with the ``"boxmuller"`` generator: row ``b`` of tile ``k``
    takes ``z`` = the ``m`` float32 normals of :func:`crossbar._normals.fill_normals` with
    key ``derive_key(seed, k B + b)``, drawn into a row buffer that stays in L1 (no (T, B, m)
    normals buffer); then noise as :func:`_noise_row_bm` (the sums of
    :func:`noise_adc_accumulate`, except that the general read noise's ``sqrt(v) z`` is
    formed in the read's dtype), ADC, scale and accumulation as :func:`_adc_row_bm` (the
    float64 products of :func:`adc_accumulate` associated for speed).
    So a row's normals depend on (seed, tile, row, m) only, not on how the others were drawn.

    Args:
        parts, var, row_terms, col_terms, scale, adc, acc, row_scale: as :func:`noise_adc_tiles`.
        seed: the call's seed (int in [0, 2^63)).

    Returns:
        The number of saturated conversions over all tiles.
    """
    nt, nb, m = parts.shape
    dense = var.shape[0] > 0
    single = parts.itemsize == 4 and var.itemsize == 4   # a float32 read (a compile-time constant)
    u = np.empty(m)
    f = np.empty(m)
    f32s = np.empty(m, np.float32)
    n_clip = np.zeros(m, np.int32)
    z = np.empty(m, np.float32)
    s = np.uint64(seed)
    clipped = 0
    for k in range(nt):
        p = parts[k]
        vk = var[k:k + 1] if dense else var
        vd = var[k] if dense else p   # the dense term as a C array (p: a placeholder, unused)
        nd = 1 if dense else 0
        rows = row_terms[k]
        cols = col_terms[k]
        kin = _adc_factors(adc, scale[k], f)
        first = k == 0
        last = k == nt - 1
        common = dense and rows.shape[0] == 0 and adc[0] and adc[1] > 0 and adc[3]
        if common and single:
            for j in range(m):
                f32s[j] = _f32(f[j])
            for b in range(nb):
                fill_normals(z, derive_key(s, np.uint64(k * nb + b)))
                _dense_quantised_row32(p, vd, z, b, _f32(kin), _f32(adc[1]), f32s, acc, first, last,
                                       _f32(row_scale[b]), n_clip)
            continue
        for b in range(nb):
            fill_normals(z, derive_key(s, np.uint64(k * nb + b)))
            if common:  # the general read noise into a quantising, clipping ADC: the same arithmetic, fewer passes
                clipped += _dense_quantised_row(p, vd, z, b, kin, f64(adc[1]), f, acc, first, last,
                                                f64(row_scale[b]), u)
            else:
                _noise_row_bm(p, z, b, vd, vk, nd, rows, cols, kin, u)
                clipped += _adc_row_bm(u, b, adc, f, acc, first, last, f64(row_scale[b]))
    for j in range(m):
        clipped += n_clip[j]
    return clipped


@njit(**_JIT)
def bit_slices(xn, levels, bits, k, out, out_sq, sq):
    """Bit-serial inputs: the DAC codes of ``xn`` cut into slices of ``k`` bits, least
    significant first, in one pass (see ``ProgrammedArray._bit_slices`` for the physics).

    ``q = rint(xn L) mod 2^bits`` (two's complement); slice ``s`` holds ``d_s = (q >> k s) mod
    2^w`` (w = min(k, bits - k s)), the top slice signed; ``out[s B + b, i] = d_s / M_s``
    (float64 division, rounded to ``out``'s dtype; M_s = 2^w - 1, or 2^(w-1) on top) and,
    when ``sq``, ``out_sq[s B + b, i] = out[s B + b, i]**2`` in ``out``'s dtype.

    Args:
        xn: (B, n) DAC outputs (multiples of 1 / L). levels: L. bits: DAC bits. k: slice bits.
        out, out_sq: (S B, n) results, S = ceil(bits / k), slice-major.
    """
    nb, n = xn.shape
    n_sl = (bits + k - 1) // k
    wrap = (1 << bits) - 1
    q = np.empty(n, np.int64)
    for b in range(nb):
        for i in range(n):
            q[i] = np.int64(np.rint(f64(xn[b, i]) * levels)) & wrap
        for s in range(n_sl):  # straight-line passes over one row (vectorised)
            width = min(k, bits - k * s)
            shift = k * s
            mask = (1 << width) - 1
            r = s * nb + b
            if s == n_sl - 1:
                half = 1 << (width - 1)
                inv = f64(half)
                for i in range(n):
                    d = np.int32((q[i] >> shift) & mask)
                    d = d - (1 << width) if d >= half else d
                    out[r, i] = f64(d) / inv
            else:
                inv = f64(mask)
                for i in range(n):
                    out[r, i] = f64(np.int32((q[i] >> shift) & mask)) / inv
            if sq:
                for i in range(n):
                    o = out[r, i]
                    out_sq[r, i] = o * o


@njit(**_JIT)
def shift_add(acc, coef, row_scale, y):
    """Shift-and-add of bit-serial reads: ``y[b, j] = (sum_s coef[s] acc[s B + b, j]) row_scale[b]``,
    in the dtype of the arrays, summed in slice order (``acc[b] coef[0]``, then ``+ coef[s] acc[s B + b]``).

    Args:
        acc: (S B, m) the reads of the S slices, slice-major. coef: (S,) weights of the slices.
        row_scale: (B,). y: (B, m) result.
    """
    nb, m = y.shape
    n_sl = coef.shape[0]
    for b in range(nb):
        rs = row_scale[b]
        c0 = coef[0]
        for j in range(m):
            y[b, j] = acc[b, j] * c0
        for s in range(1, n_sl):
            cs = coef[s]
            r = s * nb + b
            for j in range(m):
                y[b, j] = y[b, j] + cs * acc[r, j]
        for j in range(m):
            y[b, j] = y[b, j] * rs


@njit(**_JIT)
def add_scaled(y, z, sigma):
    """``y += sigma * z`` in place (the paper's output noise on the digital path)."""
    nb, m = y.shape
    for b in range(nb):
        for j in range(m):
            y[b, j] += sigma * z[b, j]


@njit(**_JIT)
def mean_square(y):
    """Mean of squares of all elements: squares in ``y``'s dtype, summed in float64."""
    nb, m = y.shape
    s = 0.0
    for b in range(nb):
        for j in range(m):
            v = float(y[b, j])
            s += v * v
    return s / (nb * m)


@njit(**_JIT)
def mean_square_tiles(parts, scale, row_scale):
    """Mean square of ``y0[b, j] = row_scale[b] sum_t scale[t, j] parts[t, b, j]`` (products
    ``scale * parts`` in the inputs' dtype, sums and the rest in float64)."""
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
        dac = (True, 1.0, 127, True)
        adc = (True, 127, 12.0, True)
        dac_rows(x, dac, 1.0, o, r)
        dac_rows_squares(x, dac, 1.0, o, o.copy(), r)
        dac_rows_tile_sumsq(x, dac, 1.0, o, r, bounds, np.empty((1, 2), dt))
        s = np.ones(3, dt)
        adc_accumulate(x, s, adc, o, True, True, r)
        noise_adc_accumulate(x, x, x[None], r[None], s[None], s, adc, o, True, True, r)
        noise_adc_accumulate(x, x, np.empty((0, 2, 3), dt), np.empty((0, 2), dt), np.empty((0, 3), dt), s, adc, o,
                             False, False, r)
        # the read pipeline's layouts: dense term or none; rank-one terms as C arrays or (T, 1, .) views
        parts, s2 = x[None], s[None]
        for var in (x[None], np.empty((0, 2, 3), dt)):
            for rows, cols in ((np.empty((1, 0, 2), dt), np.empty((1, 0, 3), dt)), (r[None, None], s2[:, None, :]),
                               (np.ones((1, 2, 2), dt), np.ones((1, 2, 3), dt))):
                noise_adc_tiles(parts, 1, var, rows, cols, s2, adc, o, r, _KN, _WN, _FN)
        add_scaled(o, x, 0.5)
        sl = np.empty((8, 3), dt)
        bit_slices(x, 127, 8, 2, sl, sl.copy(), True)
        shift_add(sl, np.ones(4, dt), r, np.empty((2, 3), dt))
        mean_square(x)
        mean_square_tiles(x[None], s[None], r)
        for gen in GENERATORS:
            standard_normal(np.random.default_rng(0), o, gen)
        for var in (x[None], np.empty((0, 2, 3), dt)):
            noise_adc_tiles_bm(parts, 1, var, np.empty((1, 0, 2), dt), np.empty((1, 0, 3), dt), s2, adc, o, r)
            noise_adc_tiles_bm(parts, 1, var, r[None, None], s2[:, None, :], s2, adc, o, r)
            noise_adc_tiles_bm(parts, 1, var, np.ones((1, 2, 2), dt), np.ones((1, 2, 3), dt), s2, adc, o, r)


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
def _normals(out, state, kn, wn, fn):
    """Fill the 1-D array ``out`` with the next standard normals of the stream at ``state``
    (ziggurat); returns the state after them."""
    n = out.shape[0]
    for k in range(n):
        state, u = _splitmix64(state)
        iz = int(u & np.uint64(127))
        hz = np.int64(np.int32(np.uint32(u >> np.uint64(32))))
        if abs(hz) < kn[iz]:
            out[k] = hz * wn[iz]
            continue
        while True:  # the slow path, ~3 % of draws
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
    return state


@njit(**_JIT)
def fill_normal(out, seed, kn, wn, fn):
    """Fill the 1-D array ``out`` with standard normals (ziggurat); same seed, same numbers."""
    _normals(out, np.uint64(seed), kn, wn, fn)


#: bit generators whose ``random_raw()`` is the 64-bit draw ``Generator.integers`` consumes
_RAW64 = (np.random.SFC64, np.random.PCG64, np.random.PCG64DXSM, np.random.Philox)


def normal_seed(rng: np.random.Generator) -> int:
    """The seed of one call's normal stream, drawn from ``rng``: ``rng.integers(0, 2**63)``.

    For that range numpy's bounded draw (Lemire's method) is exactly the next 64-bit output
    shifted right by one; where ``random_raw()`` is that output (the 64-bit bit generators
    listed in ``_RAW64``) it is taken directly, 6x faster (0.5 us instead of 3 us); the
    same number and the same generator state either way (tested).
    """
    bg = rng.bit_generator
    if type(bg) in _RAW64:
        return int(bg.random_raw()) >> 1
    return int(rng.integers(0, 1 << 63))


#: the generators :func:`standard_normal` knows (``ArrayConfig.normal_generator``)
GENERATORS = ("boxmuller", "legacy")


def standard_normal(rng: np.random.Generator, out: np.ndarray, generator: str = "boxmuller") -> None:
    """Fill ``out`` (any shape, C-contiguous, float32 or float64) with standard normals seeded
    from ``rng``: the generator of the read's short-term noise (one draw from ``rng``,
    :func:`normal_seed`, seeds the call; exported as ``crossbar.standard_normal``).

    ``generator="boxmuller"`` (the default, ``ArrayConfig.normal_generator``): the whole
    buffer (flattened) is one fill of :func:`crossbar._normals.fill_normals` with key
    ``derive_key(seed, 0)`` (float32 normals; a float64 ``out`` gets them widened).
    ``"legacy"``: the splitmix64/ziggurat stream of :func:`fill_normal` seeded with ``seed``
    (the numbers of results made before 2026-11-30).

    Raises:
        ValueError: ``out`` is not C-contiguous or not writeable (``reshape(-1)`` would fill
            a copy and leave ``out`` as it was), not float32/float64, or an unknown generator.
    """
    check_fillable("out", out)
    if out.dtype not in (np.float32, np.float64):
        raise ValueError(f"out must be float32 or float64, got {out.dtype}")
    if generator not in GENERATORS:
        raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")
    seed = normal_seed(rng)
    if generator == "legacy":
        fill_normal(out.reshape(-1), seed, _KN, _WN, _FN)
    else:
        fill_standard_normal(out, derive_key(np.uint64(seed), np.uint64(0)))


def check_fillable(name: str, a: np.ndarray) -> None:
    """Raise ValueError unless ``a`` is a C-contiguous, writeable array (a buffer filled in place)."""
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a C-contiguous, writeable array to be filled in place, got "
                         f"shape {a.shape}, strides {a.strides}, writeable={a.flags.writeable}")


# ---------------------------------------------------------------------------------------
# Dense symmetric elimination (IR drop's nested dissection, crossbar.irdrop): small
# matrices in large batches, where a BLAS call per matrix costs more than the flops.


@njit(**_JIT)
def schur_tail(m, k):
    """Eliminate the last ``n - k`` nodes of every symmetric matrix ``m[b]`` in place.

    Gaussian elimination without pivoting on the lower triangle (the matrices are nodal
    conductance matrices: symmetric, diagonally dominant on the eliminated nodes), pivots
    taken from the last node backwards. Afterwards ``m[b, :k, :k]`` (both triangles) is the
    Schur complement ``M_kk - M_ke M_ee^-1 M_ek``; the rest of ``m[b]`` is scratch.

    Returns:
        0, or ``1 + b`` for the first matrix ``b`` that met a pivot that is not positive.
    """
    nb, n = m.shape[0], m.shape[1]
    f = np.empty(n)
    for b in range(nb):
        a = m[b]
        for p in range(n - 1, k - 1, -1):
            piv = a[p, p]
            if not piv > 0.0:
                return b + 1
            inv = 1.0 / piv
            for j in range(p):
                f[j] = a[p, j]
            for i in range(p):
                fi = f[i] * inv
                if fi != 0.0:
                    for j in range(i + 1):
                        a[i, j] -= fi * f[j]
        for i in range(k):
            for j in range(i):
                a[j, i] = a[i, j]
    return 0
