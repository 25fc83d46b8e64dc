"""Program a weight matrix onto a memory-cell array once; read it (noisy MVM) many times.

Physics (all conductances in uS, ``dg = g_max - g_min``):

* Mapping (differential pair, per output j and input i, scale ``s`` per column of a
  tile, per tile or per array)::

      W[j, i] = s (G+[i, j] - G-[i, j]) / dg,   G+ = g_min + dg max(w, 0),  G- = g_min + dg max(-w, 0),
      w = clip(W, +-clip_sigma std(W)) / s,     s = max |clipped W| over the scale group

  then quantised to ``n_levels`` equally spaced states in [g_min, g_max].
* Programming (long-term, drawn once by :func:`program`)::

      G_prog = clip(G_target + offset(G_target) + sigma_prog(G_target) N(0, 1), g_min, g_max)

  then a fraction of cells stuck at g_min, a fraction stuck at g_max (independent per
  cell), and per-cell drift exponents ``nu = |mu_nu(G_target) + sigma_nu(G_target) N(0, 1)|``
  (stuck cells: nu = 0).
* Drift at time ``t_s`` after programming (physical time ``t = t0 + t_s``, aihwkit's
  convention: the first read is at t0)::

      G(t) = G_prog (t / t0)^(-nu)

* Read (short-term, fresh on every :meth:`ProgrammedArray.mvm`): per cell Gaussian noise
  with ``sigma_read(G, t)``. Independent per cell and read, so the partial sum of a
  column is exactly ``y_j + N(0, sum_i x_i^2 (sigma+_ij^2 + sigma-_ij^2) / dg^2)``: the
  fast "output" path draws it at the output (one matmul of x^2 with sigma^2); the
  "per_cell" path draws every cell (reference).
* Periphery: DAC on inputs, one BLAS product per row tile, read noise and the paper's
  output noise on each tile's partial sums, per-tile ADC, digital scale and accumulation
  over tiles, optional global drift compensation.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

from . import _kernels as K
from .config import ArrayConfig

__all__ = ["ProgrammedArray", "program", "mvm", "load_programmed", "as_generator"]

_FLOATS = (np.float32, np.float64)
_EMPTY = {np.dtype(np.float32): np.empty((0, 0), np.float32), np.dtype(np.float64): np.empty((0, 0), np.float64)}
_PER_CELL_CHUNK = 1 << 22  # cells drawn at once on the per-cell path (memory bound)


def as_generator(seed: Any) -> np.random.Generator:
    """An ``np.random.Generator`` from an int, a Generator (used as is) or None (fresh entropy).

    Ints and None get an SFC64 bit generator: on this machine kind it draws float32
    normals about twice as fast as the default PCG64 (measured), and speed matters here.

    Raises:
        ValueError: for any other type or a negative int.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.Generator(np.random.SFC64())
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        return np.random.Generator(np.random.SFC64(int(seed)))
    raise ValueError(f"seed must be a non-negative int, a numpy.random.Generator or None, got {seed!r}")


def _check_matrix(name: str, a: Any, *, ndim: int) -> np.ndarray:
    """Validate a float array at the public boundary; return it as an ndarray (no copy)."""
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"{name} must be array-like, got {type(a).__name__}") from exc
    if a.dtype.kind not in "fiu" or a.dtype == np.float16 or a.dtype.kind == "b":
        raise ValueError(f"{name}.dtype must be float32 or float64, got {a.dtype}")
    if a.dtype.kind in "iu":
        raise ValueError(f"{name}.dtype must be float32 or float64, got {a.dtype} (convert explicitly)")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    # A sum is finite when every element is (fast path); only on overflow or NaN look closer.
    if not np.isfinite(a.sum()) and not np.isfinite(a).all():
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name} must be finite, got {bad} NaN/Inf value(s)")
    return a


def _check_time(t_s: Any) -> float:
    if t_s is None:
        return 0.0
    if isinstance(t_s, bool) or not isinstance(t_s, numbers.Real) or not math.isfinite(float(t_s)) or t_s < 0:
        raise ValueError(f"t_s must be a finite number >= 0 (seconds after programming) or None, got {t_s!r}")
    return float(t_s)


def _levels(bits: int | None) -> int:
    return 0 if bits is None else (1 << (bits - 1)) - 1


