"""numba kernel of programming a differential pair array and preparing its first read, in one pass.

Kept apart from :mod:`crossbar._kernels` (the read kernels): :func:`program_pairs` is the
arithmetic of :func:`crossbar.array.program` (mapping to G+/G-, optional quantisation,
programming noise, clip to the device range) followed by the read state of
:meth:`crossbar.ProgrammedArray.prepare` at ``t_s = 0`` (normalised conductance
difference and per-cell read-noise variance), cell by cell without temporaries, with the
programming normals given or drawn row by row inside (the ``"boxmuller"`` generator,
:mod:`crossbar._normals`). It does
the same float64 operations in the same order as the numpy code (no fused multiply-add:
``fastmath`` off), so given the same normals it gives the same numbers; the only libm
call is ``pow`` (PCM read law), as numpy's ``power`` on machines without SVML (AVX-512).

The device and its laws travel as plain tuples, unpacked by name on the first line of the kernel:
  device = (g_min, g_max, step): range in uS, quantisation step in uS (0: none)
  prog = (kind, x, coeffs, lo, hi): kind 0 none, 1 poly; x 0 "g_us", 1 "g_norm";
         lo/hi NaN for none (see :class:`crossbar.config.Law`)
  read = (kind, x, coeffs, lo, hi, growth, q_below): kind 0 none, 1 poly (of G), 2 pcm_read
         with coeffs (c, a, q_max), growth = sqrt(max(ln((t + t_read) / (2 t_read)), 0)) and
         q_below as in :func:`_pcm_q` (-1: always compute the power)
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._normals import derive_key, fill_normals

_JIT = dict(cache=True, nogil=True, fastmath=False, boundscheck=False)


@njit(inline="always", **_JIT)
def _poly_law(g, x, coeffs, lo, hi, g_max):
    """``Law(kind="poly")`` at one conductance: Horner as ``crossbar.config._polyval``, then the clip."""
    xv = g if x == 0 else g / g_max
    n = coeffs.shape[0]
    v = coeffs[n - 1]
    for k in range(n - 2, -1, -1):
        v = v * xv
        v = v + coeffs[k]
    if not math.isnan(lo):
        v = max(v, lo)
    if not math.isnan(hi):
        v = min(v, hi)
    return v


@njit(inline="always", **_JIT)
def _poly_law_row(g, n, x, coeffs, lo, hi, g_max, xb, out):
    """:func:`_poly_law` of ``g[:n]`` into ``out[:n]`` (the same operations), one coefficient
    at a time over the row so that the loops vectorise; ``xb``: a work row."""
    if x == 0:
        for j in range(n):
            xb[j] = g[j]
    else:
        for j in range(n):
            xb[j] = g[j] / g_max
    nc = coeffs.shape[0]
    top = coeffs[nc - 1]
    for j in range(n):
        out[j] = top
    for k in range(nc - 2, -1, -1):
        ck = coeffs[k]
        for j in range(n):
            v = out[j] * xb[j]
            out[j] = v + ck
    if not math.isnan(lo):
        for j in range(n):
            out[j] = max(out[j], lo)
    if not math.isnan(hi):
        for j in range(n):
            out[j] = min(out[j], hi)


@njit(**_JIT)
def _pcm_q(q, coeffs, q_below, idx, vals):
    """In place, ``q <- min(c / max(q, 1e-3)^a, q_max)`` for normalised conductances ``q``
    (``Law(kind="pcm_read")``'s factor). Below ``q_below`` (a normalised conductance where
    ``c / q^a`` exceeds ``q_max`` by far more than rounding; -1: none) the minimum is
    ``q_max`` without computing the power: the same number. The cells that need the power
    are gathered first (``idx``, ``vals``: work buffers at least as long as ``q``), so that
    the ``pow`` calls run in a loop without branches."""
    c, a, q_max = coeffs[0], coeffs[1], coeffs[2]
    n = q.shape[0]
    m = 0
    for k in range(n):
        v = max(q[k], 1e-3)
        idx[m] = k
        vals[m] = v
        q[k] = q_max
        m += v >= q_below
    for k in range(m):
        vals[k] = vals[k] ** a
    for k in range(m):
        v = c / vals[k]
        q[idx[k]] = min(v, q_max)


@njit(inline="always", **_JIT)
def _targets_row(w, i, tile, scales, g_min, dg, step, xb, tp, tm):
    """The target conductances of crossbar row ``i`` (in row tile ``tile``) into ``tp``/``tm``:
    mapping and quantisation (see :func:`program_pairs`); ``xb``: a work row."""
    n_out = w.shape[0]
    for j in range(n_out):
        xb[j] = np.float64(w[j, i])
    for j in range(n_out):
        wn = xb[j] / scales[tile, j]
        tp[j] = g_min + dg * max(wn, 0.0)
        tm[j] = g_min + dg * max(-wn, 0.0)
    if step > 0.0:
        for j in range(n_out):
            tp[j] = g_min + math.floor((tp[j] - g_min) / step + 0.5) * step
            tm[j] = g_min + math.floor((tm[j] - g_min) / step + 0.5) * step


@njit(inline="always", **_JIT)
def _noisy_row(tp, tm, zp, zm, prog, g_min, g_max, xb, sg, gpi, gmi):
    """``G = clip(G_target + sigma_prog(G_target) z, g_min, g_max)`` of one row's pairs (the
    normals ``zp``, ``zm`` of G+ and G-, float32 or float64, are widened to float64)."""
    p_kind, p_x, p_c, p_lo, p_hi = prog
    n_out = tp.shape[0]
    _poly_law_row(tp, n_out, p_x, p_c, p_lo, p_hi, g_max, xb, sg)
    for j in range(n_out):
        v = sg[j] * np.float64(zp[j])
        gpi[j] = min(max(tp[j] + v, g_min), g_max)
    _poly_law_row(tm, n_out, p_x, p_c, p_lo, p_hi, g_max, xb, sg)
    for j in range(n_out):
        v = sg[j] * np.float64(zm[j])
        gmi[j] = min(max(tm[j] + v, g_min), g_max)


@njit(inline="always", **_JIT)
def _noiseless_row(tp, tm, g_min, g_max, gpi, gmi):
    """``G = clip(G_target, g_min, g_max)`` of one row's pairs (no programming law)."""
    for j in range(tp.shape[0]):
        gpi[j] = min(max(tp[j], g_min), g_max)
        gmi[j] = min(max(tm[j], g_min), g_max)


