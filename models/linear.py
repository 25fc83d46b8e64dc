"""AnalogLinear and the analog state every analog layer shares (:class:`AnalogLayerMixin`)."""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor, nn

import crossbar

from .autograd import analog_mvm
from .noise import check_noise_draw, has_long_term_noise, new_seed, read_config, training_config
from .reader import MatrixReader

__all__ = ["AnalogLayerMixin", "AnalogLinear", "check_config", "check_input"]

#: the numpy dtype of a parameter's reads, for preparing a training program (others: float32)
_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def check_config(config: Any) -> Any:
    """Return ``config`` if it is a :class:`crossbar.ArrayConfig`, else raise TypeError.

    A preset name (str) is accepted and turned into its config with :func:`crossbar.preset`.
    """
    if isinstance(config, str):
        return crossbar.preset(config)
    if not isinstance(config, crossbar.ArrayConfig):
        raise TypeError(
            "config must be a crossbar.ArrayConfig (e.g. crossbar.preset('ideal') or "
            f"crossbar.preset('paper', out_noise_sigma=0.1)) or a preset name, got {type(config).__name__}")
    return config


def check_input(x: Any, name: str, ndims: Iterable[int], last: int | None, dtype_of: Tensor) -> Tensor:
    """Check a layer input: a floating tensor, allowed ndim, last dim, dtype, finite.

    Raises:
        TypeError: not a tensor, or dtype differs from the layer's parameters.
        ValueError: wrong number of dimensions, wrong last dimension, NaN or Inf.
    """
    ndims = tuple(ndims)
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != dtype_of.dtype:
        raise TypeError(f"{name}.dtype must be {dtype_of.dtype} (the layer's parameter dtype), got {x.dtype}")
    if x.dim() not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimensions, got shape {tuple(x.shape)}")
    if last is not None and x.shape[-1] != last:
        raise ValueError(f"{name}.shape[-1] must equal {last}, got {x.shape[-1]} (shape {tuple(x.shape)})")
    if x.device.type != "cpu":
        raise ValueError(f"{name} must be on the CPU (the crossbar kernel runs there), got device {x.device}")
    # a NaN or Inf makes the sum non-finite; only then (or on overflow) check element-wise
    if x.numel() and not math.isfinite(float(x.detach().sum())) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return x


