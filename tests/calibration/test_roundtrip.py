"""Round trip: sample measurements from a known device model, fit, recover every parameter.

Bounds follow from the sample size: each fitted law must lie within 5 of its own standard
errors of the truth at every probed conductance, and that standard error must itself be
no larger than K * s / sqrt(N) (K = 4 covers the leverage of the ends of a polynomial
over the level range; s is the per-item spread: sigma for a mean, sigma / sqrt(2 dof) for
a sigma; N the number of cells or of read-variance degrees of freedom). So a fit that is
biased, or that reports a standard error too wide to mean anything, fails.
"""
from __future__ import annotations

import numpy as np
import pytest

import crossbar
from calibration.fit import fit_long, select_degree, fit_sigma_poly
from calibration.model import law_from_fit, sample_long

TRUE = crossbar.DeviceConfig(
    g_min_us=0.5, g_max_us=25.0,
    prog_offset=crossbar.Law("poly", (0.2, -0.4), x="g_norm"),
    prog_sigma=crossbar.Law("poly", (0.3, 1.2), x="g_norm", lo=0.0),
    read_sigma=crossbar.Law("poly", (0.05, 0.2), x="g_norm", lo=0.0),
    drift_mu_nu=crossbar.Law("poly", (0.06, -0.03), x="g_norm"),
    drift_sigma_nu=crossbar.Law("poly", (0.01,), x="g_norm", lo=0.0),
    t0_s=20.0, stuck_min_fraction=0.01, stuck_max_fraction=0.005)
LEVELS = np.linspace(3.0, 22.0, 8)
TIMES = (20.0, 200.0, 2000.0, 20000.0)
READS = 4
K = 4.0
PROBE = np.linspace(3.0, 22.0, 5)


G_MAX = 25.0  # both known devices below


def _true(law, g):
    return law(g, g_max_us=G_MAX)


def _check_law(name, fit_law, true_law, s_item, n_items):
    got, se = fit_law(PROBE), fit_law.se(PROBE)
    want = _true(true_law, PROBE)
    bound_se = K * s_item / np.sqrt(n_items)
    assert np.all(se <= bound_se), (f"{name}: standard error {se} exceeds K*s/sqrt(N) = {bound_se} "
                                    f"(s={s_item}, N={n_items})")
    err = np.abs(got - want)
    assert np.all(err <= 5 * np.maximum(se, 1e-12)), (f"{name} at G={PROBE}: expected {want}, got {got}; "
                                                      f"|error| {err} > 5 x stderr {5 * se}")


TRUE_DEGREES = {"prog_offset": 1, "prog_sigma": 1, "read_sigma": 1, "drift_mu_nu": 1, "drift_sigma_nu": 0}


@pytest.mark.parametrize("cells_per_level,seed,select", [(60, 11, False), (250, 12, False), (1000, 13, False),
                                                         pytest.param(1000, 14, True, marks=pytest.mark.slow)])
def test_long_round_trip_recovers_every_parameter(cells_per_level, seed, select):
    """Standard errors are conditional on the degree: the small sizes fit at the true
    degrees; the largest one also has to choose them itself on held-out cells."""
    data = sample_long(TRUE, LEVELS, cells_per_level, TIMES, READS, seed=seed)
    fit = fit_long(data, seed=seed, degrees=None if select else TRUE_DEGREES)
    if select:
        got = {k: getattr(fit, k).degree for k in TRUE_DEGREES}
        assert got == TRUE_DEGREES, f"degrees chosen on held-out cells: expected {TRUE_DEGREES}, got {got}"
    n = data.n_cells
    n_good = n * (1 - TRUE.stuck_min_fraction - TRUE.stuck_max_fraction)
    s_prog = float(_true(TRUE.prog_sigma, PROBE).max())
    s_read = float(_true(TRUE.read_sigma, PROBE).max())
    _check_law("prog_offset", fit.prog_offset, TRUE.prog_offset, s_prog, n_good)
    _check_law("prog_sigma", fit.prog_sigma, TRUE.prog_sigma, s_prog / np.sqrt(2), n_good)
    # read noise: N = variance degrees of freedom at t0 = cells x (reads - 1)
    _check_law("read_sigma", fit.read_sigma, TRUE.read_sigma, s_read / np.sqrt(2), n_good * (READS - 1))
    # drift: per-cell spread = sigma_nu plus the read-noise estimation error of each slope
    s_nu = 0.01 + 0.02  # sigma_nu + a bound on the slope error from read noise at the low levels
    _check_law("drift_mu_nu", fit.drift_mu_nu, TRUE.drift_mu_nu, s_nu, n_good)
    _check_law("drift_sigma_nu", fit.drift_sigma_nu, TRUE.drift_sigma_nu, s_nu / np.sqrt(2), n_good)
    # stuck rates: binomial, 5 sigma over the eligible cells
    for end, p_true, p_got in (("min", TRUE.stuck_min_fraction, fit.stuck_min_fraction),
                               ("max", TRUE.stuck_max_fraction, fit.stuck_max_fraction)):
        k, n_el = fit.stuck_counts[end]
        assert n_el >= n // 2, f"stuck_{end}: only {n_el} of {n} cells eligible"
        tol = 5 * np.sqrt(p_true * (1 - p_true) / n_el)
        assert abs(p_got - p_true) <= tol, f"stuck_{end}: expected {p_true} +- {tol:.4f}, got {p_got} ({k}/{n_el})"
    # range: the stuck cells sit at the bounds (plus read noise of at most s_read)
    assert abs(fit.g_min_us - TRUE.g_min_us) <= 5 * s_read, f"g_min: expected {TRUE.g_min_us}, got {fit.g_min_us}"
    assert abs(fit.g_max_us - TRUE.g_max_us) <= 5 * s_read, f"g_max: expected {TRUE.g_max_us}, got {fit.g_max_us}"
    assert fit.t0_s == TRUE.t0_s


