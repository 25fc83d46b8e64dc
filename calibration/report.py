"""Report: goodness of fit on held-out cells (ramps) or against the table (dG lookup),
levels.csv, parameter tables, sources with their licences, plots.

Everything here returns rows or writes files atomically (xbarsim.files). Plots
use matplotlib's Agg backend.
"""
from __future__ import annotations

import csv
import io as _io
from pathlib import Path

import numpy as np
from scipy import stats

from xbarsim.files import atomic_path, atomic_write_text

from .fit import Z95, DgLookupFit, LongFit, RampFit, ramp_steps, sample_quantile_table
from .readers import DgLookupData, LongData, RampData
from .model import sample_cells

__all__ = [
    "LEVEL_COLUMNS",
    "split_cells",
    "levels_rows",
    "step_rows",
    "dg_step_rows",
    "pv_level_rows",
    "write_csv",
    "write_sources",
    "format_table",
    "format_value",
    "plot_long",
    "plot_ramps",
    "plot_dg_lookup",
    "law_rows",
    "level_time_rows",
]

LEVEL_COLUMNS = ["g_target_us", "t_s", "n_cells", "measured_mean_us", "measured_std_us", "model_mean_us",
                 "model_std_us"]
GOF_COLUMNS = ["g_target_us", "t_s", "n_cells", "n_model", "ks_stat", "ks_pvalue"]
STEP_COLUMNS = ["direction", "g_lo_us", "g_hi_us", "n_steps", "measured_mean_us", "measured_std_us",
                "model_mean_us", "model_std_us", "ks_stat", "ks_pvalue"]
DG_STEP_COLUMNS = STEP_COLUMNS + ["mean_in_95pi", "std_in_95pi"]
OUTLIER_COLUMNS = ["cell_id", "g_target_us", "g_t0_us", "robust_z", "class", "why"]
LAW_COLUMNS = ["law", "candidate", "heldout_loss", "se", "delta_vs_best", "chosen"]
LEVEL_TIME_COLUMNS = ["t_s", "n_levels", "levels_us"]


def law_rows(laws) -> list[dict]:
    """laws.csv: every candidate (family:degree) tried for each law, its mean held-out loss
    per cell (negative log-likelihood or squared error) with standard error, the difference
    to the best, and which one was chosen (the simplest within one paired standard error)."""
    rows = []
    for pf in laws:
        sel = pf.selection()
        for r in sel.get("ranked", []):
            rows.append({"law": pf.name, **r, "chosen": int(r["candidate"] == sel["chosen"])})
        if not sel.get("ranked"):
            rows.append({"law": pf.name, "candidate": sel["chosen"], "chosen": 1})
    return rows


def level_time_rows(levels_time) -> list[dict]:
    """levels_time.csv: distinguishable levels of the model at each measured time."""
    return [{"t_s": r["t_s"], "n_levels": r["n_levels"], "levels_us": " ".join(f"{v:.4g}" for v in r["levels_us"])}
            for r in levels_time or []]


