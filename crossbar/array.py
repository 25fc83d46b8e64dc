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
  (stuck cells: nu = 0), and per-cell relaxation offsets ``relax_mu(G_target) + relax_sigma(G_target) N(0, 1)``.
* Drift at time ``t_s`` after programming (physical time ``t = t0 + t_s``, aihwkit's
  convention: the first read is at t0)::

      G(t) = clip(G_prog (t / t0)^(-nu) + (relax_mu(G_target) + relax_sigma(G_target) z) sqrt(ln(t / t0)),
                  g_min, g_max)

  (the clip only when there is relaxation).

* Read (short-term, fresh on every :meth:`ProgrammedArray.mvm` with the default
  ``read_noise_draw="per_read"``): per cell Gaussian noise with ``sigma_read(G, t)``.
  Independent per cell and read, so the partial sum of a column is exactly
  ``y_j + N(0, sum_i x_i^2 (sigma+_ij^2 + sigma-_ij^2) / dg^2)``: the fast "output" path
  draws it at the output (one matmul of x^2 with sigma^2); the "per_cell" path draws
  every cell (reference). With ``read_noise_draw="per_time"`` (aihwkit's convention) one
  draw per cell is made per time setting, ``G(t) + sigma_read(G, t) N(0, 1)``, and every
  read at that time sees the same noisy conductances; the draw is a function of the
  programmed array and ``t_s`` only (a seed drawn at programming and the bits of ``t_s``),
  so returning to a time gives the same draw.
* Periphery: DAC on inputs, one BLAS product per row tile, read noise and the paper's
  output noise on each tile's partial sums, per-tile ADC, digital scale and accumulation
  over tiles, optional global drift compensation.
* Converter ranges: the DAC full scale ``r`` is ``dac.input_range`` unless the array
  stores its own (:meth:`ProgrammedArray.set_ranges`); the ADC full scale is
  ``adc.output_range`` unless per-tile, per-column ranges are stored
  (:meth:`ProgrammedArray.calibrate_adc` sets them from the partial sums of calibration
  inputs). Every read counts the DAC inputs and ADC conversions that saturated
  (:meth:`ProgrammedArray.clip_counts`).
* Bit-serial inputs (``dac.slice_bits``): the DAC code is applied a slice of bits per read
  (:meth:`ProgrammedArray._bit_slices`); each slice is its own read: fresh read noise (its
  variance ``sum_i v_si^2 sigma_ij^2``, still output-referred and exact), the paper's
  output noise at the level of a plain read, its own ADC conversion per tile; the slices
  are shifted and added in digital. Without noise and ADC the result equals the plain
  read to float rounding; with an ADC each slice is quantised separately (not equal).
* Weight slicing (``mapping.weight_slices`` S, ``weight_slice_bits`` k): ``|w|`` in
  [0, 1] is quantised to ``2^(S k) - 1`` levels and its k-bit digits are programmed as S
  arrays (own programming noise, read noise and ADC), shifted and added in digital.
* Wires (IR drop, ``config.wires``, :mod:`crossbar.irdrop`): each tile's G+ and G- are
  replaced by their exact transfer conductances ``A(G)`` (``I = V @ A``), computed once per
  read time and cached; the read then costs what it costs without wires. Read-noise
  sigmas are carried through the attenuation ``A / G``. On the "per_cell" path (and
  with ``wire_noise_policy="reference"`` above the tolerance) every read solves the circuit
  with per-cell noise drawn on the conductances instead.
"""
from __future__ import annotations

import functools
import math
import numbers
import os
import threading
import warnings
from typing import Any

import numpy as np

from . import _kernels as K
from . import _program_kernels as PK
from . import irdrop
from .config import ArrayConfig

__all__ = ["ProgrammedArray", "program", "program_and_prepare", "mvm", "load_programmed", "as_generator"]

_FLOATS = (np.float32, np.float64)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_EMPTY1 = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}
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


def _check_matrix(name: str, a: Any, *, ndim: int, finite: bool = True) -> np.ndarray:
    """Validate a float array at the public boundary; return it as an ndarray (no copy).

    ``finite=False`` leaves the NaN/Inf check to the caller (the analog read's DAC pass
    counts them on the way, :func:`_raise_nonfinite`)."""
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
    if finite and not np.isfinite(a.sum()) and not np.isfinite(a).all():
        _raise_nonfinite(name, int(a.size - np.count_nonzero(np.isfinite(a))))
    return a


def _raise_nonfinite(name: str, bad: int) -> None:
    raise ValueError(f"{name} must be finite, got {bad} NaN/Inf value(s)")


def _check_time(t_s: Any) -> float:
    if type(t_s) is float and 0.0 <= t_s < math.inf:  # the common case, without the ABC checks below
        return t_s
    if t_s is None:
        return 0.0
    if isinstance(t_s, bool) or not isinstance(t_s, numbers.Real) or not math.isfinite(float(t_s)) or t_s < 0:
        raise ValueError(f"t_s must be a finite number >= 0 (seconds after programming) or None, got {t_s!r}")
    return float(t_s)


def _levels(bits: int | None) -> int:
    return 0 if bits is None else (1 << (bits - 1)) - 1


def adc_params(cfg: ArrayConfig, full_range: float) -> tuple[bool, int, float, bool]:
    """The ADC tuple the kernels take: ``(on, levels, full_range, clip)``."""
    adc = cfg.adc
    return (adc.active, _levels(adc.bits), float(full_range), bool(adc.clip))


#: the DAC kernels (every row; with squares; with per-tile sums of squares) in float64 and float32 arithmetic
_DAC64 = (K.dac_rows, K.dac_rows_squares, K.dac_rows_tile_sumsq)
_DAC32 = (K.dac_rows32, K.dac_rows_squares32, K.dac_rows_tile_sumsq32)


def _dac32(cfg: ArrayConfig) -> bool:
    """Whether float32 reads of ``cfg`` take the float32 DAC (:func:`crossbar._kernels.dac_rows32`):
    the "boxmuller" generator (the "legacy" one keeps the old float64 arithmetic bit for bit)
    and at most 13 bits (up to there ``c / L`` and ``c^2 / L^2`` in float32 are the float64
    DAC's values of code ``c``, rounded once) or no quantisation."""
    bits = cfg.dac.bits if cfg.dac.active else None
    return cfg.normal_generator == "boxmuller" and (bits is None or bits <= 13)


def _tile_bounds(n: int, size: int | None) -> list[tuple[int, int]]:
    size = n if size is None else size
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def _column_uniform(var: np.ndarray, tiles: list[tuple[int, int]]) -> np.ndarray | None:
    """(n_tiles, out) when, within every row tile, each column's variance is the same in
    every row (e.g. a read-noise law that does not depend on G), else None.

    Then a tile's output variance is exactly ``sum_i x_i^2 var_ij = ||x_tile||^2 var_j``:
    no second matmul. The test is exact equality (float64), never a tolerance.
    """
    out = np.empty((len(tiles), var.shape[1]))
    for k, (a, b) in enumerate(tiles):
        block = var[a:b]
        if b - a > 1 and not (block[1] == block[0]).all():  # the usual answer, from two rows
            return None
        if not (block == block[0]).all():
            return None
        out[k] = block[0]
    return out


def _column_mean(var: np.ndarray, tiles: list[tuple[int, int]]) -> np.ndarray:
    """``read_noise_path="output_column_mean"``: every cell's variance replaced by the mean of
    its tile column, ``var_ij -> mean_{i in tile} var_ij`` (an approximation: the output
    variance becomes ``||x_tile||^2 mean_i var_ij`` instead of ``sum_i x_i^2 var_ij``; exact in
    its mean over inputs whose squares are spread evenly over the rows)."""
    out = np.empty_like(var)
    for a, b in tiles:
        out[a:b] = var[a:b].mean(axis=0)
    return out


class _ReadState:
    """Everything one read at a given time needs, in one float dtype (cached per (t, dtype)).

    Per-tile views (``*_t`` lists) are made once here, not on every read.
    """

    __slots__ = ("gn", "var", "var_col", "sig_p", "sig_m", "scale", "inv_s2", "tiles", "bounds", "alpha",
                 "gn_t", "var_t", "scale_t", "cols_uniform", "cols_out", "cols_both", "cols_none", "out_range", "adc",
                 "dac", "dac32", "plain", "circuit")

    def __init__(self, gn, var, var_col, sig_p, sig_m, scale, tiles, alpha, out_range, adc, circuit=False):
        self.gn = gn            # (in, out) C-contiguous: normalised conductance difference (scale folded when one tile)
        self.var = var          # (in, out) read-noise variance in the same units, or None (no read noise)
        self.var_col = var_col  # (n_tiles, out) when every tile's variance is the same down each column, else None
        self.sig_p = sig_p      # (in, out) per-cell sigmas of G+ / G- (per-cell path only), or None
        self.sig_m = sig_m
        self.scale = scale      # (n_tiles, out) digital scale applied after each tile
        self.inv_s2 = 1.0 / (scale * scale)
        self.tiles = tiles      # list of (row0, row1)
        self.bounds = np.array([a for a, _ in tiles] + [tiles[-1][1]], np.int64)
        self.alpha = alpha      # global drift-compensation factor
        self.out_range = out_range  # ADC full scale the kernel sees (1.0 when per-tile ranges are folded in)
        self.circuit = circuit  # read every tile through the exact wire circuit (per-cell noise)
        self.gn_t = [gn[a:b] for a, b in tiles]          # row blocks of a C array: contiguous
        self.var_t = None if var is None else [var[a:b] for a, b in tiles]
        self.scale_t = list(self.scale)
        # column factors of the rank-one variance terms, (n_tiles, R, out): column-uniform read
        # noise, output noise, both (in the kernels' term order), none
        nt = len(tiles)
        self.cols_uniform = None if var_col is None else var_col[:, None, :]
        self.cols_out = self.inv_s2[:, None, :]
        self.cols_both = None if var_col is None else np.ascontiguousarray(np.stack([var_col, self.inv_s2], axis=1))
        self.cols_none = np.empty((nt, 0, scale.shape[1]), scale.dtype)
        self.adc = adc          # the kernels' ADC tuple (on, levels, full_range, clip)
        self.dac = None         # the kernels' DAC tuple (abs_max, input_range, levels, clip), set by the array
        self.dac32 = False      # a float32 read converts in float32 arithmetic (K.dac_rows32), set by the array
        self.plain = None       # the common read: (DAC-with-squares kernel, DAC on, ADC on), or None: set by the array


class _Work:
    """Per-(batch, dtype) work buffers of one array, reused across reads (never returned)."""

    __slots__ = ("xn", "xsq", "sumsq", "sumsq3", "rs", "parts", "parts_t", "v", "v_t", "xn_t", "xsq_t",
                 "rows1", "rows2", "no_var", "no_rows")

    def __init__(self, nb: int, n_in: int, n_out: int, tiles, dt: np.dtype):
        nt = len(tiles)
        self.xn = np.empty((nb, n_in), dt)       # DAC output
        self.xsq = np.empty((nb, n_in), dt)      # its square (general read-noise variance)
        self.sumsq = np.empty((nt, nb), dt)      # per-tile sum of squares (column-uniform variance)
        self.rs = np.empty(nb, dt)               # row scale: DAC range times drift compensation
        self.sumsq3 = self.sumsq[:, None, :]     # as the row factors of one rank-one term per tile
        self.parts = np.empty((nt, nb, n_out), dt)
        self.v = np.empty((nt, nb, n_out), dt)   # dense read-noise variance of each tile's partial sums
        self.rows1 = np.empty((nt, 1, nb), dt)   # row factors of one rank-one term (output noise)
        self.rows2 = np.empty((nt, 2, nb), dt)   # row factors of two rank-one terms (uniform, output noise)
        self.no_var = np.empty((0, nb, n_out), dt)  # no dense term
        self.no_rows = np.empty((nt, 0, nb), dt)    # no rank-one terms
        self.parts_t = list(self.parts)
        self.v_t = list(self.v)
        one = nt == 1
        self.xn_t = [self.xn if one else self.xn[:, a:b] for a, b in tiles]
        self.xsq_t = [self.xsq if one else self.xsq[:, a:b] for a, b in tiles]


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
                 nu_pos=None, nu_neg=None, scales=None, seed_state=None, slices=None, dac_range=None,
                 adc_ranges=None, relax_pos=None, relax_neg=None, read_noise_seed=None):
        self.config = config
        self.shape = (int(shape[0]), int(shape[1]))
        self._weights = weights          # digital path only: (out, in), float32 or float64
        self._g_pos, self._g_neg = g_pos, g_neg
        self._nu_pos, self._nu_neg = nu_pos, nu_neg
        self._relax_pos, self._relax_neg = relax_pos, relax_neg  # relax_mu(G_t) + relax_sigma(G_t) z per cell, uS
        self._scales = scales            # (n_row_tiles, out) float64
        self._read_noise_seed = read_noise_seed  # read_noise_draw "per_time": seed of the frozen draws
        self._rng = as_generator(None) if seed_state is None else seed_state
        self._cache: dict[tuple[float, str], Any] = {}
        self._ir: dict[float, tuple[np.ndarray, np.ndarray, float]] = {}  # t -> (A+, A-, max drop): wires
        self._work: dict[tuple[int, str, int], _Work] = {}
        self._digital = weights is not None
        self._row_tiles = _tile_bounds(self.shape[1], config.tile.rows)
        #: an optional :class:`crossbar.energy.MVMCounter`: when set, every :meth:`mvm` adds its
        #: number of input vectors (opt-in; None costs one attribute test per call)
        self.counters = None
        # weight slicing: (list of ProgrammedArray, list of shift-and-add coefficients)
        self._slices: tuple[list[ProgrammedArray], list[float]] | None = slices
        self._dac_range: float | None = None
        self._adc_ranges: np.ndarray | None = None   # (n_row_tiles, out) normalised units
        self._clips = np.zeros(4, np.int64)          # dac clipped, dac conversions, adc clipped, adc conversions
        if dac_range is not None or adc_ranges is not None:
            self.set_ranges(dac_range=dac_range, adc_ranges=adc_ranges)

    def __getstate__(self) -> dict:
        # pickles and deep copies carry the programmed state, not derived caches or work buffers
        state = self.__dict__.copy()
        state["_cache"], state["_work"] = {}, {}   # the wire transfer matrices (_ir) travel along
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("counters", None)
        self.__dict__.update(state)

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
    def weight_slices(self) -> list["ProgrammedArray"]:
        """The arrays of a weight-sliced array, least significant first ([self] when not sliced)."""
        return [self] if self._slices is None else list(self._slices[0])

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
        if self._slices is not None:
            raise ValueError("conductances: this array is weight-sliced; read each slice's from .weight_slices")
        t = _check_time(t_s)
        return self._drifted(t)

    def __repr__(self) -> str:
        return f"ProgrammedArray(shape={self.shape}, config={self.config!r})"

    # ------------------------------------------------------------------ physics
    def _drifted(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Conductances at ``t``: drift ``G (t/t0)^-nu``, then relaxation
        ``+ (relax_mu(G) + relax_sigma(G) z) sqrt(ln(t/t0))`` clipped to the device range (t = t0 + t_s)."""
        dev = self.config.device
        if (self._nu_pos is None and self._relax_pos is None) or t == 0.0:
            return self._g_pos, self._g_neg
        factor = math.log((dev.t0_s + t) / dev.t0_s)
        gp, gm = self._g_pos, self._g_neg
        if self._nu_pos is not None:
            gp, gm = gp * np.exp(-self._nu_pos * factor), gm * np.exp(-self._nu_neg * factor)
        if self._relax_pos is not None:
            root = math.sqrt(factor)
            gp = np.clip(gp + root * self._relax_pos, dev.g_min_us, dev.g_max_us)
            gm = np.clip(gm + root * self._relax_neg, dev.g_min_us, dev.g_max_us)
        return gp, gm

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
        circuit = False
        dp = dm = None
        if sp is not None and cfg.device.read_noise_draw == "per_time":
            fp, fm = self._frozen_read(t, gp, gm, sp, sm)
            dp, dm = fp - gp, fm - gm  # the frozen read-noise offsets of this time setting
            sp = sm = None  # no fresh noise per read
        if cfg.wires.active:
            ap, am, drop = self._wired(t)
            if sp is not None:  # read noise carried through the same attenuation (first order)
                sp = sp * _attenuation(ap, gp)
                sm = sm * _attenuation(am, gm)
                circuit = self._noise_check(drop)
            if dp is not None:  # frozen offsets carried through the same attenuation (first order)
                dp = dp * _attenuation(ap, gp)
                dm = dm * _attenuation(am, gm)
            circuit = circuit or cfg.read_noise_path == "per_cell"
            gp, gm = ap, am
        if dp is not None:
            gp, gm = gp + dp, gm + dm
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
        sig_p = sig_m = var = var_col = None
        if sp is not None:
            sig_p, sig_m = sp / dg, sm / dg
            if s_cells is not None:
                sig_p, sig_m = sig_p * s_cells, sig_m * s_cells
            var = sig_p * sig_p + sig_m * sig_m
            if not var.any():  # a law that is zero everywhere: no read noise at all
                sig_p = sig_m = var = None
            else:
                if cfg.read_noise_path == "output_column_mean" and not circuit:
                    var = _column_mean(var, tiles)  # the approximation: one variance per tile column
                var_col = _column_uniform(var, tiles)
        out_range = float(cfg.adc.output_range)
        if cfg.adc.active and self._adc_ranges is not None:
            # per-tile, per-column ADC ranges R: read p / R against a unit full scale and
            # scale by R digitally; the same conversion as R quantize(p / R), folded in here
            rng_ = self._adc_ranges
            gn = gn.copy()
            scale = scale * rng_
            for k, (a, b) in enumerate(tiles):
                gn[a:b] /= rng_[k]
                if sig_p is not None:
                    sig_p[a:b] /= rng_[k]
                    sig_m[a:b] /= rng_[k]
                    var[a:b] /= rng_[k] * rng_[k]
            if var is not None:
                var_col = _column_uniform(var, tiles)
            out_range = 1.0
        alpha = self._alpha(t) if cfg.drift_compensation else 1.0
        st = _ReadState(
            np.ascontiguousarray(gn, dtype=dtype),
            None if var is None else np.ascontiguousarray(var, dtype=dtype),
            None if var_col is None else np.ascontiguousarray(var_col, dtype=dtype),
            None if sig_p is None or not (circuit or cfg.read_noise_path == "per_cell") else sig_p.astype(dtype),
            None if sig_m is None or not (circuit or cfg.read_noise_path == "per_cell") else sig_m.astype(dtype),
            np.ascontiguousarray(scale, dtype=dtype), tiles, alpha, out_range, adc_params(cfg, out_range), circuit)
        return self._cache_state(key, st)

    def _cache_state(self, key: tuple[float, str], st: _ReadState) -> _ReadState:
        """Store a newly built read state under ``key`` = (t, dtype char) (every read state
        passes here: :meth:`_state` and :func:`program_and_prepare`), with the array's DAC
        tuple."""
        st.dac = self._dac_params()  # the stored DAC range is part of the state: set_ranges clears the cache
        # boxmuller reads of float32 inputs convert in float32 (values exact up to 13 bits: _dac32)
        cfg = self.config
        st.dac32 = key[1] == "f" and _dac32(cfg)   # states are per dtype: True only for float32 reads
        if (st.var is not None and st.var_col is None and not st.circuit and cfg.read_noise_path != "per_cell"
                and cfg.dac.slice_bits is None and not cfg.output_noise.active
                and cfg.normal_generator == "boxmuller" and self._slices is None):
            # the common read (general read noise, nothing else per read): _read_plain
            st.plain = ((_DAC32 if st.dac32 else _DAC64)[1], cfg.dac.active, cfg.adc.active)
        if len(self._cache) >= 8:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = st
        return st

    def _frozen_read(self, t: float, gp: np.ndarray, gm: np.ndarray, sp: np.ndarray, sm: np.ndarray):
        """``read_noise_draw="per_time"``: ``G +- sigma_read N(0, 1)``, one draw per cell for
        time ``t`` from a generator seeded by (the programming seed, the bits of ``t``)."""
        if self._read_noise_seed is None:
            raise ValueError("read_noise_draw='per_time' needs an array programmed with that config "
                             "(no read-noise seed was drawn at programming)")
        t_bits = int(np.float64(t).view(np.uint64))
        rng = np.random.Generator(np.random.SFC64(np.random.SeedSequence(
            [int(self._read_noise_seed), t_bits >> 32, t_bits & 0xFFFFFFFF])))
        zp = rng.standard_normal(gp.shape)
        zm = rng.standard_normal(gm.shape)
        return gp + sp * zp, gm + sm * zm

    def _read_conductances(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """What a noiseless read sees at ``t``: (G+, G-), or their transfer matrices with wires."""
        return self._wired(t)[:2] if self.config.wires.active else self._drifted(t)

    def _wired(self, t: float) -> tuple[np.ndarray, np.ndarray, float]:
        """(A+, A-) in uS, crossbar layout, and the largest relative IR drop of a cell.

        One :func:`crossbar.irdrop.transfer_matrix` per array and physical tile (row tile x
        column tile), cached per read time ``t``.
        """
        hit = self._ir.get(t)
        if hit is not None:
            return hit
        cfg = self.config
        gp, gm = self._drifted(t)
        ap, am = np.empty_like(gp), np.empty_like(gm)
        res = cfg.wires.resistances()
        for a, b in self._row_tiles:
            for c0, c1 in _tile_bounds(self.out_features, cfg.tile.cols):
                ap[a:b, c0:c1] = irdrop.transfer_matrix(gp[a:b, c0:c1], **res)
                am[a:b, c0:c1] = irdrop.transfer_matrix(gm[a:b, c0:c1], **res)
        g_max = cfg.device.g_max_us
        drop = max(irdrop.max_relative_drop(ap, gp, g_max), irdrop.max_relative_drop(am, gm, g_max))
        if len(self._ir) >= 4:
            self._ir.pop(next(iter(self._ir)))
        self._ir[t] = (ap, am, drop)
        return ap, am, drop

    def _noise_check(self, drop: float) -> bool:
        """Apply ``wire_noise_policy`` when the stated read-noise error bound passes the
        tolerance; True: read through the circuit."""
        w = self.config.wires
        bound = irdrop.noise_error_bound(drop)
        if bound <= w.noise_tolerance or w.noise_policy == "ignore":
            return False
        if w.noise_policy == "reference":
            return True
        warnings.warn(f"IR drop: the largest relative drop of a cell is {drop:.3g}, so the fast path's read-noise "
                      f"std may be off by up to {bound:.3g} > wire_noise_tolerance={w.noise_tolerance:g} (set "
                      "wire_noise_policy='reference' to read through the exact circuit, or 'ignore')",
                      RuntimeWarning, stacklevel=4)
        return False

    def _weights_at(self, t: float) -> np.ndarray:
        """Effective weights (out, in) in float64 without drift compensation (through the wires, if any)."""
        dg = self.config.device.g_max_us - self.config.device.g_min_us
        gp, gm = self._read_conductances(t)
        w = (gp - gm) / dg
        for k, (a, b) in enumerate(self._row_tiles):
            w[a:b] *= self._scales[k]
        return w.T

    def _alpha(self, t: float) -> float:
        """Global drift compensation: ``alpha = sum_j |y_ref_j| / sum_j |y_j(t)|`` for a full-scale
        all-ones input, y_ref read right after programming (t_s = 0), both noiseless (the
        average of many reads)."""
        if t == 0.0 or (self._nu_pos is None and self._relax_pos is None):
            return 1.0
        ref = np.abs(self._weights_at(0.0).sum(axis=1)).sum()
        now = np.abs(self._weights_at(t).sum(axis=1)).sum()
        return float(ref / now) if now > 0 else 1.0

    # ------------------------------------------------------------------ public
    def effective_weights(self, t_s: float | None = None) -> np.ndarray:
        """The weights the array holds at ``t_s`` after programming, (out, in), float64, in weight units.

        ``W_eff[j, i] = alpha(t) s (G+(t) - G-(t)) / dg`` (alpha: drift compensation, 1 when
        off; with wires, G is replaced by the tile's transfer conductances A(G)). Long-term noise
        is included; read noise (also when frozen per time setting, ``read_noise_draw="per_time"``),
        other short-term noise and DAC/ADC are not. On the
        digital path this is the programmed weight matrix itself.
        """
        t = _check_time(t_s)
        if self._digital:
            return np.array(self._weights, dtype=np.float64)
        if self._slices is not None:
            return sum(c * arr.effective_weights(t) for arr, c in zip(*self._slices))
        alpha = self._alpha(t) if self.config.drift_compensation else 1.0
        return np.ascontiguousarray(self._weights_at(t)) * alpha

    def read_state(self, t_s: float | None = None, dtype=np.float32) -> _ReadState:
        """What the fast read at ``t_s`` works from (cached): ``gn`` (in, out) normalised
        conductance differences, ``var`` (in, out) read-noise variances or None, ``var_col``,
        ``scale`` (n_row_tiles, out), ``tiles`` (row bounds) and ``alpha`` (drift compensation).

        For tools that mirror the read outside crossbar (the benchmarks' torch twin): treat the
        arrays as read-only. Raises ``ValueError`` on a digital or weight-sliced array.
        """
        if self._digital or self._slices is not None:
            raise ValueError("read_state: a digital or weight-sliced array has no single read state")
        dt = np.dtype(dtype)
        if dt not in _FLOATS:
            raise ValueError(f"dtype must be float32 or float64, got {dt}")
        return self._state(_check_time(t_s), dt)

    def prepare(self, t_s: float | None = None, dtype=np.float32) -> "ProgrammedArray":
        """Build (and cache) what reads at ``t_s`` need, so the first :meth:`mvm` does not pay
        for it: drifted conductances, noise variances and, with wires, every tile's transfer
        matrices (the one-time IR-drop cost). Returns ``self``."""
        t = _check_time(t_s)
        dt = np.dtype(dtype)
        if dt not in _FLOATS:
            raise ValueError(f"dtype must be float32 or float64, got {dt}")
        if self._slices is not None:
            for arr in self._slices[0]:
                arr.prepare(t, dt)
        elif self._digital:
            self._state_digital(dt)
        else:
            self._state(t, dt)
        return self

    def mvm(self, x, t_s: float | None = None, seed=None) -> np.ndarray:
        """Noisy matrix-vector products of a batch of inputs: ``y ~ x @ W_eff(t).T`` + noise.

        Short-term noise (read noise with the device law at ``t_s``, the paper's output
        noise) is drawn fresh on every call. When :attr:`counters` holds a
        :class:`crossbar.energy.MVMCounter`, the call adds its number of input vectors.

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
        if type(x) is np.ndarray and x.ndim == 2 and (x.dtype is _F32 or x.dtype is _F64) and (
                t_s is None or type(t_s) is float):
            # the common read of a prepared state: the lookup checks the time (states exist only
            # for valid times of an analog array), the DAC pass checks finiteness; anything
            # else takes the full checks below
            st = self._cache.get((0.0 if t_s is None else t_s, x.dtype.char))
            if st is not None and st.plain is not None and x.shape[0] > 0 and x.shape[1] == st.gn.shape[0]:
                y = self._read_plain(x, st, self._rng if seed is None else as_generator(seed))
                if self.counters is not None:
                    self.counters.add(x.shape[0])
                return y
        # the analog read checks finiteness in its DAC pass (before any state changes or draws)
        x = _check_matrix("x", x, ndim=x.ndim if isinstance(x, np.ndarray) and x.ndim in (1, 2) else 2,
                          finite=self._digital)
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
        if self.counters is not None:
            self.counters.add(x.shape[0])
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
                K.standard_normal(rng, z, self.config.normal_generator)
                K.add_scaled(y, z, sigma)
        return y

    def _state_digital(self, dtype: np.dtype) -> np.ndarray:
        w = self._cache.get(dtype.char)
        if w is None:
            w = self._cache[dtype.char] = np.ascontiguousarray(self._weights.T, dtype=dtype)
        return w

    def _work_for(self, nb: int, dt: np.dtype, st: _ReadState) -> _Work:
        # keyed by thread too: two threads reading one array must not share buffers
        key = (nb, dt.char, threading.get_ident())
        wk = self._work.get(key)
        if wk is None:
            if len(self._work) >= 8:
                self._work.pop(next(iter(self._work)))
            wk = self._work[key] = _Work(nb, self.in_features, self.out_features, st.tiles, dt)
        return wk

    def _dac_scalar_range(self) -> float:
        """The fixed DAC full scale r: the stored per-array range, else the config's."""
        return float(self.config.dac.input_range) if self._dac_range is None else self._dac_range

    def _dac_params(self) -> tuple[bool, float, int, bool]:
        """The DAC kernels' tuple ``(abs_max, input_range, levels, clip)`` of this array."""
        dac = self.config.dac
        return (dac.range_mode == "abs_max", self._dac_scalar_range() if dac.active else 1.0,
                _levels(dac.bits) if dac.active else 0, bool(dac.clip) and dac.active)

    def _dac(self, x: np.ndarray, st: _ReadState, wk: _Work | None, want_sq: bool, want_sum: bool):
        """DAC of ``x`` into ``wk`` (or new buffers): (normalised inputs, row scale); counts clips."""
        dac = self.config.dac
        dt = x.dtype
        nb = x.shape[0]
        if wk is None:
            xn, rs = np.empty(x.shape, dt), np.empty(nb, dt)
            want_sq = want_sum = False
        else:
            xn, rs = wk.xn, wk.rs
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        params = st.dac
        alpha = float(st.alpha)
        # the float32 read's DAC in float32 arithmetic (boxmuller reads), else in float64
        rows, squares, tile_sums = _DAC32 if st.dac32 else _DAC64
        if want_sq:
            n_clip, n_bad = squares(x, params, alpha, xn, wk.xsq, rs)
        elif want_sum:
            n_clip, n_bad = tile_sums(x, params, alpha, xn, rs, st.bounds, wk.sumsq)
        else:
            n_clip, n_bad = rows(x, params, alpha, xn, rs)
        if n_bad:
            _raise_nonfinite("x", n_bad)
        if dac.active:
            self._clips[0] += n_clip
            self._clips[1] += x.size
        return xn, rs

    def _bit_slices(self, xn: np.ndarray, out: np.ndarray | None = None,
                    out_sq: np.ndarray | None = None) -> tuple[np.ndarray, list[float]]:
        """Bit-serial inputs: the DAC codes of ``xn`` cut into slices, least significant first.

        ``q = round(xn L)`` (L = 2^(bits-1) - 1) in ``bits``-bit two's complement is split
        into ``S = ceil(bits / k)`` slices of ``k = slice_bits`` bits: ``q = sum_s 2^(k s) d_s``
        with ``d_s`` in [0, 2^k - 1] below the top slice, and the top slice (holding the
        sign bit, width ``w``) signed in [-2^(w-1), 2^(w-1) - 1]. Slice ``s`` is applied as
        ``v_s = d_s / M_s`` (M_s = 2^k - 1, or 2^(w-1) on top: full scale 1, as a plain
        read) and weighted by ``c_s = 2^(k s) M_s / L`` in the shift-and-add, so that
        ``sum_s c_s v_s = xn`` exactly. One pass (:func:`crossbar._kernels.bit_slices`),
        into ``out`` (and the squares into ``out_sq``) when given.

        Returns:
            (S * B, n) stacked slice inputs (slice-major), and the S coefficients.
        """
        dac = self.config.dac
        bits, k, n_sl = dac.bits, dac.slice_bits, dac.slices
        levels = _levels(bits)
        coef = []
        for s in range(n_sl):
            width = min(k, bits - k * s)
            m = 1 << (width - 1) if s == n_sl - 1 else (1 << width) - 1
            coef.append((1 << (k * s)) * m / levels)
        if out is None:
            out = np.empty((n_sl * xn.shape[0], xn.shape[1]), xn.dtype)
        K.bit_slices(xn, levels, bits, k, out, out if out_sq is None else out_sq, out_sq is not None)
        return out, coef

    def _mvm_analog(self, x: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
        """DAC -> one BLAS product per row tile -> read-noise variance -> normals -> fused
        noise + ADC + scale + accumulation. Work buffers are reused; only the result is new.
        Bit-serial inputs (``dac.slice_bits``) read each slice as its own batch rows."""
        if self._slices is not None:
            subs, coef = self._slices
            y = None
            for arr, c in zip(subs, coef):
                ys = arr._mvm_analog(x, t, rng)
                ys *= ys.dtype.type(c)
                y = ys if y is None else y.__iadd__(ys)
            return y
        cfg = self.config
        dt = x.dtype
        st = self._state(t, dt)
        if st.plain is not None:
            return self._read_plain(x, st, rng)
        nb = x.shape[0]
        per_cell = st.var is not None and (cfg.read_noise_path == "per_cell" or st.circuit)
        general = st.var is not None and not per_cell and st.var_col is None   # x^2 @ sigma^2 per tile
        uniform = st.var is not None and not per_cell and st.var_col is not None  # ||x_tile||^2 sigma_j^2
        flags = (per_cell, general, uniform)
        if cfg.dac.slice_bits is not None:
            return self._mvm_bitserial(x, st, rng, flags, t)
        wk = self._work_for(nb, dt, st)
        # DAC -> normalised inputs, their squares or per-tile sums of squares, row scale
        self._dac(x, st, wk, general, uniform)
        # one BLAS product per row tile, into reused buffers (or the exact wire circuit, per read)
        if st.circuit:
            self._circuit_parts(wk.xn, st, t, rng, wk.parts)
        else:
            for xk, gk, pk in zip(wk.xn_t, st.gn_t, wk.parts_t):
                np.matmul(xk, gk, out=pk)
        ov = self._output_variance(wk.parts, st, wk.rs, None)
        return self._noise_adc(wk, st, rng, flags, ov, wk.rs)

    def _read_plain(self, x: np.ndarray, st: _ReadState, rng: np.random.Generator) -> np.ndarray:
        """The common read in a few statements (the steps of :meth:`_mvm_analog` and
        :meth:`_noise_adc` for general read noise and nothing else per read, "boxmuller"):
        DAC with squares, the products and variances of each tile, then the fused noise + ADC
        pass. The same kernels and numbers as the general path (tested); Python glue is a few
        percent of a small read, so it is kept to this."""
        dac_kernel, dac_on, adc_on = st.plain
        nb = x.shape[0]
        wk = self._work.get((nb, x.dtype.char, threading.get_ident()))
        if wk is None:
            wk = self._work_for(nb, x.dtype, st)
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        n_clip, n_bad = dac_kernel(x, st.dac, st.alpha, wk.xn, wk.xsq, wk.rs)
        if n_bad:
            _raise_nonfinite("x", n_bad)
        clips = self._clips
        if dac_on:
            clips[0] += n_clip
            clips[1] += x.size
        for xk, gk, pk, qk, vk, ok in zip(wk.xn_t, st.gn_t, wk.parts_t, wk.xsq_t, st.var_t, wk.v_t):
            np.matmul(xk, gk, out=pk)
            np.matmul(qk, vk, out=ok)
        acc = np.empty((nb, wk.parts.shape[2]), x.dtype)
        n_clip = K.noise_adc_tiles_bm(wk.parts, K.normal_seed(rng), wk.v, wk.no_rows, st.cols_none, st.scale,
                                      st.adc, acc, wk.rs)
        if adc_on:
            clips[2] += n_clip
            clips[3] += acc.size * len(wk.parts_t)
        return acc

    def _output_variance(self, parts: np.ndarray, st: _ReadState, rs: np.ndarray, coef) -> np.ndarray:
        """Per-row variance of the paper's output noise in normalised units, split over tiles
        (an empty array when there is none). ``coef``: bit-serial slice coefficients, so that
        the relative convention refers to the combined clean read."""
        on = self.config.output_noise
        dt = parts.dtype
        if not on.active:
            return _EMPTY1[dt]
        nt = len(st.tiles)
        r = rs if st.alpha == 1.0 else rs / dt.type(st.alpha)
        if on.convention == "absolute":
            ms = 0.0
        elif coef is None:
            ms = K.mean_square_tiles(parts, st.scale, r)
        else:
            nb = rs.shape[0]
            comb = sum(c * parts[:, s * nb:(s + 1) * nb] for s, c in enumerate(coef))
            ms = K.mean_square_tiles(np.ascontiguousarray(comb, dtype=dt), st.scale, r)
        sigma_y = self._output_sigma(ms)
        if sigma_y <= 0:
            return _EMPTY1[dt]
        r64 = rs.astype(np.float64) / st.alpha
        ov = ((sigma_y * sigma_y / nt) / (r64 * r64)).astype(dt)
        if coef is not None:
            ov = np.tile(ov, len(coef))
        return ov

    def _noise_adc(self, wk: _Work, st: _ReadState, rng: np.random.Generator, flags, ov: np.ndarray,
                   row_scale: np.ndarray) -> np.ndarray:
        """Read noise (per-cell or output-referred), output noise, ADC, scale and accumulation
        over the tiles of the products in ``wk.parts``; counts saturated conversions.

        The variance of each tile's partial sums is a dense term (general read noise,
        ``x^2 @ sigma^2``) and rank-one terms (column-uniform read noise, then output noise)."""
        per_cell, general, uniform = flags
        dt = wk.xn.dtype
        nb = wk.xn.shape[0]
        nt = len(st.tiles)
        if per_cell and not st.circuit:  # the circuit path drew its per-cell noise already
            self._add_per_cell(wk.xn, st, wk.parts, rng)
        has_ov = ov.shape[0] == nb
        acc = np.empty((nb, self.out_features), dt)
        n_clip = 0
        if not (general or uniform or has_ov):
            for k in range(nt):
                n_clip += K.adc_accumulate(wk.parts_t[k], st.scale_t[k], st.adc, acc, k == 0, k == nt - 1, row_scale)
        else:
            seed = K.normal_seed(rng)
            # rank-one variance terms of every tile, (T, R, B) rows and (T, R, m) columns
            if uniform and has_ov:
                wk.rows2[:, 0] = wk.sumsq
                wk.rows2[:, 1] = ov
                rows, cols = wk.rows2, st.cols_both
            elif uniform:
                rows, cols = wk.sumsq3, st.cols_uniform
            elif has_ov:
                wk.rows1[:, 0] = ov
                rows, cols = wk.rows1, st.cols_out
            else:
                rows, cols = wk.no_rows, st.cols_none
            if general:  # the dense term of each tile, x^2 @ sigma^2
                for k in range(nt):
                    np.matmul(wk.xsq_t[k], st.var_t[k], out=wk.v_t[k])
            var = wk.v if general else wk.no_var
            if self.config.normal_generator == "legacy":
                n_clip += K.noise_adc_tiles(wk.parts, seed, var, rows, cols, st.scale, st.adc, acc, row_scale,
                                            K._KN, K._WN, K._FN)
            else:  # "boxmuller": each row of each tile from its own key, drawn inside the pass
                n_clip += K.noise_adc_tiles_bm(wk.parts, seed, var, rows, cols, st.scale, st.adc, acc, row_scale)
        if self.config.adc.active:
            self._clips[2] += n_clip
            self._clips[3] += nb * self.out_features * nt
        return acc

    def _mvm_bitserial(self, x: np.ndarray, st: _ReadState, rng: np.random.Generator, flags,
                       t: float = 0.0) -> np.ndarray:
        """Bit-serial read: every input slice is a separate read (fresh read noise, its own
        ADC conversion per tile), shift-and-add in digital (see :meth:`_bit_slices`)."""
        per_cell, general, uniform = flags
        dt = x.dtype
        nb = x.shape[0]
        xn, rs = self._dac(x, st, None, False, False)
        n_sl = self.config.dac.slices
        wk = self._work_for(n_sl * nb, dt, st)
        _, coef = self._bit_slices(xn, wk.xn, wk.xsq if general or uniform else None)
        if uniform:
            for k, (a, b) in enumerate(st.tiles):
                wk.sumsq[k] = wk.xsq[:, a:b].sum(axis=1)
        if st.circuit:
            self._circuit_parts(wk.xn, st, t, rng, wk.parts)
        else:
            for xk, gk, pk in zip(wk.xn_t, st.gn_t, wk.parts_t):
                np.matmul(xk, gk, out=pk)
        ov = self._output_variance(wk.parts, st, rs, coef)
        acc = self._noise_adc(wk, st, rng, flags, ov, np.ones(n_sl * nb, dt))
        y = np.empty((nb, acc.shape[1]), dt)
        K.shift_add(acc, np.array(coef, dt), rs, y)
        return y

    # ------------------------------------------------------------------ converter ranges and clipping
    @property
    def dac_range(self) -> float:
        """The fixed DAC full scale r of this array, input units (stored value, else the config's)."""
        if self._slices is not None:
            return self._slices[0][0].dac_range
        return self._dac_scalar_range()

    @property
    def adc_ranges(self) -> np.ndarray | None:
        """Per-tile, per-column ADC full scales (n_row_tiles, out_features), normalised units,
        or None (the config's ``adc.output_range`` everywhere)."""
        if self._slices is not None:
            return self._slices[0][0].adc_ranges
        return None if self._adc_ranges is None else self._adc_ranges.copy()

    def set_ranges(self, *, dac_range: float | None = None, adc_ranges=None) -> None:
        """Store converter ranges on this array (they replace the config's fixed ones).

        Args:
            dac_range: DAC full scale r in input units (range_mode "fixed"), > 0; None keeps it.
            adc_ranges: ADC full scales, a number or an array broadcastable to
                (n_row_tiles, out_features), normalised units (see :class:`ADCConfig`), > 0;
                None keeps them.

        Raises:
            ValueError: a range that is not a finite positive number, or a wrong shape.
        """
        if self._slices is not None:
            for arr in self._slices[0]:
                arr.set_ranges(dac_range=dac_range, adc_ranges=adc_ranges)
            return
        if dac_range is not None:
            if isinstance(dac_range, bool) or not isinstance(dac_range, numbers.Real) \
                    or not math.isfinite(float(dac_range)) or dac_range <= 0:
                raise ValueError(f"dac_range must be a finite number > 0 (input units), got {dac_range!r}")
            self._dac_range = float(dac_range)
        if adc_ranges is not None:
            want = (len(self._row_tiles), self.out_features)
            try:
                r = np.broadcast_to(np.asarray(adc_ranges, dtype=np.float64), want).copy()
            except ValueError as exc:
                raise ValueError(f"adc_ranges must broadcast to (n_row_tiles, out_features)={want}, "
                                 f"got shape {np.shape(adc_ranges)}") from exc
            if not np.isfinite(r).all() or (r <= 0).any():
                raise ValueError("adc_ranges must be finite and > 0 everywhere")
            self._adc_ranges = r
        self._cache.clear()

    def calibrate_adc(self, x, t_s: float | None = None, statistic: str | float = "max",
                      margin: float = 1.0) -> np.ndarray:
        """Set each tile's ADC range from the partial sums of calibration inputs ``x``.

        The noiseless partial sums of the programmed array at ``t_s`` (after the DAC, and
        per slice when bit-serial) are collected per row tile; each (row tile, column tile)
        gets ``R = margin * statistic(|p|)`` over its columns and all of ``x`` (a tile whose
        partial sums are all 0 keeps ``adc.output_range``). The config's ``adc.range_mode``
        is not consulted: calling this is what calibrates.

        Args:
            x: (batch, in_features) calibration inputs (e.g. from the training data).
            t_s: time after programming the ranges are set at (None: 0).
            statistic: "max", or a percentile in (0, 100] of |p|.
            margin: factor >= 1 on top of the statistic (headroom for read noise).

        Returns:
            The ranges, (n_row_tiles, out_features), as :attr:`adc_ranges`.

        Raises:
            ValueError: digital array, bad ``x``, ``statistic`` or ``margin``.
        """
        if self._digital:
            raise ValueError("calibrate_adc: this array is digital (no ADC is modelled)")
        if not (statistic == "max" or (isinstance(statistic, numbers.Real) and not isinstance(statistic, bool)
                                       and 0 < float(statistic) <= 100)):
            raise ValueError(f"statistic must be 'max' or a percentile in (0, 100], got {statistic!r}")
        if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not margin >= 1.0 \
                or not math.isfinite(margin):
            raise ValueError(f"margin must be a finite number >= 1, got {margin!r}")
        x = _check_matrix("x", x, ndim=2)
        if x.shape[1] != self.in_features:
            raise ValueError(f"x.shape[-1] must equal the array's in_features={self.in_features}, got {x.shape[-1]}")
        if self._slices is not None:
            for arr in self._slices[0]:
                arr.calibrate_adc(x, t_s, statistic, margin)
            return self.adc_ranges
        t = _check_time(t_s)
        x = np.asarray(x, dtype=np.float64)
        saved, self._adc_ranges = self._adc_ranges, None
        self._cache.clear()
        try:
            st = self._state(t, np.dtype(np.float64))
            clips = self._clips.copy()
            xn, _ = self._dac(x, st, None, False, False)
            self._clips[:] = clips  # calibration reads are not evaluation reads
            if self.config.dac.slice_bits is not None:
                xn, _ = self._bit_slices(xn)
            dg = self.config.device.g_max_us - self.config.device.g_min_us
            gp, gm = self._read_conductances(t)
            gn = (gp - gm) / dg
            col_tiles = _tile_bounds(self.out_features, self.config.tile.cols)
            ranges = np.full((len(self._row_tiles), self.out_features), float(self.config.adc.output_range))
            for k, (a, b) in enumerate(self._row_tiles):
                p = np.abs(xn[:, a:b] @ gn[a:b])
                for c0, c1 in col_tiles:
                    block = p[:, c0:c1]
                    r = float(block.max()) if statistic == "max" else float(np.percentile(block, float(statistic)))
                    if r > 0:
                        ranges[k, c0:c1] = margin * r
        except BaseException:
            self._adc_ranges = saved
            raise
        self.set_ranges(adc_ranges=ranges)
        return ranges

    def clip_counts(self) -> dict[str, int]:
        """Converter saturation counts since programming (or :meth:`reset_clip_counts`).

        Returns:
            ``{"dac_clipped", "dac_conversions", "adc_clipped", "adc_conversions"}``: inputs
            outside the DAC range (clipping DAC only) and DAC conversions; ADC conversions
            outside the ADC range (clipping ADC only) and ADC conversions (one per output,
            tile, input slice and weight slice). An absent converter counts 0 of 0.
        """
        c = self._clips.copy()
        if self._slices is not None:
            for arr in self._slices[0]:
                c += arr._clips
        return dict(dac_clipped=int(c[0]), dac_conversions=int(c[1]), adc_clipped=int(c[2]),
                    adc_conversions=int(c[3]))

    def clip_fractions(self) -> tuple[float, float]:
        """(DAC, ADC) fraction of conversions that saturated, 0.0 where there were none."""
        c = self.clip_counts()
        dac = c["dac_clipped"] / c["dac_conversions"] if c["dac_conversions"] else 0.0
        adc = c["adc_clipped"] / c["adc_conversions"] if c["adc_conversions"] else 0.0
        return dac, adc

    def reset_clip_counts(self) -> None:
        """Set the saturation counters to zero."""
        self._clips[:] = 0
        if self._slices is not None:
            for arr in self._slices[0]:
                arr._clips[:] = 0

    def _circuit_parts(self, xn: np.ndarray, st: _ReadState, t: float, rng: np.random.Generator,
                       parts: np.ndarray) -> None:
        """Partial sums by :func:`crossbar.irdrop.mna_read` (reference): every physical tile's
        circuit solved for every input row, per-cell read noise drawn before the solve (with
        ``read_noise_draw="per_time"``: the frozen draw of this time setting, solved exactly);
        in the units of the fast path's products (scales folded without an ADC, stored ADC
        ranges divided out)."""
        cfg = self.config
        dg = cfg.device.g_max_us - cfg.device.g_min_us
        gp, gm = self._drifted(t)
        sp, sm = self._read_sigmas(t, gp, gm)
        if sp is not None and cfg.device.read_noise_draw == "per_time":
            gp, gm = self._frozen_read(t, gp, gm, sp, sm)
            sp = sm = None  # nothing fresh per read
        res = cfg.wires.resistances()
        folded = not cfg.adc.active  # no ADC: one state tile, the scales folded into the read
        ranges = self._adc_ranges if cfg.adc.active else None
        x64 = xn.astype(np.float64)
        for k, (a, b) in enumerate(st.tiles):
            acc = np.zeros((xn.shape[0], self.out_features))
            for kk, (ra, rb) in enumerate(self._row_tiles):
                if ra < a or rb > b:
                    continue
                for c0, c1 in _tile_bounds(self.out_features, cfg.tile.cols):
                    blk = (slice(ra, rb), slice(c0, c1))
                    y = irdrop.mna_read(x64[:, ra:rb], gp[blk], gm[blk], **res,
                                        sigma_pos_us=None if sp is None else sp[blk],
                                        sigma_neg_us=None if sm is None else sm[blk], rng=rng) / dg
                    if folded:
                        y *= self._scales[kk, c0:c1]
                    if ranges is not None:
                        y /= ranges[kk, c0:c1]
                    acc[:, c0:c1] += y
            parts[k] = acc

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
        from .storage import save_programmed

        save_programmed(self, path)


def _attenuation(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``clip(A / G, 0, 1)`` per cell (1 where G is 0): the fraction of a cell's current that
    reaches its sense, applied to its read-noise sigma."""
    return np.clip(irdrop.attenuation(a, g), 0.0, 1.0)


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


def program_and_prepare(weights, config: ArrayConfig, seed=None, dtype=np.float32,
                        dac_range: float | None = None) -> ProgrammedArray:
    """A programmed array with its first read prepared: ``program(weights, config, seed)``
    then ``prepare(0.0, dtype)``, in one pass per cell where the config allows.

    For the common device configs (per-column scales without clipping, no weight slicing,
    no stuck cells, drift or relaxation laws, no wires, an ADC, polynomial programming
    noise and polynomial or PCM read noise drawn fresh per read on the output-referred
    path) :func:`crossbar._program_kernels.program_pairs` maps, programs and computes the
    read state at ``t_s = 0`` cell by cell with the same float64 arithmetic as
    :func:`program` and :meth:`ProgrammedArray.prepare`, and the programming normals come
    from ``config.normal_generator``: "boxmuller" draws each crossbar row's normals inside
    the kernel from the row's key (one seed from ``rng``,
    :func:`crossbar._kernels.normal_seed`; exactly N(0, 1), 10x faster than numpy's), so the
    result has the distribution of ``program``, not its draws; "legacy" takes numpy's
    normals from ``rng`` as ``program`` does and gives ``program`` + ``prepare``'s numbers
    bit for bit (tests/crossbar/test_program_kernel.py), as the training of results made
    before 2026-11-30 did. Other configs take ``program`` itself (same draws).

    The training forward of a device preset programs its weights afresh on every call
    (:mod:`models`), and this is that call; deployment uses :func:`program`.

    Args:
        weights: (out_features, in_features), float32/64.
        config: the ArrayConfig. seed: int, numpy Generator or None.
        dtype: float dtype of the reads to prepare (float32 or float64).
        dac_range: the array's own DAC full scale (as :meth:`ProgrammedArray.set_ranges`,
            set before the read is prepared), or None for the config's.

    Returns:
        The ProgrammedArray, its read at ``t_s = 0`` in ``dtype`` ready.

    Raises:
        ValueError: as :func:`program`, or a dtype other than float32/float64, or a bad
            ``dac_range``.
    """
    dt = np.dtype(dtype)
    if dt not in _FLOATS:
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    if not isinstance(config, ArrayConfig) or config.is_digital or _fused_laws(config) is None:
        arr = program(weights, config, seed=seed)
        if dac_range is not None and not arr.is_digital:
            arr.set_ranges(dac_range=dac_range)
        return arr.prepare(0.0, dt)
    w = _check_matrix("weights", weights, ndim=2)
    if w.dtype not in _FLOATS:
        raise ValueError(f"weights.dtype must be float32 or float64, got {w.dtype}")
    rng = as_generator(seed)
    n_out, n_in = w.shape
    if config.normal_generator == "legacy":
        # numpy's normals, the draws of program (the training of results made before
        # 2026-11-30 programmed with program + prepare): the same numbers, bit for bit
        z = (rng.standard_normal((2, n_in, n_out)) if config.device.prog_sigma is not None
             else np.empty((2, 0, 0)))
        return _program_pairs(w, z, config, rng, dt, dac_range)
    # "boxmuller": one seed drawn from rng (as the legacy fill draws it), the normals of each
    # crossbar row drawn inside the kernel from that row's key
    seed = K.normal_seed(rng) if config.device.prog_sigma is not None and n_in * n_out else 0
    return _program_pairs(w, seed, config, rng, dt, dac_range)


def _fused_laws(config: ArrayConfig):
    """The kernel's law tuples ``(prog, read)`` when :func:`program_and_prepare` can
    use :func:`crossbar._program_kernels.program_pairs` for ``config``, else None (cached per
    config; the arrays in the tuples are only read)."""
    try:
        return _fused_laws_cached(config)
    except TypeError:  # a config holding an unhashable value: not cached
        return _fused_laws_of(config)


@functools.lru_cache(maxsize=64)
def _fused_laws_cached(config: ArrayConfig):
    return _fused_laws_of(config)


def _fused_laws_of(config: ArrayConfig):
    """:func:`_fused_laws`, computed."""
    dev = config.device
    mp = config.mapping
    if (mp.weight_slices > 1 or mp.scale != "column" or mp.clip_sigma is not None or dev.prog_offset is not None
            or dev.stuck_min_fraction > 0 or dev.stuck_max_fraction > 0 or dev.drift_mu_nu is not None
            or dev.drift_sigma_nu is not None or dev.relax_sigma is not None or dev.relax_mu is not None
            or config.wires.active or not config.adc.active or config.read_noise_path != "output"
            or (dev.read_sigma is not None and dev.read_noise_draw != "per_read")):
        return None
    x_codes = {"g_us": 0, "g_norm": 1}
    nan = math.nan

    def poly(law):
        return (1, x_codes[law.x], np.array(law.coeffs, np.float64), nan if law.lo is None else float(law.lo),
                nan if law.hi is None else float(law.hi))

    ps, rs = dev.prog_sigma, dev.read_sigma
    if ps is None:
        prog = (0, 0, np.zeros(1), nan, nan)
    elif ps.kind == "poly" and ps.x in x_codes:
        prog = poly(ps)
    else:
        return None
    q_below = -1.0
    if rs is None:
        read = (0, 0, np.zeros(1), nan, nan, 0.0, -1.0)
    elif rs.kind == "pcm_read":
        if rs.lo is not None or rs.hi is not None:
            return None
        ratio = (dev.t0_s + 0.0 + dev.t_read_s) / (2.0 * dev.t_read_s)   # as Law.__call__ at t = t0 + 0
        growth = math.sqrt(max(math.log(ratio), 0.0))
        c, a, q_max = rs.coeffs
        if c > 0 and a > 0 and q_max > 0:
            # c / g^a >= q_max for g <= (c / q_max)^(1/a); a margin of 1e-6 (relative) puts the
            # cells below it far beyond pow's rounding: their minimum is q_max, bit for bit
            q_below = (c / q_max) ** (1.0 / a) * (1.0 - 1e-6)
        read = (2, 0, np.array(rs.coeffs, np.float64), nan, nan, growth, q_below)
    elif rs.kind == "poly" and rs.x in x_codes:
        read = poly(rs) + (0.0, -1.0)
    else:
        return None
    return prog, read


def _program_pairs(w: np.ndarray, z: np.ndarray | int, config: ArrayConfig, rng: np.random.Generator,
                   dt: np.dtype, dac_range: float | None = None) -> ProgrammedArray:
    """The fused path of :func:`program_and_prepare` with the programming normals ``z``
    (2, in, out), G+ first (as :func:`_program_normalised` draws them: pass numpy's
    ``rng.standard_normal((2, in, out))`` to get :func:`program`'s numbers exactly), or,
    when ``z`` is an int, the seed of the ``"boxmuller"`` normals the kernel draws row by
    row (:func:`crossbar._program_kernels.program_pairs`)."""
    prog, read = _fused_laws(config)
    dev = config.device
    if not w.flags.c_contiguous:
        w = np.ascontiguousarray(w)
    n_out, n_in = w.shape
    tiles = _tile_bounds(n_in, config.tile.rows)
    bounds = np.array([a for a, _ in tiles] + [n_in], np.int64)
    scales = np.empty((len(tiles), n_out))
    PK.column_scales(w, bounds, scales)
    step = 0.0 if dev.n_levels is None else (dev.g_max_us - dev.g_min_us) / (dev.n_levels - 1)
    gp, gm = np.empty((n_in, n_out)), np.empty((n_in, n_out))
    gn = np.empty((n_in, n_out), dt)
    var = np.empty((n_in, n_out) if read[0] != 0 else (0, 0), dt)
    device = (float(dev.g_min_us), float(dev.g_max_us), float(step))
    z, seed = (z, 0) if isinstance(z, np.ndarray) else (np.empty((2, 0, 0)), z)
    any_var, uniform = PK.program_pairs(w, scales, z, seed, device, prog, read, bounds, gp, gm, gn, var)
    arr = ProgrammedArray(config, (n_out, n_in), g_pos=gp, g_neg=gm, scales=scales, seed_state=rng,
                          dac_range=dac_range)
    if uniform and any_var:
        return arr  # column-uniform read noise (rare): the general read state (var_col) is built on first use
    out_range = float(config.adc.output_range)
    arr._cache_state((0.0, dt.char), _ReadState(
        gn, var if any_var else None, None, None, None, np.ascontiguousarray(scales, dtype=dt), tiles, 1.0,
        out_range, adc_params(config, out_range)))
    return arr


def _normalised_weights(w: np.ndarray, config: ArrayConfig) -> tuple[np.ndarray, np.ndarray]:
    """Clip and scale: (normalised weights in crossbar layout (in, out) in [-1, 1], scales (n_row_tiles, out))."""
    mp = config.mapping
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
    return wn, scales


def _program_analog(w: np.ndarray, config: ArrayConfig, rng: np.random.Generator) -> ProgrammedArray:
    wn, scales = _normalised_weights(w, config)
    if config.mapping.weight_slices > 1:
        return _program_sliced(wn, scales, w.shape, config, rng)
    return _program_normalised(wn, scales, w.shape, config, rng)


def _program_sliced(wn: np.ndarray, scales: np.ndarray, shape, config: ArrayConfig,
                    rng: np.random.Generator) -> ProgrammedArray:
    """Weight slicing: ``|wn|`` quantised to ``Q = 2^(S k) - 1`` levels, ``q = sum_s 2^(k s) d_s``
    with k-bit digits ``d_s``; slice s is its own array holding ``sign(wn) d_s / (2^k - 1)``
    (same scales), read with its own ADC and weighted by ``2^(k s) (2^k - 1) / Q`` in the
    shift-and-add, so the noiseless sum holds ``sign(wn) q / Q``."""
    mp = config.mapping
    n_sl, k = mp.weight_slices, mp.weight_slice_bits
    q_levels = mp.weight_levels
    dmax = (1 << k) - 1
    q = np.floor(np.abs(wn) * q_levels + 0.5).astype(np.int64)
    sign = np.sign(wn)
    sub_cfg = config.replace(weight_slices=1, weight_clip_sigma=None)
    subs, coef = [], []
    for s in range(n_sl):
        d = (q >> (k * s)) & dmax
        subs.append(_program_normalised(sign * (d / dmax), scales, shape, sub_cfg, rng))
        coef.append((1 << (k * s)) * dmax / q_levels)
    return ProgrammedArray(config, shape, slices=(subs, coef), seed_state=rng)


def _program_normalised(wn: np.ndarray, scales: np.ndarray, shape, config: ArrayConfig,
                        rng: np.random.Generator) -> ProgrammedArray:
    """Map normalised weights (in, out) in [-1, 1] to conductance pairs and program them."""
    dev = config.device
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
    rx_p = rx_m = None
    if dev.relax_sigma is not None or dev.relax_mu is not None:
        kw = dict(g_max_us=dev.g_max_us)
        rx_p, rx_m = np.zeros(gp_t.shape), np.zeros(gm_t.shape)
        if dev.relax_sigma is not None:
            rx_p = dev.relax_sigma(gp_t, **kw) * rng.standard_normal(gp_t.shape)
            rx_m = dev.relax_sigma(gm_t, **kw) * rng.standard_normal(gm_t.shape)
        if dev.relax_mu is not None:  # deterministic mean, draws nothing
            rx_p = rx_p + dev.relax_mu(gp_t, **kw)
            rx_m = rx_m + dev.relax_mu(gm_t, **kw)
        if stuck_p is not None:
            rx_p[stuck_p] = 0.0
            rx_m[stuck_m] = 0.0
    read_seed = None
    if dev.read_sigma is not None and dev.read_noise_draw == "per_time":
        read_seed = int(rng.integers(0, 1 << 63))  # drawn last: the other draws match "per_read"
    return ProgrammedArray(config, shape, g_pos=gp, g_neg=gm, nu_pos=nu_p, nu_neg=nu_m, scales=scales,
                           seed_state=rng, relax_pos=rx_p, relax_neg=rx_m, read_noise_seed=read_seed)


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
    from .storage import load_programmed as _load

    return _load(path)
