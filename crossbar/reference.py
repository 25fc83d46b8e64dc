"""Slow, obvious float64 numpy twins of the kernels in :mod:`crossbar._kernels`, for tests.

Each function computes the same thing as its kernel, written for clarity, in float64.
Rounding convention everywhere: round half up, ``floor(v + 0.5)``.
"""
from __future__ import annotations

import numpy as np


def quantize(v: np.ndarray, levels: int, clip: bool) -> np.ndarray:
    """Symmetric quantiser on [-1, 1]: ``floor(clip(v, -1, 1) * L + 0.5) / L`` (L=0: none)."""
    v = np.asarray(v, dtype=np.float64)
    if clip:
        v = np.clip(v, -1.0, 1.0)
    if levels > 0:
        v = np.floor(v * levels + 0.5) / levels
    return v


def dac(x: np.ndarray, inv_range: np.ndarray, levels: int, clip: bool) -> np.ndarray:
    """DAC in normalised units: ``x_n[b, i] = quantize(x[b, i] * inv_range[b])``."""
    x = np.asarray(x, dtype=np.float64)
    return quantize(x * np.asarray(inv_range, dtype=np.float64)[:, None], levels, clip)


def adc_accumulate(p, scale, adc, acc, first, last, row_scale):
    """One noiseless tile: digitise, scale, accumulate; on the last tile apply the row scale.

    ``u = R * quantize(p / R)`` when the ADC is on (``adc = (on, levels, R, clip)``);
    ``acc + scale[j] * u`` (``scale[j] * u`` on the first tile); times ``row_scale[b]`` on the last.
    """
    on, levels, full_range, clip = adc
    u = np.asarray(p, dtype=np.float64)
    if on:
        u = full_range * quantize(u / full_range, levels, clip)
    contrib = np.asarray(scale, dtype=np.float64)[None, :] * u
    out = contrib if first else np.asarray(acc, dtype=np.float64) + contrib
    if last:
        out = out * np.asarray(row_scale, dtype=np.float64)[:, None]
    return out


def noise_adc_accumulate(p, z, var, row_terms, col_terms, scale, adc, acc, first, last, row_scale):
    """One tile with noise: ``u = p + sqrt(v) z`` with
    ``v = sum_d var[d] + sum_r outer(row_terms[r], col_terms[r])``, then :func:`adc_accumulate`."""
    p = np.asarray(p, dtype=np.float64)
    v = np.zeros_like(p)
    for d in range(np.shape(var)[0]):
        v = v + np.asarray(var[d], dtype=np.float64)
    for r in range(np.shape(row_terms)[0]):
        v = v + np.outer(np.asarray(row_terms[r], dtype=np.float64), np.asarray(col_terms[r], dtype=np.float64))
    u = p + np.sqrt(v) * np.asarray(z, dtype=np.float64)
    return adc_accumulate(u, scale, adc, acc, first, last, row_scale)


def mean_square(y: np.ndarray) -> float:
    """Mean of the squares of all elements."""
    y = np.asarray(y, dtype=np.float64)
    return float(np.mean(y * y))


def output_noise_sigma(y0: np.ndarray, sigma: float, convention: str) -> float:
    """The standard deviation added to each output for the paper's three conventions."""
    if convention == "absolute":
        return float(sigma)
    ms = mean_square(y0)
    if convention == "relative":
        return float(sigma) * float(np.sqrt(ms))
    return float(np.sqrt(ms / 10.0 ** (float(sigma) / 10.0)))


def per_cell_read(x_n, gn, sig_p, sig_m, z_p, z_m):
    """Per-cell read: ``y[b, j] = sum_i x_n[b, i] (gn[i, j] + sig_p[i, j] z_p[b, i, j] - sig_m[i, j] z_m[b, i, j])``."""
    x_n = np.asarray(x_n, dtype=np.float64)
    g = np.asarray(gn, dtype=np.float64)[None] + np.asarray(sig_p, dtype=np.float64)[None] * z_p \
        - np.asarray(sig_m, dtype=np.float64)[None] * z_m
    return np.einsum("bi,bij->bj", x_n, g)


def mvm_clean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The noiseless product ``x @ w.T`` in float64."""
    return np.asarray(x, dtype=np.float64) @ np.asarray(w, dtype=np.float64).T


def noiseless_pipeline(x, gn, scales, tile_rows, dac_levels, dac_range, dac_clip, dac_on,
                       adc_levels, adc_range, adc_clip, adc_on, alpha=1.0):
    """The whole read without short-term noise, one tile at a time, in float64.

    ``y[b, j] = alpha r sum_t scales[t, j] ADC(sum_{i in t} DAC(x[b, i] / r) gn[i, j])`` with
    ``gn = (G+(t) - G-(t)) / dg`` in crossbar layout (in, out) and ``r`` the fixed DAC range.
    """
    x = np.asarray(x, dtype=np.float64)
    n_in = x.shape[1]
    if dac_on:
        r = float(dac_range)
        xn = quantize(x / r, dac_levels, dac_clip)
    else:
        r, xn = 1.0, x
    size = n_in if tile_rows is None else tile_rows
    y = np.zeros((x.shape[0], gn.shape[1]))
    for k, a in enumerate(range(0, n_in, size)):
        part = xn[:, a:a + size] @ np.asarray(gn, dtype=np.float64)[a:a + size]
        if adc_on:
            part = adc_range * quantize(part / adc_range, adc_levels, adc_clip)
        y += np.asarray(scales, dtype=np.float64)[k] * part
    return alpha * r * y