def split_cells(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random split of range(n) into (train, test) with round(holdout * n) test items (>= 1)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    k = int(min(max(round(holdout * n), 1), n - 1))
    return np.sort(perm[k:]), np.sort(perm[:k])


def _level_index(targets: np.ndarray):
    """Group cell targets into levels: the distinct targets, or 16 quantile bins when the
    targets are continuous (more than 32 distinct values). Returns (level of each cell,
    representative target of each level)."""
    ut = np.unique(targets)
    if ut.size <= 32:
        return np.searchsorted(ut, targets), ut
    edges = np.quantile(targets, np.linspace(0, 1, 17))
    lvl = np.clip(np.searchsorted(edges, targets, side="right") - 1, 0, 15)
    rep = np.array([targets[lvl == k].mean() if (lvl == k).any() else np.nan for k in range(16)])
    keep = np.isfinite(rep)
    remap = np.cumsum(keep) - 1
    return remap[lvl], rep[keep]


def levels_rows(device, test: LongData, n_model_per_cell: int = 20, seed: int = 0, stuck=None):
    """levels.csv and gof rows: measured (held-out cells) vs sampled from ``device``.

    For each (target level, time): the first read (lowest read_id) of every held-out cell
    measured then; the model side samples ``n_model_per_cell`` cells per held-out cell at the
    same targets and times from the fitted device. Stuck cells are left out on both sides
    (``stuck``: per held-out cell, flagged or detected; the model's own stuck draws), so the
    rows describe the working cells; the stuck rates are fitted and reported separately.
    The two-sample Kolmogorov-Smirnov test compares the two sets of conductances.

    Returns (level rows, gof rows), lists of dicts keyed by LEVEL_COLUMNS / GOF_COLUMNS.
    """
    rng = np.random.default_rng(seed)
    targets = test.cell_targets()
    lvl, rep = _level_index(targets)
    times = np.unique(test.t_s)
    # first read of each (cell, time): rows are sorted by cell, t, read_id
    key = test.cell * times.size + np.searchsorted(times, test.t_s)
    first = np.ones(key.size, bool)
    first[1:] = key[1:] != key[:-1]
    meas = np.full((test.n_cells, times.size), np.nan)
    meas[test.cell[first], np.searchsorted(times, test.t_s[first])] = test.g_us[first]
    model_t = np.repeat(targets, n_model_per_cell)
    model_lvl = np.repeat(lvl, n_model_per_cell)
    g, model_stuck = sample_cells(device, model_t, times, 1, rng)
    g = g[:, :, 0]
    keep_meas = np.ones(test.n_cells, bool) if stuck is None else ~np.asarray(stuck, bool)
    keep_model = model_stuck == 0
    rows, gof = [], []
    for k, gt in enumerate(rep):
        for j, t in enumerate(times):
            m = meas[(lvl == k) & keep_meas, j]
            m = m[np.isfinite(m)]
            if m.size == 0:
                continue
            s = g[(model_lvl == k) & keep_model, j]
            row = {"g_target_us": gt, "t_s": t, "n_cells": m.size, "measured_mean_us": m.mean(),
                   "measured_std_us": m.std(ddof=1) if m.size > 1 else np.nan, "model_mean_us": s.mean(),
                   "model_std_us": s.std(ddof=1)}
            rows.append(row)
            ks = stats.ks_2samp(m, s) if m.size >= 2 else None
            gof.append({"g_target_us": gt, "t_s": t, "n_cells": m.size, "n_model": s.size,
                        "ks_stat": np.nan if ks is None else ks.statistic,
                        "ks_pvalue": np.nan if ks is None else ks.pvalue})
    return rows, gof


def step_rows(fit: RampFit, data: RampData, test_idx, n_bins: int = 8, n_model_per_step: int = 20, seed: int = 0):
    """Held-out ramps: measured steps per conductance bin vs steps sampled from the fit
    (mean(G) + c2c(G) z + read-noise difference), with a two-sample KS test per bin."""
    rng = np.random.default_rng(seed)
    rows = []
    edges = np.linspace(fit.g_min_us, fit.g_max_us, n_bins + 1)
    for name, df in fit.directions.items():
        idx = [i for i in test_idx if (data.direction[i] > 0) == (name == "up")]
        if not idx:
            continue
        x, d, _, _ = ramp_steps(data.ramps, idx)
        xs = np.repeat(x, n_model_per_step)
        model = (df.mean_step(xs) + df.c2c_sigma(xs) * rng.standard_normal(xs.size)
                 + fit.read_sigma_us * np.sqrt(2.0) * rng.standard_normal(xs.size))
        b = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_bins - 1)
        bm = np.repeat(b, n_model_per_step)
        for k in range(n_bins):
            m, s = d[b == k], model[bm == k]
            if m.size < 2:
                continue
            ks = stats.ks_2samp(m, s)
            rows.append({"direction": name, "g_lo_us": edges[k], "g_hi_us": edges[k + 1], "n_steps": m.size,
                         "measured_mean_us": m.mean(), "measured_std_us": m.std(ddof=1), "model_mean_us": s.mean(),
                         "model_std_us": s.std(ddof=1), "ks_stat": ks.statistic, "ks_pvalue": ks.pvalue})
    return rows


