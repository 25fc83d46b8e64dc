"""Messy synthetic device data with a known truth, for testing calibration end to end.

:func:`messy_rram` draws a long-format table that has what real RRAM data has (DESIGN.md,
issue 13): a relaxation spread that peaks mid-range and falls by more than 30x towards
g_max, a bake at 80 C between two room-temperature reads (known activation energy), 0.5 %
outlier cells (one shorted at 1e4 uS, open cells near 0, cells far from their target,
cells with a wild relaxation) and heavy-tailed read noise (a few cells with random
telegraph noise 10x the core). Every draw comes from the seed.

Truth (u = G_target / 240 uS, b(u) = exp(-(ln u - ln 0.35)^2 / (2 * 0.3^2))):

* programming  G(t0) = G_target + 0.3 + (1.0 + 2.0 u) z                         (uS)
* relaxation   G(t) = G(t0) (t_eq / t0)^-nu, nu ~ N(mu(u), s(u)) per cell, with
               s(u) = 5e-5 + 0.0075 b(u), mu(u) = 2e-4 + 0.026 b(u); t_eq the
               room-temperature-equivalent time (Arrhenius, Ea = 1.0 eV, 25 C)
* read noise   N(0, (0.1 + 0.25 u)^2) per read; 3 % of cells x10 (telegraph noise)

With ``relaxation="log_time"`` the relaxation is not a power law but grows with log time
(crossbar's relax_mu / relax_sigma form), with a mean that changes sign mid-range (cells
relax towards the middle; zero mean near u = 0.4, which drift exponents cannot represent):

* relaxation   G(t) = G(t0) + (m(u) + r(u) z) sqrt(ln(t_eq / t0)), z ~ N(0, 1) per cell,
               m(u) = 1.2 - 3.0 u, r(u) = 0.05 + 2.0 b(u)     (uS per sqrt(ln))

Example:
    >>> data, truth = messy_rram(n_per_level=40, seed=1)
    >>> data.n_cells, sorted(set(data.temperature_c.tolist()))
    (240, [25.0, 80.0])
"""
from __future__ import annotations

import numpy as np

from .fit import arrhenius_factor
from .readers import LongData

__all__ = ["messy_rram", "MESSY_TRUTH"]

MESSY_TRUTH = {
    "g_scale_us": 240.0, "targets_us": (20.0, 60.0, 100.0, 140.0, 190.0, 240.0),
    "prog_offset_us": 0.3, "prog_sigma_us": (1.0, 2.0), "read_sigma_us": (0.1, 0.25), "rtn_fraction": 0.03,
    "rtn_factor": 10.0, "nu_sigma": (5e-5, 0.0075), "nu_mu": (2e-4, 0.026), "bump_centre_u": 0.35,
    "bump_width_ln": 0.3, "ea_ev": 1.0, "room_c": 25.0, "bake_c": 80.0, "t_first_s": 60.0, "bake_s": 1800.0,
    "outlier_fraction": 0.005, "relax_mu_us": (1.2, -3.0), "relax_sigma_us": (0.05, 2.0),
}


def _bump(u, truth=MESSY_TRUTH):
    return np.exp(-0.5 * ((np.log(u) - np.log(truth["bump_centre_u"])) / truth["bump_width_ln"]) ** 2)


def truth_laws(g_us, truth=MESSY_TRUTH) -> dict:
    """The true laws at conductances g_us: prog_sigma, read_sigma (core), mu_nu, sigma_nu
    (power law), relax_mu, relax_sigma (log time, uS per sqrt(ln(t/t0)))."""
    u = np.asarray(g_us, float) / truth["g_scale_us"]
    b = _bump(u, truth)
    return {"prog_sigma": truth["prog_sigma_us"][0] + truth["prog_sigma_us"][1] * u,
            "read_sigma": truth["read_sigma_us"][0] + truth["read_sigma_us"][1] * u,
            "mu_nu": truth["nu_mu"][0] + truth["nu_mu"][1] * b, "sigma_nu": truth["nu_sigma"][0] + truth["nu_sigma"][1] * b,
            "relax_mu": truth["relax_mu_us"][0] + truth["relax_mu_us"][1] * u,
            "relax_sigma": truth["relax_sigma_us"][0] + truth["relax_sigma_us"][1] * b}