@pytest.mark.slow  # 8 s: fits at four sizes; the default run keeps the round trips above
def test_standard_errors_shrink_like_one_over_sqrt_n():
    se = []
    for cells, seed in ((100, 21), (1600, 22)):
        fit = fit_long(sample_long(TRUE, LEVELS, cells, TIMES, READS, seed=seed), seed=seed,
                       degrees={"prog_sigma": 1, "prog_offset": 1})
        se.append(fit.prog_sigma.se(np.array([12.0]))[0])
    ratio = se[0] / se[1]  # 16x the cells: sqrt(16) = 4
    assert 3.0 <= ratio <= 5.3, f"stderr ratio for 16x the cells: expected about 4, got {ratio:.2f}"


def test_degree_selection_picks_the_true_degree():
    rng = np.random.default_rng(5)
    u = np.repeat(np.linspace(0.1, 0.9, 9), 800)
    true = 0.2 + 1.5 * u - 1.4 * u ** 2
    r = true * rng.standard_normal(u.size)

    def loss(tr, te, deg):
        c, _, _ = fit_sigma_poly(u[tr], r[tr] ** 2, deg)
        s = np.vander(u[te], deg + 1, increasing=True) @ c
        return 0.5 * (np.log(s * s) + r[te] ** 2 / (s * s))

    deg, scores = select_degree(np.arange(u.size), 3, loss, seed=0)
    assert deg == 2, f"expected degree 2 for a quadratic sigma, got {deg} (held-out losses {scores})"


def test_fitted_law_converts_exactly_to_crossbar_law():
    data = sample_long(TRUE, LEVELS, 100, TIMES, READS, seed=3)
    fit = fit_long(data, seed=3)
    law = law_from_fit(fit.prog_sigma, fit.g_max_us)
    g = np.linspace(fit.g_min_us, fit.g_max_us, 7)
    np.testing.assert_allclose(law(g, g_max_us=fit.g_max_us), fit.prog_sigma(g), rtol=1e-12, atol=1e-12)


NOISY_READS = crossbar.DeviceConfig(
    g_min_us=0.5, g_max_us=25.0,
    prog_sigma=crossbar.Law("poly", (0.3,), x="g_norm", lo=0.0),
    read_sigma=crossbar.Law("poly", (0.5,), x="g_norm", lo=0.0),
    drift_mu_nu=crossbar.Law("poly", (0.05,), x="g_norm"),
    drift_sigma_nu=crossbar.Law("poly", (0.01,), x="g_norm", lo=0.0),
    t0_s=20.0)


def test_read_noise_is_taken_out_of_programming_and_drift_spread():
    """Read noise as large as the programming error, two reads: the mean of the reads at t0
    carries 0.5^2/2 = 0.125 uS^2 next to 0.09 uS^2 of programming variance, and each cell's
    drift slope carries read-noise error larger than sigma_nu. Both must be removed."""
    reads = 2
    data = sample_long(NOISY_READS, LEVELS, 400, TIMES, reads, seed=31)
    degrees = {"prog_offset": 0, "prog_sigma": 0, "read_sigma": 0, "drift_mu_nu": 0, "drift_sigma_nu": 0}
    fit = fit_long(data, seed=31, degrees=degrees)
    n = data.n_cells
    _check_law("prog_sigma", fit.prog_sigma, NOISY_READS.prog_sigma, np.sqrt(0.3 ** 2 + 0.5 ** 2 / 2), n)
    _check_law("read_sigma", fit.read_sigma, NOISY_READS.read_sigma, 0.5 / np.sqrt(2), n * (reads - 1))
    _check_law("drift_mu_nu", fit.drift_mu_nu, NOISY_READS.drift_mu_nu, 0.1, n)
    _check_law("drift_sigma_nu", fit.drift_sigma_nu, NOISY_READS.drift_sigma_nu, 0.1, n)