def dg_step_rows(fit: DgLookupFit, data: DgLookupData, n_draws: int = 500, seed: int = 0):
    """Fitted step laws vs the dG table, per (polarity, conductance bin).

    ``measured_*``: the table's mean and std of dG in the bin (exact, from its quantile
    function); ``model_*``: the laws mu(G) and sigma_c2c(G) at the bin; ``n_steps`` draws
    from the table (inverse CDF) against as many from N(mu, sigma_c2c^2) in a two-sample
    Kolmogorov-Smirnov test (the p-value grows with n_draws: the table has no sample size);
    ``mean_in_95pi`` / ``std_in_95pi``: 1 when the tabulated value lies in the law's 95 %
    prediction interval, +-1.96 sqrt(se(G)^2 + s^2), s^2 the residual variance of the bins
    about the law (n_bins - degree - 1 dof). g_lo_us / g_hi_us: midpoints to the
    neighbouring bins.
    """
    rng = np.random.default_rng(seed)
    g = np.asarray(data.g_bins_us, float)
    edges = np.concatenate([[g[0]], 0.5 * (g[1:] + g[:-1]), [g[-1]]])
    rows = []
    for name, df in fit.directions.items():
        tab = data.tables[name]
        mu, sd = df.mean_step(g), df.c2c_sigma(g)
        inside = {}
        for key, pf, y in (("mean", df.mean_step, df.table_mean_us), ("std", df.c2c_sigma, df.table_std_us)):
            r = y - pf(g)
            s2 = float(r @ r) / max(g.size - len(pf.coeffs), 1)
            inside[key] = np.abs(r) <= Z95 * np.sqrt(pf.se(g) ** 2 + s2)
        for k in range(g.size):
            table = sample_quantile_table(tab.cdf, tab.dg_us[:, k], n_draws, rng)
            model = mu[k] + sd[k] * rng.standard_normal(n_draws)
            ks = stats.ks_2samp(table, model)
            rows.append({"direction": name, "g_lo_us": edges[k], "g_hi_us": edges[k + 1], "n_steps": n_draws,
                         "measured_mean_us": df.table_mean_us[k], "measured_std_us": df.table_std_us[k],
                         "model_mean_us": mu[k], "model_std_us": sd[k], "ks_stat": ks.statistic,
                         "ks_pvalue": ks.pvalue, "mean_in_95pi": int(inside["mean"][k]),
                         "std_in_95pi": int(inside["std"][k])})
    return rows


def pv_level_rows(fit, device, n_per_target: int = 2000, seed: int = 0):
    """levels.csv rows for data without measured programmed levels (pulse ramps, dG tables):
    one row per program-and-verify target at t0, ``n_cells = 0``, measured columns nan, the
    model mean and std from ``n_per_target`` cells sampled from ``device``."""
    targets = fit.pv["targets_us"]
    g, _ = sample_cells(device, np.repeat(targets, n_per_target), [device.t0_s], 1, np.random.default_rng(seed))
    g = g[:, 0, 0].reshape(targets.size, n_per_target)
    return [{"g_target_us": t, "t_s": device.t0_s, "n_cells": 0, "measured_mean_us": float("nan"),
             "measured_std_us": float("nan"), "model_mean_us": g[k].mean(), "model_std_us": g[k].std(ddof=1)}
            for k, t in enumerate(targets)]


def write_sources(path, sources) -> None:
    """sources.txt: each input file with its SHA-256 and the licence found next to it
    (name, copyright and full text), atomically."""
    out = []
    for src in sources:
        out.append(f"{src['path']}\n  sha256 {src['sha256']}")
        lic = src.get("licence")
        if lic is None:
            out.append("  licence: no licence file found next to the data\n")
            continue
        out.append(f"  licence: {lic['name']} ({lic['file']}, sha256 {lic['sha256']})")
        if lic.get("copyright"):
            out.append(f"  {lic['copyright']}")
        out.append("\n" + lic["text"].rstrip() + "\n")
    atomic_write_text(path, "\n".join(out) + "\n")


def format_value(v) -> str:
    """A CSV / terminal cell: "" for None, 6 significant digits for floats ("nan" when not finite)."""
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return "nan" if not np.isfinite(v) else f"{float(v):.6g}"
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


def write_csv(path, columns, rows) -> None:
    """Write rows (dicts) with the given columns, atomically."""
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([format_value(r.get(c)) for c in columns])
    atomic_write_text(path, buf.getvalue())


