"""``xbarsim calibrate`` / ``python -m calibration``: measured device data in, device model out.

    xbarsim calibrate cells.csv --out model.json --report report/
    xbarsim calibrate set.csv reset.csv --unit A --read-voltage 0.1 --out reram.json --report rep/
    xbarsim calibrate dG_increasing.txt dG_decreasing.txt --out enode.json --report rep/

The format of DATA is detected (``--format auto``): HDF5 files and CSVs with a ``cell_id``
column are long-format tables; a comment line followed by a line of conductance bins and a
line of CDF points is a dG lookup table (Sandia cross-sim-data); CSVs of numbers only
(optionally under a header row) are pulse ramps, one column per ramp. See
calibration/README.md for the schemas.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser", "calibrate"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xbarsim calibrate",
        description="Fit a device noise model to measured memory-cell data and write a device model "
                    "(JSON that crossbar.preset(path) and 'xbarsim deploy' load, plus HDF5 with the fit data) "
                    "and a report (levels.csv, gof.csv or steps.csv, params.csv, sources.txt, fits.png).",
        epilog="Long format (one file, CSV or HDF5): columns cell_id, g_target_us, t_s, read_id and one of "
               "g_us|g_ms|g_s|r_ohm|r_kohm|i_a|i_ua (a current needs v_read_v or --read-voltage); optional stuck, "
               "pulse. Pulse ramps (one or more CSVs): one column per ramp, one row per identical pulse, values in "
               "--unit. dG lookup tables (one per polarity, e.g. dG_increasing.txt dG_decreasing.txt): line 1 a "
               "comment, line 2 conductance bins, line 3 CDF points, then dG per pulse (rows = CDF points, columns "
               "= bins), in S unless --unit says otherwise. Examples:\n"
               "  xbarsim calibrate calibration/examples/example_cells.csv --out model.json --report rep\n"
               "  xbarsim calibrate set.csv reset.csv --unit A --read-voltage 0.1 --out reram.json --report rep\n"
               "  xbarsim calibrate gong_et_al.csv --unit norm --norm-range-us 10 100 --out hfo2.json\n"
               "  xbarsim calibrate dG_increasing.txt dG_decreasing.txt --out enode.json --report rep",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", metavar="DATA", help="measurement file(s): one long-format CSV/HDF5, "
                                                           "one or more pulse-ramp CSVs, or one or two dG lookup "
                                                           "tables (increasing, decreasing)")
    p.add_argument("--out", required=True, metavar="MODEL", help="device model to write: MODEL.json and MODEL.h5")
    p.add_argument("--report", metavar="DIR", help="report folder (levels.csv, gof.csv, params.csv, fits.png, ...)")
    p.add_argument("--format", choices=("auto", "long", "ramps", "dg_lookup"), default="auto",
                   help="input format (default: detected from the file)")
    p.add_argument("--base-preset", default="rram", metavar="NAME",
                   help="preset whose periphery (DAC, ADC, tiles, mapping) goes with the fitted device "
                        "(default: rram)")
    p.add_argument("--name", default=None, help="name of the device model (default: calibrated:<first file stem>)")
    p.add_argument("--seed", type=int, default=0, help="seed for folds, held-out split, bootstrap, sampling "
                                                       "(default: 0)")
    p.add_argument("--holdout", type=float, default=0.3,
                   help="fraction of cells (ramps) held out for the goodness-of-fit report (default: 0.3)")
    p.add_argument("--level-sigmas", type=float, default=3.0, metavar="Z",
                   help="distinguishable levels: adjacent levels' +-Z sigma windows must not overlap (default: 3)")
    p.add_argument("--set-levels", action="store_true",
                   help="write the number of distinguishable levels as the device's n_levels (default: analog)")
    p.add_argument("--g-range-us", type=float, nargs=2, metavar=("LO", "HI"),
                   help="long format: impose the device range instead of estimating it")
    p.add_argument("--read-voltage", type=float, metavar="V", help="read voltage for currents (V)")
    p.add_argument("--unit", choices=("uS", "mS", "S", "ohm", "kohm", "A", "uA", "norm"),
                   help="pulse ramps: unit of the values (required for ramps); dG lookup tables: uS, mS or S "
                        "(default S)")
    p.add_argument("--norm-range-us", type=float, nargs=2, metavar=("LO", "HI"),
                   help="pulse ramps in --unit norm: map the data's min..max onto LO..HI uS")
    p.add_argument("--direction", choices=("auto", "up", "down"), default="auto",
                   help="pulse ramps, dG table: polarity of every ramp / of a single table (default: sign of "
                        "each one's mean step)")
    p.add_argument("--bootstrap", type=int, default=100, metavar="N",
                   help="pulse ramps: bootstrap resamples over ramps for intervals (default: 100)")
    p.add_argument("--verify-tol-us", type=float, metavar="TOL",
                   help="pulse ramps, dG tables: program-and-verify acceptance window (default: half the median "
                        "step)")
    p.add_argument("--max-pulses", type=int, default=None,
                   help="pulse ramps, dG tables: pulses allowed per cell in program-and-verify (default: 200 for "
                        "ramps; for dG tables twice the pulses the mean step needs to cross the range, at least 200)")
    p.add_argument("--read-noise-us", type=float, default=None, metavar="SIGMA",
                   help="dG tables only: read-noise standard deviation in uS (constant over G, > 0), used by the "
                        "verify reads of program-and-verify and written to the device model (default: 0, a table "
                        "has no reads). Rejected for long format and pulse ramps, whose read noise is measured")
    p.add_argument("--activation-energy-ev", type=float, default=None, metavar="EA",
                   help="long format with a temperature_c column: activation energy (eV) of the Arrhenius "
                        "acceleration to room-temperature-equivalent time (default: fitted when the data holds two or "
                        "more temperatures and three or more read times, else 1.0, noted)")
    p.add_argument("--room-temperature-c", type=float, default=25.0, metavar="T",
                   help="long format: the room temperature (C) that times are made equivalent to (default: 25)")
    p.add_argument("--quiet", action="store_true", help="print only the output paths")
    return p


def _check_args(args, p) -> None:
    if not 0.0 < args.holdout < 1.0:
        p.error(f"--holdout must be in (0, 1), got {args.holdout}")
    if not args.level_sigmas > 0:
        p.error(f"--level-sigmas must be > 0, got {args.level_sigmas}")
    if args.read_voltage is not None and not args.read_voltage > 0:
        p.error(f"--read-voltage must be > 0 V, got {args.read_voltage}")
    if args.g_range_us is not None and not 0 <= args.g_range_us[0] < args.g_range_us[1]:
        p.error(f"--g-range-us needs 0 <= LO < HI, got {args.g_range_us}")
    if args.bootstrap < 0:
        p.error(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if args.max_pulses is not None and args.max_pulses < 1:
        p.error(f"--max-pulses must be >= 1, got {args.max_pulses}")
    if args.read_noise_us is not None and not (math.isfinite(args.read_noise_us) and args.read_noise_us > 0):
        p.error(f"--read-noise-us must be > 0 and finite (uS), got {args.read_noise_us}")
    if args.verify_tol_us is not None and not args.verify_tol_us > 0:
        p.error(f"--verify-tol-us must be > 0, got {args.verify_tol_us}")
    if args.activation_energy_ev is not None and not (math.isfinite(args.activation_energy_ev)
                                                      and 0 < args.activation_energy_ev <= 5):
        p.error(f"--activation-energy-ev must be in (0, 5] eV, got {args.activation_energy_ev}")
    if not (math.isfinite(args.room_temperature_c) and -273.15 < args.room_temperature_c <= 1000):
        p.error(f"--room-temperature-c must be in (-273.15, 1000] C, got {args.room_temperature_c}")


def _output_problem(args) -> str | None:
    """Why the outputs cannot be written (checked before any work), or None."""
    out = Path(args.out)
    json_path = out if out.suffix.lower() == ".json" else out.with_suffix(out.suffix + ".json") \
        if out.suffix else out.with_suffix(".json")
    for f in (json_path, json_path.with_suffix(".h5")):
        if f.is_dir():
            return f"--out: {f} is a folder, expected a file path"
        if f.parent.exists() and not f.parent.is_dir():
            return f"--out: {f.parent} is not a folder"
    if args.report:
        d = Path(args.report)
        if d.exists() and not d.is_dir():
            return f"--report: {d} exists and is not a folder"
        if d.is_dir():
            for name in ("levels.csv", "params.csv", "sources.txt", "gof.csv", "steps.csv", "fits.png",
                         "outliers.csv", "laws.csv", "levels_time.csv"):
                if (d / name).is_dir():
                    return f"--report: {d / name} is a folder"
    return None


def _input_kind(args, paths: list[Path]) -> str:
    """The one format of all inputs ('long', 'ramps', 'dg_lookup'), checked against the options."""
    from . import readers as cio

    kinds = [cio.detect_format(p) if args.format == "auto" else args.format for p in paths]
    if len(set(kinds)) > 1:
        k = next(i for i in range(len(kinds)) if kinds[i] != kinds[0])
        raise cio.CalibrationInputError(paths[k], f"is {kinds[k]} data, {paths[0]} is {kinds[0]}; calibrate one kind "
                                                  "at a time")
    kind = kinds[0]
    if args.read_noise_us is not None and kind != "dg_lookup":
        how = ("the repeated reads per cell" if kind == "long"
               else "the lag-1 covariance of the ramp steps")
        raise cio.CalibrationInputError(paths[0], f"is {kind} data: --read-noise-us applies to dG lookup tables "
                                                  f"only; read noise is measured from this input ({how})")
    if kind == "long" and len(paths) != 1:
        raise cio.CalibrationInputError(paths[1], "long format takes one file; merge the tables first")
    if kind == "ramps" and args.unit is None:
        raise cio.CalibrationInputError(paths[0], "pulse ramps need --unit (uS, mS, S, ohm, kohm, A, uA or norm)")
    return kind


def _calibrate_long(args, paths, base, options: dict) -> dict:
    """Long format: fit on all cells; levels and gof of a fit on the training cells against
    the held-out cells."""
    import numpy as np

    from . import readers as cio
    from .fit import fit_long, to_equivalent_time
    from .model import device_from_long_fit, levels_over_time
    from .report import levels_rows, split_cells

    measured = cio.read_long(paths[0], read_voltage_v=args.read_voltage)
    options["ignored_columns"] = list(measured.ignored_columns)
    time_notes: list[str] = []
    data, time_model = to_equivalent_time(measured, ea_ev=args.activation_energy_ev, room_c=args.room_temperature_c,
                                          notes=time_notes)
    fit = fit_long(data, seed=args.seed, level_z=args.level_sigmas, g_range_us=args.g_range_us,
                   time_model=time_model)
    fit.notes[:0] = time_notes
    train, test = split_cells(data.n_cells, args.holdout, args.seed)
    tfit = fit_long(data.subset_cells(train), seed=args.seed, level_z=args.level_sigmas,
                    g_range_us=(fit.g_min_us, fit.g_max_us))
    tdev = device_from_long_fit(tfit, base.device)
    excluded = fit.raw["cell_stuck_min"] | fit.raw["cell_stuck_max"] | fit.raw["cell_outlier"]
    levels, gof = levels_rows(tdev, data.subset_cells(test), seed=args.seed + 7, stuck=excluded[test])
    device = device_from_long_fit(fit, base.device, set_levels=args.set_levels)
    times = np.unique(data.t_s)
    levels_time = levels_over_time(device, times, args.level_sigmas, seed=args.seed + 11)
    return {"data": data, "fit": fit, "device": device, "levels": levels, "gof": gof, "steps": [],
            "levels_time": levels_time}


def _calibrate_dg_lookup(args, paths, base, options: dict) -> dict:
    """dG lookup tables: laws against the table; levels.csv from program-and-verify targets."""
    from . import readers as cio
    from .fit import fit_dg_lookup
    from .model import device_from_ramp_fit
    from .report import dg_step_rows, pv_level_rows

    unit = args.unit or "S"
    data = cio.read_dg_lookup(paths, unit=unit, direction=args.direction)
    options["unit"] = unit
    fit = fit_dg_lookup(data, seed=args.seed, level_z=args.level_sigmas, verify_tol_us=args.verify_tol_us,
                        max_pulses=args.max_pulses, read_sigma_us=args.read_noise_us)
    steps = dg_step_rows(fit, data, seed=args.seed + 7)
    device = device_from_ramp_fit(fit, base.device, set_levels=args.set_levels)
    levels = pv_level_rows(fit, device_from_ramp_fit(fit, base.device), seed=args.seed + 7)
    return {"data": data, "fit": fit, "device": device, "levels": levels, "gof": [], "steps": steps}


def _heldout_ramps(data, holdout: float, seed: int) -> list[int]:
    """Held-out ramps, per polarity (at least one, and one left to train on)."""
    import numpy as np

    test = []
    rng = np.random.default_rng(seed)
    for sgn in (1, -1):
        idx = np.flatnonzero(data.direction == sgn)
        if idx.size >= 2:
            k = int(min(max(round(holdout * idx.size), 1), idx.size - 1))
            test += sorted(rng.choice(idx, size=k, replace=False).tolist())
    return test


def _calibrate_ramps(args, paths, base, options: dict) -> dict:
    """Pulse ramps: fit on all ramps; steps.csv from a fit on the training ramps against the
    held-out ramps; levels.csv from program-and-verify targets."""
    from . import readers as cio
    from .fit import fit_ramps
    from .model import device_from_ramp_fit
    from .report import pv_level_rows, step_rows

    data = cio.read_pulse_ramps(paths, args.unit, read_voltage_v=args.read_voltage, direction=args.direction,
                                norm_range_us=None if args.norm_range_us is None else tuple(args.norm_range_us))
    kw = dict(seed=args.seed, level_z=args.level_sigmas, verify_tol_us=args.verify_tol_us,
              max_pulses=200 if args.max_pulses is None else args.max_pulses)
    fit = fit_ramps(data, n_boot=args.bootstrap, **kw)
    test = _heldout_ramps(data, args.holdout, args.seed)
    train = [i for i in range(data.n_ramps) if i not in set(test)]
    sub = cio.RampData(sources=data.sources, ramps=[data.ramps[i] for i in train],
                       direction=data.direction[train], names=[data.names[i] for i in train])
    tfit = fit_ramps(sub, n_boot=0, **kw)
    steps = step_rows(tfit, data, test, seed=args.seed + 7)
    device = device_from_ramp_fit(fit, base.device, set_levels=args.set_levels)
    # model side of levels.csv: the program-and-verify targets, sampled from the model (no measured
    # programmed levels exist in pulse-ramp data)
    levels = pv_level_rows(fit, device_from_ramp_fit(fit, base.device), seed=args.seed + 7)
    return {"data": data, "fit": fit, "device": device, "levels": levels, "gof": [], "steps": steps}


def _gof_summary(kind: str, gof: list, steps: list, holdout: float) -> dict:
    """The "goodness_of_fit" block: the test, how many tests, how many reject at 1 %."""
    import numpy as np

    rows = gof or steps
    pvals = [r["ks_pvalue"] for r in rows if r["ks_pvalue"] == r["ks_pvalue"]]
    test_desc = {"long": "held-out cells per (level, time)", "ramps": "held-out ramps' steps per conductance bin",
                 "dg_lookup": f"{steps[0]['n_steps'] if steps else 0} draws from the table vs as many from the fitted "
                              "N(mu, sigma_c2c^2) per (polarity, conductance bin)"}[kind]
    summary = {
        "test": "two-sample Kolmogorov-Smirnov, " + test_desc,
        "holdout_fraction": holdout if kind != "dg_lookup" else None, "n_tests": len(pvals),
        "n_p_below_0.01": int(sum(p < 0.01 for p in pvals)),
        "min_pvalue": float(min(pvals)) if pvals else None,
        "max_ks_stat": float(max(r["ks_stat"] for r in rows)) if rows else None,
    }
    if kind == "dg_lookup":
        summary["fraction_bins_mean_in_95pi"] = float(np.mean([r["mean_in_95pi"] for r in steps]))
        summary["fraction_bins_std_in_95pi"] = float(np.mean([r["std_in_95pi"] for r in steps]))
    return summary


def calibrate(args) -> dict:
    """Read, fit, build the model and report in memory; nothing is written here.

    Returns a dict with "fit", "config", "calibration", "raw", "levels", "gof", "steps",
    "data", "kind".
    """
    import crossbar

    from . import readers as cio
    from .model import array_config, calibration_block

    paths = [Path(p) for p in args.data]
    kind = _input_kind(args, paths)
    base = crossbar.preset(args.base_preset)
    name = args.name or f"calibrated:{paths[0].stem}"
    options = {k: v for k, v in vars(args).items() if k not in ("quiet",)}
    sha = {str(p): cio.file_sha256(p) for p in paths}
    run = {"long": _calibrate_long, "dg_lookup": _calibrate_dg_lookup, "ramps": _calibrate_ramps}[kind]
    res = run(args, paths, base, options)
    cfg = array_config(res["device"], base=args.base_preset, name=name)
    crossbar.ArrayConfig.from_dict(cfg.to_dict())  # the model must load back
    gof_summary = _gof_summary(kind, res["gof"], res["steps"], args.holdout)
    calib = calibration_block(res["fit"], [str(p) for p in paths], sha, options, gof_summary,
                              levels_time=res.get("levels_time"))
    return {"fit": res["fit"], "config": cfg, "calibration": calib, "raw": dict(res["fit"].raw),
            "levels": res["levels"], "gof": res["gof"], "steps": res["steps"], "data": res["data"], "kind": kind,
            "levels_time": res.get("levels_time")}


def _write(res, args) -> list[Path]:
    from .model import write_model
    from .report import (DG_STEP_COLUMNS, GOF_COLUMNS, LAW_COLUMNS, LEVEL_COLUMNS, LEVEL_TIME_COLUMNS,
                         OUTLIER_COLUMNS, STEP_COLUMNS, law_rows, level_time_rows, plot_dg_lookup, plot_long,
                         plot_ramps, write_csv, write_sources)

    written = list(write_model(args.out, res["config"], res["calibration"], res["raw"]))
    if args.report:
        d = Path(args.report)
        d.mkdir(parents=True, exist_ok=True)
        write_csv(d / "levels.csv", LEVEL_COLUMNS, res["levels"])
        write_csv(d / "params.csv", ["name", "value", "stderr", "ci_lo", "ci_hi", "unit", "method"],
                  res["calibration"]["parameters"])
        write_sources(d / "sources.txt", res["calibration"]["sources"])
        written += [d / "levels.csv", d / "params.csv", d / "sources.txt"]
        if res["kind"] == "long":
            write_csv(d / "gof.csv", GOF_COLUMNS, res["gof"])
            write_csv(d / "outliers.csv", OUTLIER_COLUMNS, res["fit"].outliers)
            write_csv(d / "laws.csv", LAW_COLUMNS, law_rows(res["fit"].laws()))
            write_csv(d / "levels_time.csv", LEVEL_TIME_COLUMNS, level_time_rows(res["levels_time"]))
            plot_long(res["fit"], res["levels"], d / "fits.png", levels_time=res["levels_time"])
            written += [d / "gof.csv", d / "outliers.csv", d / "laws.csv", d / "levels_time.csv", d / "fits.png"]
        elif res["kind"] == "dg_lookup":
            write_csv(d / "steps.csv", DG_STEP_COLUMNS, res["steps"])
            plot_dg_lookup(res["fit"], res["data"], res["steps"], d / "fits.png")
            written += [d / "steps.csv", d / "fits.png"]
        else:
            write_csv(d / "steps.csv", STEP_COLUMNS, res["steps"])
            plot_ramps(res["fit"], res["data"], d / "fits.png")
            written += [d / "steps.csv", d / "fits.png"]
    return written


def _print_long_summary(res) -> None:
    """Law choices with runners-up, the time span and assumption, levels over time."""
    fit = res["fit"]
    for pf in fit.laws():
        sel = pf.selection()
        ranked = sel.get("ranked", [])
        runners = ", ".join(f"{r['candidate']} {r['delta_vs_best']:+.3g}" for r in
                            [r for r in ranked if r["candidate"] != sel["chosen"]][:3])
        best = next((r for r in ranked if r["candidate"] == sel["chosen"]), None)
        how = f"held-out loss {best['heldout_loss']:.4g}" if best else "forced"
        print(f"law {pf.name}: {sel['chosen']} ({how}; runners-up {runners or 'none'})")
    rel = fit.relaxation
    if rel.get("tested"):
        ll = rel["heldout_loglik"]
        print(f"relaxation model: {rel['model']} (held-out log-likelihood {ll[rel['model']]:.6g}; runner-up "
              f"{rel['runner_up']} {ll[rel['runner_up']]:.6g}" + ("; two read times: time dependence assumed"
                                                                    if rel.get("two_times") else "") + ")")
    t0, t1 = fit.time_span_s
    print(f"time span: reads from {t0:.4g} to {t1:.4g} s after programming ({fit.time_model.get('summary', '')}); "
          "deploy warns beyond it")
    if res.get("levels_time"):
        print("distinguishable levels over time: " + ", ".join(f"t={r['t_s']:.4g} s: {r['n_levels']}"
                                                              for r in res["levels_time"]))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``xbarsim calibrate``; returns the exit status (2 on bad input)."""
    from .readers import CalibrationInputError
    from .report import format_table

    p = build_parser()
    args = p.parse_args(argv)
    _check_args(args, p)
    problem = _output_problem(args)
    if problem:
        print(f"xbarsim calibrate: error: {problem}\nnothing was written", file=sys.stderr)
        return 2
    t = time.perf_counter()
    try:
        res = calibrate(args)
    except CalibrationInputError as e:
        print(f"xbarsim calibrate: error: {e}\nnothing was written", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"xbarsim calibrate: error: {e}\nnothing was written", file=sys.stderr)
        return 2
    try:
        written = _write(res, args)
    except OSError as e:
        print(f"xbarsim calibrate: error: could not write the outputs: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        fit, cal = res["fit"], res["calibration"]
        dev = res["config"].device
        print(f"calibrated {res['kind']} data from {', '.join(args.data)} in {time.perf_counter() - t:.1f} s")
        print(f"device: g = [{dev.g_min_us:.4g}, {dev.g_max_us:.4g}] uS, distinguishable levels "
              f"{fit.levels_us.size} (95% {fit.levels_ci[0]}-{fit.levels_ci[1]}) at +-{fit.level_z:g} sigma")
        rows = [r for r in cal["parameters"] if not re.search(r"\.c\d+$", r["name"])]
        print(format_table(rows, ["name", "value", "stderr", "ci_lo", "ci_hi", "unit"]))
        g = cal["goodness_of_fit"]
        if g.get("n_tests"):
            print(f"goodness of fit ({g['test']}): {g['n_tests']} tests, {g['n_p_below_0.01']} with p < 0.01, "
                  f"min p = {g['min_pvalue']:.3g}, max KS = {g['max_ks_stat']:.3f}")
        if "fraction_bins_mean_in_95pi" in g:
            print(f"table bins inside the laws' 95% prediction intervals: mean {g['fraction_bins_mean_in_95pi']:.0%}, "
                  f"std {g['fraction_bins_std_in_95pi']:.0%}")
        if res["kind"] == "long":
            _print_long_summary(res)
        for n in fit.notes:
            print(f"note: {n}")
    for w in written:
        print(f"wrote {w}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