def messy_rram(n_per_level: int = 650, n_reads: int = 3, seed: int = 0, truth: dict = MESSY_TRUTH, schedule=None,
               relaxation: str = "power"):
    """Draw the messy table (see the module docstring).

    Args:
        n_per_level: cells per target level (6 levels).
        n_reads: repeated reads per cell and time.
        seed: every draw.
        truth: the parameters (MESSY_TRUTH).
        schedule: [(interval_s, temperature_c), ...], one per read time: the interval before
            each read and its temperature (default: 60 s at 25 C, then the 1800 s bake at
            80 C). Outliers keep their first-read conductance after the first interval.
        relaxation: "power" (per-cell drift exponents) or "log_time" (see the module docstring).

    Returns:
        (LongData with a temperature_c column: 25 C before the first read at 60 s, 80 C
        during the 1800 s bake before the second read; a dict with the truth, the ids of
        the outlier cells by kind, the telegraph-noise cells and the equivalent read times).
    """
    rng = np.random.default_rng(seed)
    tgt = np.repeat(np.asarray(truth["targets_us"], float), n_per_level)
    n = tgt.size
    law = truth_laws(tgt, truth)
    g0 = tgt + truth["prog_offset_us"] + law["prog_sigma"] * rng.standard_normal(n)
    nu = law["mu_nu"] + law["sigma_nu"] * rng.standard_normal(n)
    if schedule is None:
        schedule = [(truth["t_first_s"], truth["room_c"]), (truth["bake_s"], truth["bake_c"])]
    dur = np.array([d for d, _ in schedule], float)
    temps = np.array([c for _, c in schedule], float)
    times = np.cumsum(dur)
    t_eq = np.cumsum(dur * arrhenius_factor(temps, truth["room_c"], truth["ea_ev"]))
    if relaxation == "power":
        g_true = g0[:, None] * (t_eq[None, :] / t_eq[0]) ** (-nu[:, None])      # (n, n_times)
    elif relaxation == "log_time":
        a = law["relax_mu"] + law["relax_sigma"] * rng.standard_normal(n)
        g_true = g0[:, None] + a[:, None] * np.sqrt(np.log(t_eq / t_eq[0]))[None, :]
    else:
        raise ValueError(f"relaxation must be 'power' or 'log_time', got {relaxation!r}")
    n_t = times.size
    # outliers: 0.5 % of cells, one shorted at 1e4 uS, open cells, far-from-target cells, wild relaxation
    n_out = max(4, int(round(truth["outlier_fraction"] * n)))
    out = rng.choice(n, size=n_out, replace=False)
    kinds = {"shorted": out[:1], "open": out[1:1 + n_out // 4], "far_from_target": out[1 + n_out // 4:1 + n_out // 2],
             "wild_relaxation": out[1 + n_out // 2:]}
    g_true[kinds["shorted"]] = 1.0e4
    g_true[kinds["open"]] = 0.5
    far = kinds["far_from_target"]
    g_true[far] = np.maximum(g0[far] + 60.0 * rng.choice([-1.0, 1.0], size=far.size), 1.0)[:, None]
    wild = kinds["wild_relaxation"]
    g_true[wild, 1:] = g_true[wild, :1] * rng.uniform(0.2, 0.4, (wild.size, 1))
    # read noise: Gaussian core, telegraph-noise cells x10
    rtn = rng.random(n) < truth["rtn_fraction"]
    sr = (truth["read_sigma_us"][0] + truth["read_sigma_us"][1] * g_true / truth["g_scale_us"])
    sr = sr * np.where(rtn, truth["rtn_factor"], 1.0)[:, None]
    reads = np.maximum(g_true[:, :, None] + sr[:, :, None] * rng.standard_normal((n, n_t, n_reads)), 0.0)
    cell = np.repeat(np.arange(n), n_t * n_reads)
    width = len(str(n - 1))
    labels = np.array([f"c{k:0{width}d}" for k in range(n)])
    data = LongData(source="<messy_rram>", cell=cell, cell_labels=labels, g_target_us=tgt[cell],
                    t_s=np.tile(np.repeat(times, n_reads), n), read_id=np.tile(np.arange(n_reads), n_t * n),
                    g_us=reads.ravel(), temperature_c=np.tile(np.repeat(temps, n_reads), n))
    info = {"truth": dict(truth), "relaxation": relaxation, "outliers": {k: [str(labels[i]) for i in v] for k, v in kinds.items()},
            "rtn_cells": [str(x) for x in labels[rtn]], "t_equivalent_s": t_eq.tolist(), "times_s": times.tolist()}
    return data, info