class AnalogLayerMixin:
    """Analog state shared by every analog layer.

    Attributes:
        config: the :class:`crossbar.ArrayConfig` every weight matrix is read with.
        noise_draw: which reads share output-noise draws (:mod:`models.noise`).
        seed: seed of the layer's generators, or None (drawn from torch's global
            generator at the first forward, so ``torch.manual_seed`` fixes it).
        t_s: time since programming (seconds) for deployed reads, or None.
        input_ranges: DAC input range (input units) of each analog weight matrix, by
            parameter name, from :func:`models.ranges.calibrate_input_ranges` (or set with
            :meth:`set_input_ranges`); a matrix without one uses its config's
            ``dac_input_range``. Used by every array the layer programs (DAC range mode
            "fixed"); saved with checkpoints.
    """

    #: names of the weight parameters that live on analog arrays (biases stay digital)
    analog_weights: tuple[str, ...] = ()

    def _init_analog(self, config: Any, noise_draw: str, seed: int | None) -> None:
        self.config = check_config(config)
        self.noise_draw = check_noise_draw(noise_draw)
        self.seed = None if seed is None else new_seed(seed)
        self.t_s: float | None = None
        self._gens: tuple[torch.Generator, np.random.Generator] | None = None
        self._programmed: dict[str, Any] | None = None  # deployment: name -> ProgrammedArray
        self._cache: dict[str, tuple[tuple, Any]] = {}   # training: deterministic programs
        self.input_ranges: dict[str, float] = {}
        self._range_observer: dict[str, Any] | None = None  # calibration: name -> statistic
        self._range_learner: dict[str, Any] | None = None   # learned ranges: name -> _LearnedRange

    # -- seeds ---------------------------------------------------------------------------
    def reseed(self, seed: int | None = None) -> None:
        """Restart the layer's noise generators from ``seed`` (None: from torch's generator)."""
        self.seed = new_seed(seed)
        self._gens = None

    def _generators(self) -> tuple[torch.Generator, np.random.Generator]:
        if self._gens is None:
            if self.seed is None:
                self.seed = new_seed(None)
            ss = np.random.SeedSequence(self.seed)
            s_torch, s_np = ss.spawn(2)
            g = torch.Generator().manual_seed(int(s_torch.generate_state(1, np.uint64)[0] >> np.uint64(1)))
            self._gens = (g, np.random.default_rng(s_np))
        return self._gens

    # -- converter ranges -------------------------------------------------------------------
    def set_input_ranges(self, ranges: dict[str, float] | None) -> None:
        """Store the DAC input range of analog weight matrices (None or {}: clear them all).

        Programmed arrays take the new ranges at once; training programs pick them up.

        Raises:
            ValueError: an unknown weight name (the valid ones are listed) or a range that is
                not a finite number > 0.
        """
        ranges = dict(ranges or {})
        unknown = sorted(set(ranges) - set(self.analog_weights))
        if unknown:
            raise ValueError(f"input ranges for unknown weight(s) {unknown}; analog weights are "
                             f"{list(self.analog_weights)}")
        clean = {}
        for name, value in ranges.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"input range of {name} must be a finite number > 0 (input units), got {value!r}")
            clean[name] = float(value)
        self.input_ranges = clean
        self._cache.clear()
        if self._programmed is not None:
            for name, arr in self._programmed.items():
                self._apply_ranges(name, arr, reset=True)

    def _apply_ranges(self, name: str, arr: Any, reset: bool = False) -> Any:
        """Give a freshly programmed array this matrix's stored DAC range (or the config's)."""
        if getattr(arr, "is_digital", True):
            return arr
        value = self.input_ranges.get(name)
        if value is not None:
            arr.set_ranges(dac_range=value)
        elif reset:
            arr.set_ranges(dac_range=float(self.config.dac.input_range))
        return arr

    def clip_counts(self) -> dict[str, dict[str, int]]:
        """Converter saturation counts of each programmed weight matrix ({} when not deployed);
        see :meth:`crossbar.ProgrammedArray.clip_counts`."""
        if self._programmed is None:
            return {}
        return {name: arr.clip_counts() for name, arr in self._programmed.items() if hasattr(arr, "clip_counts")}

    def reset_clip_counts(self) -> None:
        """Zero the saturation counters of the programmed arrays."""
        for arr in (self._programmed or {}).values():
            if hasattr(arr, "reset_clip_counts"):
                arr.reset_clip_counts()

    # -- config and deployment -------------------------------------------------------------
    def set_config(self, config: Any) -> None:
        """Change the crossbar config (e.g. to an inference noise level); drops programs."""
        self.config = check_config(config)
        self._programmed = None
        self._cache.clear()

    @property
    def programmed(self) -> bool:
        """Whether the layer is deployed (programmed arrays are read instead of weights)."""
        return self._programmed is not None

    def program(self, seed: int | np.random.SeedSequence | None = None) -> None:
        """Program every analog weight matrix once (long-term noise drawn here).

        Args:
            seed: seed of the long-term draws (None: drawn from torch's generator).
        """
        ss = np.random.SeedSequence(new_seed(seed))
        progs = {}
        for name, child in zip(self.analog_weights, ss.spawn(len(self.analog_weights))):
            w = getattr(self, name).detach().cpu().numpy()
            progs[name] = self._apply_ranges(
                name, crossbar.program(w, read_config(self.config), seed=np.random.default_rng(child)))
        self._programmed = progs

    def programmed_arrays(self) -> dict[str, Any]:
        """The deployed arrays, weight name -> :class:`crossbar.ProgrammedArray` (empty when
        not programmed). The dict is a copy; the arrays are the layer's own."""
        return dict(self._programmed or {})

    def set_programmed(self, arrays: dict[str, Any]) -> None:
        """Deploy given programmed arrays (e.g. loaded from disk), one per analog weight."""
        missing = set(self.analog_weights) - set(arrays)
        if missing:
            raise ValueError(f"programmed arrays missing for {sorted(missing)}; expected {list(self.analog_weights)}")
        for name in self.analog_weights:
            want = tuple(getattr(self, name).shape)
            got = tuple(arrays[name].shape)
            if got != want:
                raise ValueError(f"programmed array for {name} has shape {got}, expected {want}")
        self._programmed = {n: arrays[n] for n in self.analog_weights}

    def unprogram(self) -> None:
        """Leave deployment: read the (trainable) weights again."""
        self._programmed = None

    def set_time(self, t_s: float | None) -> None:
        """Set the time since programming in seconds (None: the config's default read time)."""
        if t_s is not None:
            t_s = float(t_s)
            if not math.isfinite(t_s) or t_s < 0:
                raise ValueError(f"t_s must be a finite number >= 0 or None, got {t_s}")
        self.t_s = t_s

    # -- reading ---------------------------------------------------------------------------
    def _array_for(self, name: str) -> Any:
        if self._programmed is not None:
            return self._programmed[name]
        w = getattr(self, name)
        cfg = self._training_config()
        if has_long_term_noise(cfg):
            # long-term device noise: a fresh programmed instance for every forward call, its
            # first read (t_s = 0, the training read) prepared in the same pass, with this
            # matrix's stored DAC range (as _apply_ranges)
            return crossbar.program_and_prepare(w.detach().numpy(), cfg, seed=self._generators()[1],
                                                dtype=_NP_DTYPES.get(w.dtype, np.float32),
                                                dac_range=self.input_ranges.get(name))
        key = (w.data_ptr(), w._version, w.dtype, tuple(w.shape), id(self.config))
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        prog = self._apply_ranges(
            name, crossbar.program(w.detach().numpy(), cfg, seed=self._generators()[1]))
        self._cache[name] = (key, prog)
        return prog

    def _training_config(self) -> Any:
        """:func:`models.noise.training_config` of the layer's config (cached per config)."""
        hit = self._cache.get("_training_config")
        if hit is None or hit[0] is not self.config:
            hit = self._cache["_training_config"] = (self.config, training_config(self.config))
        return hit[1]

    def _reader(self, name: str, steps: int, batch: int) -> MatrixReader:
        g, r = self._generators()
        w = getattr(self, name)
        if self._programmed is None and self.config.is_digital:
            # digital config (ideal, paper): the read is exactly x @ W.T (+ the output noise
            # models adds); programming would only copy W, so read the parameter itself
            reader = MatrixReader(None, self.config, self.noise_draw, steps, batch, g, r, None, w.shape[0], weight=w)
        else:
            reader = MatrixReader(self._array_for(name), self.config, self.noise_draw, steps, batch, g, r,
                                  self.t_s if self._programmed is not None else None, w.shape[0])
        if self._range_observer is not None:
            return _ObservedReader(reader, self._range_observer[name])
        if self._range_learner is not None and name in self._range_learner:
            return self._range_learner[name].reader(reader, self.training)
        return reader

    def _analog_extra_repr(self) -> str:
        s = f", config={self.config!r}, noise_draw={self.noise_draw!r}"
        if self.seed is not None:
            s += f", seed={self.seed}"
        return s

    def __getstate__(self):  # keep pickles/deepcopies free of programmed caches
        state = self.__dict__.copy()
        state["_cache"] = {}
        state["_range_observer"] = None
        state["_range_learner"] = None
        return state

    def __setstate__(self, state):  # layers pickled before input ranges existed
        state.setdefault("input_ranges", {})
        state.setdefault("_range_observer", None)
        state.setdefault("_range_learner", None)
        super().__setstate__(state)