def format_table(rows, columns, max_width: int = 48) -> str:
    """A plain-text table for the terminal."""
    cells = [[format_value(r.get(c))[:max_width] for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[k]) for row in cells]) for k, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def _save(fig, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _legend(a) -> None:
    """A legend when the panel has labelled artists (no empty legend, no matplotlib warning)."""
    if a.get_legend_handles_labels()[0]:
        a.legend(fontsize=7)


def plot_long(fit: LongFit, level_rows, path, levels_time=None) -> None:
    """fits.png: programming error, read noise, drift exponent, drift spread (log scale) vs G;
    held-out levels vs the model over time; distinguishable levels over time."""
    plt = _plt()
    raw = fit.raw
    fig, ax = plt.subplots(2, 3, figsize=(16, 8.5))
    g = np.linspace(fit.g_min_us, fit.g_max_us, 200)
    tgt, gf = raw["cell_target_us"], raw["cell_g_t0_us"]
    excluded = raw["cell_stuck_min"] | raw["cell_stuck_max"] | raw.get("cell_outlier", np.zeros(tgt.size, bool))
    ok = np.isfinite(gf) & ~excluded
    a = ax[0, 0]
    a.plot(tgt[ok], gf[ok] - tgt[ok], ".", ms=2, alpha=0.3, color="0.5", label="cells (mean of reads at t0)")
    off, sig = fit.prog_offset(g), fit.prog_sigma(g)
    a.plot(g, off, "C0", label=f"offset fit ({fit.prog_offset.label})")
    a.fill_between(g, off - sig, off + sig, color="C0", alpha=0.2, label=f"offset +- sigma_prog ({fit.prog_sigma.label})")
    a.fill_between(g, off - sig - 1.96 * fit.prog_sigma.se(g), off + sig + 1.96 * fit.prog_sigma.se(g),
                   color="C0", alpha=0.08)
    a.set(xlabel="target G (uS)", ylabel="G(t0) - target (uS)", title=f"programming error ({int(excluded.sum())} "
          "stuck/outlier cells not shown)")
    _legend(a)
    _plot_read_noise(ax[0, 1], fit, g, excluded)
    _plot_drift(ax[0, 2], ax[1, 0], fit, g, tgt)
    _plot_heldout(ax[1, 1], level_rows)
    a = ax[1, 2]
    if levels_time:
        a.plot([r["t_s"] for r in levels_time], [r["n_levels"] for r in levels_time], "o-", color="C3",
               label=f"model, +-{fit.level_z:g} sigma windows")
        a.set(xscale="log", ylim=(0, None))
        _legend(a)
    else:
        a.text(0.5, 0.5, "levels over time not computed", ha="center", va="center", transform=a.transAxes)
    a.set(xlabel="time since programming (s)", ylabel="distinguishable levels", title="distinguishable levels over time")
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)


def _plot_read_noise(a, fit: LongFit, g, excluded=None) -> None:
    raw = fit.raw
    v = raw["ct_var_us2"]
    m = v >= 0
    if excluded is not None:  # stuck / outlier cells (a shorted cell at 1e4 uS would squash the axis)
        m &= ~excluded[raw["ct_cell"]]
    if m.any():
        a.plot(raw["ct_mean_us"][m], np.sqrt(v[m]), ".", ms=2, alpha=0.3, color="0.5",
               label="cells: std of reads (every time)")
    if fit.read_sigma is not None:
        s = fit.read_sigma(g)
        a.plot(g, s, "C1", label=f"sigma_read core fit ({fit.read_sigma.label})")
        a.fill_between(g, s - 1.96 * fit.read_sigma.se(g), s + 1.96 * fit.read_sigma.se(g), color="C1", alpha=0.3,
                       label="95% interval")
        tail = fit.read_noise.get("tail_fraction", 0.0)
        a.set(yscale="log", title=f"read noise (tail {tail:.2%} of cell-times)")
    else:
        a.text(0.5, 0.5, "read noise not fitted\n(no repeated reads)", ha="center", va="center",
               transform=a.transAxes)
        a.set(title="read noise")
    a.set(xlabel="G (uS)", ylabel="read noise sigma (uS)")
    _legend(a)


def _plot_log_relaxation(a_mu, a_sig, fit: LongFit, g, tgt) -> None:
    """The log-time relaxation model (when chosen): per-cell slopes of G(t) - G(t0) on
    sqrt(ln(t/t0)) against the relax_mu / relax_sigma laws."""
    a = fit.raw["cell_relax_slope"]
    ok = np.isfinite(a)
    mu = fit.relax_mu(g) if fit.relax_mu is not None else np.zeros_like(g)
    sn = fit.relax_sigma(g)
    a_mu.plot(tgt[ok], a[ok], ".", ms=2, alpha=0.3, color="0.5", label="per-cell slope")
    a_mu.plot(g, mu, "C2", label="relax_mu" + (f" ({fit.relax_mu.label})" if fit.relax_mu is not None else " = 0"))
    a_mu.fill_between(g, mu - sn, mu + sn, color="C2", alpha=0.2, label="relax_mu +- relax_sigma")
    mu_c = fit.relax_mu(tgt[ok]) if fit.relax_mu is not None else 0.0
    a_sig.plot(tgt[ok], np.maximum(np.abs(a[ok] - mu_c), 1e-6), ".", ms=2, alpha=0.3, color="0.5",
               label="|slope - relax_mu| per cell")
    a_sig.plot(g, sn, "C2", label=f"relax_sigma ({fit.relax_sigma.label})")
    a_sig.plot(g, np.maximum(sn * np.sqrt(2 / np.pi), 1e-6), "C2--", lw=0.8, label="mean |dev| of the law")
    a_sig.set(yscale="log")
    a_mu.set(xlabel="target G (uS)", ylabel="dG per sqrt(ln(t/t0)) (uS)",
             title=f"relaxation: {fit.relaxation_model} (chosen)")
    a_sig.set(xlabel="target G (uS)", ylabel="spread (uS per sqrt(ln), log)", title="relaxation spread")
    _legend(a_mu)
    _legend(a_sig)


