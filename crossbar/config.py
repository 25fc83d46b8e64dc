"""Frozen, validated configuration of a memory-cell array: device, mapping, periphery.

An :class:`ArrayConfig` describes a whole array: the memory device (:class:`DeviceConfig`),
how weights become conductances (:class:`MappingConfig`), the input DAC
(:class:`DACConfig`), the per-tile ADC (:class:`ADCConfig`), the tile size
(:class:`TileConfig`), the paper's additive output noise (:class:`OutputNoiseConfig`) and the
resistance of the tile's wires (:class:`WireConfig`, IR drop; off by default).
Every config is a frozen ``kw_only`` dataclass validated in ``__post_init__``; changes go
through :meth:`ArrayConfig.replace`; ``to_dict``/``from_dict`` give JSON (unknown keys are
rejected with the list of valid ones).

Device noise laws are :class:`Law` objects: a polynomial in the conductance (the form the
calibration fits write) or one of the literature forms (PCM 1/f read noise, SONOS
saturating exponential).

Named presets (:data:`PRESETS`, :func:`preset`) each cite their source:

=========  ==================================================================================
ideal      no noise, no quantisation: MVM == x @ W.T to rounding
paper      ideal device + the additive Gaussian output noise of Qin and Vucinic (2018)
pcm        Nandakumar et al. 2019 / Joshi et al., Nat. Commun. 11, 2473 (2020), the laws
           of aihwkit's ``PCMLikeNoiseModel`` (programming noise, drift, 1/f read noise).
           One difference by default: the read noise is redrawn on every read
           (``read_noise_draw="per_read"``, the physics of a 1/f read); aihwkit draws it
           once per drift time setting, which ``read_noise_draw="per_time"`` reproduces
rram       Wan et al., Nature 608, 504 (2022): cubic programming-error fit of Extended
           Data Fig. 3 (t = 1 s) as in CrossSim's ``RRAMWan``, and conductance relaxation
           fitted to the same figure's 1-day and 2-day spreads (see below); no read noise
sonos      Agrawal et al., IEDM 2022 (128K devices), saturating-exponential programming
           variability (t = 0) and read noise as in CrossSim's ``SONOS``
=========  ==================================================================================

RRAM relaxation (rram preset). Wan et al. (2022) Extended Data Fig. 3 shows the spread
of programmed conductances at t = 1 s, 1 day and 2 days; aihwkit's
``ReRamWan2022NoiseModel`` fits each with a 4th-order polynomial in g = G / 40 uS
(sigma in uS; lowest order first): 1 s (0.348, 16.030, -43.853, 45.393, -16.815),
1 day (0.701, 22.086, -50.773, 47.095, -16.458), 2 days (0.782, 20.274, -43.507,
37.062, -11.934). The added variance ``sigma_t^2 - sigma_1s^2`` grows as ln(t / 1 s):
divided by ln(t / 1 s) it is the same at 1 day and 2 days to within 10 % (peak 0.98 vs
0.94 uS^2). Its square root, averaged over the two, fitted by least squares in G (uS, on
[0, 39.26]) is ``relax_sigma = 0.192 + 0.1065 G - 4.815e-3 G^2 + 8.432e-5 G^3 -
5.585e-7 G^4`` uS per sqrt(ln(t / t0)), t0 = 1 s (the programming fit's time); with the
1 s spread it gives back both the 1-day and 2-day polynomials within 0.07 uS. Each cell
keeps its direction z (drawn once), so one instance relaxes smoothly over time. Wan et
al. give no read-noise (1/f) data (aihwkit says the same), so the preset has no read
noise: every draw of one programmed instance at one time reads the same.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Law",
    "DeviceConfig",
    "MappingConfig",
    "DACConfig",
    "ADCConfig",
    "TileConfig",
    "OutputNoiseConfig",
    "WireConfig",
    "WIRE_EXAMPLES",
    "ArrayConfig",
    "PRESETS",
    "preset",
]

_LAW_KINDS = ("poly", "pcm_read", "sat_exp", "gauss")
_LAW_FIELDS = ("prog_offset", "prog_sigma", "read_sigma", "drift_mu_nu", "drift_sigma_nu", "relax_sigma",
               "relax_mu")
_LAW_X = ("g_us", "g_norm", "ln_g_norm")
_READ_NOISE_DRAWS = ("per_read", "per_time")
_G_NORM_FLOOR = 1e-6  # g/g_max floor before a logarithm (aihwkit clips at a tiny value too)


def _check_number(name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
                  lo_open: bool = False, allow_none: bool = False) -> None:
    """Raise ValueError unless ``value`` is a finite real number in the given range."""
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value))
    if ok and lo is not None:
        ok = float(value) > lo if lo_open else float(value) >= lo
    if ok and hi is not None:
        ok = float(value) <= hi
    if not ok:
        lo_txt = "-inf" if lo is None else f"{lo:g}"
        hi_txt = "inf" if hi is None else f"{hi:g}"
        bracket = "(" if lo_open else "["
        none_txt = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a finite number in {bracket}{lo_txt}, {hi_txt}]{none_txt}, "
                         f"got {value!r}")


def _check_int(name: str, value: Any, lo: int, hi: int, *, allow_none: bool = False) -> None:
    """Raise ValueError unless ``value`` is an int in [lo, hi] (or None when allowed)."""
    if value is None and allow_none:
        return
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= value <= hi:
        none_txt = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an int in [{lo}, {hi}]{none_txt}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")


def check_dict_keys(cls: type, data: Any) -> None:
    """Raise ValueError unless ``data`` is a dict whose keys are all fields of the dataclass
    ``cls`` (the message lists the valid ones): the key check of every ``from_dict``."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown key(s) {unknown}; valid keys are {valid}")


