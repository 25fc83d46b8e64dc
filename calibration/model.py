"""Fitted parameters -> a crossbar device model (ArrayConfig JSON + HDF5 of the fit data),
and a sampler that draws long-format measurements from a device model.

The sampler follows crossbar's device physics (DESIGN.md): per cell
``G_prog = clip(G_t + offset(G_t) + sigma_prog(G_t) z, g_min, g_max)``; a fraction of cells
stuck at g_min / g_max (independently, after programming; they do not drift); drift
``G(t) = G_prog (t / t0)^(-nu)`` with ``nu = |mu_nu(G_t) + sigma_nu(G_t) z|`` (folded at 0,
as crossbar and aihwkit) for physical times ``t >= t0``, plus crossbar's relaxation
``(relax_mu(G_t) + relax_sigma(G_t) z') sqrt(ln(t / t0))`` (clipped to the range) when the
device has one;
each read adds
``N(0, sigma_read(G(t))^2)`` afresh.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import platform
from pathlib import Path

import numpy as np

import crossbar
from xbarsim.files import atomic_path, atomic_write_text

from .fit import DgLookupFit, LongFit, PolyFit, PulseResponseFit
from .readers import LongData, source_licence

__all__ = [
    "law_from_fit",
    "device_from_long_fit",
    "device_from_ramp_fit",
    "array_config",
    "parameter_table",
    "calibration_block",
    "write_model",
    "sample_long",
    "sample_cells",
    "levels_over_time",
]


def law_from_fit(pf: PolyFit | None, g_max_us: float):
    """A crossbar.Law equal to the fitted law: kind "poly" with x "g_norm" (= G / g_max_us)
    or "ln_g_norm", or kind "gauss" with x "ln_g_norm"."""
    if pf is None:
        return None
    c = np.asarray(pf.coeffs, float)
    if pf.family == "poly_g":
        k = np.arange(len(c))
        coeffs = c * (g_max_us / pf.g_scale_us) ** k
        return crossbar.Law("poly", tuple(float(v) for v in coeffs), x="g_norm", lo=pf.lo, hi=pf.hi)
    # ln(G / g_scale) = ln(G / g_max) + d
    d = float(np.log(g_max_us / pf.g_scale_us))
    if pf.family == "poly_lng":
        coeffs = np.polynomial.Polynomial(c)(np.polynomial.Polynomial([d, 1.0])).coef
        coeffs = np.concatenate([coeffs, np.zeros(len(c) - len(coeffs))])
        return crossbar.Law("poly", tuple(float(v) for v in coeffs), x="ln_g_norm", lo=pf.lo, hi=pf.hi)
    return crossbar.Law("gauss", (float(c[0]), float(c[1]), float(c[2] - d), float(c[3])), x="ln_g_norm", lo=pf.lo,
                        hi=pf.hi)


def device_from_long_fit(fit: LongFit, base_device=None, set_levels: bool = False):
    """DeviceConfig from a long-format fit (keeps base_device's t_read_s)."""
    g_max = fit.g_max_us
    kw = dict(
        g_min_us=fit.g_min_us, g_max_us=g_max,
        n_levels=int(fit.levels_us.size) if set_levels and fit.levels_us.size >= 2 else None,
        prog_offset=law_from_fit(fit.prog_offset, g_max), prog_sigma=law_from_fit(fit.prog_sigma, g_max),
        read_sigma=law_from_fit(fit.read_sigma, g_max), t0_s=fit.t0_s,
        stuck_min_fraction=float(fit.stuck_min_fraction), stuck_max_fraction=float(fit.stuck_max_fraction))
    if fit.relaxation_model == "power":  # the chosen relaxation model (fit.relaxation says why)
        kw.update(drift_mu_nu=law_from_fit(fit.drift_mu_nu, g_max), drift_sigma_nu=law_from_fit(fit.drift_sigma_nu, g_max))
    else:
        kw.update(relax_mu=law_from_fit(fit.relax_mu, g_max), relax_sigma=law_from_fit(fit.relax_sigma, g_max))
    if base_device is not None:
        kw["t_read_s"] = base_device.t_read_s
    return crossbar.DeviceConfig(**kw)


def device_from_ramp_fit(fit: PulseResponseFit, base_device=None, set_levels: bool = False):
    """DeviceConfig from a pulse-ramp or dG-lookup fit: range, program-and-verify error, read
    noise (none when it is 0, as for a lookup table)."""
    g_max = fit.g_max_us
    read = None
    if fit.read_sigma_us > 0:
        read = crossbar.Law("poly", (float(fit.read_sigma_us),), x="g_norm", lo=0.0)
    kw = dict(g_min_us=fit.g_min_us, g_max_us=g_max,
              n_levels=int(fit.levels_us.size) if set_levels and fit.levels_us.size >= 2 else None,
              prog_offset=law_from_fit(fit.prog_offset, g_max), prog_sigma=law_from_fit(fit.prog_sigma, g_max),
              read_sigma=read)
    if base_device is not None:
        kw["t0_s"] = base_device.t0_s
        kw["t_read_s"] = base_device.t_read_s
    return crossbar.DeviceConfig(**kw)


def array_config(device, base: str = "rram", name: str = "calibrated"):
    """The base preset's periphery (DAC, ADC, tiles, mapping) with the fitted device."""
    cfg = crossbar.preset(base)
    return dataclasses.replace(cfg, device=device, name=name)


def parameter_table(fit) -> list[dict]:
    """Rows name, value, stderr, ci_lo, ci_hi, unit, method for every fitted parameter
    (each fit type lists its own: ``fit.parameter_rows()``)."""
    return fit.parameter_rows()


def calibration_block(fit, sources: list[str], sha256: dict, options: dict, gof: dict | None = None,
                      levels_time: list | None = None) -> dict:
    """The "calibration" key of the device-model JSON: what was fitted, how, from what.

    Long-format fits add ``time_span_s`` (first and last read, room-temperature-equivalent
    when the data held bakes; crossbar.time_span_warning reads it), ``time_model`` (the
    temperature assumption), ``outliers``, ``read_noise`` (core law and tails),
    ``relaxation`` (power law vs log-time when testable) and ``levels_over_time``."""
    import h5py
    import matplotlib
    import scipy

    import xbarsim

    laws = {}
    if isinstance(fit, LongFit):
        kind = "long"
        for pf in fit.laws():
            laws[pf.name] = pf.to_dict()
            if pf.name.startswith(("drift_", "relax_")):
                laws[pf.name]["in_device_model"] = (pf.name.startswith("drift_")) == (fit.relaxation_model == "power")
        extra = {"stuck_counts": fit.stuck_counts, "t0_s": fit.t0_s,
                 "time_span_s": [float(v) for v in fit.time_span_s],
                 "time_model": {k: v for k, v in fit.time_model.items()},
                 "outliers": fit.outliers, "read_noise": fit.read_noise, "relaxation": fit.relaxation}
        if levels_time:
            extra["levels_over_time"] = levels_time
    else:
        kind = "dg_lookup" if isinstance(fit, DgLookupFit) else "pulse_ramps"
        for name, df in fit.directions.items():
            laws[f"{name}.mean_step"] = df.mean_step.to_dict()
            laws[f"{name}.c2c_sigma"] = df.c2c_sigma.to_dict()
            if kind == "pulse_ramps":
                laws[f"{name}.n_ramps"] = df.n_ramps
        laws["prog_offset"] = fit.prog_offset.to_dict()
        laws["prog_sigma"] = fit.prog_sigma.to_dict()
        extra = {"program_verify": {
            "targets_us": fit.pv["targets_us"].tolist(), "error_mean_us": fit.pv["error_mean_us"].tolist(),
            "error_std_us": fit.pv["error_std_us"].tolist(),
            "converged_fraction": fit.pv["converged_fraction"].tolist(),
            "mean_pulses": fit.pv["mean_pulses"].tolist(), "tol_us": fit.pv["tol_us"],
            "max_pulses": fit.pv["max_pulses"]}}
        if kind == "dg_lookup":
            if fit.read_sigma_user:  # constant law, as device_from_ramp_fit writes it; no standard error
                laws["read_sigma"] = {"x": "g_norm", "g_scale_us": fit.g_max_us, "coeffs": [fit.read_sigma_us],
                                      "stderr": None, "lo": 0.0, "hi": None, "unit": "uS", "degree": 0,
                                      "method": "user", "source": "--read-noise-us"}
            extra["dg_table"] = {
                "g_bins_us": fit.g_bins_us.tolist(),
                **{f"{name}.{k}": v for name, df in fit.directions.items() for k, v in (
                    ("source", df.source), ("table_mean_us", df.table_mean_us.tolist()),
                    ("table_std_us", df.table_std_us.tolist()), ("tail_mass", df.tail_mass))}}
    return {
        "format": kind,
        "sources": [{"path": s, "sha256": sha256.get(s), "licence": source_licence(s)} for s in sources],
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"xbarsim": xbarsim.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                     "h5py": h5py.__version__, "matplotlib": matplotlib.__version__,
                     "python": platform.python_version()},
        "options": options,
        "laws": laws,
        "parameters": parameter_table(fit),
        "distinguishable_levels_us": [float(v) for v in fit.levels_us],
        "notes": list(fit.notes),
        "goodness_of_fit": gof or {},
        **extra,
    }