def _plot_drift(a_mu, a_sig, fit: LongFit, g, tgt) -> None:
    if fit.relaxation_model != "power" and fit.relax_sigma is not None:
        _plot_log_relaxation(a_mu, a_sig, fit, g, tgt)
        return
    nu = fit.raw["cell_nu"]
    okn = np.isfinite(nu)
    if okn.any() and fit.drift_mu_nu is not None:
        a_mu.plot(tgt[okn], nu[okn], ".", ms=2, alpha=0.3, color="0.5", label="per-cell nu")
        mu, sn = fit.drift_mu_nu(g), fit.drift_sigma_nu(g)
        a_mu.plot(g, mu, "C2", label=f"mu_nu ({fit.drift_mu_nu.label})")
        a_mu.fill_between(g, mu - sn, mu + sn, color="C2", alpha=0.2, label="mu_nu +- sigma_nu")
        dev = np.abs(nu[okn] - fit.drift_mu_nu(tgt[okn]))
        a_sig.plot(tgt[okn], np.maximum(dev, 1e-6), ".", ms=2, alpha=0.3, color="0.5", label="|nu - mu_nu| per cell")
        a_sig.plot(g, sn, "C2", label=f"sigma_nu ({fit.drift_sigma_nu.label})")
        a_sig.plot(g, np.maximum(sn * np.sqrt(2 / np.pi), 1e-6), "C2--", lw=0.8, label="mean |dev| of the law")
        a_sig.set(yscale="log")
    else:
        for a in (a_mu, a_sig):
            a.text(0.5, 0.5, "no drift fitted\n(one measurement time)", ha="center", va="center",
                   transform=a.transAxes)
    a_mu.set(xlabel="target G (uS)", ylabel="drift exponent nu", title="drift exponent")
    a_sig.set(xlabel="target G (uS)", ylabel="spread of nu (log scale)", title="drift spread (log: high-G misfit shows)")
    _legend(a_mu)
    _legend(a_sig)


def _plot_heldout(a, level_rows) -> None:
    times = sorted({r["t_s"] for r in level_rows})
    for j, t in enumerate(times):
        rr = [r for r in level_rows if r["t_s"] == t]
        x = np.array([r["g_target_us"] for r in rr])
        a.errorbar(x, [r["measured_mean_us"] for r in rr], yerr=[r["measured_std_us"] for r in rr], fmt="o",
                   ms=3, color=f"C{j % 10}", label=f"measured t={t:.3g} s")
        a.errorbar(x * 1.0, [r["model_mean_us"] for r in rr], yerr=[r["model_std_us"] for r in rr], fmt="_",
                   ms=10, color=f"C{j % 10}", alpha=0.6, label=f"model t={t:.3g} s")
    a.set(xlabel="target G (uS)", ylabel="G (uS)", title="held-out cells (o) vs model (_), mean +- std")
    _legend(a)