def _tile_bounds(n: int, size: int | None) -> list[tuple[int, int]]:
    size = n if size is None else size
    return [(a, min(a + size, n)) for a in range(0, n, size)]


class _ReadState:
    """Everything one read at a given time needs, in one float dtype (cached per (t, dtype))."""

    __slots__ = ("gn", "var", "sig_p", "sig_m", "scale", "inv_s2", "tiles", "alpha")

    def __init__(self, gn, var, sig_p, sig_m, scale, tiles, alpha):
        self.gn = gn            # (in, out): normalised conductance difference (scale folded when one tile)
        self.var = var          # (in, out) read-noise variance in the same units, or None
        self.sig_p = sig_p      # (in, out) per-cell sigmas of G+ / G- in the same units, or None
        self.sig_m = sig_m
        self.scale = scale      # (n_tiles, out) digital scale applied after each tile
        self.inv_s2 = 1.0 / (scale * scale)
        self.tiles = tiles      # list of (row0, row1)
        self.alpha = alpha      # global drift-compensation factor


class ProgrammedArray:
    """A weight matrix programmed onto an array: long-term noise frozen, reads fresh.

    Create with :func:`program`. Holds float64 programmed conductances G+ and G- (laid out
    as the crossbar: rows = inputs, columns = outputs), drift exponents and digital scales.

    Noise classes: long-term (drawn once at programming: programming error, stuck cells,
    drift exponents) and short-term (fresh on every :meth:`mvm`: read noise, output noise).

    Attributes:
        config: the ArrayConfig.
        shape: (out_features, in_features) of the weights.
    """

    def __init__(self, config: ArrayConfig, shape: tuple[int, int], *, weights=None, g_pos=None, g_neg=None,
                 nu_pos=None, nu_neg=None, scales=None, seed_state=None):
        self.config = config
        self.shape = (int(shape[0]), int(shape[1]))
        self._weights = weights          # digital path only: (out, in), float32 or float64
        self._g_pos, self._g_neg = g_pos, g_neg
        self._nu_pos, self._nu_neg = nu_pos, nu_neg
        self._scales = scales            # (n_row_tiles, out) float64
        self._rng = as_generator(None) if seed_state is None else seed_state
        self._cache: dict[tuple[float, str], Any] = {}
        self._digital = weights is not None
        self._row_tiles = _tile_bounds(self.shape[1], config.tile.rows)

    # ------------------------------------------------------------------ properties
    @property
    def in_features(self) -> int:
        """Number of inputs (rows of the crossbar)."""
        return self.shape[1]

    @property
    def out_features(self) -> int:
        """Number of outputs (columns of the crossbar)."""
        return self.shape[0]

    @property
    def is_digital(self) -> bool:
        """True when the array computes exactly x @ W.T plus output noise (ideal, paper)."""
        return self._digital

    def conductances(self, t_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(G+, G-) in uS at ``t_s`` seconds after programming, each (in_features, out_features).

        Raises:
            ValueError: on the digital path (no conductances are modelled) or a bad ``t_s``.
        """
        if self._digital:
            raise ValueError("conductances: this array is digital (ideal device, no periphery); "
                             "no conductances are modelled")
        t = _check_time(t_s)
        return self._drifted(t)

    def __repr__(self) -> str:
        return f"ProgrammedArray(shape={self.shape}, config={self.config!r})"

    # ------------------------------------------------------------------ physics
    def _drifted(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        dev = self.config.device
        if self._nu_pos is None or t == 0.0:
            return self._g_pos, self._g_neg
        factor = math.log((dev.t0_s + t) / dev.t0_s)
        return self._g_pos * np.exp(-self._nu_pos * factor), self._g_neg * np.exp(-self._nu_neg * factor)

    def _read_sigmas(self, t: float, gp_t: np.ndarray, gm_t: np.ndarray):
        dev = self.config.device
        law = dev.read_sigma
        if law is None:
            return None, None
        kw = dict(g_max_us=dev.g_max_us, t_s=dev.t0_s + t, t_read_s=dev.t_read_s)
        if law.kind == "pcm_read":
            return law(self._g_pos, g_t_us=gp_t, **kw), law(self._g_neg, g_t_us=gm_t, **kw)
        return law(gp_t, **kw), law(gm_t, **kw)

    def _state(self, t: float, dtype: np.dtype) -> _ReadState:
        key = (t, dtype.char)
        st = self._cache.get(key)
        if st is not None:
            return st
        cfg = self.config
        dg = cfg.device.g_max_us - cfg.device.g_min_us
        gp, gm = self._drifted(t)
        sp, sm = self._read_sigmas(t, gp, gm)
        gn = (gp - gm) / dg
        n_in, n_out = self.in_features, self.out_features
        scale = self._scales
        if cfg.adc.active:
            tiles = self._row_tiles
            s_cells = None
        else:  # no ADC: tiles only sum, so fold the scales in and do one product
            tiles = [(0, n_in)]
            s_cells = np.empty((n_in, n_out))
            for k, (a, b) in enumerate(self._row_tiles):
                s_cells[a:b] = scale[k]
            gn = gn * s_cells
            scale = np.ones((1, n_out))
        sig_p = sig_m = var = None
        if sp is not None:
            sig_p, sig_m = sp / dg, sm / dg
            if s_cells is not None:
                sig_p, sig_m = sig_p * s_cells, sig_m * s_cells
            var = sig_p * sig_p + sig_m * sig_m
        alpha = self._alpha(t) if cfg.drift_compensation else 1.0
        st = _ReadState(
            np.ascontiguousarray(gn, dtype=dtype),
            None if var is None else np.ascontiguousarray(var, dtype=dtype),
            None if sig_p is None else sig_p.astype(dtype),
            None if sig_m is None else sig_m.astype(dtype),
            np.ascontiguousarray(scale, dtype=dtype), tiles, alpha)
        if len(self._cache) >= 8:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = st
        return st

    def _weights_at(self, t: float) -> np.ndarray:
        """Effective weights (out, in) in float64 without drift compensation."""
        dg = self.config.device.g_max_us - self.config.device.g_min_us
        gp, gm = self._drifted(t)
        w = (gp - gm) / dg
        for k, (a, b) in enumerate(self._row_tiles):
            w[a:b] *= self._scales[k]
        return w.T

    def _alpha(self, t: float) -> float:
        """Global drift compensation: ``alpha = sum_j |y_ref_j| / sum_j |y_j(t)|`` for a full-scale
        all-ones input, y_ref read right after programming (t_s = 0), both noiseless (the
        average of many reads)."""
        if t == 0.0 or self._nu_pos is None:
            return 1.0
        ref = np.abs(self._weights_at(0.0).sum(axis=1)).sum()
        now = np.abs(self._weights_at(t).sum(axis=1)).sum()
        return float(ref / now) if now > 0 else 1.0

    # ------------------------------------------------------------------ public
    def effective_weights(self, t_s: float | None = None) -> np.ndarray:
        """The weights the array holds at ``t_s`` after programming, (out, in), float64, in weight units.

        ``W_eff[j, i] = alpha(t) s (G+(t) - G-(t)) / dg`` (alpha: drift compensation, 1 when
        off). Long-term noise is included, short-term noise and DAC/ADC are not. On the
        digital path this is the programmed weight matrix itself.
        """
        t = _check_time(t_s)
        if self._digital:
            return np.array(self._weights, dtype=np.float64)
        alpha = self._alpha(t) if self.config.drift_compensation else 1.0
        return np.ascontiguousarray(self._weights_at(t)) * alpha

    def mvm(self, x, t_s: float | None = None, seed=None) -> np.ndarray:
        """Noisy matrix-vector products of a batch of inputs: ``y ~ x @ W_eff(t).T`` + noise.

        Short-term noise (read noise with the device law at ``t_s``, the paper's output
        noise) is drawn fresh on every call.

        Args:
            x: (batch, in_features) or (in_features,) inputs, float32 or float64.
            t_s: seconds after programming (None: 0, the first read at t0).
            seed: int, numpy Generator or None (None: the array's own stream, seeded at
                programming, advances on every call).

        Returns:
            (batch, out_features) (or (out_features,)) outputs in weight units, in x's dtype.

        Raises:
            ValueError: wrong shape, dtype, empty or non-finite x, bad t_s or seed.

        Example:
            >>> import numpy as np, crossbar
            >>> arr = crossbar.program(np.eye(3), crossbar.preset("ideal"))
            >>> arr.mvm(np.array([[1.0, 2.0, 3.0]]))
            array([[1., 2., 3.]])
        """
        x = _check_matrix("x", x, ndim=x.ndim if isinstance(x, np.ndarray) and x.ndim in (1, 2) else 2)
        squeeze = x.ndim == 1
        if squeeze:
            x = x[None, :]
        if x.shape[1] != self.in_features:
            raise ValueError(f"x.shape[-1] must equal the array's in_features={self.in_features}, got {x.shape[-1]}")
        if x.dtype not in _FLOATS:
            raise ValueError(f"x.dtype must be float32 or float64, got {x.dtype}")
        t = _check_time(t_s)
        rng = self._rng if seed is None else as_generator(seed)
        y = self._mvm_digital(x, rng) if self._digital else self._mvm_analog(x, t, rng)
        return y[0] if squeeze else y

    # ------------------------------------------------------------------ kernels
    def _output_sigma(self, ms: float) -> float:
        on = self.config.output_noise
        if on.convention == "absolute":
            return float(on.sigma)
        if on.convention == "relative":
            return float(on.sigma) * math.sqrt(ms)
        return math.sqrt(ms / 10.0 ** (on.sigma / 10.0))

    def _mvm_digital(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        w = self._state_digital(x.dtype)
        y = x @ w
        on = self.config.output_noise
        if on.active:
            ms = K.mean_square(y) if on.convention != "absolute" else 0.0
            sigma = self._output_sigma(ms)
            if sigma > 0:
                z = np.empty_like(y)
                K.standard_normal(rng, z)
                K.add_scaled(y, z, sigma)
        return y

    def _state_digital(self, dtype: np.dtype) -> np.ndarray:
        w = self._cache.get(dtype.char)
        if w is None:
            w = self._cache[dtype.char] = np.ascontiguousarray(self._weights.T, dtype=dtype)
        return w

    def _mvm_analog(self, x: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        dt = x.dtype
        st = self._state(t, dt)
        nb = x.shape[0]
        n_out = self.out_features
        empty = _EMPTY[dt]
        # DAC -> normalised inputs x_n and x_n^2
        if cfg.dac.active:
            if cfg.dac.range_mode == "abs_max":
                r = np.abs(x).max(axis=1).astype(dt)
                r[r == 0] = 1
            else:
                r = np.full(nb, cfg.dac.input_range, dt)
            xn = np.empty_like(x)
            want_sq = st.var is not None and cfg.read_noise_path == "output"
            xsq = np.empty_like(x) if want_sq else empty
            K.dac(x, (1.0 / r).astype(dt), _levels(cfg.dac.bits), cfg.dac.clip, xn, xsq)
        else:
            r = np.ones(nb, dt)
            xn = x
            xsq = x * x if st.var is not None and cfg.read_noise_path == "output" else empty
        row_scale = r * dt.type(st.alpha) if st.alpha != 1.0 else r
        # one BLAS product per row tile
        tiles = st.tiles
        nt = len(tiles)
        parts = np.empty((nt, nb, n_out), dt)
        for k, (a, b) in enumerate(tiles):
            if nt == 1:
                np.matmul(xn, st.gn, out=parts[0])
            else:
                np.matmul(xn[:, a:b], st.gn[a:b], out=parts[k])
        # noise variances and standard normals
        on = cfg.output_noise
        if on.active:
            ms = K.mean_square_tiles(parts, st.scale, r) if on.convention != "absolute" else 0.0
            sigma_y = self._output_sigma(ms)
            out_var_b = (sigma_y * sigma_y / nt) / (r.astype(np.float64) ** 2)
        else:
            sigma_y = 0.0
            out_var_b = np.zeros(nb)
        out_var_b = out_var_b.astype(dt)
        has_read = st.var is not None
        noisy = has_read or sigma_y > 0
        if has_read and cfg.read_noise_path == "per_cell":
            self._add_per_cell(xn, st, parts, rng)
            has_read = False
        acc = np.empty((nb, n_out), dt)
        z = np.empty((nt, nb, n_out), dt) if noisy and (has_read or sigma_y > 0) else None
        if z is not None:
            K.standard_normal(rng, z)
        var = np.empty((nb, n_out), dt) if has_read else empty
        adc = cfg.adc
        for k, (a, b) in enumerate(tiles):
            if has_read:
                if nt == 1:
                    np.matmul(xsq, st.var, out=var)
                else:
                    np.matmul(xsq[:, a:b], st.var[a:b], out=var)
            K.noise_adc_accumulate(parts[k], var, empty if z is None else z[k], out_var_b, st.inv_s2[k],
                                   st.scale[k], _levels(adc.bits), float(adc.output_range), adc.clip,
                                   adc.active, acc, k == 0, k == nt - 1, row_scale)
        return acc

    def _add_per_cell(self, xn: np.ndarray, st: _ReadState, parts: np.ndarray, rng: np.random.Generator) -> None:
        """Per-cell read noise: every cell of every read gets its own normal draw (reference path)."""
        nb = xn.shape[0]
        dt = xn.dtype
        for k, (a, b) in enumerate(st.tiles):
            sp, sm = st.sig_p[a:b], st.sig_m[a:b]
            cells = sp.size
            chunk = max(1, _PER_CELL_CHUNK // cells)
            for b0 in range(0, nb, chunk):
                b1 = min(nb, b0 + chunk)
                zp = rng.standard_normal((b1 - b0,) + sp.shape, dtype=dt)
                zm = rng.standard_normal((b1 - b0,) + sm.shape, dtype=dt)
                zp *= sp
                zm *= sm
                zp -= zm
                parts[k, b0:b1] += np.einsum("bi,bij->bj", xn[b0:b1, a:b], zp)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the programmed state (config JSON, conductances, drift exponents, scales) to HDF5."""
        from .io import save_programmed

        save_programmed(self, path)


def program(weights, config: ArrayConfig, seed=None) -> ProgrammedArray:
    """Program a weight matrix onto an array: map, quantise, add long-term noise (drawn once).

    Args:
        weights: (out_features, in_features), like ``torch.nn.Linear.weight``; float32/64.
        config: the ArrayConfig (see :func:`crossbar.preset`).
        seed: int, numpy Generator or None. The same seed gives the same programmed array
            and, when :meth:`ProgrammedArray.mvm` is called without a seed, the same reads.

    Returns:
        The ProgrammedArray.

    Raises:
        ValueError: bad weights (shape, dtype, empty, NaN/Inf), config or seed.

    Example:
        >>> import numpy as np, crossbar
        >>> arr = crossbar.program(np.ones((4, 8)), crossbar.preset("pcm"), seed=0)
        >>> arr.mvm(np.ones((2, 8)), t_s=3600.0).shape
        (2, 4)
    """
    if not isinstance(config, ArrayConfig):
        raise ValueError(f"config must be an ArrayConfig (see crossbar.preset), got {type(config).__name__}")
    w = _check_matrix("weights", weights, ndim=2)
    if w.dtype not in _FLOATS:
        raise ValueError(f"weights.dtype must be float32 or float64, got {w.dtype}")
    rng = as_generator(seed)
    if config.is_digital:
        return ProgrammedArray(config, w.shape, weights=np.array(w), seed_state=rng)
    return _program_analog(np.asarray(w, dtype=np.float64), config, rng)


def _program_analog(w: np.ndarray, config: ArrayConfig, rng: np.random.Generator) -> ProgrammedArray:
    dev, mp = config.device, config.mapping
    n_out, n_in = w.shape
    wt = w.T.copy()  # crossbar layout (in, out)
    if mp.clip_sigma is not None:
        bound = mp.clip_sigma * float(wt.std())
        if bound > 0:
            np.clip(wt, -bound, bound, out=wt)
    row_tiles = _tile_bounds(n_in, config.tile.rows)
    col_tiles = _tile_bounds(n_out, config.tile.cols)
    scales = np.empty((len(row_tiles), n_out))
    absw = np.abs(wt)
    for k, (a, b) in enumerate(row_tiles):
        if mp.scale == "column":
            scales[k] = absw[a:b].max(axis=0)
        elif mp.scale == "tile":
            for c0, c1 in col_tiles:
                scales[k, c0:c1] = absw[a:b, c0:c1].max()
        else:
            scales[k] = absw.max()
    scales[scales == 0] = 1.0
    wn = np.empty_like(wt)
    for k, (a, b) in enumerate(row_tiles):
        wn[a:b] = wt[a:b] / scales[k]
    g_min, g_max = dev.g_min_us, dev.g_max_us
    dg = g_max - g_min
    gp_t = g_min + dg * np.maximum(wn, 0.0)
    gm_t = g_min + dg * np.maximum(-wn, 0.0)
    if dev.n_levels is not None:
        step = dg / (dev.n_levels - 1)
        gp_t = g_min + np.floor((gp_t - g_min) / step + 0.5) * step
        gm_t = g_min + np.floor((gm_t - g_min) / step + 0.5) * step
    gp, gm = _program_cells(gp_t, dev, rng), _program_cells(gm_t, dev, rng)
    stuck_p, stuck_m = _stick(gp, dev, rng), _stick(gm, dev, rng)
    nu_p = nu_m = None
    if dev.drift_mu_nu is not None:
        nu_p, nu_m = _drift_exponents(gp_t, dev, rng), _drift_exponents(gm_t, dev, rng)
        if stuck_p is not None:
            nu_p[stuck_p] = 0.0
            nu_m[stuck_m] = 0.0
    return ProgrammedArray(config, w.shape, g_pos=gp, g_neg=gm, nu_pos=nu_p, nu_neg=nu_m, scales=scales,
                           seed_state=rng)


def _program_cells(g_target: np.ndarray, dev, rng: np.random.Generator) -> np.ndarray:
    """``clip(G_target + offset(G_target) + sigma(G_target) N(0, 1), g_min, g_max)``."""
    g = g_target.copy()
    kw = dict(g_max_us=dev.g_max_us)
    if dev.prog_offset is not None:
        g += dev.prog_offset(g_target, **kw)
    if dev.prog_sigma is not None:
        g += dev.prog_sigma(g_target, **kw) * rng.standard_normal(g.shape)
    return np.clip(g, dev.g_min_us, dev.g_max_us, out=g)


def _stick(g: np.ndarray, dev, rng: np.random.Generator) -> np.ndarray | None:
    """Set a fraction of cells to g_min and a fraction to g_max in place; return the stuck mask."""
    if dev.stuck_min_fraction == 0.0 and dev.stuck_max_fraction == 0.0:
        return None
    u = rng.random(g.shape)
    low = u < dev.stuck_min_fraction
    high = (u >= dev.stuck_min_fraction) & (u < dev.stuck_min_fraction + dev.stuck_max_fraction)
    g[low] = dev.g_min_us
    g[high] = dev.g_max_us
    return low | high


def _drift_exponents(g_target: np.ndarray, dev, rng: np.random.Generator) -> np.ndarray:
    """``nu = |mu_nu(G_target) + sigma_nu(G_target) N(0, 1)|`` (folded at 0, as aihwkit)."""
    kw = dict(g_max_us=dev.g_max_us)
    nu = dev.drift_mu_nu(g_target, **kw).copy()
    if dev.drift_sigma_nu is not None:
        nu += dev.drift_sigma_nu(g_target, **kw) * rng.standard_normal(g_target.shape)
    return np.abs(nu)


def mvm(x, weights, config: ArrayConfig, seed=None, t_s: float | None = None) -> np.ndarray:
    """One-shot: program ``weights`` with ``config`` and read ``x`` once (both with ``seed``).

    Equivalent to ``program(weights, config, seed).mvm(x, t_s)``: long-term and short-term
    noise are both drawn, in that order, from one generator.

    Returns:
        (batch, out_features) in x's dtype.
    """
    if isinstance(config, ArrayConfig) and config.is_digital:
        # Ideal / paper: no mapping work at all, the weights are used as they are.
        w = _check_matrix("weights", weights, ndim=2)
        if w.dtype not in _FLOATS:
            raise ValueError(f"weights.dtype must be float32 or float64, got {w.dtype}")
        arr = ProgrammedArray(config, w.shape, weights=w, seed_state=as_generator(seed))
        return arr.mvm(x, t_s=t_s)
    arr = program(weights, config, seed=seed)
    return arr.mvm(x, t_s=t_s)


def load_programmed(path: str | os.PathLike) -> ProgrammedArray:
    """Read a programmed array written by :meth:`ProgrammedArray.save`."""
    from .io import load_programmed as _load

    return _load(path)