def write_model(path, cfg, calibration: dict, raw: dict) -> tuple[Path, Path]:
    """Write MODEL.json ({"array_config", "calibration"}) and MODEL.h5 (raw fit data,
    the JSON text as the attribute "model_json"), each atomically.

    Returns the two paths.
    """
    import h5py

    path = Path(path)
    json_path = path if path.suffix.lower() == ".json" else path.with_suffix(path.suffix + ".json") \
        if path.suffix else path.with_suffix(".json")
    h5_path = json_path.with_suffix(".h5")
    doc = {"array_config": cfg.to_dict(), "calibration": calibration}
    text = json.dumps(doc, indent=2, default=_json_default)

    with atomic_path(h5_path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["model_json"] = text
        g = f.create_group("fit_data")
        for k, v in raw.items():
            a = np.asarray(v)
            if a.dtype == bool:
                a = a.astype(np.uint8)
            g.create_dataset(k, data=a, compression="gzip" if a.size > 1000 else None)
    atomic_write_text(json_path, text + "\n")
    return json_path, h5_path


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --------------------------------------------------------------------------- sampling

def _law(law, g, g_max):
    if law is None:
        return np.zeros_like(np.asarray(g, float))
    return law(g, g_max_us=g_max)


def sample_cells(device, g_target_us, times_s, n_reads: int, rng):
    """Draw reads of cells programmed to g_target_us under ``device``.

    Args:
        device: crossbar.DeviceConfig.
        g_target_us: (n_cells,) targets.
        times_s: (n_times,) physical times since programming (>= device.t0_s; crossbar's
            ``mvm(t_s=...)`` counts from t0, so its t_s is ``t - t0``).
        n_reads: reads per cell and time.
        rng: numpy Generator.

    Returns:
        (g_us of shape (n_cells, n_times, n_reads), stuck of shape (n_cells,) with
        0 = not stuck, -1 = stuck at g_min, +1 = stuck at g_max).
    """
    d = device
    tgt = np.asarray(g_target_us, float)
    times = np.asarray(times_s, float)
    n = tgt.size
    gmax = d.g_max_us
    g = tgt + _law(d.prog_offset, tgt, gmax) + _law(d.prog_sigma, tgt, gmax) * rng.standard_normal(n)
    g = np.clip(g, d.g_min_us, d.g_max_us)
    u = rng.random(n)
    stuck = np.zeros(n, dtype=np.int8)
    stuck[u < d.stuck_min_fraction] = -1
    stuck[(u >= d.stuck_min_fraction) & (u < d.stuck_min_fraction + d.stuck_max_fraction)] = 1
    g = np.where(stuck == -1, d.g_min_us, np.where(stuck == 1, d.g_max_us, g))
    nu = np.zeros(n)
    if d.drift_mu_nu is not None:
        nu = np.abs(_law(d.drift_mu_nu, tgt, gmax) + _law(d.drift_sigma_nu, tgt, gmax) * rng.standard_normal(n))
    nu = np.where(stuck != 0, 0.0, nu)
    ratio = np.maximum(times / d.t0_s, 1.0)
    g_t = g[:, None] * ratio[None, :] ** (-nu[:, None])
    if d.relax_sigma is not None or d.relax_mu is not None:
        # crossbar: + (relax_mu(G_t) + relax_sigma(G_t) z) sqrt(ln(t/t0)), clipped; z drawn only with relax_sigma
        rx = np.zeros(n) if d.relax_sigma is None else _law(d.relax_sigma, tgt, gmax) * rng.standard_normal(n)
        rx = np.where(stuck != 0, 0.0, rx + _law(d.relax_mu, tgt, gmax))
        g_t = np.clip(g_t + rx[:, None] * np.sqrt(np.log(ratio))[None, :], d.g_min_us, d.g_max_us)
    out = np.empty((n, times.size, n_reads))
    for j in range(times.size):
        sr = _law(d.read_sigma, g_t[:, j], gmax) if d.read_sigma is None or d.read_sigma.kind != "pcm_read" else \
            d.read_sigma(g, g_max_us=gmax, t_s=float(times[j]), t_read_s=d.t_read_s, g_t_us=g_t[:, j])
        out[:, j, :] = g_t[:, j, None] + sr[:, None] * rng.standard_normal((n, n_reads))
    return np.maximum(out, 0.0), stuck


def levels_over_time(device, times_s, z: float = 3.0, n_targets: int = 300, n_cells: int = 300,
                     seed: int = 0) -> list[dict]:
    """Distinguishable levels at each time, from the device model (crossbar's physics).

    ``n_targets`` targets evenly spaced over [g_min, g_max], ``n_cells`` working cells each
    sampled by :func:`sample_cells` at the physical times ``times_s``; at each time, levels
    are picked greedily from the lowest target: the next level is the first target whose
    window mean +- z std (over its cells, read noise included) does not overlap the last
    level's. Stuck cells are left out (they are counted by the stuck rates).

    Returns:
        [{"t_s", "n_levels", "levels_us" (targets), "level_means_us" (their mean at t_s)}] per time.
    """
    rng = np.random.default_rng(seed)
    dev = dataclasses.replace(device, stuck_min_fraction=0.0, stuck_max_fraction=0.0)
    targets = np.linspace(device.g_min_us, device.g_max_us, n_targets)
    g, _ = sample_cells(dev, np.repeat(targets, n_cells), np.asarray(times_s, float), 1, rng)
    g = g[:, :, 0].reshape(n_targets, n_cells, -1)
    mean, sd = g.mean(axis=1), g.std(axis=1, ddof=1)
    out = []
    for j, t in enumerate(np.asarray(times_s, float)):
        m, s = mean[:, j], sd[:, j]
        picked = [0]
        for k in range(1, n_targets):
            last = picked[-1]
            if m[k] - z * s[k] >= m[last] + z * s[last]:
                picked.append(k)
        out.append({"t_s": float(t), "n_levels": len(picked), "levels_us": [float(targets[k]) for k in picked],
                    "level_means_us": [float(m[k]) for k in picked]})
    return out


def sample_long(device, levels_us, cells_per_level: int, times_s, n_reads: int, seed=0, with_stuck_column=False,
                source="<sampled>") -> LongData:
    """Long-format measurements drawn from ``device``: cells_per_level cells at each target.

    Args:
        device: crossbar.DeviceConfig (e.g. ``crossbar.preset("pcm").device``).
        levels_us: target conductances.
        cells_per_level: cells per target.
        times_s: measurement times (the first is taken as t0 by the fit).
        n_reads: repeated reads per cell and time.
        seed: int or Generator.
        with_stuck_column: include the true stuck flag as a "stuck" column.

    Returns:
        LongData.
    """
    rng = np.random.default_rng(seed)
    levels = np.asarray(levels_us, float)
    tgt = np.repeat(levels, cells_per_level)
    times = np.asarray(times_s, float)
    g, stuck = sample_cells(device, tgt, times, n_reads, rng)
    n = tgt.size
    cell = np.repeat(np.arange(n), times.size * n_reads)
    t = np.tile(np.repeat(times, n_reads), n)
    r = np.tile(np.arange(n_reads), n * times.size)
    width = len(str(n - 1))
    labels = np.array([f"c{k:0{width}d}" for k in range(n)])
    return LongData(source=source, cell=cell, cell_labels=labels, g_target_us=tgt[cell], t_s=t, read_id=r,
                    g_us=g.ravel(), stuck=(stuck[cell] != 0) if with_stuck_column else None)