def plot_ramps(fit: RampFit, data: RampData, path) -> None:
    """fits.png: the ramps, step vs G with the fits, program-and-verify error vs target."""
    plt = _plt()
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    a = ax[0]
    for i, r in enumerate(data.ramps):
        a.plot(r, color="C0" if data.direction[i] > 0 else "C3", lw=0.6, alpha=0.5)
    a.set(xlabel="pulse", ylabel="G (uS)", title=f"{data.n_ramps} ramps (blue up, red down)")
    a = ax[1]
    g = fit.grid_us
    for name, df in fit.directions.items():
        c = "C0" if name == "up" else "C3"
        x, d = fit.raw.get(f"{name}_step_g_us"), fit.raw.get(f"{name}_step_us")
        if x is not None:
            sel = np.random.default_rng(0).permutation(x.size)[:4000]
            a.plot(x[sel], d[sel], ".", ms=1.5, alpha=0.25, color=c)
        mu, sd = df.mean_step(g), df.c2c_sigma(g)
        a.plot(g, mu, color=c, label=f"{name}: mean step")
        a.fill_between(g, mu - sd, mu + sd, color=c, alpha=0.2, label=f"{name}: +- c2c sigma")
        if df.boot_mean.shape[0]:
            a.fill_between(g, np.quantile(df.boot_mean, 0.025, 0), np.quantile(df.boot_mean, 0.975, 0), color="k",
                           alpha=0.25)
    a.axhline(0, color="k", lw=0.5)
    a.set(xlabel="G (uS)", ylabel="step per pulse (uS)", title="pulse response (black: 95% bootstrap of the mean)")
    a.legend(fontsize=7)
    _plot_pv(ax[2], fit)
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)


def _plot_pv(a, fit) -> None:
    """Simulated program-and-verify: error std and mean per target, the sigma_prog fit."""
    pv, g = fit.pv, fit.grid_us
    a.plot(pv["targets_us"], pv["error_std_us"], "o", label="simulated P&V: std of error")
    a.plot(g, fit.prog_sigma(g), "C1", label="sigma_prog fit")
    a.plot(pv["targets_us"], pv["error_mean_us"], "s", ms=3, color="C2", label="simulated P&V: mean error")
    a.set(xlabel="target G (uS)", ylabel="uS", title=f"program-and-verify (tol {pv['tol_us']:.3g} uS)")
    a.legend(fontsize=7)


def plot_dg_lookup(fit: DgLookupFit, data: DgLookupData, step_rows, path) -> None:
    """fits.png: per-bin mean and std of dG from the table with the fitted laws (95 %
    intervals), the KS statistic per bin, program-and-verify error vs target."""
    plt = _plt()
    fig, ax = plt.subplots(2, 2, figsize=(12, 8.5))
    gb, g = data.g_bins_us, fit.grid_us
    for name, df in fit.directions.items():
        c = "C0" if name == "up" else "C3"
        tab = data.tables[name]
        lo, hi = (np.array([np.interp(q, tab.cdf, tab.dg_us[:, k]) for k in range(gb.size)])
                  for q in (0.05, 0.95))
        a = ax[0, 0]
        a.fill_between(gb, lo, hi, color=c, alpha=0.12, label=f"{name}: table 5-95% quantiles")
        a.plot(gb, df.table_mean_us, "o", ms=3, color=c, label=f"{name}: table mean")
        mu = df.mean_step(g)
        a.plot(g, mu, color=c, label=f"{name}: mean-step law (deg {df.mean_step.degree})")
        a.fill_between(g, mu - Z95 * df.mean_step.se(g), mu + Z95 * df.mean_step.se(g), color="k", alpha=0.25)
        a = ax[0, 1]
        a.plot(gb, df.table_std_us, "o", ms=3, color=c, label=f"{name}: table std")
        sd = df.c2c_sigma(g)
        a.plot(g, sd, color=c, label=f"{name}: c2c law (deg {df.c2c_sigma.degree})")
        a.fill_between(g, sd - Z95 * df.c2c_sigma.se(g), sd + Z95 * df.c2c_sigma.se(g), color="k", alpha=0.25)
        rr = [r for r in step_rows if r["direction"] == name]
        ax[1, 0].plot([0.5 * (r["g_lo_us"] + r["g_hi_us"]) for r in rr], [r["ks_stat"] for r in rr], "o-", ms=3,
                      color=c, label=f"{name}: {sum(r['ks_pvalue'] < 0.01 for r in rr)}/{len(rr)} bins p < 0.01")
    ax[0, 0].axhline(0, color="k", lw=0.5)
    ax[0, 0].set(xlabel="G (uS)", ylabel="dG per pulse (uS)", title="mean step (black: 95% interval of the law)")
    ax[0, 1].set(xlabel="G (uS)", ylabel="std of dG per pulse (uS)", title="cycle-to-cycle spread")
    n = step_rows[0]["n_steps"] if step_rows else 0
    ax[1, 0].set(xlabel="G (uS)", ylabel="KS statistic", ylim=(0, None),
                 title=f"table vs N(mu, sigma_c2c^2): two-sample KS, {n} draws each")
    for a in (ax[0, 0], ax[0, 1], ax[1, 0]):
        a.legend(fontsize=7)
    _plot_pv(ax[1, 1], fit)
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)