@njit(inline="always", **_JIT)
def _difference_row(gpi, gmi, dg, gni):
    """``gn = (G+ - G-) / dg`` of one row."""
    for j in range(gpi.shape[0]):
        gni[j] = (gpi[j] - gmi[j]) / dg


@njit(inline="always", **_JIT)
def _read_variance(gp, gm, read, g_max, dg, bounds, var):
    """The read-noise variance of every cell at t = 0 into ``var`` (see :func:`program_pairs`),
    one input row at a time (work rows in cache; branch-free loops); returns (any variance
    > 0, every tile's variance the same down each of its columns) on the float64 variances."""
    r_kind, r_x, r_c, r_lo, r_hi, growth, q_below = read
    n_in, n_out = gp.shape
    q = np.empty(2 * n_out)
    idx = np.empty(2 * n_out, np.int64)
    vals = np.empty(2 * n_out)
    vrow = np.empty(n_out)
    xb = np.empty(n_out)
    sg = np.empty(n_out)
    sh = np.empty(n_out)
    first = np.empty(n_out)   # the float64 variance of each column in the first row of the tile
    n_var = 0                 # cells with a variance > 0
    n_diff = 0                # cells whose variance differs from their column's in the tile's first row
    tile = 0
    for i in range(n_in):
        if i == bounds[tile + 1]:
            tile += 1
        gpi, gmi = gp[i], gm[i]
        if r_kind == 2:
            for j in range(n_out):
                q[j] = abs(gpi[j]) / g_max
                q[n_out + j] = abs(gmi[j]) / g_max
            _pcm_q(q, r_c, q_below, idx, vals)
            for j in range(n_out):
                sp = abs(gpi[j]) * q[j]
                sp = sp * growth
                sm = abs(gmi[j]) * q[n_out + j]
                sm = sm * growth
                sp = sp / dg
                sm = sm / dg
                vrow[j] = sp * sp + sm * sm
        else:
            _poly_law_row(gpi, n_out, r_x, r_c, r_lo, r_hi, g_max, xb, sg)
            _poly_law_row(gmi, n_out, r_x, r_c, r_lo, r_hi, g_max, xb, sh)
            for j in range(n_out):
                sp = sg[j] / dg
                sm = sh[j] / dg
                vrow[j] = sp * sp + sm * sm
        vi = var[i]
        for j in range(n_out):
            vi[j] = vrow[j]
            n_var += vrow[j] != 0.0
        if i == bounds[tile]:
            for j in range(n_out):
                first[j] = vrow[j]
        else:
            for j in range(n_out):
                n_diff += vrow[j] != first[j]
    return n_var > 0, n_diff == 0