class _ObservedReader:
    """A reader that hands every input it reads to ``record`` (range calibration), then reads.

    It reports no digital weight, so an LSTM runs its step-by-step path and every
    recurrent read passes here too; everything else is the wrapped reader's.
    """

    def __init__(self, reader: MatrixReader, record: Any):
        self._reader = reader
        self._record = record

    def __call__(self, x: Tensor, t0: int = 0) -> Tensor:
        self._record(x.detach())
        return self._reader(x, t0)

    def digital_weight(self, dtype: torch.dtype) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


class AnalogLinear(AnalogLayerMixin, nn.Linear):
    """``y = x W^T + b`` with ``x W^T`` read from a crossbar; ``b`` added digitally.

    Same signature, parameters (``weight`` (out, in), ``bias`` (out,)) and initialisation
    as :class:`torch.nn.Linear`, plus the analog keywords.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive (digital) bias.
        config: :class:`crossbar.ArrayConfig` (``crossbar.preset("ideal")`` = no noise).
        noise_draw: "mvm" | "step" | "sequence" | "batch". One call is one time step:
            "mvm" and "sequence" draw fresh output noise for every row; "step" and
            "batch" share one draw by all rows of the call.
        seed: seed of the layer's noise draws (None: from torch's global generator).

    Shape:
        input (*, in_features) -> output (*, out_features).

    Example:
        >>> layer = AnalogLinear(8, 4, config=crossbar.preset("paper", out_noise_sigma=0.1))
        >>> layer(torch.randn(5, 8)).shape
        torch.Size([5, 4])
    """

    analog_weights = ("weight",)

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None, *,
                 config: Any, noise_draw: str = "mvm", seed: int | None = None):
        nn.Linear.__init__(self, in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_analog(config, noise_draw, seed)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002 (torch's name)
        x = check_input(input, "input", range(1, 9), self.in_features, self.weight)
        lead = x.shape[:-1]
        x3 = x.reshape(1, -1, self.in_features)
        rows = x3.shape[1]
        nd = "step" if self.noise_draw == "batch" else ("mvm" if self.noise_draw == "sequence" else self.noise_draw)
        reader = self._reader("weight", 1, rows)
        reader.noise_draw = nd
        y = analog_mvm(x3, self.weight, reader).reshape(*lead, self.out_features)
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self) -> str:
        return nn.Linear.extra_repr(self) + self._analog_extra_repr()

    @classmethod
    def from_torch(cls, module: nn.Linear, config: Any, **kw: Any) -> "AnalogLinear":
        """An AnalogLinear with ``module``'s shape and weights."""
        new = cls(module.in_features, module.out_features, bias=module.bias is not None,
                  dtype=module.weight.dtype, config=config, **kw)
        new.load_state_dict(module.state_dict())
        return new

    def to_torch(self) -> nn.Linear:
        """A :class:`torch.nn.Linear` with this layer's weights."""
        new = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, dtype=self.weight.dtype)
        new.load_state_dict(self.state_dict())
        return new
