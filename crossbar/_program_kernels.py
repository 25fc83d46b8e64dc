"""numba kernel of programming a differential pair array and preparing its first read, in one pass.

Kept apart from :mod:`crossbar._kernels` (the read kernels): :func:`program_pairs` is the
arithmetic of :func:`crossbar.array.program` (mapping to G+/G-, optional quantisation,
programming noise, clip to the device range) followed by the read state of
:meth:`crossbar.ProgrammedArray.prepare` at ``t_s = 0`` (normalised conductance
difference and per-cell read-noise variance), cell by cell without temporaries. It does
the same float64 operations in the same order as the numpy code (no fused multiply-add:
``fastmath`` off), so given the same normals it gives the same numbers; the only libm
call is ``pow`` (PCM read law), as numpy's ``power`` on machines without SVML (AVX-512).

Laws travel as plain tuples, unpacked by name on the first line of the kernel:
  prog = (kind, x, coeffs, lo, hi): kind 0 none, 1 poly; x 0 "g_us", 1 "g_norm";
         lo/hi NaN for none (see :class:`crossbar.config.Law`)
  read = (kind, x, coeffs, lo, hi, growth): kind 0 none, 1 poly (of G), 2 pcm_read with
         coeffs (c, a, q_max) and growth = sqrt(max(ln((t + t_read) / (2 t_read)), 0))
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

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


@njit(**_JIT)
def program_pairs(w, scales, z, g_min, g_max, step, prog, read, q_below, bounds, gp, gm, gn, var):
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
        z: (2, in, out) float64 standard normals (G+ first), unused without a programming law.
        g_min, g_max: device range, uS. step: quantisation step in uS (0: none).
        prog, read: the laws (module docstring).
        q_below: see :func:`_pcm_q` (-1: always compute the power).
        bounds: (n_tiles + 1,) int64 row-tile bounds.
        gp, gm: (in, out) float64 outputs, the programmed conductances.
        gn: (in, out) output, float32 or float64: the normalised difference.
        var: (in, out) output in gn's dtype: the read-noise variance (left as is without a read law).

    Returns:
        (any variance > 0, every tile's variance the same down each of its columns), both
        evaluated on the float64 variances (False, False without a read law).
    """
    p_kind, p_x, p_c, p_lo, p_hi = prog
    r_kind, r_x, r_c, r_lo, r_hi, growth = read
    n_out, n_in = w.shape
    dg = g_max - g_min
    tile = 0
    for i in range(n_in):
        if i == bounds[tile + 1]:
            tile += 1
        for j in range(n_out):
            wn = np.float64(w[j, i]) / scales[tile, j]
            tp = g_min + dg * max(wn, 0.0)
            tm = g_min + dg * max(-wn, 0.0)
            if step > 0.0:
                tp = g_min + math.floor((tp - g_min) / step + 0.5) * step
                tm = g_min + math.floor((tm - g_min) / step + 0.5) * step
            p = tp
            m = tm
            if p_kind == 1:
                p = p + _poly_law(tp, p_x, p_c, p_lo, p_hi, g_max) * z[0, i, j]
                m = m + _poly_law(tm, p_x, p_c, p_lo, p_hi, g_max) * z[1, i, j]
            p = min(max(p, g_min), g_max)
            m = min(max(m, g_min), g_max)
            gp[i, j] = p
            gm[i, j] = m
            gn[i, j] = (p - m) / dg
    if r_kind == 0:
        return False, False
    # the read-noise variance, a row block of cells at a time (small work buffers, in cache)
    blk = min(n_out, 256)
    q = np.empty(2 * blk)
    idx = np.empty(2 * blk, np.int64)
    vals = np.empty(2 * blk)
    first = np.empty(n_out)   # the float64 variance of each column in the first row of the tile
    any_var = False
    uniform = True
    tile = 0
    for i in range(n_in):
        if i == bounds[tile + 1]:
            tile += 1
        top = i == bounds[tile]
        for j0 in range(0, n_out, blk):
            nb = min(blk, n_out - j0)
            if r_kind == 2:
                for jj in range(nb):
                    q[jj] = abs(gp[i, j0 + jj]) / g_max
                    q[nb + jj] = abs(gm[i, j0 + jj]) / g_max
                _pcm_q(q[:2 * nb], r_c, q_below, idx, vals)
            for jj in range(nb):
                j = j0 + jj
                p = gp[i, j]
                m = gm[i, j]
                if r_kind == 2:
                    sp = abs(p) * q[jj]
                    sp = sp * growth
                    sm = abs(m) * q[nb + jj]
                    sm = sm * growth
                else:
                    sp = _poly_law(p, r_x, r_c, r_lo, r_hi, g_max)
                    sm = _poly_law(m, r_x, r_c, r_lo, r_hi, g_max)
                sp = sp / dg
                sm = sm / dg
                v = sp * sp + sm * sm
                var[i, j] = v
                if v != 0.0:
                    any_var = True
                if top:
                    first[j] = v
                elif v != first[j]:
                    uniform = False
    return any_var, uniform


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
        program_pairs(w, scales, z, 0.0, 25.0, 0.0, (1, 1, c, 0.0, math.nan), (2, 0, np.array([0.0088, 0.65, 0.2]),
                      math.nan, math.nan, 1.0), 0.008, bounds, np.empty((2, 3)), np.empty((2, 3)),
                      np.empty((2, 3), dt), np.empty((2, 3), dt))