@njit(**_JIT)
def program_pairs(w, scales, z, seed, device, prog, read, bounds, gp, gm, gn, var):
    """Program weights onto G+/G- pairs and prepare the read at t = 0, per cell.

    For every cell (row i = input in row tile k, column j = output), with the normalised
    weight ``wn = w[j, i] / scales[k, j]`` in [-1, 1] (as ``crossbar.array._normalised_weights``)::

        G+_target = g_min + dg max(wn, 0),  G-_target = g_min + dg max(-wn, 0)
        (quantised: g_min + floor((G - g_min) / step + 0.5) step when step > 0)
        G = clip(G_target + sigma_prog(G_target) z, g_min, g_max)   (z[0] for G+, z[1] for G-)
        gn = (G+ - G-) / dg,   var = (sigma_read(G+) / dg)^2 + (sigma_read(G-) / dg)^2

    with sigma_read(G) = |G| min(c / max(|G| / g_max, 1e-3)^a, q_max) growth for the PCM
    law (``Law.__call__`` at G(t) = G_prog, the same operations).

    Args:
        w: (out, in) weights, float32 or float64 (read as float64, exactly).
        scales: (n_tiles, out) float64 positive scales (:func:`column_scales`).
        z: (2, in, out) float64 standard normals (G+ first), or an empty (2, 0, 0) array to
            draw them inside from the ``"boxmuller"`` generator: crossbar row ``i`` takes the
            ``2 out`` float32 normals of :func:`crossbar._normals.fill_normals` with key
            ``derive_key(seed, i)`` (the first ``out`` for G+, the next ``out`` for G-), drawn
            into a row buffer (no (2, in, out) array). Unused without a programming law.
        seed: the seed of the drawn normals (int in [0, 2^63)); unused when ``z`` is given.
        device, prog, read: the device range and its laws (module docstring).
        bounds: (n_tiles + 1,) int64 row-tile bounds.
        gp, gm: (in, out) float64 outputs, the programmed conductances.
        gn: (in, out) output, float32 or float64: the normalised difference.
        var: (in, out) output in gn's dtype: the read-noise variance (left as is without a read law).

    Returns:
        (any variance > 0, every tile's variance the same down each of its columns), both
        evaluated on the float64 variances (False, False without a read law).
    """
    g_min, g_max, step = device
    n_out, n_in = w.shape
    dg = g_max - g_min
    # one input row (crossbar row) at a time, in work rows, so that the loops vectorise
    tp = np.empty(n_out)
    tm = np.empty(n_out)
    xb = np.empty(n_out)
    sg = np.empty(n_out)
    given = z.shape[1] > 0
    zrow = np.empty(0 if given else 2 * n_out, np.float32)
    s = np.uint64(seed)
    tile = 0
    for i in range(n_in):
        if i == bounds[tile + 1]:
            tile += 1
        _targets_row(w, i, tile, scales, g_min, dg, step, xb, tp, tm)
        if prog[0] == 1 and given:
            _noisy_row(tp, tm, z[0, i], z[1, i], prog, g_min, g_max, xb, sg, gp[i], gm[i])
        elif prog[0] == 1:
            fill_normals(zrow, derive_key(s, np.uint64(i)))
            _noisy_row(tp, tm, zrow[:n_out], zrow[n_out:], prog, g_min, g_max, xb, sg, gp[i], gm[i])
        else:
            _noiseless_row(tp, tm, g_min, g_max, gp[i], gm[i])
        _difference_row(gp[i], gm[i], dg, gn[i])
    if read[0] == 0:
        return False, False
    return _read_variance(gp, gm, read, g_max, dg, bounds, var)


@njit(**_JIT)
def column_scales(w, bounds, scales):
    """The per-column scales of each row tile, as ``crossbar.array._normalised_weights`` with
    ``scale="column"`` and no clipping: ``scales[k, j] = max_i |w[j, i]|`` over the rows i of
    tile k (1 where that is 0).

    Args:
        w: (out, in) weights, float32 or float64. bounds: (n_tiles + 1,) int64 row-tile bounds.
        scales: (n_tiles, out) float64 output.
    """
    n_out = w.shape[0]
    for k in range(bounds.shape[0] - 1):
        for j in range(n_out):
            s = 0.0
            for i in range(bounds[k], bounds[k + 1]):
                s = max(s, abs(np.float64(w[j, i])))
            scales[k, j] = s if s != 0.0 else 1.0


def warm() -> None:
    """Compile (or load from cache) :func:`program_pairs` for float32 and float64 outputs."""
    z = np.zeros((2, 2, 3))
    bounds = np.array([0, 2], np.int64)
    c = np.array([0.1, 0.01])
    for dt in (np.float32, np.float64):
        w = np.ones((3, 2), dt)
        scales = np.ones((1, 3))
        column_scales(w, bounds, scales)
        args = ((0.0, 25.0, 0.0), (1, 1, c, 0.0, math.nan),
                (2, 0, np.array([0.0088, 0.65, 0.2]), math.nan, math.nan, 1.0, 0.008), bounds,
                np.empty((2, 3)), np.empty((2, 3)), np.empty((2, 3), dt), np.empty((2, 3), dt))
        program_pairs(w, scales, z, 0, *args)
        program_pairs(w, scales, np.empty((2, 0, 0)), 1, *args)
