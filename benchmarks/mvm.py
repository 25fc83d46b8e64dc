"""``xbarsim bench mvm``: the noisy MVM kernel against the clean BLAS matmul and alternatives.

Variants, timed in one run (median of repeated calls after warm-up; the variants with the
full ``--repeat`` count interleaved round robin, so that load from other processes hits
them alike), each reported with its time ratio to the clean fp32 matmul of the same shape
(the physical limit):

* ``blas``: ``x @ W.T`` in float32 with numpy (one thread by default).
* ``fast``: ``ProgrammedArray.mvm`` on the output-referred read-noise path. With a
  per-cell read-noise law (pcm) this is two BLAS products (``x @ G`` and the variance
  ``x^2 @ sigma^2``) plus one normal per output and tile.
* ``fast_floor``: the BLAS products of the ``fast`` read alone (per row tile ``x_n @ G`` and,
  with per-cell heterogeneous read noise, ``x_n^2 @ sigma^2``, into reused buffers): the
  exact floor of ``fast``, timed in the same rounds (so under the same cache pressure).
* ``normals``: the standard normals one ``fast`` read draws (one per output and row tile)
  with the library's generator, alone: the other irreducible part of an exact read.
* ``fast_uniform``: the same periphery with a constant read-noise law (every cell's sigma
  equal to the RMS read sigma of the ``fast`` array at ``t_s``, so the same noise power):
  the variance is exactly ``sigma^2 ||x||^2`` per tile, no second product. Shows the cost
  of per-cell-heterogeneous read noise (only when the preset has a read-noise law).
* ``fast_column_mean``: the ``fast`` array with ``read_noise_path="output_column_mean"``, an
  approximation for speed (each tile column's read-noise variance averaged over its cells:
  no variance product), with the relative error of its read-noise std against the exact one
  on the benchmark's inputs (``std_rel_error_rms``, ``std_rel_error_max``).
* ``fast_bitserial``: the ``fast`` array read bit-serially, 8 input slices
  (``dac_slice_bits = dac_bits / 8``), each slice its own read with fresh read noise and
  its own ADC conversion, shift-and-add in digital. Its nominal floor (``floor_ratio_to_blas``)
  is the number of batch-sized matmuls it must do: one product per slice, twice that with
  per-cell heterogeneous read noise (the variance ``x_s^2 @ sigma^2`` of every slice); the
  read stacks the slices as rows of one product, which BLAS runs faster (``bitserial_floor``).
* ``bitserial_floor``: the products of ``fast_bitserial`` alone (its 8 slices stacked as
  rows, one product per row tile, as the read does them): one product of 8x the batch runs
  faster than 8 products, so this floor is below the nominal 16x.
* ``per_cell``: the same array read on the per-cell path (fewer repeats).
* ``torch``: the same noisy MVM written by hand in plain torch (DAC, per-tile product,
  output-referred read noise, ADC, accumulation), as a user would.
* ``aihwkit``: aihwkit's inference tile with its PCM model, when aihwkit is importable
  (``--no-aihwkit`` skips it). A skipped variant is a record ``{"name", "skipped": why}``.
* With ``--wire-ohm R`` (IR drop, R ohm per cell segment on rows and columns; see
  :func:`ir_records`): ``precompute_ir`` (the one-time transfer matrices), ``fast_ir``
  (the read through the wires, with ``time_ratio_to_fast``) and ``reference_ir`` (the
  exact circuit solved per read with per-cell noise).

Example:
    xbarsim bench mvm --preset pcm --rows 512 --cols 512 --batch 64 --json mvm.json
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from xbarsim.cliargs import int_at_least
from xbarsim.files import atomic_write_text
from xbarsim.threads import limit_threads


def _interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 3) -> dict[str, float]:
    """Median wall seconds of each function, timed round robin (one call of each per round)."""
    timed = _interleaved_wall_cpu(list(fns.values()), repeat, warmup)
    return {name: wall for name, (wall, _) in zip(fns, timed)}


def _median_seconds(fn: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _torch_variant(arr, x32: np.ndarray, t_s: float, threads: int):
    """A plain torch noisy MVM with the same physics as the fast kernel, or the reason why not (a str)."""
    if arr.is_digital:
        return "digital preset: no conductances to read (the torch variant mirrors the analog read)"
    try:
        import torch
    except ImportError as exc:
        return f"torch not importable ({exc})"
    torch.set_num_threads(threads)
    cfg = arr.config
    st = arr.read_state(t_s, np.float32)
    gn = torch.from_numpy(st.gn)
    var = None if st.var is None else torch.from_numpy(st.var)
    scale = torch.from_numpy(st.scale)
    x = torch.from_numpy(x32)
    dac_l = None if cfg.dac.bits is None else (1 << (cfg.dac.bits - 1)) - 1
    adc_l = None if cfg.adc.bits is None else (1 << (cfg.adc.bits - 1)) - 1
    r_in, r_out = cfg.dac.input_range, cfg.adc.output_range
    gen = torch.Generator().manual_seed(0)

    def run():
        with torch.no_grad():
            xn = x / r_in
            if dac_l is not None:
                xn = torch.round(xn.clamp(-1, 1) * dac_l) / dac_l
            xsq = xn * xn
            y = torch.zeros(x.shape[0], gn.shape[1])
            for k, (a, b) in enumerate(st.tiles):
                p = xn[:, a:b] @ gn[a:b]
                if var is not None:
                    p = p + torch.sqrt(xsq[:, a:b] @ var[a:b]) * torch.randn(p.shape, generator=gen)
                if cfg.adc.active:
                    p = torch.round((p / r_out).clamp(-1, 1) * adc_l) / adc_l * r_out
                y += scale[k] * p
            return y * r_in

    return run


def _aihwkit_variant(w: np.ndarray, x32: np.ndarray, args, t_s: float, read_rms_us: float | None = None):
    """aihwkit's C++ inference tile with its PCM-like model, or the reason why not (a str).

    Configured to mirror the preset as closely as aihwkit allows: ``PCMLikeNoiseModel`` with
    the preset's g_max (the same programming-noise, drift and 1/f laws as our ``pcm`` preset)
    applied once by ``drift_analog_weights(t_s)``; per-output weight scaling; the preset's DAC /
    ADC (aihwkit's resolution is relative to the full range ``2 * bound``, so b bits ->
    ``1 / (2**b - 2)``) with fixed ranges (no noise or bound management, i.e. no input
    rescaling and no re-runs on saturation); no additive output noise, no drift compensation;
    the preset's tile size. Per-call read noise is aihwkit's ``PCM_READ`` output-referred
    weight noise (sigma^2 proportional to ``|W| @ x^2``, the same two-product structure as the
    ``fast`` kernel's ``x^2 @ sigma^2``), scaled to the same mean noise power. Forward only,
    no grad, ``args.threads`` threads.
    """
    if args.no_aihwkit:
        return "--no-aihwkit"
    try:
        import torch
        from aihwkit.inference import PCMLikeNoiseModel
        from aihwkit.nn import AnalogLinear
        from aihwkit.simulator.configs import InferenceRPUConfig
        from aihwkit.simulator.parameters.enums import (BoundManagementType, NoiseManagementType,
                                                        WeightNoiseType)
    except Exception as exc:  # noqa: BLE001 - any import failure means: not available
        return f"aihwkit not importable ({type(exc).__name__}: {exc})"
    limit_threads(args.threads)  # again: aihwkit may have loaded its own BLAS / OpenMP (torch's too)
    import crossbar

    keys = ("tile_rows", "tile_cols", "dac_bits", "adc_bits")
    cfg = crossbar.preset(args.preset, **{k: getattr(args, k) for k in keys if getattr(args, k) is not None})
    rpu = InferenceRPUConfig()
    g_max = cfg.device.g_max_us if cfg.device.g_max_us else 25.0
    rpu.noise_model = PCMLikeNoiseModel(g_max=g_max)
    rpu.drift_compensation = None
    fwd = rpu.forward
    fwd.inp_res = 1 / (2 ** args.dac_bits - 2) if args.dac_bits else -1
    fwd.out_res = 1 / (2 ** args.adc_bits - 2) if args.adc_bits else -1
    fwd.inp_bound = cfg.dac.input_range
    fwd.out_bound = cfg.adc.output_range
    fwd.noise_management = NoiseManagementType.NONE
    fwd.bound_management = BoundManagementType.NONE
    fwd.out_noise = 0.0
    rpu.mapping.weight_scaling_omega = 1.0
    rpu.mapping.weight_scaling_columnwise = True
    rpu.mapping.digital_bias = False
    rpu.mapping.max_input_size = args.tile_rows or 0
    rpu.mapping.max_output_size = args.tile_cols or 0
    if read_rms_us:
        # our per-call variance (tile units): x^2 @ (sp^2 + sm^2) / g_max^2, mean 2 rms^2 / g_max^2 per
        # cell; aihwkit's: w_noise^2 * |W_tile| @ x^2 with W_tile = W / max|W| per output
        w_tile = np.abs(w) / np.abs(w).max(axis=1, keepdims=True)
        fwd.w_noise_type = WeightNoiseType.PCM_READ
        fwd.w_noise = float(np.sqrt(2.0) * read_rms_us / g_max / np.sqrt(w_tile.mean()))
    layer = AnalogLinear(w.shape[1], w.shape[0], bias=False, rpu_config=rpu)
    layer.set_weights(torch.from_numpy(w.astype(np.float32)))
    layer.eval()
    layer.drift_analog_weights(t_s)
    x = torch.from_numpy(x32)

    def run():
        with torch.no_grad():
            return layer(x)

    return run


def build_parser() -> argparse.ArgumentParser:
    """The ``xbarsim bench mvm`` argument parser."""
    ap = argparse.ArgumentParser(prog="xbarsim bench mvm", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int_at_least(1), default=512, help="inputs = crossbar rows (in_features)")
    ap.add_argument("--cols", type=int_at_least(1), default=512,
                    help="outputs = crossbar columns (out_features)")
    ap.add_argument("--batch", type=int_at_least(1), default=64, help="input vectors per call")
    ap.add_argument("--preset", default="pcm", help="crossbar preset name or device-model JSON path")
    ap.add_argument("--repeat", type=int_at_least(1), default=50,
                    help="timed calls per variant (per_cell: repeat // 10, >= 3)")
    ap.add_argument("--tile-rows", type=int, default=None, help="override the preset's tile rows")
    ap.add_argument("--tile-cols", type=int, default=None, help="override the preset's tile cols")
    ap.add_argument("--dac-bits", type=int, default=None, help="override the preset's DAC bits")
    ap.add_argument("--adc-bits", type=int, default=None, help="override the preset's ADC bits")
    ap.add_argument("--normal-generator", choices=("boxmuller", "legacy"), default=None,
                    help="the reads' normal generator (default: the preset's, boxmuller)")
    ap.add_argument("--t-s", type=float, default=3600.0, help="read time after programming, s")
    ap.add_argument("--threads", type=int_at_least(1), default=1, help="threads for BLAS / torch (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="seed for weights, inputs and noise")
    ap.add_argument("--json", default=None, metavar="PATH", help="write one record per variant here")
    ap.add_argument("--no-aihwkit", action="store_true", help="skip aihwkit even when importable")
    ap.add_argument("--only", default=None, metavar="NAMES",
                    help="comma list of the variants to time (blas is always timed, first): e.g. "
                         "'fast' alternates the clean matmul and the read alone, call by call, with no "
                         "other variant between them (default: every variant)")
    ap.add_argument("--wire-ohm", type=float, default=None,
                    help="IR drop: also time precompute_ir, fast_ir, reference_ir with this wire resistance per "
                         "cell segment (rows and columns), ohm")
    ap.add_argument("--ir-ref-batch", type=int_at_least(1), default=1,
                    help="input vectors of the one timed reference_ir read (one sparse solve per vector and array)")
    return ap


#: config keys ``--tile-rows`` ... override, as argparse names them
_OVERRIDES = ("tile_rows", "tile_cols", "dac_bits", "adc_bits", "normal_generator")


def _config(args: argparse.Namespace, ap: argparse.ArgumentParser):
    """The preset with the command line's overrides; fills ``args`` with the config's bits and tile size.

    A bad preset or override is a usage error (exit 2).
    """
    import crossbar

    overrides = {key: getattr(args, key) for key in _OVERRIDES if getattr(args, key) is not None}
    try:
        cfg = crossbar.preset(args.preset, **overrides)
    except ValueError as exc:  # unknown preset, bad override: a usage error
        ap.error(str(exc))
    args.dac_bits, args.adc_bits = cfg.dac.bits, cfg.adc.bits
    args.tile_rows, args.tile_cols = cfg.tile.rows, cfg.tile.cols
    args.normal_generator = cfg.normal_generator
    return cfg


@dataclass
class Workload:
    """What every variant reads: the weights, the inputs and the arrays programmed from them."""

    args: argparse.Namespace
    cfg: Any
    w: np.ndarray
    """weights (cols, rows), float64"""
    x32: np.ndarray
    """inputs (batch, rows), float32"""
    wt32: np.ndarray
    """``w.T`` as contiguous float32, for the BLAS reference"""
    arr: Any
    """the array on the output-referred path"""
    cell_arr: Any
    """the same array on the per-cell path"""
    uni_arr: Any = None
    """the array with a constant read sigma of the same RMS (None: no read-noise law)"""
    read_rms_us: float | None = None
    """RMS read sigma of ``arr`` at ``t_s`` (uS), or None"""
    serial_arr: Any = None
    """the array read bit-serially in 8 slices (None: digital preset or dac_bits not a multiple of 8)"""
    serial_matmuls: int | None = None
    """matmuls the 8-slice read must do: 8, or 16 with per-cell heterogeneous read noise"""
    mean_arr: Any = None
    """the array read with ``read_noise_path="output_column_mean"`` (None: no per-cell heterogeneous read noise)"""

    @property
    def flops(self) -> float:
        a = self.args
        return 2.0 * a.batch * a.rows * a.cols


def _read_rms_us(arr, cfg, t_s: float) -> float:
    """RMS of the per-cell read sigma of ``arr`` at ``t_s`` (both cells of each pair), uS."""
    gp, gm = arr.conductances(t_s)
    gp0, gm0 = arr.conductances(0.0)
    dev = cfg.device
    kw = dict(g_max_us=dev.g_max_us, t_s=dev.t0_s + t_s, t_read_s=dev.t_read_s)
    if dev.read_sigma.kind == "pcm_read":
        sp, sm = dev.read_sigma(gp0, g_t_us=gp, **kw), dev.read_sigma(gm0, g_t_us=gm, **kw)
    else:
        sp, sm = dev.read_sigma(gp, **kw), dev.read_sigma(gm, **kw)
    return float(np.sqrt(0.5 * np.mean(sp * sp + sm * sm)))


def make_workload(args: argparse.Namespace, cfg) -> Workload:
    """Seeded weights and inputs; the array programmed three ways (fast, per-cell, uniform read sigma)."""
    import crossbar

    rng = np.random.default_rng(args.seed)
    w = rng.normal(size=(args.cols, args.rows)) / np.sqrt(args.rows)
    x32 = rng.uniform(-1, 1, size=(args.batch, args.rows)).astype(np.float32)
    work = Workload(args=args, cfg=cfg, w=w, x32=x32, wt32=np.ascontiguousarray(w.T, dtype=np.float32),
                    arr=crossbar.program(w, cfg, seed=args.seed),
                    cell_arr=crossbar.program(w, cfg.replace(read_noise_path="per_cell"), seed=args.seed))
    if not work.arr.is_digital and cfg.device.read_sigma is not None:
        work.read_rms_us = rms = _read_rms_us(work.arr, cfg, args.t_s)
        work.uni_arr = crossbar.program(w, cfg.replace(read_sigma=crossbar.Law("poly", (rms,))), seed=args.seed)
    if not work.arr.is_digital:
        st = work.arr.read_state(args.t_s, np.float32)
        if st.var is not None and st.var_col is None:
            work.mean_arr = crossbar.program(w, cfg.replace(read_noise_path="output_column_mean"), seed=args.seed)
    if not work.arr.is_digital and cfg.dac.bits is not None and cfg.dac.bits % 8 == 0:
        work.serial_arr = crossbar.program(w, cfg.replace(dac_slice_bits=cfg.dac.bits // 8), seed=args.seed)
        st = work.serial_arr.read_state(args.t_s, np.float32)
        work.serial_matmuls = 8 * (2 if st.var is not None and st.var_col is None else 1)
    return work


@dataclass(frozen=True)
class Variant:
    """One row of the table: ``build(work)`` returns the call to time, or why it is skipped (a str)."""

    name: str
    build: Callable[[Workload], Callable[[], object] | str]
    repeat: Callable[[argparse.Namespace], int] = lambda args: args.repeat
    warmup: int = 3
    extra: Callable[[Workload], dict] | None = None
    """more fields for the variant's record (e.g. its own floor)"""


def _fast_uniform(work: Workload):
    if work.uni_arr is None:
        return "no read-noise law in this preset"
    return lambda: work.uni_arr.mvm(work.x32, t_s=work.args.t_s)


def _fast_bitserial(work: Workload):
    if work.serial_arr is None:
        return "needs an analog preset with dac_bits a multiple of 8"
    return lambda: work.serial_arr.mvm(work.x32, t_s=work.args.t_s)


def _column_mean(work: Workload):
    """The ``fast`` read with ``read_noise_path="output_column_mean"`` (an approximation)."""
    if work.mean_arr is None:
        return "needs per-cell heterogeneous read noise (else the fast path is already uniform)"
    return lambda: work.mean_arr.mvm(work.x32, t_s=work.args.t_s)


def _column_mean_error(work: Workload) -> dict:
    """Relative error of the per-output read-noise std of ``output_column_mean`` against the
    exact ``sqrt(sum_i x_i^2 var_ij)`` of every tile partial sum, on the benchmark's inputs
    (clipped to the DAC range): RMS and largest over all outputs, tiles and input vectors."""
    st = work.arr.read_state(work.args.t_s, np.float64)
    xsq = np.clip(work.x32.astype(np.float64), -1, 1) ** 2
    errs = []
    for a, b in st.tiles:
        exact = np.sqrt(xsq[:, a:b] @ st.var[a:b])
        approx = np.sqrt(xsq[:, a:b].sum(axis=1, keepdims=True) * st.var[a:b].mean(axis=0))
        ok = exact > 0
        errs.append((approx[ok] / exact[ok] - 1.0).ravel())
    e = np.concatenate(errs)
    rms, worst = float(np.sqrt(np.mean(e * e))), float(np.abs(e).max())
    return dict(std_rel_error_rms=rms, std_rel_error_max=worst,
                note=f"approximation: read-noise std off by {100 * rms:.1f} % RMS, {100 * worst:.1f} % max")


def _fast_floor(work: Workload, stack: int = 1):
    """The two products of the ``fast`` read alone (per row tile: ``x_n @ G`` and, with per-cell
    heterogeneous read noise, ``x_n^2 @ sigma^2``), into reused buffers: ``fast``'s exact floor.
    ``stack``: inputs stacked that many times (the slices of a bit-serial read, one product)."""
    arr = work.arr if stack == 1 else work.serial_arr
    if arr is None:
        return "needs an analog preset with dac_bits a multiple of 8"
    if arr.is_digital:
        return "digital preset: no conductances to read"
    st = arr.read_state(work.args.t_s, np.float32)
    xn = np.tile(np.clip(work.x32, -1, 1), (stack, 1))
    xsq = xn * xn
    dense = st.var is not None and st.var_col is None
    tiles = [(xn[:, a:b], xsq[:, a:b], st.gn[a:b], None if not dense else st.var[a:b]) for a, b in st.tiles]
    out = np.empty((xn.shape[0], st.gn.shape[1]), np.float32)
    out2 = np.empty_like(out)

    def run():
        for xk, qk, gk, vk in tiles:
            np.matmul(xk, gk, out=out)
            if vk is not None:
                np.matmul(qk, vk, out=out2)

    return run


def _floor_extra(work: Workload, stack: int = 1) -> dict:
    st = (work.arr if stack == 1 else work.serial_arr).read_state(work.args.t_s, np.float32)
    per_tile = 2 if st.var is not None and st.var_col is None else 1
    n = per_tile * len(st.tiles)
    what = "fast" if stack == 1 else f"fast_bitserial ({stack} slices stacked as rows)"
    return dict(products=n, note=f"the {n} product(s) of {what} alone: its exact floor")


def _normals(work: Workload):
    """The standard normals one ``fast`` read draws (one per output and row tile), alone, from
    the read's generator (``normal_generator``; boxmuller: one fill of them all, where the
    read fills a row at a time)."""
    arr = work.arr
    if arr.is_digital:
        return "digital preset: no per-tile normals"
    import crossbar

    st = arr.read_state(work.args.t_s, np.float32)
    if st.var is None and not arr.config.output_noise.active:
        return "this read draws no normals (no read noise, no output noise)"
    z = np.empty((len(st.tiles), work.args.batch, work.args.cols), np.float32)
    rng = np.random.default_rng(work.args.seed)
    gen = arr.config.normal_generator
    return lambda: crossbar.standard_normal(rng, z, gen)


def _normals_extra(work: Workload) -> dict:
    st = work.arr.read_state(work.args.t_s, np.float32)
    return dict(generator=work.arr.config.normal_generator, normals=len(st.tiles) * work.args.batch * work.args.cols,
                note=f"the normals of one fast read alone ({work.arr.config.normal_generator})")


def _bitserial_floor(work: Workload) -> dict:
    return dict(slices=8, matmuls=work.serial_matmuls, floor_ratio_to_blas=float(work.serial_matmuls))


#: the variants, in table order; ``blas`` first (every ratio is to it). Add a variant here.
VARIANTS: list[Variant] = [
    Variant("blas", lambda work: (lambda: work.x32 @ work.wt32)),
    Variant("fast", lambda work: (lambda: work.arr.mvm(work.x32, t_s=work.args.t_s))),
    Variant("fast_floor", _fast_floor, extra=_floor_extra),
    Variant("normals", _normals, extra=_normals_extra),
    Variant("fast_uniform", _fast_uniform),
    Variant("fast_column_mean", _column_mean, extra=_column_mean_error),
    Variant("fast_bitserial", _fast_bitserial, repeat=lambda args: max(3, args.repeat // 4),
            extra=_bitserial_floor),
    Variant("bitserial_floor", lambda work: _fast_floor(work, stack=8), repeat=lambda args: max(3, args.repeat // 4),
            extra=lambda work: _floor_extra(work, stack=8)),
    Variant("per_cell", lambda work: (lambda: work.cell_arr.mvm(work.x32, t_s=work.args.t_s)),
            repeat=lambda args: max(3, args.repeat // 10), warmup=1),
    Variant("torch", lambda work: _torch_variant(work.arr, work.x32, work.args.t_s, work.args.threads)),
    Variant("aihwkit", lambda work: _aihwkit_variant(work.w, work.x32, work.args, work.args.t_s, work.read_rms_us)),
]


def run_variants(work: Workload, variants: list[Variant] = VARIANTS) -> list[dict]:
    """Time each variant (median of its repeats); one record each, ``{"name", "skipped"}`` when skipped.

    Every variant is built (torch and aihwkit imported, arrays set up) before the first one
    is timed, so all are timed with the same libraries loaded.
    """
    records, blas_s = [], None
    args = work.args
    built = [(v, v.build(work)) for v in variants]
    # the variants with the full repeat count and warm-up: interleaved (round robin)
    together = {v.name: fn for v, fn in built if not isinstance(fn, str) and v.repeat(args) == args.repeat
                and v.warmup == 3}
    medians = _interleaved_medians(together, args.repeat)
    for v, fn in built:
        if isinstance(fn, str):
            records.append(dict(name=v.name, skipped=fn))
            continue
        sec = medians[v.name] if v.name in medians else _median_seconds(fn, v.repeat(args), warmup=v.warmup)
        if blas_s is None:
            blas_s = sec
        rec = dict(name=v.name, shape=[args.batch, args.rows, args.cols], seconds_median=sec,
                   gflops=work.flops / sec / 1e9, time_ratio_to_blas=sec / blas_s)
        if v.extra is not None:
            rec.update(v.extra(work))
        records.append(rec)
    return records


def _interleaved_wall_cpu(fns: list[Callable[[], object]], repeat: int, warmup: int = 3) -> list[tuple[float, float]]:
    """(median wall seconds, median CPU seconds) of each call, the calls alternating (a, b, a,
    b, ...) so that load drifts hit all alike; CPU time (``time.process_time``) is what a
    one-thread call costs even when other processes share the cores."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ws, cs in zip(fns, wall, cpu):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            ws.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
    return [(statistics.median(ws), statistics.median(cs)) for ws, cs in zip(wall, cpu)]


def ir_records(work: Workload, records: list[dict]) -> list[dict]:
    """IR-drop records (``--wire-ohm``): ``precompute_ir`` (every tile's transfer matrices at
    ``t_s``, G+ and G-, timed once on a fresh array: wall ``seconds`` and process
    ``cpu_seconds``, the latter what one unloaded core would take), ``fast_ir`` (median read
    through the wires, timed interleaved with ``fast``: ``time_ratio_to_fast`` in wall time,
    ``cpu_ratio_to_fast`` in CPU time) and
    ``reference_ir`` (one read of ``--ir-ref-batch`` vectors through the exact circuit with
    per-cell noise, timed once, ``seconds_per_vector``)."""
    import crossbar

    args, w, x32 = work.args, work.w, work.x32
    ir_cfg = work.cfg.replace(wire_row_ohm=args.wire_ohm, wire_col_ohm=args.wire_ohm, wire_noise_policy="ignore")
    arr = crossbar.program(w, ir_cfg, seed=args.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    arr.prepare(args.t_s, np.float32)
    pre, cpu = time.perf_counter() - t0, time.process_time() - c0
    shape = [args.batch, args.rows, args.cols]
    n_tiles = len(range(0, args.rows, args.tile_rows or args.rows)) * len(range(0, args.cols, args.tile_cols or args.cols))
    out = [dict(name="precompute_ir", shape=shape, seconds=pre, cpu_seconds=cpu, tiles=n_tiles,
                seconds_per_tile=pre / n_tiles, wire_ohm=args.wire_ohm,
                note=f"one-time, {n_tiles} tile(s) x 2 arrays, {cpu:.1f} s CPU")]
    blas_s = records[0]["seconds_median"]
    (fast_s, fast_cpu), (sec, cpu) = _interleaved_wall_cpu(
        [lambda: work.arr.mvm(x32, t_s=args.t_s), lambda: arr.mvm(x32, t_s=args.t_s)], args.repeat)
    out.append(dict(name="fast_ir", shape=shape, seconds_median=sec, gflops=work.flops / sec / 1e9,
                    time_ratio_to_blas=sec / blas_s, time_ratio_to_fast=sec / fast_s, cpu_seconds_median=cpu,
                    cpu_ratio_to_fast=cpu / fast_cpu, wire_ohm=args.wire_ohm,
                    note=f"timed interleaved with fast; CPU time {cpu / fast_cpu:.2f}x fast"))
    ref = crossbar.program(w, ir_cfg.replace(read_noise_path="per_cell"), seed=args.seed)
    xr = x32[:args.ir_ref_batch]
    t0 = time.perf_counter()
    ref.mvm(xr, t_s=args.t_s)
    sec = time.perf_counter() - t0
    out.append(dict(name="reference_ir", shape=[xr.shape[0], args.rows, args.cols], seconds_median=sec,
                    seconds_per_vector=sec / xr.shape[0], gflops=2.0 * xr.size * args.cols / sec / 1e9,
                    time_ratio_to_blas=sec / blas_s, wire_ohm=args.wire_ohm,
                    note=f"one read of {xr.shape[0]} vector(s), timed once"))
    return out


def print_table(records: list[dict], cfg, args: argparse.Namespace) -> None:
    """The human table: a header line with the settings, one row per variant."""
    print(f"mvm  preset={cfg.name}  batch x rows x cols = {args.batch} x {args.rows} x {args.cols}  "
          f"tile={args.tile_rows}x{args.tile_cols}  dac={args.dac_bits}b adc={args.adc_bits}b  "
          f"t={args.t_s:g}s  normals={args.normal_generator}  threads={args.threads}")
    print(f"{'variant':<16}{'median ms':>12}{'GFLOP/s':>10}{'x blas':>9}")
    for r in records:
        if "skipped" in r:
            print(f"{r['name']:<16}{'skipped':>12}{'':>10}{'':>9}  {r['skipped']}")
        elif "seconds_median" not in r:  # a one-time cost
            print(f"{r['name']:<16}{r['seconds'] * 1e3:>12.1f}{'':>10}{'':>9}  {r['note']}")
        else:
            floor = (f"  (nominal floor {r['floor_ratio_to_blas']:.0f}x: {r['matmuls']} matmuls)"
                     if "matmuls" in r else "")
            extra = (f"  {r['time_ratio_to_fast']:.2f}x fast" if "time_ratio_to_fast" in r else "") + \
                (f"  {r['note']}" if "note" in r else "")
            print(f"{r['name']:<16}{r['seconds_median'] * 1e3:>12.3f}{r['gflops']:>10.2f}"
                  f"{r['time_ratio_to_blas']:>9.2f}{floor}{extra}")


def write_json(path: str, records: list[dict], cfg, args: argparse.Namespace) -> None:
    """``{"meta": settings and versions, "records": [...]}``, written atomically."""
    meta = dict(preset=cfg.name, config=cfg.to_dict(), threads=args.threads, t_s=args.t_s, seed=args.seed,
                repeat=args.repeat, numpy=np.__version__, python=platform.python_version(),
                machine=platform.machine())
    atomic_write_text(path, json.dumps(dict(meta=meta, records=records), indent=2))


def _selected(only: str | None, ap: argparse.ArgumentParser) -> list[Variant]:
    """The variants of ``--only`` (comma list), in table order, ``blas`` always first."""
    if only is None:
        return VARIANTS
    names = {n.strip() for n in only.split(",") if n.strip()}
    known = [v.name for v in VARIANTS]
    unknown = sorted(names - set(known))
    if unknown or not names:
        ap.error(f"--only takes a comma list out of {', '.join(known)}; got {only!r}"
                 + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    return [v for v in VARIANTS if v.name == "blas" or v.name in names]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table; optionally write JSON. Returns 0 (2 for bad arguments)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.wire_ohm is not None and not (math.isfinite(args.wire_ohm) and args.wire_ohm > 0):
        ap.error(f"--wire-ohm must be a finite number > 0, got {args.wire_ohm}")
    variants = _selected(args.only, ap)
    cfg = _config(args, ap)  # imports crossbar (numpy, numba) first: threadpoolctl limits loaded pools only
    limit_threads(args.threads)
    work = make_workload(args, cfg)
    records = run_variants(work, variants)
    if args.wire_ohm is not None:
        records += ir_records(work, records)
    print_table(records, cfg, args)
    if args.json:
        write_json(args.json, records, cfg, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
