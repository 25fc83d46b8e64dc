"""``xbarsim bench mvm``: the noisy MVM kernel against the clean BLAS matmul and alternatives.

Variants, timed in one run (median of repeated calls after warm-up), each reported with
its time ratio to the clean fp32 matmul of the same shape (the physical limit):

* ``blas``: ``x @ W.T`` in float32 with numpy (one thread by default).
* ``fast``: ``ProgrammedArray.mvm`` on the output-referred read-noise path. With a
  per-cell read-noise law (pcm) this is two BLAS products (``x @ G`` and the variance
  ``x^2 @ sigma^2``) plus one normal per output and tile.
* ``fast_uniform``: the same periphery with a constant read-noise law (every cell's sigma
  equal to the RMS read sigma of the ``fast`` array at ``t_s``, so the same noise power):
  the variance is exactly ``sigma^2 ||x||^2`` per tile, no second product. Shows the cost
  of per-cell-heterogeneous read noise (only when the preset has a read-noise law).
* ``per_cell``: the same array read on the per-cell path (fewer repeats).
* ``torch``: the same noisy MVM written by hand in plain torch (DAC, per-tile product,
  output-referred read noise, ADC, accumulation), as a user would.
* ``aihwkit``: aihwkit's inference tile with its PCM model, when aihwkit is importable
  (``--no-aihwkit`` skips it). A skipped variant is a record ``{"name", "skipped": why}``.

Example:
    xbarsim bench mvm --preset pcm --rows 512 --cols 512 --batch 64 --json mvm.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Callable

import numpy as np

from xbarsim.cliargs import int_at_least


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
    st = arr._state(t_s, np.dtype(np.float32))
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
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(limits=args.threads)  # again: aihwkit may have loaded its own BLAS / OpenMP
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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table; optionally write JSON. Returns 0 (2 for bad arguments)."""
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
    ap.add_argument("--t-s", type=float, default=3600.0, help="read time after programming, s")
    ap.add_argument("--threads", type=int_at_least(1), default=1, help="threads for BLAS / torch (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="seed for weights, inputs and noise")
    ap.add_argument("--json", default=None, metavar="PATH", help="write one record per variant here")
    ap.add_argument("--no-aihwkit", action="store_true", help="skip aihwkit even when importable")
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    import crossbar

    threadpool_limits(limits=args.threads)
    overrides = {}
    for key in ("tile_rows", "tile_cols", "dac_bits", "adc_bits"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    try:
        cfg = crossbar.preset(args.preset, **overrides)
    except ValueError as exc:  # unknown preset, bad override: a usage error
        ap.error(str(exc))
    args.dac_bits, args.adc_bits = cfg.dac.bits, cfg.adc.bits
    args.tile_rows, args.tile_cols = cfg.tile.rows, cfg.tile.cols

    rng = np.random.default_rng(args.seed)
    w = rng.normal(size=(args.cols, args.rows)) / np.sqrt(args.rows)
    x32 = rng.uniform(-1, 1, size=(args.batch, args.rows)).astype(np.float32)
    wt32 = np.ascontiguousarray(w.T, dtype=np.float32)
    arr = crossbar.program(w, cfg, seed=args.seed)
    cell_arr = crossbar.program(w, cfg.replace(read_noise_path="per_cell"), seed=args.seed)
    uni_arr = None
    read_rms_us = None
    if not arr.is_digital and cfg.device.read_sigma is not None:
        gp, gm = arr.conductances(args.t_s)
        gp0, gm0 = arr.conductances(0.0)
        dev = cfg.device
        kw = dict(g_max_us=dev.g_max_us, t_s=dev.t0_s + args.t_s, t_read_s=dev.t_read_s)
        if dev.read_sigma.kind == "pcm_read":
            sp, sm = dev.read_sigma(gp0, g_t_us=gp, **kw), dev.read_sigma(gm0, g_t_us=gm, **kw)
        else:
            sp, sm = dev.read_sigma(gp, **kw), dev.read_sigma(gm, **kw)
        rms = read_rms_us = float(np.sqrt(0.5 * np.mean(sp * sp + sm * sm)))
        uni_arr = crossbar.program(w, cfg.replace(read_sigma=crossbar.Law("poly", (rms,))), seed=args.seed)
    flops = 2.0 * args.batch * args.rows * args.cols

    variants: list[tuple[str, Callable[[], object] | str | None, int]] = [
        ("blas", lambda: x32 @ wt32, args.repeat),
        ("fast", lambda: arr.mvm(x32, t_s=args.t_s), args.repeat),
        ("fast_uniform", None if uni_arr is None else (lambda: uni_arr.mvm(x32, t_s=args.t_s)), args.repeat),
        ("per_cell", lambda: cell_arr.mvm(x32, t_s=args.t_s), max(3, args.repeat // 10)),
        ("torch", _torch_variant(arr, x32, args.t_s, args.threads), args.repeat),
        ("aihwkit", _aihwkit_variant(w, x32, args, args.t_s, read_rms_us), args.repeat),
    ]
    records = []
    blas_s = None
    for name, fn, repeat in variants:
        if fn is None or isinstance(fn, str):
            why = fn or "no read-noise law in this preset"  # fast_uniform; the peers return their reason
            records.append(dict(name=name, skipped=why))
            continue
        sec = _median_seconds(fn, repeat, warmup=1 if name == "per_cell" else 3)
        if name == "blas":
            blas_s = sec
        records.append(dict(name=name, shape=[args.batch, args.rows, args.cols], seconds_median=sec,
                            gflops=flops / sec / 1e9, time_ratio_to_blas=sec / blas_s))

    head = (f"mvm  preset={cfg.name}  batch x rows x cols = {args.batch} x {args.rows} x {args.cols}  "
            f"tile={args.tile_rows}x{args.tile_cols}  dac={args.dac_bits}b adc={args.adc_bits}b  "
            f"t={args.t_s:g}s  threads={args.threads}")
    print(head)
    print(f"{'variant':<14}{'median ms':>12}{'GFLOP/s':>10}{'x blas':>9}")
    for r in records:
        if "skipped" in r:
            print(f"{r['name']:<14}{'skipped':>12}{'':>10}{'':>9}  {r['skipped']}")
        else:
            print(f"{r['name']:<14}{r['seconds_median'] * 1e3:>12.3f}{r['gflops']:>10.2f}"
                  f"{r['time_ratio_to_blas']:>9.2f}")
    if args.json:
        meta = dict(preset=cfg.name, config=cfg.to_dict(), threads=args.threads, t_s=args.t_s, seed=args.seed,
                    repeat=args.repeat, numpy=np.__version__, python=platform.python_version(),
                    machine=platform.machine())
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(dict(meta=meta, records=records), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
