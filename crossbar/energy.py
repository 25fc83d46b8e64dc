"""Energy, latency and area of crossbar reads: exact counters times per-operation costs.

Three parts, numpy only (no torch):

* :class:`MVMCounter`: what the reads of one programmed weight matrix did, counted
  exactly from its shape and configuration: reads of each tile, rows driven and input
  slices, cells read (both cells of each differential pair), DAC and ADC conversions
  and their bits, digital shift-adds, accumulations over row tiles, digital scalings,
  bits moved into and out of tile buffers. :meth:`crossbar.ProgrammedArray.mvm` adds the
  number of input vectors of each call when a counter is attached
  (``array.counters = MVMCounter.for_array(array)``); every count is that number times
  a per-vector count fixed by the geometry, so counting costs one integer add per call.
* :class:`CostModel`: the cost of each operation, every field overridable and carrying
  its source (``CostModel.sources``), and the cost laws as plain functions
  (:func:`walden_energy_j`, :func:`schreier_energy_j`, :func:`murmann_fom_db`,
  :func:`cell_read_energy_j`, :func:`dac_energy_j`, :func:`node_scaled_j`).
* :class:`Chip` presets (:data:`CHIPS`): a published chip's tile geometry, converters and
  costs, its published TOPS/W anchors, and one labelled overhead (a power per busy tile:
  clocks, control, leakage, network, calibration) fitted to one anchor. The other
  anchors of the same chip are predictions that test the model
  (:func:`anchor_table`).

Conventions (state them next to any number):

* 1 MAC = 2 ops; TOPS/W = ops / energy / 1e12; fJ/op = 1000 / (TOPS/W).
* ADC energy per conversion of ``b`` bits (ENOB = b): Walden ``E = FOM_W 2^b``;
  Schreier ``E = 0.5 10^((SNDR - FOM_S) / 10)`` with ``SNDR = 6.02 b + 1.76`` dB (P / f_s
  with bandwidth f_s / 2); the Murmann-survey frontier is Schreier with
  ``FOM_S = min(180.1, 302.74 - 6.461 ln f_s)`` dB (as in Accelergy's ADC plug-in: an
  optimistic bound by design).
* Input slices: ``ceil(dac_bits / slice_bits)`` reads per input vector
  (``slice_bits`` None: one read of the whole value); weight slices: cells per weight per
  polarity, each its own array and ADC, combined by shift-and-add. Every slice is a
  separate read with its own ADC conversions (DESIGN.md, bit slicing).
* Tiles of one matrix, and the arrays of its weight slices, are read in parallel; input
  slices (and phases) one after another.
* Overhead energy = the chip's fitted overhead power per tile x the busy time of each
  tile read (tiles idle between reads are assumed power-gated: optimistic for a
  sequential RNN).

Example:
    >>> import crossbar
    >>> from crossbar.energy import MVMCounter, CHIPS, estimate
    >>> c = MVMCounter(256, 256, tile_rows=256, tile_cols=256, dac_bits=8, adc_bits=8)
    >>> c.add(1)
    >>> e = estimate(c, CHIPS["hermes"].costs)
    >>> round(2 * 256 * 256 / e.energy_j / 1e12, 2)  # TOPS/W of one 8-bit MVM on HERMES
    9.76
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .config import check_dict_keys

__all__ = [
    "input_slices", "MVMCounter", "DigitalOps",
    "walden_energy_j", "schreier_energy_j", "murmann_fom_db", "cell_read_energy_j", "dac_energy_j",
    "node_scaled_j", "CostModel", "Estimate", "estimate", "estimate_digital_ops",
    "Anchor", "Chip", "CHIPS", "chip", "anchor_prediction", "anchor_table", "CATEGORIES",
]

#: energy categories of an :class:`Estimate`, in report order
CATEGORIES = ("cells", "dac", "adc", "shift_add", "accumulate", "scale", "buffers", "rnn_digital", "macs",
              "overhead")


# =========================================================================== counters
def _pos_int(name: str, v: Any, *, allow_none: bool = False, lo: int = 1) -> None:
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an int >= {lo}{none}, got {v!r}")


def input_slices(dac_bits: int | None, slice_bits: int | None) -> int:
    """Reads per input vector: ``ceil(dac_bits / slice_bits)``; 1 when either is None.

    Example:
        >>> input_slices(8, 1), input_slices(8, 3), input_slices(8, None), input_slices(None, 2)
        (8, 3, 1, 1)
    """
    if dac_bits is None or slice_bits is None:
        return 1
    return -(-int(dac_bits) // int(slice_bits))


def _tile_sizes(n: int, size: int | None) -> list[int]:
    size = n if size is None else size
    return [min(size, n - a) for a in range(0, n, size)]


class MVMCounter:
    """Exact operation counts of the reads of one weight matrix (out x in) on tiles.

    Per input vector (one MVM), with ``R`` row tiles (inputs) and ``C`` column tiles
    (outputs), ``S = input_slices * phases`` sequential reads and ``W = weight_slices``::

        tile reads          R C W S            (array activations, one per tile per read)
        rows driven         in C W S           (= DAC conversions: each tile drives its rows)
        cells read          cells_per_weight W in out S   (cells_per_weight 2: both cells of a pair)
        ADC conversions     out R W S          (each column of each tile, each read)
        shift-adds          out R (W S - 1)    (slices of a tile combined into one partial sum)
        tile accumulations  out (R - 1)        (partial sums of the row tiles added)
        digital scalings    out (R + 1)        (column scale per row tile, then the input range)
        buffer bits in      in C W dac_bits    (each input into each tile's buffer once)
        buffer bits out     ADC conversions x adc_bits

    Totals are these times :attr:`vectors` (input vectors read so far).

    Args:
        in_features, out_features: the matrix shape (weights are (out, in)).
        tile_rows, tile_cols: largest tile (None: unbounded, one tile).
        dac_bits, adc_bits: converter resolution (None: ideal converter, no bits known).
        slice_bits: input bits per read (None: whole value in one read).
        weight_slices: cells per weight per polarity, each its own array and ADC.
        phases: complete reads per MVM repeated for precision (e.g. HERMES' 4-phase mode).
        cells_per_weight: cells per weight per slice (2: a differential pair).

    Example:
        >>> c = MVMCounter(300, 100, tile_rows=256, tile_cols=256, dac_bits=8, adc_bits=8)
        >>> c.add(2)
        >>> c.totals()["adc_conversions"], c.totals()["tile_accumulations"]
        (400, 200)
    """

    __slots__ = ("in_features", "out_features", "tile_rows", "tile_cols", "dac_bits", "adc_bits", "slice_bits",
                 "weight_slices", "phases", "cells_per_weight", "vectors", "calls", "_per_vector")

    def __init__(self, in_features: int, out_features: int, *, tile_rows: int | None = None,
                 tile_cols: int | None = None, dac_bits: int | None = None, adc_bits: int | None = None,
                 slice_bits: int | None = None, weight_slices: int = 1, phases: int = 1, cells_per_weight: int = 2):
        _pos_int("in_features", in_features)
        _pos_int("out_features", out_features)
        _pos_int("tile_rows", tile_rows, allow_none=True)
        _pos_int("tile_cols", tile_cols, allow_none=True)
        _pos_int("dac_bits", dac_bits, allow_none=True)
        _pos_int("adc_bits", adc_bits, allow_none=True)
        _pos_int("slice_bits", slice_bits, allow_none=True)
        _pos_int("weight_slices", weight_slices)
        _pos_int("phases", phases)
        _pos_int("cells_per_weight", cells_per_weight)
        self.in_features, self.out_features = in_features, out_features
        self.tile_rows, self.tile_cols = tile_rows, tile_cols
        self.dac_bits, self.adc_bits, self.slice_bits = dac_bits, adc_bits, slice_bits
        self.weight_slices, self.phases, self.cells_per_weight = weight_slices, phases, cells_per_weight
        self.vectors = 0
        self.calls = 0
        self._per_vector: dict[str, int] | None = None

    @classmethod
    def from_config(cls, shape: tuple[int, int], config: Any, **extra: Any) -> "MVMCounter":
        """A counter for a (out, in) matrix read with ``config`` (a :class:`crossbar.ArrayConfig`).

        Bit slicing is read as ``config.dac.slice_bits`` and ``config.mapping.weight_slices``
        when the config has them (None and 1 otherwise). ``extra`` (e.g. ``phases``)
        is passed on.
        """
        out_f, in_f = int(shape[0]), int(shape[1])
        return cls(in_f, out_f, tile_rows=config.tile.rows, tile_cols=config.tile.cols, dac_bits=config.dac.bits,
                   adc_bits=config.adc.bits, slice_bits=getattr(config.dac, "slice_bits", None),
                   weight_slices=int(getattr(config.mapping, "weight_slices", 1) or 1), **extra)

    @classmethod
    def for_array(cls, array: Any, **extra: Any) -> "MVMCounter":
        """A counter for a :class:`crossbar.ProgrammedArray` (its shape and config)."""
        return cls.from_config(array.shape, array.config, **extra)

    # ------------------------------------------------------------------ updates
    def add(self, vectors: int) -> None:
        """Record one read call of ``vectors`` input vectors (called by ProgrammedArray.mvm)."""
        self.vectors += vectors
        self.calls += 1

    def reset(self) -> None:
        """Forget what was counted (the geometry stays)."""
        self.vectors = 0
        self.calls = 0

    # ------------------------------------------------------------------ geometry
    @property
    def input_slices(self) -> int:
        """Reads per input vector from input bit slicing (before phases)."""
        return input_slices(self.dac_bits, self.slice_bits)

    @property
    def reads_per_vector(self) -> int:
        """Sequential reads of every tile per input vector: input slices x phases."""
        return self.input_slices * self.phases

    @property
    def row_tiles(self) -> list[int]:
        """Rows (inputs) of each row tile."""
        return _tile_sizes(self.in_features, self.tile_rows)

    @property
    def col_tiles(self) -> list[int]:
        """Columns (outputs) of each column tile."""
        return _tile_sizes(self.out_features, self.tile_cols)

    @property
    def n_tiles(self) -> int:
        """Physical arrays holding the matrix: row tiles x column tiles x weight slices."""
        return len(self.row_tiles) * len(self.col_tiles) * self.weight_slices

    @property
    def bits_per_slice(self) -> int | None:
        """Input bits applied per read (the DAC resolution of one slice), None if unknown."""
        if self.dac_bits is None:
            return None
        return self.dac_bits if self.slice_bits is None else min(self.slice_bits, self.dac_bits)

    def per_vector(self) -> dict[str, int]:
        """The counts of one input vector (see the class docstring)."""
        if self._per_vector is None:
            n_in, n_out = self.in_features, self.out_features
            nr, nc = len(self.row_tiles), len(self.col_tiles)
            w, s = self.weight_slices, self.reads_per_vector
            adc = n_out * nr * w * s
            self._per_vector = {
                "tile_reads": nr * nc * w * s,
                "input_slices": self.input_slices,
                "rows_driven": n_in * nc * w * s,
                "dac_conversions": n_in * nc * w * s,
                "cells_read": self.cells_per_weight * w * n_in * n_out * s,
                "adc_conversions": adc,
                "shift_adds": n_out * nr * (w * s - 1),
                "tile_accumulations": n_out * (nr - 1),
                "scale_mults": n_out * (nr + 1),
                "buffer_bits_in": n_in * nc * w * (self.dac_bits or 0),
                "buffer_bits_out": adc * (self.adc_bits or 0),
                "macs": n_in * n_out,
            }
        return dict(self._per_vector)

    def totals(self) -> dict[str, int]:
        """Counts of everything read so far: :meth:`per_vector` x :attr:`vectors`.

        ``input_slices`` is per vector (not multiplied); ``vectors`` and ``calls`` are added.
        """
        out = {k: v * self.vectors for k, v in self.per_vector().items()}
        out["input_slices"] = self.input_slices
        out["vectors"] = self.vectors
        out["calls"] = self.calls
        return out

    def per_tile(self) -> list[dict[str, int]]:
        """Counts of each physical array so far: row tile, column tile, weight slice, its
        rows and columns, reads, rows driven, cells read, ADC conversions."""
        s, v = self.reads_per_vector, self.vectors
        rows_out = []
        for k, r in enumerate(self.row_tiles):
            for m, c in enumerate(self.col_tiles):
                for ws in range(self.weight_slices):
                    rows_out.append({"row_tile": k, "col_tile": m, "weight_slice": ws, "rows": r, "cols": c,
                                     "reads": s * v, "rows_driven": r * s * v,
                                     "cells_read": self.cells_per_weight * r * c * s * v,
                                     "adc_conversions": c * s * v})
        return rows_out

    def describe(self) -> dict[str, Any]:
        """The geometry as a JSON-ready dict."""
        return {k: getattr(self, k) for k in ("in_features", "out_features", "tile_rows", "tile_cols", "dac_bits",
                                              "adc_bits", "slice_bits", "weight_slices", "phases",
                                              "cells_per_weight")}

    def __repr__(self) -> str:
        geo = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"MVMCounter({geo}, vectors={self.vectors})"


@dataclass
class DigitalOps:
    """Digital work outside the arrays (an RNN cell's gates, nonlinearities, products).

    Attributes:
        adds: additions (gate sums, biases, state updates).
        mults: elementwise multiplications.
        nonlinear: sigmoid / tanh / relu evaluations.
        steps: sequential steps the work is spread over (for latency).
    """

    adds: int = 0
    mults: int = 0
    nonlinear: int = 0
    steps: int = 0

    def __add__(self, other: "DigitalOps") -> "DigitalOps":
        return DigitalOps(self.adds + other.adds, self.mults + other.mults, self.nonlinear + other.nonlinear,
                          self.steps + other.steps)

    def scaled(self, k: int) -> "DigitalOps":
        """Every count times ``k``."""
        return DigitalOps(self.adds * k, self.mults * k, self.nonlinear * k, self.steps * k)

    @property
    def ops(self) -> int:
        """All operations."""
        return self.adds + self.mults + self.nonlinear


# =========================================================================== cost laws
def walden_energy_j(bits: float, fom_j_per_step: float) -> float:
    """Walden ADC energy per conversion: ``E = FOM_W 2^bits`` (ENOB taken = bits), J."""
    return float(fom_j_per_step) * 2.0 ** bits


def schreier_energy_j(bits: float, fom_db: float) -> float:
    """Schreier ADC energy per conversion: ``E = 0.5 10^((SNDR - FOM_S) / 10)``, J.

    ``SNDR = 6.02 bits + 1.76`` dB; ``FOM_S = SNDR + 10 log10(BW / P)`` with BW = f_s / 2,
    so ``P / f_s = 0.5 10^((SNDR - FOM_S) / 10)``.
    """
    sndr = 6.02 * bits + 1.76
    return 0.5 * 10.0 ** ((sndr - float(fom_db)) / 10.0)


def murmann_fom_db(fs_hz: float) -> float:
    """Schreier FOM of the Murmann ADC-survey frontier: ``min(180.1, 302.74 - 6.461 ln f_s)`` dB.

    As fitted in Accelergy's ADC plug-in (MIT licence); optimistic by design.
    """
    return min(180.1, 302.74 - 6.461 * math.log(float(fs_hz)))


def cell_read_energy_j(v_read_v: float, g_us: float, t_s: float) -> float:
    """Energy one cell dissipates in a read: ``E = V^2 G t`` (G in uS), J."""
    return float(v_read_v) ** 2 * float(g_us) * 1e-6 * float(t_s)


def dac_energy_j(bits: float, e_1bit_j: float, c_row_f: float = 0.0, v_drive_v: float = 0.0) -> float:
    """Row driver energy per conversion: ``E = E_1bit 2^(bits-1) + C_row V_drive^2``, J.

    The first term doubles per added bit (MNSIM's DAC law, ISAAC's 1-bit DAC as E_1bit);
    the second charges the row wire once.
    """
    return float(e_1bit_j) * 2.0 ** (bits - 1) + float(c_row_f) * float(v_drive_v) ** 2


def node_scaled_j(e_45nm_j: float, node_nm: float, exponent: float = 1.0) -> float:
    """A digital energy given at 45 nm scaled to ``node_nm``: ``E (node / 45)^exponent``, J.

    Exponent 1 (switched capacitance proportional to feature size at constant voltage)
    is a first-order rule; Stillmaker and Baas (2017) tabulate measured factors.
    """
    return float(e_45nm_j) * (float(node_nm) / 45.0) ** float(exponent)


# =========================================================================== cost model
def _num(name: str, v: Any, *, lo: float = 0.0, lo_open: bool = False, allow_none: bool = False) -> None:
    if v is None and allow_none:
        return
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    ok = ok and (float(v) > lo if lo_open else float(v) >= lo)
    if not ok:
        rel = ">" if lo_open else ">="
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a finite number {rel} {lo:g}{none}, got {v!r}")


_ADC_LAWS = ("walden", "schreier", "murmann")

#: where each default cost comes from (../shared/ENERGY.md tags: [S] seen in the source,
#: [D] derived by arithmetic, [A] an assumption of this model)
_DEFAULT_SOURCES = {
    "node_nm": "[A] technology node of the digital periphery",
    "v_read_v": "[D] 0.2 V PCM read (ENERGY.md; Nandakumar 2019 / aihwkit PCM)",
    "g_mean_us": "[A] mean cell conductance 0.15 g_max of a 25 uS PCM differential pair",
    "t_cell_on_s": "[A] fixed conduction time per read (0: pulse-width inputs only)",
    "input_activity": "[A] mean |x| / full scale: fraction of the pulse window a row conducts",
    "t_input_lsb_s": "[A] pulse-width input: time per input LSB",
    "t_read_s": "[A] fixed read/settling time per read (latency only)",
    "dac_e_1bit_j": "[D] ISAAC 1-bit DAC 3.9 uW at 1 GHz ~ 4 fJ per activation; MNSIM doubles per bit [S]",
    "row_c_per_cell_f": "[A] row wire capacitance per cell on the row",
    "v_drive_v": "[A] row drive voltage swing",
    "adc_law": "[S] Walden FOM (ENERGY.md)",
    "adc_fom_walden_j": "[D] ISAAC ADC 8 b, 1.28 GS/s, 2 mW = 1.56 pJ/conversion ~ 6.1 fJ/step",
    "adc_fom_schreier_db": "[A] Schreier FOM of a good high-resolution ADC",
    "adc_fs_hz": "[A] ADC sample rate (murmann law; latency when adc_t_lsb_s is None)",
    "adc_t_lsb_s": "[S] HERMES CCO ADC 300 ps/LSB (Khaddam-Aljameh, JSSC 2022)",
    "columns_per_adc": "[S] one ADC per column (HERMES: 256 CCO ADCs per 256 columns)",
    "add_j_45nm": "[S] Horowitz ISSCC 2014, 45 nm: int32 add 0.1 pJ",
    "mult_j_45nm": "[S] Horowitz ISSCC 2014, 45 nm: fp16 mult 1.1 pJ",
    "nonlinear_j_45nm": "[D] ISAAC/PUMA sigmoid unit ~0.26 pJ/element at 32 nm, x 45/32",
    "mac_j_45nm": "[S]+[R] Horowitz 45 nm: int8 mult 0.2 pJ [R] + int32 add 0.1 pJ [S]",
    "digital_exponent": "[A] E ~ node^1 (capacitance), constant voltage",
    "sram_j_per_bit_45nm": "[D] SRAM 64-bit read from 8 KB at 45 nm ~10 pJ (Horowitz) -> 0.16 pJ/bit",
    "digital_ops_per_s": "[A] digital unit: 256 lanes at 1 GHz",
    "macs_per_s": "[A] digital MAC throughput (digital chips only)",
    "cell_area_um2": "[A] one cell (1T1R) at the chip's node",
    "adc_area_um2": "[D] ISAAC: 8 ADCs 0.0096 mm2 at 32 nm -> 1200 um2 each",
    "driver_area_um2": "[A] one row driver / DAC",
    "digital_area_um2_per_tile": "[A] digital periphery of one tile (accumulators, scale, buffers)",
    "overhead_power_w_per_tile": "not fitted: 0",
}


@dataclass(frozen=True, kw_only=True, repr=False)
class CostModel:
    """The cost of each operation; every field overridable (:meth:`replace`) with its source.

    Units are in the names: J per event, s, V, uS, Hz, um^2, W. Digital energies are
    given at 45 nm and scaled to ``node_nm`` with :func:`node_scaled_j`.
    ``sources`` maps each field to where its value comes from; :meth:`replace` records
    overrides there.
    """

    name: str = "custom"
    """label."""
    kind: str = "analog"
    """"analog" (crossbar reads) or "digital" (MACs in digital logic, the baseline)."""
    node_nm: float = 14.0
    """technology node of the CMOS periphery, nm."""
    v_read_v: float = 0.2
    """read voltage across a conducting cell, V."""
    g_mean_us: float = 3.75
    """mean conductance of a cell during a read, uS."""
    t_cell_on_s: float = 0.0
    """fixed conduction time of a cell per read (added to the pulse-width part), s."""
    input_activity: float = 0.5
    """mean |input| / full scale: fraction of the pulse-width window a row conducts."""
    t_input_lsb_s: float = 0.4375e-9
    """pulse-width input: a slice of b bits lasts t_input_lsb_s 2^(b-1), s (0: no PWM)."""
    t_read_s: float = 0.0
    """fixed read / settling time per read, s (latency)."""
    dac_e_1bit_j: float = 4e-15
    """row driver energy of a 1-bit activation, doubling per added bit, J."""
    row_c_per_cell_f: float = 0.0
    """row wire capacitance per cell on the row, F."""
    v_drive_v: float = 0.2
    """row drive voltage swing, V."""
    adc_law: str = "walden"
    """"walden" | "schreier" | "murmann" (see the module docstring)."""
    adc_fom_walden_j: float = 6.1e-15
    """Walden figure of merit, J per conversion step."""
    adc_fom_schreier_db: float = 170.0
    """Schreier figure of merit, dB (law "schreier")."""
    adc_fs_hz: float = 1e9
    """ADC sample rate, Hz (law "murmann"; latency when adc_t_lsb_s is None)."""
    adc_t_lsb_s: float | None = 300e-12
    """counting / CCO ADC: conversion time per LSB, s (conversion = t 2^bits); None: 1/f_s."""
    columns_per_adc: int = 1
    """columns sharing one ADC (conversions of a read are sequential within a share)."""
    add_j_45nm: float = 0.1e-12
    """integer add (shift-add, accumulation, gate sums) at 45 nm, J."""
    mult_j_45nm: float = 1.1e-12
    """multiply (scales, elementwise products) at 45 nm, J."""
    nonlinear_j_45nm: float = 0.37e-12
    """sigmoid / tanh evaluation at 45 nm, J."""
    mac_j_45nm: float = 0.3e-12
    """one int8 MAC at 45 nm (digital chips), J."""
    digital_exponent: float = 1.0
    """exponent of the node scaling of digital energies."""
    sram_j_per_bit_45nm: float = 0.16e-12
    """tile buffer (SRAM) access per bit at 45 nm, J."""
    digital_ops_per_s: float = 256e9
    """digital unit throughput for the RNN cell work, ops/s."""
    macs_per_s: float = 1e12
    """MAC throughput (digital chips), MAC/s."""
    cell_area_um2: float = 0.05
    """area of one cell, um^2."""
    adc_area_um2: float = 1200.0
    """area of one ADC, um^2."""
    driver_area_um2: float = 5.0
    """area of one row driver, um^2."""
    digital_area_um2_per_tile: float = 20000.0
    """digital periphery of one tile, um^2."""
    overhead_power_w_per_tile: float = 0.0
    """whole-chip overhead (clocks, control, leakage, network, calibration) per busy tile, W
    (digital chips: of the whole chip while its MACs run)."""
    sources: dict = field(default_factory=dict)
    """field -> source text (filled with the defaults' sources)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, got {self.name!r}")
        if self.kind not in ("analog", "digital"):
            raise ValueError(f"kind must be 'analog' or 'digital', got {self.kind!r}")
        if self.adc_law not in _ADC_LAWS:
            raise ValueError(f"adc_law must be one of {_ADC_LAWS}, got {self.adc_law!r}")
        for name in ("node_nm", "adc_fs_hz", "digital_ops_per_s", "macs_per_s"):
            _num(name, getattr(self, name), lo_open=True)
        for name in ("v_read_v", "g_mean_us", "t_cell_on_s", "t_input_lsb_s", "t_read_s", "dac_e_1bit_j",
                     "row_c_per_cell_f", "v_drive_v", "adc_fom_walden_j", "add_j_45nm", "mult_j_45nm",
                     "nonlinear_j_45nm", "mac_j_45nm", "digital_exponent", "sram_j_per_bit_45nm", "cell_area_um2",
                     "adc_area_um2", "driver_area_um2", "digital_area_um2_per_tile", "overhead_power_w_per_tile"):
            _num(name, getattr(self, name))
        _num("input_activity", self.input_activity)
        if self.input_activity > 1:
            raise ValueError(f"input_activity must be in [0, 1], got {self.input_activity!r}")
        _num("adc_fom_schreier_db", self.adc_fom_schreier_db, lo=100.0)
        _num("adc_t_lsb_s", self.adc_t_lsb_s, lo_open=True, allow_none=True)
        _pos_int("columns_per_adc", self.columns_per_adc)
        if not isinstance(self.sources, dict):
            raise ValueError(f"sources must be a dict of field -> text, got {type(self.sources).__name__}")
        valid = {f.name for f in dataclasses.fields(self)} - {"sources"}
        unknown = sorted(set(self.sources) - valid)
        if unknown:
            raise ValueError(f"CostModel.sources: unknown field(s) {unknown}")
        merged = {k: v for k, v in _DEFAULT_SOURCES.items() if k in valid}
        merged.update(self.sources)
        object.__setattr__(self, "sources", merged)

    def __repr__(self) -> str:  # only what differs from the defaults (sources: see .sources)
        parts = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                 if f.name != "sources" and getattr(self, f.name) != f.default]
        return f"CostModel({', '.join(parts)})"

    def replace(self, source: str = "user override", **changes: Any) -> "CostModel":
        """A copy with ``changes``; each changed field's source becomes ``source``.

        Raises:
            ValueError: unknown field (the valid ones listed) or invalid value.
        """
        valid = [f.name for f in dataclasses.fields(self) if f.name != "sources"]
        unknown = sorted(set(changes) - set(valid))
        if unknown:
            raise ValueError(f"CostModel.replace: unknown field(s) {unknown}; valid fields are {valid}")
        src = dict(self.sources)
        for k in changes:
            if k != "name":
                src[k] = source
        return dataclasses.replace(self, sources=src, **changes)

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-ready values (``sources`` included)."""
        return {f.name: (dict(getattr(self, f.name)) if f.name == "sources" else getattr(self, f.name))
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CostModel":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError listing the valid ones."""
        check_dict_keys(cls, data)
        return cls(**data)

    def to_json(self, **kw: Any) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), **kw)

    # ------------------------------------------------------------------ per-operation costs
    def digital_j(self, e_45nm_j: float) -> float:
        """A 45 nm digital energy at this node."""
        return node_scaled_j(e_45nm_j, self.node_nm, self.digital_exponent)

    def adc_energy_j(self, bits: int, law: str | None = None) -> float:
        """Energy of one ``bits``-bit conversion under ``law`` (default: :attr:`adc_law`)."""
        law = self.adc_law if law is None else law
        if law == "walden":
            return walden_energy_j(bits, self.adc_fom_walden_j)
        if law == "schreier":
            return schreier_energy_j(bits, self.adc_fom_schreier_db)
        if law == "murmann":
            return schreier_energy_j(bits, murmann_fom_db(self.adc_fs_hz))
        raise ValueError(f"adc law must be one of {_ADC_LAWS}, got {law!r}")

    def adc_time_s(self, bits: int) -> float:
        """Time of one conversion: ``t_lsb 2^bits`` (counting / CCO ADC) or ``1 / f_s``."""
        return self.adc_t_lsb_s * 2.0 ** bits if self.adc_t_lsb_s is not None else 1.0 / self.adc_fs_hz

    def pwm_time_s(self, bits: int) -> float:
        """Pulse-width window of a ``bits``-bit input slice: ``t_input_lsb 2^(bits-1)``."""
        return self.t_input_lsb_s * 2.0 ** (bits - 1)

    def read_time_s(self, in_bits: int, adc_bits: int) -> float:
        """Busy time of one tile read: settle + input window + its columns' conversions."""
        return self.t_read_s + self.pwm_time_s(in_bits) + self.columns_per_adc * self.adc_time_s(adc_bits)

    def cell_energy_j(self, in_bits: int) -> float:
        """Energy of one cell in one read: ``V^2 G_mean (t_on + activity x PWM window)``."""
        t = self.t_cell_on_s + self.input_activity * self.pwm_time_s(in_bits)
        return cell_read_energy_j(self.v_read_v, self.g_mean_us, t)


# =========================================================================== estimates
@dataclass
class Estimate:
    """Energy by category (J), latency (s), area (um^2) and operations of some work.

    ``energy_j`` includes the overhead; :attr:`component_j` is the physics alone.
    """

    energy: dict = field(default_factory=lambda: {k: 0.0 for k in CATEGORIES})
    latency_s: float = 0.0
    area_um2: float = 0.0
    ops: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def energy_j(self) -> float:
        """Total energy, J."""
        return float(sum(self.energy.values()))

    @property
    def component_j(self) -> float:
        """Energy without the fitted overhead, J."""
        return self.energy_j - self.energy["overhead"]

    @property
    def tops_per_w(self) -> float:
        """ops / energy / 1e12 (nan without ops)."""
        return self.ops / self.energy_j / 1e12 if self.energy_j > 0 and self.ops > 0 else float("nan")

    @property
    def component_tops_per_w(self) -> float:
        """TOPS/W of the physics alone (no overhead)."""
        return self.ops / self.component_j / 1e12 if self.component_j > 0 and self.ops > 0 else float("nan")

    def __add__(self, other: "Estimate") -> "Estimate":
        e = {k: self.energy[k] + other.energy[k] for k in CATEGORIES}
        return Estimate(e, self.latency_s + other.latency_s, self.area_um2 + other.area_um2,
                        self.ops + other.ops, self.notes + [n for n in other.notes if n not in self.notes])

    def scaled(self, k: float) -> "Estimate":
        """Energy and ops times ``k`` (latency and area kept): e.g. per inference."""
        return Estimate({c: v * k for c, v in self.energy.items()}, self.latency_s, self.area_um2, self.ops * k,
                        list(self.notes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: energy by category and totals."""
        return {"energy_j": self.energy_j, "component_j": self.component_j, "latency_s": self.latency_s,
                "area_um2": self.area_um2, "ops": self.ops, "tops_per_w": self.tops_per_w,
                "component_tops_per_w": self.component_tops_per_w,
                **{f"energy_{k}_j": v for k, v in self.energy.items()}, "notes": list(self.notes)}


def _bits(bits: int | None, default: int, what: str, notes: list) -> int:
    if bits is None:
        notes.append(f"{what} bits unset (ideal converter): costed at {default} bits")
        return default
    return bits


def estimate(counter: MVMCounter, costs: CostModel, *, adc_law: str | None = None, default_bits: int = 8) -> Estimate:
    """Energy, latency and area of the reads a counter recorded, under ``costs``.

    Energy per category: cells ``cells_read x V^2 G_mean t_on``; dac ``rows_driven x
    dac_energy``; adc ``conversions x adc_energy(adc_bits)``; shift_add and accumulate
    ``count x add``; scale ``count x mult``; buffers ``bits x sram``; overhead
    ``overhead_power_w_per_tile x tile_reads x read_time``. Digital chips
    (``costs.kind == "digital"``): macs ``macs x mac``, buffers, overhead over the MAC time.
    Latency is of one MVM (one vector): ``reads_per_vector x read_time`` (tiles and weight
    slices in parallel). Area: the matrix's tiles (cells, an ADC per ``columns_per_adc``
    columns, a driver per row, a digital periphery).

    Args:
        counter: the counts (its :attr:`MVMCounter.vectors` are the work costed).
        costs: the cost model.
        adc_law: override the ADC law (the optimistic / pessimistic band).
        default_bits: bits assumed where the counter's converter is ideal (bits None).
    """
    notes: list[str] = []
    t = counter.totals()
    est = Estimate(notes=notes)
    est.ops = 2.0 * t["macs"]
    in_bits = _bits(counter.bits_per_slice, default_bits, "DAC", notes)
    adc_bits = _bits(counter.adc_bits, default_bits, "ADC", notes)
    dac_total_bits = counter.dac_bits if counter.dac_bits is not None else default_bits
    e = est.energy
    e["buffers"] = (t["rows_driven"] // max(counter.reads_per_vector, 1) * dac_total_bits
                    + t["adc_conversions"] * adc_bits) * costs.digital_j(costs.sram_j_per_bit_45nm)
    if costs.kind == "digital":
        e["buffers"] = (counter.in_features * dac_total_bits + counter.out_features * adc_bits) * counter.vectors \
            * costs.digital_j(costs.sram_j_per_bit_45nm)
        e["macs"] = t["macs"] * costs.digital_j(costs.mac_j_45nm)
        busy = t["macs"] / costs.macs_per_s
        e["overhead"] = costs.overhead_power_w_per_tile * busy
        est.latency_s = counter.in_features * counter.out_features / costs.macs_per_s
        return est
    e["cells"] = t["cells_read"] * costs.cell_energy_j(in_bits)
    cells_per_row = counter.cells_per_weight * counter.out_features / len(counter.col_tiles)
    e["dac"] = t["dac_conversions"] * dac_energy_j(in_bits, costs.dac_e_1bit_j, costs.row_c_per_cell_f * cells_per_row,
                                                   costs.v_drive_v)
    e["adc"] = t["adc_conversions"] * costs.adc_energy_j(adc_bits, adc_law)
    add = costs.digital_j(costs.add_j_45nm)
    e["shift_add"] = t["shift_adds"] * add
    e["accumulate"] = t["tile_accumulations"] * add
    e["scale"] = t["scale_mults"] * costs.digital_j(costs.mult_j_45nm)
    t_read = costs.read_time_s(in_bits, adc_bits)
    e["overhead"] = costs.overhead_power_w_per_tile * t["tile_reads"] * t_read
    est.latency_s = counter.reads_per_vector * t_read
    n_adc = sum(-(-c // costs.columns_per_adc) for c in counter.col_tiles) * len(counter.row_tiles) \
        * counter.weight_slices
    est.area_um2 = (counter.cells_per_weight * counter.weight_slices * counter.in_features * counter.out_features
                    * costs.cell_area_um2 + n_adc * costs.adc_area_um2
                    + counter.in_features * len(counter.col_tiles) * counter.weight_slices * costs.driver_area_um2
                    + counter.n_tiles * costs.digital_area_um2_per_tile)
    return est


def estimate_digital_ops(ops: DigitalOps, costs: CostModel) -> Estimate:
    """Energy and latency of digital work (an RNN cell): adds, mults, nonlinearities.

    Latency: ``ops / digital_ops_per_s`` (the steps are sequential; within a step the
    digital unit's lanes work in parallel).
    """
    est = Estimate()
    est.energy["rnn_digital"] = (ops.adds * costs.digital_j(costs.add_j_45nm)
                                 + ops.mults * costs.digital_j(costs.mult_j_45nm)
                                 + ops.nonlinear * costs.digital_j(costs.nonlinear_j_45nm))
    est.latency_s = ops.ops / costs.digital_ops_per_s
    return est


# =========================================================================== chips
@dataclass(frozen=True, kw_only=True)
class Anchor:
    """One published figure of a chip and the workload it was measured on.

    The workload is one full MVM of a ``rows x cols`` tile (all cells used) with the given
    converter bits, slicing and phases; the figure is its TOPS/W.
    """

    label: str
    """short name, e.g. "1-phase"."""
    published_tops_per_w: float
    """the published figure, TOPS/W."""
    dac_bits: int
    """input bits."""
    adc_bits: int
    """output bits."""
    slice_bits: int | None = None
    """input bits per read (None: one read)."""
    phases: int = 1
    """complete reads per MVM."""
    fit: bool = False
    """the overhead is fitted to this anchor (it then matches by construction)."""
    source: str = ""
    """where the figure is published."""
    published_tops_per_mm2: float | None = None
    """a published area efficiency of the same workload, TOPS/mm^2 (None: none)."""


@dataclass(frozen=True, kw_only=True)
class Chip:
    """A published chip: tile geometry, device, cost model, anchors.

    ``costs.overhead_power_w_per_tile`` is fitted to the anchor with ``fit=True`` when the
    preset is built (:func:`_fitted`), so the physics and the fit stay apart.
    """

    name: str
    description: str
    tile_rows: int
    tile_cols: int
    n_tiles: int
    device_preset: str
    """crossbar preset of the device (``crossbar.preset``) for deploying on this chip."""
    dac_bits: int
    adc_bits: int
    costs: CostModel
    anchors: tuple = ()
    weight_slices: int = 1
    """cells per weight per polarity used by the chip (each its own column / ADC)."""

    def counter(self, anchor: Anchor | None = None, vectors: int = 1) -> MVMCounter:
        """A counter of ``vectors`` full-tile MVMs at an anchor's bits (default: nominal bits)."""
        if anchor is None:
            c = MVMCounter(self.tile_rows, self.tile_cols, tile_rows=self.tile_rows, tile_cols=self.tile_cols,
                           dac_bits=self.dac_bits, adc_bits=self.adc_bits, weight_slices=self.weight_slices)
        else:
            c = MVMCounter(self.tile_rows, self.tile_cols, tile_rows=self.tile_rows, tile_cols=self.tile_cols,
                           dac_bits=anchor.dac_bits, adc_bits=anchor.adc_bits, slice_bits=anchor.slice_bits,
                           phases=anchor.phases, weight_slices=self.weight_slices)
        c.add(vectors)
        return c

    def config_overrides(self) -> dict[str, Any]:
        """Flat crossbar overrides that give this chip's tiles and converters (``crossbar.preset(device, **o)``)."""
        return {"tile_rows": self.tile_rows, "tile_cols": self.tile_cols, "dac_bits": max(self.dac_bits, 2),
                "adc_bits": self.adc_bits}

    def array_config(self) -> Any:
        """The crossbar ArrayConfig of a deployment on this chip (device preset + tiles + bits)."""
        from .config import preset

        return preset(self.device_preset, **self.config_overrides())


def anchor_prediction(chip_: Chip, anchor: Anchor) -> dict[str, Any]:
    """Predicted TOPS/W of an anchor workload, the physics alone, and the ADC band.

    Returns:
        dict with ``name``, ``anchor``, ``published_tops_per_w``, ``predicted_tops_per_w``,
        ``ratio`` (predicted / published), ``component_tops_per_w`` (no overhead),
        ``band_tops_per_w`` (pessimistic: Walden 20 fJ/step ADC; optimistic: the Murmann
        frontier; the fitted overhead kept), ``component_band_tops_per_w`` (the same
        without the overhead), ``fitted`` (whether the overhead was fitted here),
        ``energy_per_mvm_j``, ``latency_per_mvm_s``, ``breakdown_j``.
    """
    c = chip_.counter(anchor)
    est = estimate(c, chip_.costs)
    band, component_band = [], []
    if chip_.costs.kind == "analog":
        opt = estimate(c, chip_.costs, adc_law="murmann")
        pes = estimate(c, chip_.costs.replace(adc_fom_walden_j=20e-15, adc_law="walden"))
        band = [pes.tops_per_w, opt.tops_per_w]
        component_band = [pes.component_tops_per_w, opt.component_tops_per_w]
    pred = est.tops_per_w
    return {"name": f"{chip_.name}:{anchor.label}", "chip": chip_.name, "anchor": anchor.label,
            "published_tops_per_w": anchor.published_tops_per_w, "predicted_tops_per_w": pred,
            "ratio": pred / anchor.published_tops_per_w, "component_tops_per_w": est.component_tops_per_w,
            "band_tops_per_w": band, "component_band_tops_per_w": component_band, "fitted": anchor.fit, "energy_per_mvm_j": est.energy_j,
            "latency_per_mvm_s": est.latency_s, "breakdown_j": dict(est.energy), "source": anchor.source,
            "area_per_tile_mm2": est.area_um2 * 1e-6,
            "predicted_tops_per_mm2": (est.ops / est.latency_s / 1e12 / (est.area_um2 * 1e-6)
                                       if est.area_um2 > 0 and est.latency_s > 0 else None),
            "published_tops_per_mm2": anchor.published_tops_per_mm2}


def anchor_table(chips: dict[str, Chip] | None = None) -> list[dict[str, Any]]:
    """:func:`anchor_prediction` for every anchor of every chip (default :data:`CHIPS`)."""
    chips = CHIPS if chips is None else chips
    return [anchor_prediction(ch, a) for ch in chips.values() for a in ch.anchors]


def _fitted(chip_: Chip) -> Chip:
    """The chip with ``overhead_power_w_per_tile`` fitted so its ``fit`` anchor matches exactly.

    ``P = (E_published - E_components) / busy time`` for one full-tile MVM.
    """
    fits = [a for a in chip_.anchors if a.fit]
    if len(fits) != 1:
        raise ValueError(f"chip {chip_.name}: exactly one anchor must have fit=True, got {len(fits)}")
    a = fits[0]
    c = chip_.counter(a)
    base = estimate(c, chip_.costs.replace(overhead_power_w_per_tile=0.0))
    target_j = 2.0 * c.totals()["macs"] / (a.published_tops_per_w * 1e12)
    if chip_.costs.kind == "digital":
        busy = c.totals()["macs"] / chip_.costs.macs_per_s
    else:
        in_bits = c.bits_per_slice
        busy = c.totals()["tile_reads"] * chip_.costs.read_time_s(in_bits, c.adc_bits)
    p = (target_j - base.energy_j) / busy
    if p < 0:
        raise ValueError(f"chip {chip_.name}: the components alone ({base.energy_j:.3e} J) exceed the published "
                         f"energy ({target_j:.3e} J) at anchor {a.label}; no overhead can be fitted")
    costs = chip_.costs.replace(
        source=f"fitted: matches {a.published_tops_per_w:.4g} TOPS/W at anchor {a.label!r} by construction",
        overhead_power_w_per_tile=p)
    return dataclasses.replace(chip_, costs=costs)


def _src(**kw: str) -> dict[str, str]:
    return dict(kw)


_HERMES = Chip(
    name="hermes",
    description="IBM HERMES 64-core chip, Le Gallo et al., Nat. Electron. 2023 (14 nm CMOS + PCM): 64 cores of "
                "256x256 unit cells, 8-bit pulse-width inputs, 256 CCO ADCs per core",
    tile_rows=256, tile_cols=256, n_tiles=64, device_preset="pcm", dac_bits=8, adc_bits=8,
    costs=CostModel(
        name="hermes", node_nm=14.0, v_read_v=0.2, g_mean_us=3.75, input_activity=0.5,
        t_input_lsb_s=0.4375e-9, adc_law="walden", adc_fom_walden_j=6.1e-15, adc_t_lsb_s=300e-12,
        columns_per_adc=1, cell_area_um2=0.05, adc_area_um2=4.0 * 300.0, driver_area_um2=5.0,
        digital_area_um2_per_tile=20000.0,
        sources=_src(
            node_nm="[S] 14 nm CMOS (Le Gallo 2023)",
            t_input_lsb_s="[D] 133 ns per 1-phase MVM (63.1 TOPS / 64 cores) minus 77 ns CCO conversion, "
                          "over 128 LSBs of an 8-bit signed pulse width",
            adc_t_lsb_s="[S] CCO ADC 300 ps/LSB (Khaddam-Aljameh, JSSC 2022)",
            adc_area_um2="[S]+[A] CCO ADCs at a 4 um pitch (Khaddam-Aljameh, JSSC 2022) x an assumed 300 um length",
            columns_per_adc="[S] 256 CCO ADCs per 256x256 core")),
    anchors=(
        Anchor(label="1-phase", published_tops_per_w=9.76, dac_bits=8, adc_bits=8, phases=1, fit=True,
               published_tops_per_mm2=1.59,
               source="Le Gallo et al., Nat. Electron. 2023: 63.1 TOPS at 9.76 TOPS/W (1-phase, 8 bits); area: "
                      "the HERMES core, Khaddam-Aljameh et al., JSSC 2022: 1.59 TOPS/mm2 at 1 GHz"),
        Anchor(label="4-phase", published_tops_per_w=2.48, dac_bits=8, adc_bits=8, phases=4,
               source="Le Gallo et al., Nat. Electron. 2023: 16.1 TOPS at 2.48 TOPS/W (4-phase, high precision); "
                      "modelled as 4 complete reads per MVM"),
    ),
)

_NEURRAM = Chip(
    name="neurram",
    description="NeuRRAM, Wan et al., Nature 2022 (130 nm CMOS + RRAM): 48 cores of 256x256 RRAM (signed 256x128 "
                "as differential pairs), bit-serial inputs, voltage-mode neuron ADC of variable precision",
    tile_rows=256, tile_cols=128, n_tiles=48, device_preset="rram", dac_bits=8, adc_bits=10,
    costs=CostModel(
        name="neurram", node_nm=130.0, v_read_v=0.5, g_mean_us=4.0, t_cell_on_s=2e-9, input_activity=0.5,
        t_input_lsb_s=0.0, t_read_s=1.38e-6, dac_e_1bit_j=4e-15, row_c_per_cell_f=1e-15, v_drive_v=1.2,
        adc_law="walden", adc_fom_walden_j=6.1e-15, adc_t_lsb_s=None, adc_fs_hz=10e6, columns_per_adc=1,
        cell_area_um2=0.5, adc_area_um2=1200.0, driver_area_um2=20.0, digital_area_um2_per_tile=50000.0,
        sources=_src(
            node_nm="[S] 130 nm CMOS (Wan 2022)",
            v_read_v="[D] CiMLoop's NeuRRAM cell: 0.5 V",
            g_mean_us="[D] CiMLoop's NeuRRAM cell: R_on 250 kOhm = 4 uS",
            t_cell_on_s="[D] CiMLoop's NeuRRAM cell: 2 ns per input pulse",
            t_input_lsb_s="[S] inputs are bit-serial pulses, not pulse widths",
            t_read_s="[D] 1.48 us per 1-bit-in MVM (2.12 TOPS / 48 cores, 256x128 MACs) minus a 100 ns "
                     "conversion: voltage-mode settling per input pulse",
            row_c_per_cell_f="[A] 130 nm word line ~1 fF per cell",
            v_drive_v="[A] word-line swing 1.2 V (switching is ~1/3 of NeuRRAM's energy [S])",
            adc_fs_hz="[A] 10 MS/s neuron conversion",
            columns_per_adc="[A] one neuron per differential column pair")),
    anchors=(
        Anchor(label="1b-in/3b-out", published_tops_per_w=43.1, dac_bits=2, adc_bits=3, slice_bits=None, fit=True,
               source="Wan et al., Nature 2022, Fig. 12c,d (as digitised by CiMLoop): 2.12 TOPS, 43.1 TOPS/W; "
                      "a binary input is costed as one 2-bit (sign + 1) read"),
        Anchor(label="4b-in/6b-out", published_tops_per_w=16.0, dac_bits=4, adc_bits=6, slice_bits=1,
               source="Wan et al., Nature 2022, Fig. 12c,d (CiMLoop): 0.74 TOPS, 16.0 TOPS/W; bit-serial inputs"),
        Anchor(label="8b-in/10b-out", published_tops_per_w=6.4, dac_bits=8, adc_bits=10, slice_bits=1,
               source="Wan et al., Nature 2022, Fig. 12c,d (CiMLoop): 0.26 TOPS, 6.4 TOPS/W; bit-serial inputs"),
    ),
)

_SPEECH = Chip(
    name="speech",
    description="IBM speech chip, Ambrogio et al., Nature 2023 (14 nm CMOS + PCM): 34 tiles of 512x2048 PCM "
                "devices (512 inputs x 512 weights of two differential pairs each), inputs and outputs as pulse "
                "durations",
    tile_rows=512, tile_cols=512, n_tiles=34, device_preset="pcm", dac_bits=8, adc_bits=8, weight_slices=2,
    costs=CostModel(
        name="speech", node_nm=14.0, v_read_v=0.2, g_mean_us=3.75, input_activity=0.5, t_input_lsb_s=1e-9,
        adc_law="walden", adc_fom_walden_j=6.1e-15, adc_t_lsb_s=1e-9, columns_per_adc=1, cell_area_um2=0.05,
        adc_area_um2=1200.0, driver_area_um2=5.0, digital_area_um2_per_tile=20000.0,
        sources=_src(
            node_nm="[S] 14 nm CMOS (Ambrogio 2023)",
            t_input_lsb_s="[A] 1 ns per LSB of the input duration",
            adc_t_lsb_s="[A] output duration: 1 ns per LSB")),
    anchors=(
        Anchor(label="sustained", published_tops_per_w=12.4, dac_bits=8, adc_bits=8, fit=True,
               source="Ambrogio et al., Nature 2023: up to 12.4 TOPS/W sustained (the only anchor: no independent "
                      "check)"),
    ),
)

_DIGITAL = Chip(
    name="digital",
    description="Digital baseline for context: int8 MACs in digital logic (H100 SXM: 1,979 dense int8 TOPS at "
                "700 W); weights and activations on chip",
    tile_rows=256, tile_cols=256, n_tiles=1, device_preset="ideal", dac_bits=8, adc_bits=8,
    costs=CostModel(
        name="digital", kind="digital", node_nm=4.0, macs_per_s=1979e12 / 2.0,
        sources=_src(node_nm="[S] TSMC 4N (H100)", macs_per_s="[S] 1,979 dense int8 TOPS (H100 SXM)")),
    anchors=(
        Anchor(label="int8-dense", published_tops_per_w=1979.0 / 700.0, dac_bits=8, adc_bits=8, fit=True,
               source="NVIDIA H100 SXM datasheet: 1,979 int8 TOPS dense at 700 W -> 2.83 TOPS/W"),
    ),
)

#: chip presets, each with its overhead fitted to its ``fit`` anchor
CHIPS: dict[str, Chip] = {c.name: _fitted(c) for c in (_HERMES, _NEURRAM, _SPEECH, _DIGITAL)}


def chip(name: str) -> Chip:
    """A chip preset by name (:data:`CHIPS`).

    Raises:
        ValueError: unknown name (the valid ones listed).
    """
    if name not in CHIPS:
        raise ValueError(f"unknown chip {name!r}; expected one of {sorted(CHIPS)}")
    return CHIPS[name]