class _Config:
    """Shared behaviour: repr of non-default fields, dict/JSON round trip, replace."""

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            if default is dataclasses.MISSING or value != default:
                parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-ready Python values (nested configs and laws as dicts)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (_Config, Law)):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def _check_keys(cls, data: Any) -> None:
        check_dict_keys(cls, data)

    @classmethod
    def _check_complete(cls, data: Any, where: str = "") -> None:
        """Raise ValueError unless ``data`` (a to_dict-shaped dict) has every field, recursively."""
        cls._check_keys(data)
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [where + n for n in names if n not in data]
        for f in dataclasses.fields(cls):
            sub = _SUB_TYPES.get(f.name) if cls is ArrayConfig else None
            if f.name in data and sub is not None and isinstance(data[f.name], dict):
                try:
                    sub._check_complete(data[f.name], f"{where}{f.name}.")
                except _Missing as exc:
                    missing += exc.keys
            elif f.name in data and isinstance(data[f.name], dict) and f.name in _LAW_FIELDS:
                missing += [f"{where}{f.name}.{k}" for k in ("kind", "coeffs", "x", "lo", "hi")
                            if k not in data[f.name]]
        missing = [k for k in missing if k not in _ADDED_FIELDS]
        if missing:
            raise _Missing(missing, cls.__name__)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, complete: bool = False):
        """Build from :meth:`to_dict` output; unknown keys raise ValueError listing the valid ones.

        Args:
            data: the dict.
            complete: every field (of nested configs and laws too) must be present, as
                :meth:`to_dict` writes them; a missing key raises ValueError naming it. Use
                this for files the code wrote, where a missing key means a damaged file,
                not "take the default".
        """
        if complete:
            cls._check_complete(data)
        cls._check_keys(data)
        return cls(**data)

    def to_json(self, **kw) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_json(cls, text: str | bytes, *, complete: bool = False):
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: malformed JSON (with line and column), or what :meth:`from_dict` raises.
        """
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
            raise ValueError(f"{cls.__name__}.from_json: malformed JSON: {exc}") from exc
        return cls.from_dict(data, complete=complete)


#: Fields added after device-model files were first written (2026-11-30), whose default is what
#: a file written before them meant (read noise fresh per read, no relaxation, one weight slice,
#: no input slicing, fixed ADC ranges, ideal wires). A complete file may omit exactly these;
#: every other key must be present. Add a new field here only when its default reproduces the
#: behaviour from before it existed.
_ADDED_FIELDS = frozenset({"device.read_noise_draw", "device.relax_sigma", "device.relax_mu",
                           "mapping.weight_slices", "mapping.weight_slice_bits", "dac.slice_bits",
                           "adc.range_mode", "wires", "wires.row_ohm", "wires.col_ohm", "wires.driver_ohm",
                           "wires.sense_ohm", "wires.noise_tolerance", "wires.noise_policy"})


class _Missing(ValueError):
    """A config dict that must be complete lacks keys (``keys``: dotted names)."""

    def __init__(self, keys: list[str], owner: str):
        self.keys = list(keys)
        super().__init__(f"{owner}: missing key(s) {self.keys} (a saved config lists every field, "
                         "as to_dict() writes it)")


@dataclass(frozen=True, kw_only=True, repr=False)
class Law(_Config):
    """A device noise law: sigma (or mean) as a function of conductance (and time).

    Kinds (``coeffs`` lowest order first, numpy.polynomial convention; result in uS, or
    dimensionless for drift exponents):

    * ``"poly"``: ``clip(sum_k c_k x^k, lo, hi)`` with ``x`` one of ``"g_us"`` (G in uS),
      ``"g_norm"`` (G / g_max) or ``"ln_g_norm"`` (ln of G / g_max, floored at 1e-6).
    * ``"sat_exp"``: ``clip(A (1 - exp(-x / B)), lo, hi)``, coeffs ``(A, B)``
      (SONOS, Agrawal et al. 2022).
    * ``"gauss"``: ``clip(c + A exp(-(x - m)^2 / (2 w^2)), lo, hi)``, coeffs ``(c, A, m, w)``,
      ``w > 0``: a law that rises and falls over the range; with ``x="ln_g_norm"`` it is
      log-normal shaped in G (RRAM relaxation spread peaks mid-range), as fitted by
      ``xbarsim calibrate``.
    * ``"pcm_read"``: 1/f read noise accumulated since programming (Nandakumar 2019, as in
      aihwkit)::

          sigma = |G(t)| * min(c / max(g, 1e-3)^a, q_max) * sqrt(ln((t + t_read) / (2 t_read)))

      coeffs ``(c, a, q_max)``, ``g = G_prog / g_max``, ``G(t)`` the drifted conductance,
      ``t`` the physical time since programming; ``x`` is ignored.

    Example:
        >>> Law(kind="poly", coeffs=(0.26348, 1.9650, -1.1731), x="g_norm", lo=0.0)
        Law(kind='poly', coeffs=(0.26348, 1.965, -1.1731), x='g_norm', lo=0.0)
    """

    kind: str = "poly"
    """law form: "poly" | "sat_exp" | "pcm_read" | "gauss"."""
    coeffs: tuple[float, ...] = (0.0,)
    """coefficients (lowest order first for "poly"); units give the result in uS."""
    x: str = "g_us"
    """abscissa: "g_us" (uS), "g_norm" (G/g_max), "ln_g_norm" (ln(G/g_max))."""
    lo: float | None = None
    """lower clip of the result (None: none)."""
    hi: float | None = None
    """upper clip of the result (None: none)."""

    def __init__(self, kind: str = "poly", coeffs=(0.0,), x: str = "g_us", lo: float | None = None,
                 hi: float | None = None) -> None:
        # Positional use reads like the contract: Law("poly", (a, b, c), x="g_us").
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "coeffs", tuple(float(c) for c in np.atleast_1d(np.asarray(coeffs, dtype=float)))
                           if _is_real_sequence(coeffs) else coeffs)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "lo", None if lo is None else lo)
        object.__setattr__(self, "hi", None if hi is None else hi)
        self.__post_init__()

    def __post_init__(self) -> None:
        _check_choice("Law.kind", self.kind, _LAW_KINDS)
        _check_choice("Law.x", self.x, _LAW_X)
        if not isinstance(self.coeffs, tuple) or not self.coeffs or not all(math.isfinite(c) for c in self.coeffs):
            raise ValueError(f"Law.coeffs must be a non-empty sequence of finite numbers, got {self.coeffs!r}")
        need = {"sat_exp": 2, "pcm_read": 3, "gauss": 4}.get(self.kind)
        if need is not None and len(self.coeffs) != need:
            raise ValueError(f"Law.coeffs for kind {self.kind!r} must have {need} values, got {len(self.coeffs)}")
        if self.kind == "sat_exp" and self.coeffs[1] <= 0:
            raise ValueError(f"Law.coeffs[1] (B) for kind 'sat_exp' must be > 0, got {self.coeffs[1]}")
        if self.kind == "gauss" and self.coeffs[3] <= 0:
            raise ValueError(f"Law.coeffs[3] (width w) for kind 'gauss' must be > 0, got {self.coeffs[3]}")
        _check_number("Law.lo", self.lo, allow_none=True)
        _check_number("Law.hi", self.hi, allow_none=True)
        if self.lo is not None and self.hi is not None and self.lo > self.hi:
            raise ValueError(f"Law.lo must be <= Law.hi, got lo={self.lo}, hi={self.hi}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, complete: bool = False) -> "Law":
        """Build from :meth:`to_dict` output; unknown keys (and with ``complete``, missing ones) raise."""
        if isinstance(data, Law):
            return data
        if complete:
            cls._check_complete(data)
        cls._check_keys(data)
        return cls(**data)

    def __call__(self, g_us, *, g_max_us: float, t_s: float = 0.0, t_read_s: float = 250e-9,
                 g_t_us=None) -> np.ndarray:
        """Evaluate the law elementwise.

        Args:
            g_us: conductances in uS (the programmed ones for "pcm_read").
            g_max_us: the device's maximum conductance, for the normalised abscissae.
            t_s: physical time since programming in s ("pcm_read" only).
            t_read_s: read duration in s ("pcm_read" only).
            g_t_us: drifted conductances in uS ("pcm_read" only; default ``g_us``).

        Returns:
            float64 array of the law's value, shaped like ``g_us``.
        """
        g = np.asarray(g_us, dtype=np.float64)
        # elementwise in place on one or two temporaries (fresh large arrays cost page faults)
        if self.kind == "pcm_read":
            c, a, q_max = self.coeffs
            q_s = np.abs(g)
            q_s /= g_max_us
            np.maximum(q_s, 1e-3, out=q_s)                  # g_norm
            np.power(q_s, a, out=q_s)
            np.divide(c, q_s, out=q_s)
            np.minimum(q_s, q_max, out=q_s)                 # min(c / g_norm^a, q_max)
            ratio = (t_s + t_read_s) / (2.0 * t_read_s)
            growth = math.sqrt(max(math.log(ratio), 0.0))
            gt = g if g_t_us is None else np.asarray(g_t_us, dtype=np.float64)
            value = np.abs(gt)
            value *= q_s
            value *= growth
        else:
            if self.x == "g_us":
                xv = g
            elif self.x == "g_norm":
                xv = g / g_max_us
            else:
                xv = np.abs(g)
                xv /= g_max_us
                np.maximum(xv, _G_NORM_FLOOR, out=xv)
                np.log(xv, out=xv)
            if self.kind == "poly":
                value = _polyval(xv, self.coeffs)
            elif self.kind == "gauss":
                base, amp, centre, width = self.coeffs
                value = base + amp * np.exp(-0.5 * ((xv - centre) / width) ** 2)
            else:
                amp, scale = self.coeffs
                value = amp * (1.0 - np.exp(-xv / scale))
            value = np.asarray(value, dtype=np.float64)
        if self.lo is not None or self.hi is not None:
            value = np.clip(value, self.lo, self.hi, out=value if value.shape == g.shape else None)
        return np.broadcast_to(value, g.shape).astype(np.float64, copy=False)

    def __repr__(self) -> str:  # always show kind and coeffs: a law without them says nothing
        parts = [f"kind={self.kind!r}", f"coeffs={self.coeffs!r}"]
        if self.x != "g_us":
            parts.append(f"x={self.x!r}")
        if self.lo is not None:
            parts.append(f"lo={self.lo!r}")
        if self.hi is not None:
            parts.append(f"hi={self.hi!r}")
        return f"Law({', '.join(parts)})"


def _polyval(x: np.ndarray, coeffs: tuple[float, ...]) -> np.ndarray:
    """``numpy.polynomial.polynomial.polyval(x, coeffs)`` (Horner, the same operations and
    rounding) on one new array."""
    out = np.full(np.shape(x), coeffs[-1], dtype=np.float64)
    for c in coeffs[-2::-1]:
        out *= x
        out += c
    return out


def _is_real_sequence(value: Any) -> bool:
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything not array-like is simply not a sequence here
        return False
    return arr.dtype.kind in "iuf" and arr.ndim <= 1


def _as_law(name: str, value: Any) -> Law | None:
    if value is None or isinstance(value, Law):
        return value
    if isinstance(value, dict):
        return Law.from_dict(value)
    raise ValueError(f"{name} must be a Law, a Law dict or None, got {type(value).__name__}")


@dataclass(frozen=True, kw_only=True, repr=False)
class DeviceConfig(_Config):
    """One memory device: conductance range, levels, and its noise laws (all in uS)."""

    g_min_us: float = 0.0
    """lowest programmable conductance, uS."""
    g_max_us: float = 25.0
    """highest programmable conductance, uS."""
    n_levels: int | None = None
    """number of equally spaced programmable states in [g_min, g_max] (None: analog)."""
    prog_offset: Law | None = None
    """mean programming error vs target G, uS (None: 0)."""
    prog_sigma: Law | None = None
    """standard deviation of the programming error vs target G, uS (None: 0)."""
    read_sigma: Law | None = None
    """standard deviation of the read noise vs G, uS (None: 0); when drawn: ``read_noise_draw``."""
    read_noise_draw: str = "per_read"
    """when the read noise is drawn: "per_read" (default; fresh per cell on every read) or
    "per_time" (once per cell per programmed array and time setting, then the same for every
    read at that time, as aihwkit's ``PCMLikeNoiseModel`` draws it once per drift time)."""
    drift_mu_nu: Law | None = None
    """mean drift exponent nu vs target G, dimensionless (None: no drift)."""
    drift_sigma_nu: Law | None = None
    """spread of the drift exponent nu vs target G, dimensionless (None: 0)."""
    relax_sigma: Law | None = None
    """conductance relaxation vs target G, uS per sqrt(ln(t / t0)): a cell moves by
    relax_sigma(G) sqrt(ln(t / t0)) z, z ~ N(0, 1) drawn once per cell (None: none)."""
    relax_mu: Law | None = None
    """mean conductance relaxation vs target G, uS per sqrt(ln(t / t0)): with relax_sigma a
    cell moves by (relax_mu(G) + relax_sigma(G) z) sqrt(ln(t / t0)), clipped to the range;
    deterministic, draws nothing (None: 0). Written by calibration when its log-time
    relaxation model wins."""
    t0_s: float = 20.0
    """reference time of the first read after programming (drift starts here), s."""
    t_read_s: float = 250e-9
    """duration of one read (1/f read-noise bandwidth), s."""
    stuck_min_fraction: float = 0.0
    """fraction of cells stuck at g_min, in [0, 1]."""
    stuck_max_fraction: float = 0.0
    """fraction of cells stuck at g_max, in [0, 1]."""

    def __post_init__(self) -> None:
        _check_number("g_min_us", self.g_min_us, lo=0.0)
        _check_number("g_max_us", self.g_max_us, lo=0.0, lo_open=True)
        if self.g_max_us <= self.g_min_us:
            raise ValueError(f"g_max_us must be > g_min_us={self.g_min_us}, got {self.g_max_us}")
        _check_int("n_levels", self.n_levels, 2, 1 << 24, allow_none=True)
        for name in _LAW_FIELDS:
            object.__setattr__(self, name, _as_law(name, getattr(self, name)))
        _check_choice("read_noise_draw", self.read_noise_draw, _READ_NOISE_DRAWS)
        _check_number("t0_s", self.t0_s, lo=0.0, lo_open=True)
        _check_number("t_read_s", self.t_read_s, lo=0.0, lo_open=True)
        _check_number("stuck_min_fraction", self.stuck_min_fraction, lo=0.0, hi=1.0)
        _check_number("stuck_max_fraction", self.stuck_max_fraction, lo=0.0, hi=1.0)
        if self.stuck_min_fraction + self.stuck_max_fraction > 1.0:
            raise ValueError("stuck_min_fraction + stuck_max_fraction must be <= 1, got "
                             f"{self.stuck_min_fraction + self.stuck_max_fraction}")

    @property
    def is_ideal(self) -> bool:
        """True when the device adds nothing: no noise, no levels, no drift, no faults."""
        return (self.n_levels is None and self.prog_offset is None and self.prog_sigma is None
                and self.read_sigma is None and self.drift_mu_nu is None and self.drift_sigma_nu is None
                and self.relax_sigma is None and self.relax_mu is None and self.stuck_min_fraction == 0.0 and self.stuck_max_fraction == 0.0)


@dataclass(frozen=True, kw_only=True, repr=False)
class MappingConfig(_Config):
    """How weights become differential conductance pairs: W = s (G+ - G-) / (g_max - g_min)."""

    scale: str = "column"
    """digital scale s: "column" (per column of each tile), "tile" (per tile), "array" (one)."""
    clip_sigma: float | None = None
    """clip |W| at this many standard deviations of W before scaling (None: no clipping)."""
    weight_slices: int = 1
    """cells (each its own array and ADC) one weight is spread over; 1: one analog cell pair."""
    weight_slice_bits: int = 4
    """bits held by each weight slice (used only when weight_slices > 1)."""

    def __post_init__(self) -> None:
        _check_choice("weight_scale", self.scale, ("column", "tile", "array"))
        _check_number("weight_clip_sigma", self.clip_sigma, lo=0.0, lo_open=True, allow_none=True)
        _check_int("weight_slices", self.weight_slices, 1, 16)
        _check_int("weight_slice_bits", self.weight_slice_bits, 1, 16)
        if self.weight_slices * self.weight_slice_bits > 30:
            raise ValueError("weight_slices * weight_slice_bits must be <= 30 (bits of one weight magnitude), "
                             f"got {self.weight_slices} * {self.weight_slice_bits}")

    @property
    def weight_levels(self) -> int:
        """Magnitude levels of a sliced weight, ``2^(weight_slices * weight_slice_bits) - 1`` (0: not sliced)."""
        return 0 if self.weight_slices == 1 else (1 << (self.weight_slices * self.weight_slice_bits)) - 1


@dataclass(frozen=True, kw_only=True, repr=False)
class DACConfig(_Config):
    """Input digital-to-analog converter: ``x_q = r * floor(clip(x / r, -1, 1) * L + 0.5) / L``,
    ``L = 2^(bits-1) - 1`` (round half up: exact halves go towards +inf, not to even as
    Python's ``round``).

    Bit-serial inputs (``slice_bits`` set): the integer code ``q = round(x_q L / r)`` in
    ``bits``-bit two's complement is applied ``slice_bits`` bits per read, least significant
    slice first, ``slices = ceil(bits / slice_bits)`` reads; each read has fresh read noise
    and its own ADC conversion, and the slices' outputs are shifted and added digitally
    (see :mod:`crossbar.array`).
    """

    bits: int | None = None
    """resolution in bits including sign (None: no quantisation)."""
    input_range: float = 1.0
    """full-scale input r in input units (range_mode "fixed")."""
    range_mode: str = "fixed"
    """"fixed" (r = input_range) or "abs_max" (r = max |x| of each input vector, digital rescale)."""
    clip: bool = True
    """saturate inputs outside [-r, r] (False: only quantise)."""
    slice_bits: int | None = None
    """input bits applied per read, bit-serial (None: one read of the whole value); needs bits."""

    def __post_init__(self) -> None:
        _check_int("dac_bits", self.bits, 2, 24, allow_none=True)
        _check_number("dac_input_range", self.input_range, lo=0.0, lo_open=True)
        _check_choice("dac_range_mode", self.range_mode, ("fixed", "abs_max"))
        _check_bool("dac_clip", self.clip)
        _check_int("dac_slice_bits", self.slice_bits, 1, 24, allow_none=True)
        if self.slice_bits is not None and self.bits is None:
            raise ValueError(f"dac_slice_bits={self.slice_bits} needs dac_bits (the bits to slice), got dac_bits=None")
        if self.slice_bits is not None and self.slice_bits > self.bits:
            raise ValueError(f"dac_slice_bits must be <= dac_bits={self.bits}, got {self.slice_bits}")

    @property
    def slices(self) -> int:
        """Reads per input vector: ``ceil(bits / slice_bits)`` bit-serial, else 1."""
        return 1 if self.slice_bits is None else -(-self.bits // self.slice_bits)

    @property
    def active(self) -> bool:
        """True when the DAC acts: bits set (quantise, clip) or "abs_max" ranging (bits=None: no DAC)."""
        return self.bits is not None or self.range_mode == "abs_max"


@dataclass(frozen=True, kw_only=True, repr=False)
class ADCConfig(_Config):
    """Per-tile output ADC: ``y_q = R * floor(clip(y / R, -1, 1) * L + 0.5) / L``, ``L = 2^(bits-1) - 1``
    (round half up, as the DAC).

    ``y`` is a tile's partial sum in normalised units: inputs divided by the DAC range,
    conductances by (g_max - g_min), so one full-scale input on one full-scale cell gives 1
    (aihwkit's ``out_bound`` convention).
    """

    bits: int | None = None
    """resolution in bits including sign (None: no quantisation)."""
    output_range: float = 12.0
    """full-scale R of a tile's partial sum, normalised units (see class docstring)."""
    clip: bool = True
    """saturate partial sums outside [-R, R] (False: only quantise)."""
    range_mode: str = "fixed"
    """"fixed" (R = output_range) or "calibrated" (R per tile and column set from data by
    ``ProgrammedArray.calibrate_adc``; output_range until then)."""

    def __post_init__(self) -> None:
        _check_int("adc_bits", self.bits, 2, 24, allow_none=True)
        _check_number("adc_output_range", self.output_range, lo=0.0, lo_open=True)
        _check_bool("adc_clip", self.clip)
        _check_choice("adc_range_mode", self.range_mode, ("fixed", "calibrated"))

    @property
    def active(self) -> bool:
        """True when the ADC acts (bits set; bits=None: no ADC)."""
        return self.bits is not None


@dataclass(frozen=True, kw_only=True, repr=False)
class TileConfig(_Config):
    """Largest physical array; a bigger matrix is split into tiles, each with its own ADC."""

    rows: int | None = None
    """cells per column of one tile = inputs per tile (None: unbounded)."""
    cols: int | None = None
    """cells per row of one tile = outputs per tile (None: unbounded)."""

    def __post_init__(self) -> None:
        _check_int("tile_rows", self.rows, 1, 1 << 20, allow_none=True)
        _check_int("tile_cols", self.cols, 1, 1 << 20, allow_none=True)


@dataclass(frozen=True, kw_only=True, repr=False)
class OutputNoiseConfig(_Config):
    """The paper's additive Gaussian noise on every MVM output, before the ADC, fresh per call.

    Conventions (sigma_y is the standard deviation added to each output element):
    ``"absolute"``: sigma_y = sigma (output units); ``"relative"``: sigma_y = sigma * RMS(y0)
    with y0 the noiseless output of that call (RMS over all its elements);
    ``"snr_db"``: sigma_y^2 = mean(y0^2) / 10^(sigma / 10).
    """

    sigma: float | None = None
    """noise level in the units of ``convention`` (None or 0: no output noise)."""
    convention: str = "relative"
    """"relative" | "absolute" | "snr_db"."""

    def __post_init__(self) -> None:
        _check_choice("out_noise_convention", self.convention, ("relative", "absolute", "snr_db"))
        if self.convention == "snr_db":
            _check_number("out_noise_sigma", self.sigma, lo=-200.0, hi=400.0, allow_none=True)
        else:
            _check_number("out_noise_sigma", self.sigma, lo=0.0, allow_none=True)

    @property
    def active(self) -> bool:
        """True when noise is added."""
        return self.sigma is not None and (self.convention == "snr_db" or self.sigma > 0)


@dataclass(frozen=True, kw_only=True, repr=False)
class WireConfig(_Config):
    """Resistance of the row and column wires of every tile (IR drop); all 0: off (the default).

    Topology (see :mod:`crossbar.irdrop` for the circuit and its solvers): each tile of a
    differential pair is **two arrays, G+ and G-, each with its own wires**, sensed
    separately and differenced. In one array, row i is driven at its first cell (column 0)
    through ``driver_ohm``; ``row_ohm`` sits between neighbouring cells of a row;
    ``col_ohm`` between neighbouring cells of a column; each column ends after its last cell
    (row R-1) in a sense amplifier of input resistance ``sense_ohm`` holding a virtual
    ground. Cells are ohmic, so the tile's output currents are a linear map of its input
    voltages, ``I = V @ A(G)``; ``A`` replaces ``G`` in the read (computed once per
    programmed array and read time). Only the cells a matrix uses are modelled: a tile
    holding fewer rows or columns than ``tile_rows`` x ``tile_cols`` has shorter wires.

    Read noise (fast path): per-cell sigmas are carried through the same attenuation,
    ``sigma_ij A_ij / G_ij`` (clipped to [0, sigma_ij]), a first-order approximation: a
    cell's noise current is attenuated like its signal, and noise that leaks to other
    columns is ignored. Its error in the output noise std, measured against the exact
    first-order std of the circuit (README, "IR drop"), stays below the stated bound
    ``2 d + 1e-5`` with ``d = max (1 - A / G)`` the largest relative IR drop of a cell
    (cells above 1 % of g_max; :func:`crossbar.irdrop.noise_error_bound`; measured worst
    1.73 d). When that bound exceeds ``noise_tolerance`` and the device has read noise, the
    read warns (``noise_policy="warn"``), reads through the exact circuit with per-cell
    noise (``"reference"``, slow: one sparse solve per input vector and array), or says
    nothing (``"ignore"``). Noise-free reads are exact on the fast path.

    Literature values (:data:`WIRE_EXAMPLES`): aihwkit's default ``ir_drop_g_ratio`` =
    1 / (0.35 ohm * 5 uS) assumes 0.35 ohm of wire from one cell to the next; CrossSim
    (``inference_config.py``) takes ``Rp_row`` / ``Rp_col`` in ohm per unit cell, normalised
    by ``Rmin`` = 1 kohm, 0 by default. Metal lines: ``R = rho L / (W H)``.
    """

    row_ohm: float = 0.0
    """resistance of one row-wire segment between neighbouring cells, ohm."""
    col_ohm: float = 0.0
    """resistance of one column-wire segment between neighbouring cells, ohm."""
    driver_ohm: float = 0.0
    """output resistance of each row driver (plus wire before the first cell), ohm."""
    sense_ohm: float = 0.0
    """input resistance of each column sense amplifier (plus wire after the last cell), ohm."""
    noise_tolerance: float = 0.05
    """largest stated error of the fast read-noise std (relative) accepted silently."""
    noise_policy: str = "warn"
    """above noise_tolerance: "warn", "reference" (read through the exact circuit) or "ignore"."""

    def __post_init__(self) -> None:
        for name in ("row_ohm", "col_ohm", "driver_ohm", "sense_ohm"):
            _check_number(f"wire_{name}", getattr(self, name), lo=0.0, hi=1e9)
        _check_number("wire_noise_tolerance", self.noise_tolerance, lo=0.0, hi=1.0)
        _check_choice("wire_noise_policy", self.noise_policy, ("warn", "reference", "ignore"))

    @property
    def active(self) -> bool:
        """True when any resistance is above 0 (the read then goes through the wires)."""
        return self.row_ohm > 0 or self.col_ohm > 0 or self.driver_ohm > 0 or self.sense_ohm > 0

    def resistances(self) -> dict[str, float]:
        """The four resistances as keyword arguments of :mod:`crossbar.irdrop`, ohm."""
        return dict(row_ohm=float(self.row_ohm), col_ohm=float(self.col_ohm), driver_ohm=float(self.driver_ohm),
                    sense_ohm=float(self.sense_ohm))


#: Wire examples with their sources (ohm per cell segment); use as
#: ``preset("rram", **WIRE_EXAMPLES["node_130nm"])``. The node estimates are
#: ``rho L / (W H)`` for a copper line of width W, height H, length L = one cell pitch,
#: with the size-effect resistivity rho of narrow copper lines (D. Gall, J. Appl. Phys.
#: 127, 050901 (2020): about 2.2 uOhm cm when wide, 5-6 uOhm cm near 20-30 nm width):
#: order-of-magnitude values for a 1T1R cell, not a foundry's numbers.
WIRE_EXAMPLES: dict[str, dict[str, float]] = {
    # aihwkit IOParameters.ir_drop_g_ratio = 1 / 0.35 / 5e-6: "0.35 Ohm wire resistance"
    # from one cell to the next (with a 5 uS g_max); rows and columns alike.
    "aihwkit": dict(wire_row_ohm=0.35, wire_col_ohm=0.35),
    # 130 nm (the node of Wan et al. 2022's NeuRRAM): W 0.16 um, H 0.30 um, rho 2.2 uOhm cm
    # -> 0.46 ohm/um; cell pitch ~1 um -> ~0.5 ohm per segment.
    "node_130nm": dict(wire_row_ohm=0.5, wire_col_ohm=0.5),
    # 22 nm: W 32 nm, H 64 nm, rho 5 uOhm cm -> 24 ohm/um; pitch ~0.1 um -> ~2.5 ohm.
    "node_22nm": dict(wire_row_ohm=2.5, wire_col_ohm=2.5),
    # 14 nm: W 20 nm, H 40 nm, rho 6 uOhm cm -> 75 ohm/um; pitch ~0.1 um -> ~7.5 ohm.
    "node_14nm": dict(wire_row_ohm=7.5, wire_col_ohm=7.5),
}


#: sub-config field -> flat key prefix used by ArrayConfig.replace and preset overrides
_SUB_PREFIX = {"device": "", "mapping": "weight_", "dac": "dac_", "adc": "adc_", "tile": "tile_",
               "output_noise": "out_noise_", "wires": "wire_"}
_SUB_TYPES = {"device": DeviceConfig, "mapping": MappingConfig, "dac": DACConfig, "adc": ADCConfig,
              "tile": TileConfig, "output_noise": OutputNoiseConfig, "wires": WireConfig}


@dataclass(frozen=True, kw_only=True, repr=False)
class ArrayConfig(_Config):
    """A whole array: device, mapping, DAC, ADC, tiles, output noise and read switches.

    Flat override keys (for :meth:`replace` and :func:`preset`) are a sub-config's field
    name with its prefix: device fields as they are (``g_max_us``, ``read_sigma``, ...),
    ``weight_scale``, ``weight_clip_sigma``, ``weight_slices``, ``weight_slice_bits``,
    ``dac_bits``, ``dac_input_range``, ``dac_range_mode``, ``dac_clip``, ``dac_slice_bits``,
    ``adc_bits``, ``adc_output_range``, ``adc_clip``, ``adc_range_mode``,
    ``tile_rows``, ``tile_cols``, ``out_noise_sigma``, ``out_noise_convention``,
    ``wire_row_ohm``, ``wire_col_ohm``, ``wire_driver_ohm``, ``wire_sense_ohm``,
    ``wire_noise_tolerance``, ``wire_noise_policy``, plus the top-level fields below.

    Example:
        >>> cfg = ArrayConfig().replace(adc_bits=8, tile_rows=256)
        >>> cfg.adc.bits, cfg.tile.rows
        (8, 256)
    """

    name: str = "custom"
    """label carried into results (preset name or "custom")."""
    device: DeviceConfig = field(default_factory=DeviceConfig)
    """the memory device."""
    mapping: MappingConfig = field(default_factory=MappingConfig)
    """weight-to-conductance mapping."""
    dac: DACConfig = field(default_factory=DACConfig)
    """input DAC (default: none)."""
    adc: ADCConfig = field(default_factory=ADCConfig)
    """per-tile ADC (default: none)."""
    tile: TileConfig = field(default_factory=TileConfig)
    """tile size (default: one unbounded tile)."""
    output_noise: OutputNoiseConfig = field(default_factory=OutputNoiseConfig)
    """the paper's additive output noise (default: none)."""
    wires: WireConfig = field(default_factory=WireConfig)
    """resistance of the tiles' row and column wires, IR drop (default: none)."""
    drift_compensation: bool = False
    """rescale outputs by one digital factor per array estimated from a known input."""
    read_noise_path: str = "output"
    """"output" (fast, exact in distribution), "per_cell" (reference, draws every cell) or
    "output_column_mean" (an approximation for speed: each tile column's read-noise variance
    averaged over its cells, so no variance product; see crossbar/README.md for its error)."""
    normal_generator: str = "boxmuller"
    """the generator of the normals drawn on every read and in training: "boxmuller" (the
    default since 2026-11-30: counter-based splitmix64 + a vectorised float32 Box-Muller
    transform, :mod:`crossbar._normals`) or "legacy" (the streams of results made before:
    crossbar's splitmix64 ziggurat for the read noise and torch's generator for the output
    noise models adds). Both are N(0, 1); they give different numbers for the same seed.
    Deployment's programming draws (numpy's Generator) do not depend on it."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, got {self.name!r}")
        for key, typ in _SUB_TYPES.items():
            value = getattr(self, key)
            if isinstance(value, dict):
                object.__setattr__(self, key, typ.from_dict(value))
            elif not isinstance(value, typ):
                raise ValueError(f"{key} must be a {typ.__name__} or a dict, got {type(value).__name__}")
        _check_bool("drift_compensation", self.drift_compensation)
        _check_choice("read_noise_path", self.read_noise_path, ("output", "per_cell", "output_column_mean"))
        _check_choice("normal_generator", self.normal_generator, ("boxmuller", "legacy"))

    @property
    def is_digital(self) -> bool:
        """True when effective weights equal the weights and no periphery acts (ideal, paper)."""
        return (self.device.is_ideal and self.mapping.clip_sigma is None and self.mapping.weight_slices == 1
                and not self.dac.active and not self.adc.active and not self.drift_compensation
                and not self.wires.active)

    @classmethod
    def flat_keys(cls) -> dict[str, tuple[str | None, str]]:
        """Map every flat override key to (sub-config or None, field name)."""
        keys: dict[str, tuple[str | None, str]] = {}
        for f in dataclasses.fields(cls):
            if f.name not in _SUB_TYPES:
                keys[f.name] = (None, f.name)
        for sub, typ in _SUB_TYPES.items():
            keys[sub] = (None, sub)
            for f in dataclasses.fields(typ):
                prefix = _SUB_PREFIX[sub]
                # a field that carries its prefix already (weight_slices) keeps its name
                keys[f.name if prefix and f.name.startswith(prefix) else prefix + f.name] = (sub, f.name)
        return keys

    def replace(self, **overrides) -> "ArrayConfig":
        """A copy with flat overrides applied (see the class docstring for the keys).

        Raises:
            ValueError: on an unknown key (listing the valid ones) or an invalid value.
        """
        keys = self.flat_keys()
        unknown = sorted(set(overrides) - set(keys))
        if unknown:
            raise ValueError(f"ArrayConfig.replace: unknown key(s) {unknown}; valid keys are {sorted(keys)}")
        top: dict[str, Any] = {}
        subs: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            sub, name = keys[key]
            if sub is None:
                top[name] = value
            else:
                subs.setdefault(sub, {})[name] = value
        for sub, changes in subs.items():
            base = top.get(sub, getattr(self, sub))
            if isinstance(base, dict):
                base = _SUB_TYPES[sub].from_dict(base)
            if sub == "device":
                changes = {k: _as_law(k, v) if k in _LAW_FIELDS else v for k, v in changes.items()}
            top[sub] = dataclasses.replace(base, **changes)
        return dataclasses.replace(self, **top)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, complete: bool = False) -> "ArrayConfig":
        """Build from :meth:`to_dict` output; unknown keys raise.

        ``complete=False``: missing keys take the defaults (for configs written by hand in
        code). ``complete=True``: every key of every nested config and law must be present
        (files the code wrote: saved models, programmed arrays, device models).
        """
        if complete:
            cls._check_complete(data)
        cls._check_keys(data)
        return cls(**data)



# The physical presets' ADC ranges come from data (range_mode "calibrated"): models' deploy sets
# them per tile after programming; an array nobody calibrates converts at output_range.
_PHYSICAL_PERIPHERY = dict(dac=DACConfig(bits=8), adc=ADCConfig(bits=8, range_mode="calibrated"),
                           tile=TileConfig(rows=512, cols=512))

#: SONOS currents (nA, CrossSim) are expressed here as conductances at a 0.1 V read:
#: G[uS] = I[nA] / 100, so I_max = 3200 nA is g_max = 32 uS and (A, B) scale by 1/100.
_SONOS_NA_PER_US = 100.0

PRESETS: dict[str, ArrayConfig] = {
    # No noise, no quantisation, no periphery.
    "ideal": ArrayConfig(name="ideal"),
    # Qin and Vucinic (2018): ideal weights, additive Gaussian noise on each MVM output.
    "paper": ArrayConfig(name="paper", output_noise=OutputNoiseConfig(sigma=0.1, convention="relative")),
    # Joshi et al. 2020 / Nandakumar et al. 2019, the laws of aihwkit's PCMLikeNoiseModel (g_max 25 uS);
    # read noise fresh per read (read_noise_draw="per_time": once per time setting, as aihwkit).
    "pcm": ArrayConfig(
        name="pcm",
        device=DeviceConfig(
            g_min_us=0.0, g_max_us=25.0,
            prog_sigma=Law("poly", (0.26348, 1.9650, -1.1731), x="g_norm", lo=0.0),
            read_sigma=Law("pcm_read", (0.0088, 0.65, 0.2)),
            drift_mu_nu=Law("poly", (0.0244, -0.0155), x="ln_g_norm", lo=0.049, hi=0.1),
            drift_sigma_nu=Law("poly", (-0.0059, -0.0125), x="ln_g_norm", lo=0.008, hi=0.045),
            t0_s=20.0, t_read_s=250e-9),
        **_PHYSICAL_PERIPHERY),
    # Wan et al., Nature 2022, Extended Data Fig. 3 (t = 1 s), cubic fit as in CrossSim RRAMWan;
    # the fit holds for G <= 39.26 uS. Relaxation fitted to the same figure's 1-day and 2-day
    # spreads (module docstring); no read-noise data in that source, so none here.
    "rram": ArrayConfig(
        name="rram",
        device=DeviceConfig(
            g_min_us=1.0, g_max_us=39.26,
            prog_sigma=Law("poly", (1.053, 0.2374, -1.167e-2, 1.536e-4), x="g_us", lo=0.0),
            relax_sigma=Law("poly", (0.192, 0.1065, -4.815e-3, 8.432e-5, -5.585e-7), x="g_us", lo=0.0),
            t0_s=1.0),
        **_PHYSICAL_PERIPHERY),
    # Agrawal et al., IEDM 2022, as in CrossSim SONOS: programming variability at t = 0
    # (A, B) = (19.88665, 176.3115) nA, read noise (12.58037, 215.36557) nA, I <= 3200 nA.
    "sonos": ArrayConfig(
        name="sonos",
        device=DeviceConfig(
            g_min_us=0.0, g_max_us=3200.0 / _SONOS_NA_PER_US,
            prog_sigma=Law("sat_exp", (19.88665 / _SONOS_NA_PER_US, 176.3115 / _SONOS_NA_PER_US), lo=0.0),
            read_sigma=Law("sat_exp", (12.58037 / _SONOS_NA_PER_US, 215.36557 / _SONOS_NA_PER_US), lo=0.0)),
        **_PHYSICAL_PERIPHERY),
}


def preset(name_or_path: str | os.PathLike = "ideal", **overrides) -> ArrayConfig:
    """A named preset or a device-model JSON file, with flat overrides applied.

    A device-model file takes one of two forms:

    - complete: ``{"array_config": {...}, ...}`` (as ``xbarsim calibrate`` writes it; other
      top-level keys such as "calibration" are ignored) or a bare ArrayConfig dict. Every
      field of every nested config and law must be present, exactly as
      :meth:`ArrayConfig.to_dict` writes them: a missing key is an error naming it, never a
      silent default (a PCM file without ``read_sigma`` would otherwise have no read noise).
    - partial override, for hand-written files: ``{"base": "pcm", "overrides": {"adc_bits": 6,
      "tile_rows": 256}}``: a named preset (or another device-model file, relative to this
      one) with flat keys as in :meth:`ArrayConfig.replace`; everything not listed comes
      from the named base.

    Args:
        name_or_path: one of :data:`PRESETS` ("ideal", "paper", "pcm", "rram", "sonos"), or
            the path of a device-model JSON file (see above).
        **overrides: flat keys as in :meth:`ArrayConfig.replace` (``adc_bits=6``, ...).

    Returns:
        The ArrayConfig.

    Raises:
        ValueError: unknown preset name, unreadable or malformed file, unknown or missing keys,
            or invalid values (a file's messages start with its path).

    Example:
        >>> preset("pcm", adc_bits=6, tile_rows=256).adc.bits
        6
    """
    key = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else name_or_path
    if not isinstance(key, str):
        raise ValueError(f"preset expects a preset name or a path, got {type(name_or_path).__name__}")
    if key in PRESETS:
        cfg = PRESETS[key]
    elif os.path.isfile(key):
        cfg = _device_file(key, depth=0)
    else:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)} or an existing JSON file, got {key!r}")
    return cfg.replace(**overrides) if overrides else cfg


_PARTIAL_HINT = ('for a hand-written partial config use {"base": "<preset name>", "overrides": {"adc_bits": 6, ...}}')


def _device_file(path: str, depth: int) -> ArrayConfig:
    """Read a device-model JSON file in either documented form (see :func:`preset`)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read a JSON device model: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed JSON device model: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a device model must be a JSON object, got {type(data).__name__}")
    try:
        if "base" in data or "overrides" in data:
            extra = sorted(set(data) - {"base", "overrides", "description"})
            if extra:
                raise ValueError(f"a partial-override file has keys base, overrides (and an optional "
                                 f"description); unknown key(s) {extra}")
            base, changes = data.get("base"), data.get("overrides", {})
            if not isinstance(base, str) or not isinstance(changes, dict):
                raise ValueError(f"'base' must be a preset name or a file path and 'overrides' an object of flat "
                                 f"keys, got base={base!r}, overrides of type {type(changes).__name__}")
            if base in PRESETS:
                cfg = PRESETS[base]
            else:
                other = os.path.join(os.path.dirname(path), base)
                if depth >= 8 or not os.path.isfile(other):
                    raise ValueError(f"'base' must be one of {sorted(PRESETS)} or an existing device-model file, "
                                     f"got {base!r}")
                cfg = _device_file(other, depth + 1)
            return cfg.replace(**changes)
        body = data["array_config"] if "array_config" in data else data
        return ArrayConfig.from_dict(body, complete=True)
    except _Missing as exc:
        raise ValueError(f"{path}: {exc}; {_PARTIAL_HINT}") from exc
    except ValueError as exc:
        if str(exc).startswith(path):
            raise
        raise ValueError(f"{path}: {exc}") from exc
