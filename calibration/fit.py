"""Fits of a device noise model to measured data (numpy + scipy).

Long-format data (repeated reads of many cells over time):

* read noise   sigma_read(G): Gaussian maximum likelihood on the sample variances of the
  repeated reads of each cell at the earliest time (chi-square with n-1 dof each);
* drift        per-cell exponent nu from least squares of ln G(t) on ln(t/t0), then
  mu_nu(G_target) by weighted least squares and sigma_nu(G_target) by maximum likelihood
  with each cell's own estimation variance (from the read noise) taken out;
* programming  e = G(t0) - G_target per cell (mean of its reads at the earliest time t0):
  mean offset by weighted least squares, sigma by maximum likelihood with the read-noise
  variance of the mean of the reads taken out;
* stuck cells  a "stuck" column when present, otherwise cells far from their
  target (robust z > 4.5) and within 5 % of the range of a bound; Clopper-Pearson intervals;
* levels       distinguishable levels in [g_min, g_max] for a z-sigma separation budget.

Pulse ramps: range, mean step per pulse mu(G), cycle-to-cycle spread sigma_c2c(G) and
read noise (from the lag-1 covariance of the step residuals), then a simulated
program-and-verify loop gives the programming error that device would reach.

dG lookup tables: per conductance bin, the mean and standard deviation of dG from the
tabulated quantile function; mu(G) and sigma_c2c(G) fitted to them; then the same
program-and-verify simulation (read noise is not in a table: 0).

Every polynomial is in u = G / g_max (crossbar's ``x="g_norm"``), lowest order first; its
degree is chosen by K-fold cross-validation over held-out cells (ramps) with the
one-standard-error rule. Uncertainties are standard errors from the (Fisher) information,
or bootstrap intervals over ramps for the ramp fits.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import stats

from .readers import DgLookupData, LongData, RampData

__all__ = [
    "PolyFit",
    "LongFit",
    "PulseResponseFit",
    "RampFit",
    "DgLookupFit",
    "fit_long",
    "to_equivalent_time",
    "arrhenius_factor",
    "fit_mean_law_cv",
    "fit_sigma_law_cv",
    "FAMILIES",
    "fit_ramps",
    "fit_dg_lookup",
    "quantile_moments",
    "sample_quantile_table",
    "fit_mean_poly",
    "fit_sigma_poly",
    "select_degree",
    "distinguishable_levels",
    "clopper_pearson",
    "simulate_program_verify",
    "ramp_steps",
]

Z95 = 1.959963984540054
#: fewer ramps than this per polarity: cut them into segments (block bootstrap)
MIN_RAMPS_PER_DIRECTION = 5
#: segment length in pulses for that case
SEGMENT_PULSES = 50


# --------------------------------------------------------------------------- polynomial laws

#: law families: polynomial in u = G / g_scale, polynomial in ln u, and a Gaussian bump in
#: ln u (log-normal shaped in G: rises and falls over the range)
FAMILIES = ("poly_g", "poly_lng", "gauss_lng")
#: families tried for the laws of long-format data (ramps and dG tables keep polynomials in G)
LONG_FAMILIES = FAMILIES
#: u floor before the logarithm (as crossbar's "ln_g_norm")
LN_FLOOR = 1e-6


def law_abscissa(family: str, g_us, g_scale_us: float) -> np.ndarray:
    """The abscissa a family is a function of: u = G / g_scale, or ln(max(|u|, 1e-6))."""
    u = np.atleast_1d(np.asarray(g_us, dtype=float)) / g_scale_us
    return u if family == "poly_g" else np.log(np.maximum(np.abs(u), LN_FLOOR))


def _gauss_value_jac(x, c):
    """c0 + c1 exp(-(x - c2)^2 / (2 c3^2)) and its Jacobian in (c0, c1, c2, c3)."""
    base, amp, centre, width = c
    z = (x - centre) / width
    e = np.exp(-0.5 * z * z)
    jac = np.stack([np.ones_like(x), e, amp * e * z / width, amp * e * z * z / width], axis=1)
    return base + amp * e, jac


def law_value_jac(family: str, x, coeffs):
    """(value, Jacobian in the coefficients) of a family at abscissae x."""
    x = np.asarray(x, float)
    if family == "gauss_lng":
        return _gauss_value_jac(x, coeffs)
    V = np.vander(x, len(coeffs), increasing=True)
    return V @ np.asarray(coeffs, float), V


def law_n_params(family: str, degree: int) -> int:
    return 4 if family == "gauss_lng" else degree + 1


@dataclass
class PolyFit:
    """A fitted law value(G) = clip(f(x; c), lo, hi) of one family (see FAMILIES):

    * ``poly_g``: f = sum_k c_k u^k, u = G / g_scale_us (crossbar ``x="g_norm"``);
    * ``poly_lng``: f = sum_k c_k x^k, x = ln(G / g_scale_us) (crossbar ``x="ln_g_norm"``);
    * ``gauss_lng``: f = c_0 + c_1 exp(-(x - c_2)^2 / (2 c_3^2)) (crossbar kind "gauss").

    ``cov`` is the covariance of the coefficients; ``cv`` maps each tried candidate
    ("family:degree" or a degree) to its held-out loss (mean, standard error).
    """

    name: str
    coeffs: np.ndarray
    cov: np.ndarray
    g_scale_us: float
    unit: str
    lo: float | None = None
    hi: float | None = None
    cv: dict = field(default_factory=dict)
    method: str = ""
    n: int = 0
    family: str = "poly_g"

    @property
    def degree(self) -> int:
        return int(len(self.coeffs) - 1)

    @property
    def label(self) -> str:
        """"family:degree" ("gauss_lng" has no degree)."""
        return self.family if self.family == "gauss_lng" else f"{self.family}:{self.degree}"

    def _x(self, g_us) -> np.ndarray:
        return law_abscissa(self.family, g_us, self.g_scale_us)

    def _vander(self, g_us) -> np.ndarray:
        return law_value_jac(self.family, self._x(g_us), self.coeffs)[1]

    def raw(self, g_us) -> np.ndarray:
        return law_value_jac(self.family, self._x(g_us), self.coeffs)[0]

    def __call__(self, g_us) -> np.ndarray:
        v = self.raw(g_us)
        if self.lo is not None or self.hi is not None:
            v = np.clip(v, self.lo, self.hi)
        return v

    def se(self, g_us) -> np.ndarray:
        """Standard error of the value at g_us (delta method)."""
        V = self._vander(g_us)
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", V, self.cov, V), 0.0))

    def coeff_se(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.cov), 0.0))

    def to_dict(self) -> dict:
        d = {
            "x": "g_norm" if self.family == "poly_g" else "ln_g_norm", "g_scale_us": self.g_scale_us,
            "coeffs": [float(c) for c in self.coeffs],
            "stderr": [float(s) for s in self.coeff_se()], "cov": np.asarray(self.cov).tolist(),
            "lo": self.lo, "hi": self.hi, "unit": self.unit, "degree": self.degree, "method": self.method,
            "n": int(self.n), "cv_heldout_loss": {str(k): [float(a), float(b)] for k, (a, b) in self.cv.items()},
        }
        if self.family != "poly_g":
            d["family"] = self.family
            d["selection"] = self.selection()
        return d

    def selection(self) -> dict:
        """The chosen candidate and the runners-up by held-out loss (per item, lower is better)."""
        if not self.cv:
            return {"chosen": self.label}
        ranked = sorted(self.cv.items(), key=lambda kv: kv[1][0])
        best = ranked[0][1][0]
        return {"chosen": self.label, "ranked": [
            {"candidate": str(k), "heldout_loss": float(m), "se": float(se), "delta_vs_best": float(m - best)}
            for k, (m, se) in ranked]}

    @staticmethod
    def constant(name: str, value: float, se: float, g_scale_us: float, unit: str, lo=None, method="", n=0):
        return PolyFit(name, np.array([float(value)]), np.array([[float(se) ** 2]]), g_scale_us, unit, lo=lo,
                       method=method, n=n)


def _vander(u, deg):
    return np.vander(np.asarray(u, float), deg + 1, increasing=True)


def fit_mean_poly(u, y, deg, var=None):
    """Weighted least squares of y on a polynomial in u (weights 1/var).

    Returns (coeffs lowest first, covariance). With var=None the residual variance is
    estimated (ordinary least squares); otherwise the weights are taken as known.
    """
    X = _vander(u, deg)
    y = np.asarray(y, float)
    n = y.size
    if var is None:
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        r = y - X @ beta
        dof = max(n - X.shape[1], 1)
        s2 = float(r @ r) / dof
        cov = s2 * np.linalg.pinv(X.T @ X)
        return beta, cov
    w = 1.0 / np.maximum(np.asarray(var, float), 1e-300)
    XtW = X.T * w
    A = XtW @ X
    beta = np.linalg.solve(A, XtW @ y) if np.linalg.cond(A) < 1e14 else np.linalg.lstsq(X * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    cov = np.linalg.pinv(A)
    return beta, cov


def _sigma_nll(c, X, q, w, extra, floor):
    s = np.maximum(X @ c, floor)
    v = s * s + extra
    return 0.5 * float(np.sum(w * (np.log(v) + q / v)))


def fit_sigma_poly(u, q, deg, w=None, extra=None, max_iter=200):
    """Maximum likelihood of sigma(u) = sum_k c_k u^k with q_i ~ v_i chi2_{w_i} / w_i.

    v_i = sigma(u_i)^2 + extra_i. For single residuals r_i use q = r^2, w = 1; for sample
    variances with d dof use q = s^2, w = d. Fisher scoring with step halving.

    Returns (coeffs lowest first, covariance from the expected information, nll).
    """
    u = np.asarray(u, float)
    q = np.asarray(q, float)
    w = np.ones_like(q) if w is None else np.asarray(w, float)
    extra = np.zeros_like(q) if extra is None else np.broadcast_to(np.asarray(extra, float), q.shape)
    X = _vander(u, deg)
    scale = float(np.sqrt(max(np.sum(w * q) / max(np.sum(w), 1e-300), 1e-300)))
    floor = 1e-9 * scale + 1e-300
    c = np.zeros(deg + 1)
    c[0] = float(np.sqrt(max(np.sum(w * (q - extra)) / np.sum(w), (0.05 * scale) ** 2)))
    nll = _sigma_nll(c, X, q, w, extra, floor)
    info = None
    for _ in range(max_iter):
        s = np.maximum(X @ c, floor)
        v = s * s + extra
        dv = 2.0 * s[:, None] * X
        score = -np.sum((w / (2 * v) * (q / v - 1.0))[:, None] * dv, axis=0)  # gradient of nll
        info = (dv * (w / (2 * v * v))[:, None]).T @ dv
        try:
            delta = np.linalg.solve(info + 1e-12 * np.trace(info) * np.eye(len(c)), score)
        except np.linalg.LinAlgError:
            delta = np.linalg.lstsq(info, score, rcond=None)[0]
        step = 1.0
        while step > 1e-6:
            c_new = c - step * delta
            nll_new = _sigma_nll(c_new, X, q, w, extra, floor)
            if nll_new <= nll + 1e-12 * abs(nll):
                break
            step *= 0.5
        else:
            break
        done = abs(nll - nll_new) < 1e-10 * (1 + abs(nll))
        c, nll = c_new, nll_new
        if done:
            break
    s = np.maximum(X @ c, floor)
    v = s * s + extra
    dv = 2.0 * s[:, None] * X
    info = (dv * (w / (2 * v * v))[:, None]).T @ dv
    cov = np.linalg.pinv(info)
    return c, cov, nll


def _group_folds(groups: np.ndarray, k_folds: int, seed: int) -> tuple[np.ndarray, int]:
    """K-fold assignment by group (cell): every item of a group in the same fold, the groups
    spread over ``min(k_folds, n_groups)`` folds by a seeded permutation. Returns (fold per item, k)."""
    uniq = np.unique(groups)
    k = int(min(k_folds, uniq.size))
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(uniq.tolist(), (rng.permutation(uniq.size) % k).tolist()))
    return np.array([fold_of[g] for g in groups.tolist()]), k


def _cv_losses(groups, candidates, heldout_loss: Callable, k_folds: int, seed: int) -> dict:
    """Per-item held-out losses of each candidate, K-fold by group (:func:`_group_folds`);
    ``heldout_loss(train_mask, test_mask, candidate)``; inf where a candidate's fit fails."""
    groups = np.asarray(groups)
    fold, k = _group_folds(groups, k_folds, seed)
    per_item = {}
    for cand in candidates:
        losses = np.zeros(groups.size)
        for f in range(k):
            test = fold == f
            try:
                losses[test] = np.asarray(heldout_loss(~test, test, cand), float)
            except (np.linalg.LinAlgError, ValueError):
                losses[test] = np.inf
        per_item[cand] = losses
    return per_item


def select_degree(groups, max_deg: int, heldout_loss: Callable, k_folds: int = 5, seed: int = 0):
    """Choose a polynomial degree by K-fold cross-validation over groups (cells, ramps).

    heldout_loss(train_mask, test_mask, deg) -> per-item losses of the test items. The
    smallest degree whose mean held-out loss exceeds the best one's by at most one paired
    standard error of the per-item loss difference is chosen (one-standard-error rule).

    Returns (degree, {deg: (mean loss, standard error)}).
    """
    per_item = _cv_losses(groups, range(max_deg + 1), heldout_loss, k_folds, seed)
    scores = {deg: (float(np.mean(losses)), float(np.std(losses) / np.sqrt(max(losses.size, 1))))
              for deg, losses in per_item.items()}
    best = min(scores, key=lambda d: scores[d][0])
    chosen = best
    for d in sorted(scores):
        if d >= best:
            break
        diff = per_item[d] - per_item[best]
        if not np.all(np.isfinite(diff)):
            continue
        # paired standard error of the held-out loss difference to the best degree
        if diff.mean() <= diff.std() / np.sqrt(diff.size):
            chosen = d
            break
    return chosen, scores


def _max_degree(u, cap=3):
    return int(max(0, min(cap, np.unique(np.round(u, 12)).size - 1)))


def fit_mean_cv(name, g_us, y, groups, g_scale, unit, var=None, cap=3, seed=0, k_folds=5, degree=None):
    """Mean law with the degree chosen on held-out groups (squared error loss)."""
    u = np.asarray(g_us, float) / g_scale
    y = np.asarray(y, float)
    var_arr = None if var is None else np.broadcast_to(np.asarray(var, float), y.shape)

    def loss(tr, te, deg):
        b, _ = fit_mean_poly(u[tr], y[tr], deg, None if var_arr is None else var_arr[tr])
        r = y[te] - _vander(u[te], deg) @ b
        return r * r if var_arr is None else r * r / var_arr[te]

    cv = {}
    if degree is None:
        degree, cv = select_degree(groups, _max_degree(u, cap), loss, k_folds, seed)
    b, cov = fit_mean_poly(u, y, degree, var_arr)
    return PolyFit(name, b, cov, g_scale, unit, cv=cv, method="weighted least squares" if var is not None
                   else "least squares", n=y.size)


def fit_sigma_cv(name, g_us, q, groups, g_scale, unit, w=None, extra=None, cap=3, seed=0, k_folds=5,
                 degree=None):
    """Sigma law by maximum likelihood, degree chosen on held-out groups (Gaussian NLL)."""
    u = np.asarray(g_us, float) / g_scale
    q = np.asarray(q, float)
    w_arr = np.ones_like(q) if w is None else np.asarray(w, float)
    ex = np.zeros_like(q) if extra is None else np.broadcast_to(np.asarray(extra, float), q.shape)

    def loss(tr, te, deg):
        c, _, _ = fit_sigma_poly(u[tr], q[tr], deg, w_arr[tr], ex[tr])
        s = _vander(u[te], deg) @ c
        if np.any(s <= 0):  # a sigma that is not positive on held-out data: heavy penalty
            s = np.maximum(s, 1e-12 * max(float(np.sqrt(np.mean(q))), 1e-300))
        v = s * s + ex[te]
        return 0.5 * w_arr[te] * (np.log(v) + q[te] / v)

    cv = {}
    if degree is None:
        degree, cv = select_degree(groups, _max_degree(u, cap), loss, k_folds, seed)
    c, cov, _ = fit_sigma_poly(u, q, degree, w_arr, ex)
    return PolyFit(name, c, cov, g_scale, unit, lo=0.0, cv=cv, method="maximum likelihood (Fisher scoring)",
                   n=q.size)


def _gauss_starts(x, y, n_centres: int = 4):
    """Starting values (c0, c1, c2, c3) for a bump in x: ``n_centres`` centres spread over the
    distinct x (or their quantiles), width a sixth of the span."""
    lo, hi = float(np.min(x)), float(np.max(x))
    span = max(hi - lo, 1e-6)
    base = float(np.quantile(y, 0.05))
    amp = max(float(np.quantile(y, 0.95)) - base, 1e-12)
    ux = np.unique(np.round(x, 9))
    if ux.size <= n_centres:
        centres = ux
    elif ux.size <= 16:
        centres = ux[np.unique(np.linspace(1, ux.size - 2, n_centres).round().astype(int))]
    else:
        centres = np.quantile(x, np.linspace(0.15, 0.85, n_centres))
    return [np.array([base, amp, c, span / 6.0]) for c in centres]


def _gauss_cov_ls(x, r, jac, var):
    if var is None:
        dof = max(r.size - 4, 1)
        return float(r @ r) / dof * np.linalg.pinv(jac.T @ jac)
    w = 1.0 / np.maximum(var, 1e-300)
    return np.linalg.pinv((jac * w[:, None]).T @ jac)


def fit_mean_law(family: str, x, y, deg: int, var=None):
    """(weighted) least squares of y on a family's law at abscissae x; (coeffs, cov)."""
    if family != "gauss_lng":
        return fit_mean_poly(x, y, deg, var)
    from scipy.optimize import least_squares

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    sw = np.ones_like(y) if var is None else 1.0 / np.sqrt(np.maximum(np.asarray(var, float), 1e-300))
    span = max(float(np.ptp(x)), 1e-6)
    best = None
    for c0 in _gauss_starts(x, y, 3):
        res = least_squares(lambda c: sw * (_gauss_value_jac(x, c)[0] - y), c0,
                            jac=lambda c: sw[:, None] * _gauss_value_jac(x, c)[1],
                            bounds=([-np.inf, -np.inf, np.min(x) - span, span / 50], [np.inf, np.inf, np.max(x) + span,
                                                                                        10 * span]),
                            max_nfev=100)
        if best is None or res.cost < best.cost:
            best = res
    c = best.x
    f, jac = _gauss_value_jac(x, c)
    return c, _gauss_cov_ls(x, y - f, jac, None if var is None else np.asarray(var, float))


def _gauss_sigma_nll_grad(c, x, q, w, extra, floor):
    """Negative log-likelihood of a Gaussian-bump sigma law and its gradient in c."""
    f, jac = _gauss_value_jac(x, c)
    s = np.maximum(f, floor)
    v = s * s + extra
    nll = 0.5 * float(np.sum(w * (np.log(v) + q / v)))
    dnll_dv = 0.5 * w * (1.0 / v - q / (v * v))
    grad = ((dnll_dv * 2.0 * s * (f > floor))[:, None] * jac).sum(axis=0)
    return nll, grad


def fit_sigma_law(family: str, x, q, deg: int, w=None, extra=None):
    """Maximum likelihood of a family's sigma law with q_i ~ v_i chi2_{w_i} / w_i,
    v_i = sigma(x_i)^2 + extra_i (see :func:`fit_sigma_poly`); (coeffs, cov, nll)."""
    if family != "gauss_lng":
        return fit_sigma_poly(x, q, deg, w, extra)
    from scipy.optimize import minimize

    x = np.asarray(x, float)
    q = np.asarray(q, float)
    w = np.ones_like(q) if w is None else np.asarray(w, float)
    extra = np.zeros_like(q) if extra is None else np.broadcast_to(np.asarray(extra, float), q.shape)
    scale = float(np.sqrt(max(np.sum(w * q) / max(np.sum(w), 1e-300), 1e-300)))
    floor = 1e-9 * scale + 1e-300
    span = max(float(np.ptp(x)), 1e-6)
    bounds = [(0.0, None), (0.0, None), (float(np.min(x)) - span, float(np.max(x)) + span), (span / 50, 10 * span)]
    # starts from a binned root-mean-square of q - extra
    order = np.argsort(x)
    nb = int(min(8, max(2, x.size // 20)))
    xb = np.array([x[i].mean() for i in np.array_split(order, nb)])
    sb = np.array([np.sqrt(max(np.mean(q[i] - extra[i]), (0.05 * scale) ** 2)) for i in np.array_split(order, nb)])
    best = None
    for c0 in _gauss_starts(xb, sb):
        c0[0] = max(c0[0], 0.0)
        c0[1] = max(c0[1], 1e-3 * scale)
        c0[3] = float(np.clip(c0[3], bounds[3][0], bounds[3][1]))
        res = minimize(_gauss_sigma_nll_grad, c0, args=(x, q, w, extra, floor), jac=True, method="L-BFGS-B",
                       bounds=bounds)
        if best is None or res.fun < best.fun:
            best = res
    c = best.x
    f, jac = _gauss_value_jac(x, c)
    s = np.maximum(f, floor)
    v = s * s + extra
    dv = 2.0 * s[:, None] * jac
    info = (dv * (w / (2 * v * v))[:, None]).T @ dv
    return c, np.linalg.pinv(info), float(best.fun)


def law_candidates(x_unique: int, families=LONG_FAMILIES, cap: int = 3) -> list[tuple[str, int]]:
    """(family, degree) candidates in order of complexity (parameters, then FAMILIES order)."""
    max_deg = int(max(0, min(cap, x_unique - 1)))
    cands = []
    for fam in families:
        if fam == "gauss_lng":
            if x_unique >= 5:
                cands.append((fam, 3))
            continue
        # degree 0 is the same constant in every polynomial family: try it once
        first = 0 if fam == "poly_g" or "poly_g" not in families else 1
        cands += [(fam, d) for d in range(first, max_deg + 1)]
    rank = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(cands, key=lambda c: (law_n_params(*c), rank[c[0]]))


def _cand_label(c) -> str:
    return c[0] if c[0] == "gauss_lng" else f"{c[0]}:{c[1]}"


def select_law(groups, candidates, heldout_loss: Callable, k_folds: int = 5, seed: int = 0):
    """Choose a law (family, degree) by K-fold cross-validation over groups (cells): the
    simplest candidate whose mean held-out loss is within one paired standard error of the
    best one's (one-standard-error rule, as :func:`select_degree`).

    Returns (candidate, {label: (mean loss, standard error)}).
    """
    per_item = _cv_losses(groups, candidates, heldout_loss, k_folds, seed)
    scores = {}
    for cand, losses in per_item.items():
        m = float(np.mean(losses))
        scores[_cand_label(cand)] = (m if np.isfinite(m) else float("inf"),
                                     float(np.std(losses) / np.sqrt(max(losses.size, 1))) if np.isfinite(m) else 0.0)
    best = min(candidates, key=lambda c: scores[_cand_label(c)][0])
    for c in candidates:
        if c == best:
            break
        diff = per_item[c] - per_item[best]
        if np.all(np.isfinite(diff)) and diff.mean() <= diff.std() / np.sqrt(diff.size):
            return c, scores
    return best, scores


def fit_mean_law_cv(name, g_us, y, groups, g_scale, unit, var=None, families=LONG_FAMILIES, seed=0, k_folds=5,
                    choice=None):
    """Mean law with family and degree chosen on held-out groups (squared error loss, weighted
    by 1/var when given); ``choice`` = (family, degree) forces one."""
    y = np.asarray(y, float)
    var_arr = None if var is None else np.broadcast_to(np.asarray(var, float), y.shape)
    xs = {f: law_abscissa(f, g_us, g_scale) for f in FAMILIES}

    def loss(tr, te, cand):
        fam, deg = cand
        b, _ = fit_mean_law(fam, xs[fam][tr], y[tr], deg, None if var_arr is None else var_arr[tr])
        r = y[te] - law_value_jac(fam, xs[fam][te], b)[0]
        return r * r if var_arr is None else r * r / var_arr[te]

    cv = {}
    if choice is None:
        cands = law_candidates(np.unique(np.round(xs["poly_g"], 12)).size, families)
        choice, cv = select_law(groups, cands, loss, k_folds, seed)
    fam, deg = choice
    b, cov = fit_mean_law(fam, xs[fam], y, deg, var_arr)
    return PolyFit(name, b, cov, g_scale, unit, cv=cv, n=y.size, family=fam,
                   method="weighted least squares" if var is not None else "least squares")


def fit_sigma_law_cv(name, g_us, q, groups, g_scale, unit, w=None, extra=None, families=LONG_FAMILIES, seed=0,
                     k_folds=5, choice=None):
    """Sigma law by maximum likelihood, family and degree chosen on held-out groups
    (Gaussian / chi-square negative log-likelihood)."""
    q = np.asarray(q, float)
    w_arr = np.ones_like(q) if w is None else np.asarray(w, float)
    ex = np.zeros_like(q) if extra is None else np.broadcast_to(np.asarray(extra, float), q.shape)
    xs = {f: law_abscissa(f, g_us, g_scale) for f in FAMILIES}

    def loss(tr, te, cand):
        fam, deg = cand
        c, _, _ = fit_sigma_law(fam, xs[fam][tr], q[tr], deg, w_arr[tr], ex[tr])
        s = law_value_jac(fam, xs[fam][te], c)[0]
        s = np.maximum(s, 1e-12 * max(float(np.sqrt(np.mean(q))), 1e-300))
        v = s * s + ex[te]
        return 0.5 * w_arr[te] * (np.log(v) + q[te] / v)

    cv = {}
    if choice is None:
        cands = law_candidates(np.unique(np.round(xs["poly_g"], 12)).size, families)
        choice, cv = select_law(groups, cands, loss, k_folds, seed)
    fam, deg = choice
    c, cov, _ = fit_sigma_law(fam, xs[fam], q, deg, w_arr, ex)
    return PolyFit(name, c, cov, g_scale, unit, lo=0.0, cv=cv, n=q.size, family=fam,
                   method="maximum likelihood" + (" (Fisher scoring)" if fam != "gauss_lng" else " (L-BFGS-B)"))


# --------------------------------------------------------------------------- parameter rows

def param_row(name, value, se=None, ci=None, unit="", method="") -> dict:
    """One row of params.csv: name, value, stderr, ci_lo, ci_hi (+-1.96 se when no interval
    is given), unit, method."""
    if ci is None and se is not None and np.isfinite(se):
        ci = (value - Z95 * se, value + Z95 * se)
    return {"name": name, "value": float(value), "stderr": None if se is None else float(se),
            "ci_lo": None if ci is None else float(ci[0]), "ci_hi": None if ci is None else float(ci[1]),
            "unit": unit, "method": method}


def poly_rows(pf: PolyFit | None, g_max: float, g_min: float = 0.0) -> list[dict]:
    """Rows of a law's coefficients and of its value at g_min, mid range and g_max."""
    if pf is None:
        return []
    rows = []
    se = pf.coeff_se()
    for k, (c, s) in enumerate(zip(pf.coeffs, se)):
        unit = pf.unit + ("" if k == 0 else f" per (G/g_max)^{k}" if k > 1 else " per (G/g_max)")
        rows.append(param_row(f"{pf.name}.c{k}", c, s, unit=unit, method=pf.method))
    for frac in (0.0, 0.5, 1.0):
        g = g_min + frac * (g_max - g_min)
        rows.append(param_row(f"{pf.name}(G={g:.4g} uS)", float(pf(g)[0]), float(pf.se(g)[0]), unit=pf.unit,
                              method="delta method"))
    return rows


def _levels_row(fit) -> dict:
    lo, hi = fit.levels_ci
    return param_row("distinguishable_levels", fit.levels_us.size, ci=(lo, hi), unit="levels",
                     method=f"+-{fit.level_z:g} sigma windows (programming + read noise) that do not overlap")


def _pv_rows(fit) -> list[dict]:
    """Programming-error laws and the verify settings of a simulated program-and-verify."""
    rows = poly_rows(fit.prog_offset, fit.g_max_us, fit.g_min_us)
    rows += poly_rows(fit.prog_sigma, fit.g_max_us, fit.g_min_us)
    rows.append(param_row("verify_tolerance_us", fit.pv["tol_us"], unit="uS", method="program-and-verify window"))
    rows.append(param_row("verify_mean_pulses", float(np.mean(fit.pv["mean_pulses"])), unit="pulses",
                          method="mean over targets"))
    rows.append(param_row("verify_max_pulses", fit.pv["max_pulses"], unit="pulses", method="pulse budget per cell"))
    return rows


# --------------------------------------------------------------------------- small helpers

def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval for k successes in n trials."""
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def distinguishable_levels(g_min: float, g_max: float, sigma: Callable, z: float = 3.0, max_levels=100000):
    """Levels l_0 = g_min < l_1 < ... <= g_max with l_{k+1} - l_k = z (sigma(l_k) + sigma(l_{k+1})).

    Adjacent levels' +-z sigma windows just touch, so a read is assigned to the wrong level
    with probability about 2 Phi(-z) per boundary. sigma(g) is the total spread (programming
    and read noise) in uS.

    Returns the array of level conductances (its length is the number of levels).
    """
    levels = [float(g_min)]
    while len(levels) < max_levels:
        lk = levels[-1]
        sk = float(np.atleast_1d(sigma(lk))[0])
        nxt = lk + 2 * z * sk
        for _ in range(50):  # fixed point for the upper level's own sigma
            new = lk + z * (sk + float(np.atleast_1d(sigma(min(nxt, 2 * g_max)))[0]))
            if abs(new - nxt) < 1e-9 * max(1.0, abs(nxt)):
                break
            nxt = new
        if not np.isfinite(nxt) or not nxt > lk or nxt > g_max:
            break
        levels.append(nxt)
    return np.array(levels)


# --------------------------------------------------------------------------- long format

#: Boltzmann constant in eV/K
K_B_EV = 8.617333262e-5
#: activation energy assumed for a bake when neither given nor identifiable (HfOx, often quoted)
DEFAULT_EA_EV = 1.0
#: robust z of G(t0) from its target (or of a cell's relaxation) beyond which a cell is an outlier
OUTLIER_Z = 6.0
#: why the heavy read-noise tail is reported but not written into the device model
READ_TAIL_NOT_MODELLED = (
    "crossbar draws read noise as a Gaussian per cell and read with sigma_read(G), so a column's sum is exactly "
    "Gaussian and the fast output-referred path draws it once per output; a per-read Student-t or mixture would make "
    "that sum non-Gaussian (no closed form), and a per-cell persistent tail (telegraph cells, as measured here: the "
    "same cells are noisy at every time) would need a new per-cell state in crossbar's programmed arrays and "
    "storage; neither is in crossbar, so the model carries the Gaussian core and underestimates the read noise of "
    "the tail cells (their fraction and rms are reported)")
#: a law resting on fewer cells than this gets a warning note
FEW_CELLS = 30


@dataclass
class LongFit:
    """Everything fitted from a long-format table (conductances in uS; times in s,
    room-temperature-equivalent when the data held other temperatures)."""

    g_min_us: float
    g_max_us: float
    t0_s: float
    prog_offset: PolyFit
    prog_sigma: PolyFit
    read_sigma: PolyFit | None
    drift_mu_nu: PolyFit | None
    drift_sigma_nu: PolyFit | None
    stuck_min_fraction: float
    stuck_max_fraction: float
    stuck_min_ci: tuple
    stuck_max_ci: tuple
    stuck_counts: dict
    levels_us: np.ndarray
    levels_ci: tuple
    level_z: float
    raw: dict
    notes: list
    time_span_s: tuple = (np.nan, np.nan)
    time_model: dict = field(default_factory=dict)
    outliers: list = field(default_factory=list)
    read_noise: dict = field(default_factory=dict)
    relaxation: dict = field(default_factory=dict)
    relax_mu: PolyFit | None = None
    relax_sigma: PolyFit | None = None

    @property
    def relaxation_model(self) -> str:
        """The relaxation model written into the device: "power" (drift laws), "log_time"
        (relax_mu and relax_sigma) or "log_time_zero_mean" (relax_sigma)."""
        return self.relaxation.get("model", "power")

    def laws(self) -> list[PolyFit]:
        """Every fitted law (both relaxation models: the device uses ``relaxation_model``'s)."""
        return [pf for pf in (self.prog_offset, self.prog_sigma, self.read_sigma, self.drift_mu_nu,
                              self.drift_sigma_nu, self.relax_mu, self.relax_sigma) if pf is not None]

    def parameter_rows(self) -> list[dict]:
        """params.csv rows: range, t0, time span, every law, read-noise tails, stuck rates,
        outliers, levels."""
        rows = [param_row("g_min_us", self.g_min_us, unit="uS",
                          method="min of targets and 0.1% quantile of G(t0) inside the robust fences"),
                param_row("g_max_us", self.g_max_us, unit="uS",
                          method="max of targets and 99.9% quantile of G(t0) inside the robust fences"),
                param_row("t0_s", self.t0_s, unit="s", method="earliest measurement time"),
                param_row("t_last_s", self.time_span_s[1], unit="s",
                          method="latest measurement time: the model is extrapolated beyond it"
                                 + ("" if not self.time_model.get("bake") else
                                    " (room-temperature-equivalent, " + self.time_model["summary"] + ")"))]
        if self.time_model.get("ea_ev") is not None and self.time_model.get("bake"):
            rows.append(param_row("activation_energy_ev", self.time_model["ea_ev"], unit="eV",
                                  ci=self.time_model.get("ea_ci"), method=self.time_model["ea_source"]))
        for pf in self.laws():
            rows += poly_rows(pf, self.g_max_us, self.g_min_us)
        if self.relaxation.get("tested"):
            for m, ll in self.relaxation["heldout_loglik"].items():
                rows.append(param_row(f"relaxation_heldout_loglik({m})", ll, unit="nats",
                                      method=("CHOSEN: " if m == self.relaxation_model else "")
                                      + self.relaxation["method"]))
        if self.read_noise:
            rows.append(param_row("read_noise_tail_fraction", self.read_noise["tail_fraction"], unit="1",
                                  method=self.read_noise["tail_method"]))
            for r in self.read_noise.get("per_time", []):
                rows.append(param_row(f"read_sigma(t={r['t_s']:.4g} s, G={r['g_us']:.4g} uS)", r["sigma_us"],
                                      r["se_us"], unit="uS", method=f"{r['n_cells']} cells, core law refitted at t"))
        for which, p, ci in (("min", self.stuck_min_fraction, self.stuck_min_ci),
                             ("max", self.stuck_max_fraction, self.stuck_max_ci)):
            k, n = self.stuck_counts[which]
            rows.append(param_row(f"stuck_{which}_fraction", p, ci=ci, unit="1",
                                  method=f"{k}/{n} cells, Clopper-Pearson 95%; {self.stuck_counts['method']}"))
        rows.append(param_row("outlier_cells", len(self.outliers), unit="cells",
                              method="robust z > 6 (MAD per level) of G(t0) from the target or of the relaxation; "
                                     "kept out of the laws; see outliers.csv"))
        return rows + [_levels_row(self)]


def _cell_time_stats(data: LongData):
    """Per (cell, time) mean, variance and count of the reads."""
    times, t_idx = np.unique(data.t_s, return_inverse=True)
    key = data.cell * times.size + t_idx
    uk, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    s1 = np.bincount(inv, weights=data.g_us)
    mean = s1 / cnt
    dev = data.g_us - mean[inv]
    ss = np.bincount(inv, weights=dev * dev)
    var = np.where(cnt > 1, ss / np.maximum(cnt - 1, 1), np.nan)
    return uk // times.size, times[uk % times.size], mean, var, cnt, times


# ---- temperature: room-temperature-equivalent time

def arrhenius_factor(temp_c, room_c: float, ea_ev: float) -> np.ndarray:
    """Acceleration of time at temp_c relative to room_c: exp(Ea / k_B (1/T_room - 1/T))."""
    t_k = np.asarray(temp_c, float) + 273.15
    return np.exp(ea_ev / K_B_EV * (1.0 / (room_c + 273.15) - 1.0 / t_k))


def _equivalent_times(data: LongData, room_c: float, ea_ev: float) -> np.ndarray:
    """Per row, the room-temperature-equivalent time since programming: per cell, the sum
    over the intervals before each of its reads of (interval) x arrhenius_factor(its
    temperature); the first interval starts at programming (t = 0)."""
    if data.temperature_c is None:
        return data.t_s.copy()
    key_first = np.ones(data.n_rows, bool)  # first row of each (cell, time): rows sorted by cell, t, read
    key_first[1:] = (data.cell[1:] != data.cell[:-1]) | (data.t_s[1:] != data.t_s[:-1])
    idx = np.flatnonzero(key_first)
    c, t, temp = data.cell[idx], data.t_s[idx], data.temperature_c[idx]
    new_cell = np.ones(idx.size, bool)
    new_cell[1:] = c[1:] != c[:-1]
    dt = np.where(new_cell, t, np.diff(t, prepend=0.0))
    inc = dt * arrhenius_factor(temp, room_c, ea_ev)
    # running sum within each cell, one read position at a time (the same schedule gives
    # bit-identical times in every cell)
    pos = np.arange(idx.size) - np.maximum.accumulate(np.where(new_cell, np.arange(idx.size), 0))
    t_eq = inc.copy()
    for k in range(1, int(pos.max()) + 1 if pos.size else 0):
        at = np.flatnonzero(pos == k)
        t_eq[at] = t_eq[at - 1] + inc[at]
    group = np.cumsum(key_first) - 1
    return t_eq[group]


def _powerlaw_rss(data: LongData, t_eq: np.ndarray) -> float:
    """Sum over cells of the residual sum of squares of ln G(t) (means of reads) on ln t,
    robustly: the 10 % of cells with the largest residuals (outliers, telegraph noise) left
    out."""
    d = data.with_times(t_eq)
    cell, t, mean, _, _, _ = _cell_time_stats(d)
    ok = mean > 0
    cell, x, y = cell[ok], np.log(t[ok]), np.log(mean[ok])
    n = np.bincount(cell)
    use = n[cell] >= 3
    cell, x, y = cell[use], x[use], y[use]
    if cell.size == 0:
        return np.nan
    nc = cell.max() + 1
    cnt = np.bincount(cell, minlength=nc)
    xm = np.bincount(cell, x, nc) / np.maximum(cnt, 1)
    ym = np.bincount(cell, y, nc) / np.maximum(cnt, 1)
    dx, dy = x - xm[cell], y - ym[cell]
    sxx = np.bincount(cell, dx * dx, nc)
    sxy = np.bincount(cell, dx * dy, nc)
    syy = np.bincount(cell, dy * dy, nc)
    per = (syy - np.where(sxx > 0, sxy * sxy / np.maximum(sxx, 1e-300), 0.0))[cnt >= 3]
    return float(np.sum(np.sort(per)[:int(np.ceil(0.9 * per.size))]))


def to_equivalent_time(data: LongData, *, ea_ev: float | None = None, room_c: float = 25.0,
                       notes: list | None = None) -> tuple[LongData, dict]:
    """Times of a long-format table as room-temperature-equivalent times (Arrhenius).

    Without a ``temperature_c`` column (or with every temperature equal to ``room_c``) the
    times are kept. Otherwise each interval before a read at temperature T counts
    exp(Ea/k_B (1/T_room - 1/T)) times its length. Ea: ``ea_ev`` when given; else fitted
    (profile of the per-cell power-law residuals over 0.1-2.5 eV) when the data holds two
    or more temperatures and three or more read times; else DEFAULT_EA_EV (1 eV, noted:
    one interval at another temperature cannot tell Ea from the drift law).

    Returns:
        (data with t_s replaced, dict describing the assumption: bake, room_c, ea_ev,
        ea_source, ea_ci, summary, physical_span_s).
    """
    notes = [] if notes is None else notes
    info = {"room_c": room_c, "bake": False, "ea_ev": ea_ev, "ea_source": None,
            "physical_span_s": [float(data.t_s.min()), float(data.t_s.max())]}
    if data.temperature_c is None or np.all(data.temperature_c == room_c):
        info["summary"] = ("no temperature_c column: times as measured, at room temperature" if data.temperature_c
                           is None else f"all reads at {room_c:g} C: times as measured")
        return data, info
    temps = np.unique(data.temperature_c)
    info["bake"] = True
    info["temperatures_c"] = temps.tolist()
    if ea_ev is not None:
        info["ea_source"] = "given (--activation-energy-ev)"
    elif np.unique(data.t_s).size >= 3 and temps.size >= 2:
        grid = np.arange(0.1, 2.5001, 0.02)
        rss = np.array([_powerlaw_rss(data, _equivalent_times(data, room_c, e)) for e in grid])
        if np.all(np.isfinite(rss)):
            k = int(np.argmin(rss))
            n = 0.9 * data.n_cells * max(np.unique(data.t_s).size - 2, 1)
            prof = n * np.log(rss / rss[k])  # -2 log likelihood ratio, Gaussian residuals
            inside = grid[prof <= 3.84]
            ea_ev = float(grid[k])
            info["ea_ci"] = (float(inside.min()), float(inside.max()))
            info["ea_source"] = ("fitted: profile of the per-cell power-law residuals of ln G on ln t_eq over "
                                 f"0.1-2.5 eV; 95% interval {inside.min():.2f}-{inside.max():.2f} eV")
    if ea_ev is None:
        ea_ev = DEFAULT_EA_EV
        info["ea_source"] = (f"assumed {DEFAULT_EA_EV:g} eV (HfOx, often quoted): the data cannot tell it (needs two "
                             "or more temperatures and three or more read times); pass --activation-energy-ev")
        notes.append(f"activation energy not given and not identifiable from these reads: {DEFAULT_EA_EV:g} eV "
                     "assumed for the Arrhenius acceleration (--activation-energy-ev to set it)")
    info["ea_ev"] = float(ea_ev)
    t_eq = _equivalent_times(data, room_c, ea_ev)
    hot = temps[temps != room_c]
    info["summary"] = (f"intervals at {', '.join(f'{t:g}' for t in hot)} C accelerated to {room_c:g} C by Arrhenius "
                       f"with Ea = {ea_ev:.3g} eV (x{', x'.join(f'{arrhenius_factor(t, room_c, ea_ev):.3g}' for t in hot)})")
    notes.append("times are room-temperature-equivalent: " + info["summary"] + f"; measured {data.t_s.max():.4g} s "
                 f"become {t_eq.max():.4g} s ({t_eq.max() / 86400:.3g} days)")
    return data.with_times(t_eq), info


# ---- per-cell table, range, stuck cells, outliers

@dataclass
class _CellTable:
    """Per (cell, time) means of the reads, and each cell's reads at the earliest time t0."""

    cell: np.ndarray       # (n_ct,) cell index of each (cell, time)
    t_s: np.ndarray        # (n_ct,) time
    mean: np.ndarray       # (n_ct,) mean of the reads
    var: np.ndarray        # (n_ct,) sample variance of the reads (nan for one read)
    count: np.ndarray      # (n_ct,) reads
    times: np.ndarray      # (n_times,) distinct times, increasing
    target: np.ndarray     # (n_cells,) target of each cell
    g_first: np.ndarray    # (n_cells,) mean of the reads at t0 (nan: no read then)
    n_first: np.ndarray    # (n_cells,) reads at t0
    read_tail: np.ndarray | None = None  # (n_ct,) read variance beyond the Gaussian core's 99.9 % point

    @property
    def t0(self) -> float:
        return float(self.times[0])

    @property
    def n_cells(self) -> int:
        return int(self.target.size)

    @property
    def has_first(self) -> np.ndarray:
        return np.isfinite(self.g_first)


def _cell_table(data: LongData, notes: list) -> _CellTable:
    cell_of, t_of, mean_ct, var_ct, cnt_ct, times = _cell_time_stats(data)
    n_cells = data.n_cells
    first = t_of == times[0]
    g_first = np.full(n_cells, np.nan)
    n_first = np.zeros(n_cells)
    g_first[cell_of[first]] = mean_ct[first]
    n_first[cell_of[first]] = cnt_ct[first]
    tab = _CellTable(cell_of, t_of, mean_ct, var_ct, cnt_ct, times, data.cell_targets(), g_first, n_first)
    missing = int((~tab.has_first).sum())
    if missing:
        notes.append(f"{missing} cell(s) have no read at the earliest time t0={tab.t0:g} s and are "
                     "left out of the programming-error fit")
    return tab


def _level_of(target: np.ndarray) -> np.ndarray:
    """Level index of each cell: its distinct target, or 16 quantile bins of continuous targets."""
    ut = np.unique(target)
    if ut.size > 32:
        edges = np.quantile(target, np.linspace(0, 1, 17))
        return np.clip(np.searchsorted(edges, target, side="right") - 1, 0, 15)
    return np.searchsorted(ut, target)


def _level_robust_sigma(lvl: np.ndarray, e: np.ndarray, ok: np.ndarray, floor: float):
    """Per cell, the median and the robust spread (1.4826 MAD, at least ``floor``) of e over
    the cells of its level (``ok`` cells only)."""
    med = np.zeros(lvl.size)
    rs = np.full(lvl.size, floor)
    for L in np.unique(lvl):
        m = (lvl == L) & ok
        if m.sum() == 0:
            continue
        md = np.median(e[m])
        med[lvl == L] = md
        rs[lvl == L] = max(1.4826 * np.median(np.abs(e[m] - md)), floor)
    return med, rs


@dataclass
class _Screen:
    """Robust screening of the cells: programming z, fences, range, stuck and outlier flags."""

    z: np.ndarray           # |G(t0) - target - level median| / robust sigma of the level
    rs: np.ndarray          # robust sigma of each cell's level
    gross: np.ndarray       # G(t0) outside the fences (far outside the targets' range)
    fences: tuple


def _screen_programming(tab: _CellTable) -> _Screen:
    lvl = _level_of(tab.target)
    e = tab.g_first - tab.target
    floor = 1e-6 * float(np.median(np.abs(tab.target)))
    med, rs = _level_robust_sigma(lvl, e, tab.has_first, floor)
    z = np.where(tab.has_first, np.abs(e - med) / rs, 0.0)
    reach = 10.0 * float(np.max(rs))
    fences = (float(tab.target.min()) - reach, float(tab.target.max()) + reach)
    gross = tab.has_first & ((tab.g_first < fences[0]) | (tab.g_first > fences[1]))
    return _Screen(z=z, rs=rs, gross=gross, fences=fences)


def _long_range(tab: _CellTable, scr: _Screen, g_range_us) -> tuple[float, float]:
    """(g_min, g_max): imposed, or min/max of the targets and the 0.1 % / 99.9 % quantiles of
    G(t0) over the cells inside the robust fences, the targets' range +- 10 robust sigma of
    the widest level (a shorted cell at 1e4 uS or a 1e30 typo does not move them; cells stuck
    at the device's bounds, inside the fences, do)."""
    if g_range_us is not None:
        g_min, g_max = map(float, g_range_us)
    else:
        gf = tab.g_first[tab.has_first & ~scr.gross]
        if gf.size == 0:
            raise ValueError("every cell's first read lies far outside the targets' range: no device range")
        g_min = float(max(0.0, min(tab.target.min(), np.quantile(gf, 0.001))))
        g_max = float(max(tab.target.max(), np.quantile(gf, 0.999)))
    if not g_max > g_min:
        raise ValueError(f"device range must have g_max > g_min, got [{g_min}, {g_max}] uS")
    return g_min, g_max


@dataclass
class _Stuck:
    """Stuck cells: per-cell flags, the cells each rate counts over, and the rates."""

    lo_cell: np.ndarray
    hi_cell: np.ndarray
    elig_lo: np.ndarray
    elig_hi: np.ndarray
    method: str

    @property
    def any(self) -> np.ndarray:
        return self.lo_cell | self.hi_cell

    def counts(self, which: str) -> tuple[int, int]:
        flag, elig = (self.lo_cell, self.elig_lo) if which == "min" else (self.hi_cell, self.elig_hi)
        return int((flag & elig).sum()), int(elig.sum())

    def rate(self, which: str) -> tuple[float, tuple]:
        k, n = self.counts(which)
        return (k / n if n else 0.0), (clopper_pearson(k, n) if n else (0.0, 1.0))


def _stuck_from_column(data: LongData, tab: _CellTable, g_min: float, g_max: float) -> _Stuck:
    n = tab.n_cells
    stuck_cell = np.zeros(n, bool)
    stuck_cell[data.cell[data.stuck]] = True
    gf = tab.g_first
    near_lo = np.abs(np.nan_to_num(gf, nan=g_min) - g_min) <= np.abs(np.nan_to_num(gf, nan=g_max) - g_max)
    return _Stuck(stuck_cell & near_lo, stuck_cell & ~near_lo, np.ones(n, bool), np.ones(n, bool), "stuck column")


def _stuck_detected(tab: _CellTable, scr: _Screen, g_min: float, g_max: float) -> _Stuck:
    """Cells with robust z > 4.5 from their target at or beyond (within 5 % of the range of) a
    bound; rates over the cells whose target is far enough from that bound to tell."""
    span = g_max - g_min
    tol = 0.05 * span
    outlier = tab.has_first & (scr.z > 4.5)
    gf = np.nan_to_num(tab.g_first, nan=0.5 * (g_min + g_max))
    target = tab.target
    return _Stuck(
        outlier & (gf <= g_min + tol), outlier & (gf >= g_max - tol),
        (np.abs(target - g_min) > tol) & (np.abs(target - g_min) > 6 * scr.rs),
        (np.abs(target - g_max) > tol) & (np.abs(target - g_max) > 6 * scr.rs),
        "detected: robust z > 4.5 from the target and at or within 5% of the range of a bound (beyond the range "
        "included); rates over cells whose target is > 6 robust sigma and > 5% of the range from that bound")


def _relaxation_z(tab: _CellTable, ok: np.ndarray) -> np.ndarray:
    """Per cell, the largest robust z (per level and time) of its change G(t) - G(t0); the
    cell's own read variance of the two means is added to the level's robust spread, so a
    cell with telegraph read noise is not taken for a wild relaxation."""
    lvl = _level_of(tab.target)
    zmax = np.zeros(tab.n_cells)
    own = np.nan_to_num(tab.var, nan=0.0) / tab.count
    v0 = np.zeros(tab.n_cells)
    first = tab.t_s == tab.times[0]
    v0[tab.cell[first]] = own[first]
    floor = 1e-6 * float(np.median(np.abs(tab.target)))
    for t in tab.times[1:]:
        m = tab.t_s == t
        c = tab.cell[m]
        d = np.full(tab.n_cells, np.nan)
        d[c] = tab.mean[m] - tab.g_first[c]
        vt = np.zeros(tab.n_cells)
        vt[c] = own[m]
        have = np.isfinite(d)
        med, rs = _level_robust_sigma(lvl, np.nan_to_num(d), have & ok, floor)
        z = np.where(have, np.abs(np.nan_to_num(d) - med) / np.sqrt(rs * rs + vt + v0), 0.0)
        zmax = np.maximum(zmax, z)
    return zmax


def _outlier_list(data: LongData, tab: _CellTable, scr: _Screen, stuck: _Stuck, relax_z, g_min, g_max):
    """(outlier mask of working cells, rows for outliers.csv: every stuck or outlier cell with why)."""
    prog = tab.has_first & (scr.z > OUTLIER_Z) & ~stuck.any
    relax = (relax_z > OUTLIER_Z) & ~stuck.any & ~prog
    rows = []
    for k in np.flatnonzero(stuck.any | prog | relax):
        g0 = float(tab.g_first[k])
        if stuck.hi_cell[k] or stuck.lo_cell[k]:
            kind = "stuck_max" if stuck.hi_cell[k] else "stuck_min"
            where = "far beyond the range" if scr.gross[k] else "at or near the bound of the range"
            why = (f"G(t0) = {g0:.4g} uS, {where} [{g_min:.4g}, {g_max:.4g}], {scr.z[k]:.3g} robust sigma from "
                   f"target {tab.target[k]:.4g} uS" + ("" if data.stuck is None else " (stuck column)"))
        elif prog[k]:
            kind, why = "outlier_programming", (f"G(t0) = {g0:.4g} uS is {scr.z[k]:.3g} robust sigma from target "
                                                f"{tab.target[k]:.4g} uS")
        else:
            kind, why = "outlier_relaxation", f"its change after t0 is {relax_z[k]:.3g} robust sigma from its level's"
        rows.append({"cell_id": str(data.cell_labels[k]), "g_target_us": float(tab.target[k]), "g_t0_us": g0,
                     "robust_z": float(max(scr.z[k], relax_z[k])), "class": kind, "why": why})
    return prog | relax, rows


def _outlier_note(rows: list, n_cells: int) -> str | None:
    if not rows:
        return None
    by = {}
    for r in rows:
        by.setdefault(r["class"], []).append(r["cell_id"])
    parts = [f"{len(v)} {k.replace('_', ' ')}" for k, v in by.items()]
    ids = ", ".join(r["cell_id"] for r in rows[:8]) + (", ..." if len(rows) > 8 else "")
    far = [r for r in rows if "far beyond the range" in r["why"]]
    extra = (f"; {len(far)} far outside the range (largest G(t0) {max(r['g_t0_us'] for r in far):.4g} uS)"
             if far else "")
    return (f"{len(rows)} of {n_cells} cells flagged by robust statistics ({', '.join(parts)}){extra}: {ids}; kept "
            "out of the laws (stuck ones counted in the stuck rates); see outliers.csv")


# ---- laws

def _law_choice(degrees: dict, key: str):
    """A forced (family, degree) from ``degrees`` (int: a polynomial in G), else None."""
    d = degrees.get(key)
    if d is None:
        return None
    return tuple(d) if isinstance(d, (tuple, list)) else ("poly_g", int(d))


def _fit_long_read_noise(tab: _CellTable, good: np.ndarray, g_max: float, notes: list, *, seed, k_folds, degrees):
    """Read noise from the sample variances of repeated reads at every time that has them,
    robustly: a Gaussian core law sigma_read(G), fitted by maximum likelihood after the
    (cell, time) pairs whose variance lies beyond the chi-square 99.9 % point of the core are
    set aside (three passes); their fraction is the reported tail. Returns (law or None,
    summary dict)."""
    from scipy import stats as _st

    rep = (tab.count >= 2) & good[tab.cell]
    if not rep.any():
        notes.append("no cell has repeated reads at one time: read noise not fitted (0)")
        return None, {}
    dof = tab.count - 1
    keep = rep.copy()
    choice = _law_choice(degrees, "read_sigma")
    fit, cv = None, {}
    for _ in range(3):
        fit = fit_sigma_law_cv("read_sigma", tab.mean[keep], tab.var[keep], tab.cell[keep], g_max, "uS",
                               w=dof[keep], seed=seed, k_folds=k_folds, choice=choice)
        cv = fit.cv or cv  # the selection of the first pass (later passes keep its choice)
        fit.cv = cv
        choice = (fit.family, fit.degree)
        s2 = np.maximum(fit(tab.mean) ** 2, 1e-300)
        p = _st.chi2.sf(np.where(rep, tab.var, 0.0) * dof / s2, np.maximum(dof, 1))
        new_keep = rep & (p >= 1e-3)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    tail = rep & ~keep
    times_rep = np.unique(tab.t_s[rep])
    fit.method += (f"; Gaussian core: sample variances of {int(np.round(tab.count[rep].mean()))} reads per cell at "
                   f"{times_rep.size} time(s) ({int(keep.sum())} (cell, time) pairs), {int(tail.sum())} tail pairs "
                   "beyond the chi-square 99.9% point left out")
    per_time = []
    for t in times_rep:
        m = keep & (tab.t_s == t)
        if m.sum() < 3:
            continue
        ft = fit_sigma_law_cv("read_sigma", tab.mean[m], tab.var[m], tab.cell[m], g_max, "uS", w=dof[m],
                              seed=seed, k_folds=k_folds, choice=(fit.family, fit.degree))
        g_ref = float(np.median(tab.target))
        per_time.append({"t_s": float(t), "g_us": g_ref, "sigma_us": float(ft(g_ref)[0]),
                         "se_us": float(ft.se(g_ref)[0]), "n_cells": int(m.sum()),
                         "tail_fraction": float((tail & (tab.t_s == t)).sum() / max((rep & (tab.t_s == t)).sum(), 1))})
    tail_cells = np.unique(tab.cell[tail])
    frac = float(tail.sum() / rep.sum())
    ratio = (float(np.sqrt(np.mean(tab.var[tail] / np.maximum(fit(tab.mean[tail]), 1e-300) ** 2)))
             if tail.any() else 1.0)
    tab.read_tail = tail
    summary = {"tail_fraction": frac, "tail_pairs": int(tail.sum()), "pairs": int(rep.sum()),
               "tail_cells": tail_cells.tolist(), "tail_rms_over_core": ratio, "per_time": per_time,
               "tail_method": ("(cell, time) pairs whose read variance is beyond the chi-square 99.9% point of the "
                               f"Gaussian core; {int(tail.sum())} of {int(rep.sum())}, rms {ratio:.3g}x the core; "
                               "not in the device model (core only)"),
               "tail_in_model": False,
               "tail_why_not_modelled": READ_TAIL_NOT_MODELLED}
    if frac > 0.002:
        notes.append(f"read noise is heavy-tailed: {frac:.2%} of (cell, time) pairs ({tail_cells.size} cells) read "
                     f"{ratio:.3g}x noisier (rms) than the Gaussian core; the model carries the core law only (see "
                     "read_noise.tail_why_not_modelled)")
    summary["time_dependence"] = _read_noise_validity(per_time, fit, tab)
    if len(per_time) >= 2:
        notes.append("read noise per time (core law refitted at each time, at the median G): " + ", ".join(
            f"t={r['t_s']:.4g} s: {r['sigma_us']:.3g} uS" for r in per_time) + "; "
            + summary["time_dependence"]["validity"])
    return fit, summary


def _read_noise_validity(per_time: list, fit: PolyFit, tab: _CellTable) -> dict:
    """How far the one read-noise law (pooled over the times with repeated reads) holds in
    time: the per-time core fits at the median G against the pooled law, the largest ratio
    between times, and a sentence saying the law's range of validity. The device model has
    no time dependence of read noise (crossbar's time-dependent form, "pcm_read", is PCM's
    1/f law with a fixed growth; calibration does not fit it)."""
    times = [r["t_s"] for r in per_time]
    if not per_time:
        return {"model": "one law, no time dependence", "validity": "no time had enough repeated reads to test"}
    g_ref = per_time[0]["g_us"]
    pooled = float(fit(g_ref)[0])
    s = np.array([r["sigma_us"] for r in per_time])
    se = np.array([r["se_us"] for r in per_time])
    ratio = float(s.max() / max(s.min(), 1e-300))
    worst = float(np.max(np.abs(s / max(pooled, 1e-300) - 1)))
    # a real change: the per-time values differ by more than 3 combined standard errors and 10 %
    k_hi, k_lo = int(np.argmax(s)), int(np.argmin(s))
    differs = len(s) >= 2 and (s[k_hi] - s[k_lo] > 3 * np.hypot(se[k_hi], se[k_lo])) and ratio > 1.1
    span = f"{min(times):.4g}-{max(times):.4g} s"
    if len(s) < 2:
        validity = f"one law fitted at t={times[0]:.4g} s only: its time dependence is untested"
    elif differs:
        validity = (f"it changes with time (max/min {ratio:.3g}x; the pooled law is off by up to {worst:.0%} at one "
                    f"time): the model uses one law for all times, valid only as an average over {span}; read "
                    "noise at other times is not modelled")
    else:
        validity = (f"constant in time within the errors (max/min {ratio:.3g}x, pooled law within {worst:.0%} of "
                    f"every time): one law for all times, tested over {span}")
    return {"model": "one law for all times (pooled over the times with repeated reads)", "times_s": times,
            "pooled_sigma_us_at_g": pooled, "g_us": g_ref, "max_over_min": ratio, "max_rel_deviation": worst,
            "changes_with_time": bool(differs), "validity": validity}


def _read_var(read_fit: PolyFit | None, g) -> np.ndarray:
    """sigma_read(G)^2, 0 without a read-noise law."""
    if read_fit is None:
        return np.zeros_like(np.asarray(g, float))
    return read_fit(g) ** 2


def _per_cell_exponents(tab: _CellTable, good: np.ndarray, read_fit):
    """Per cell, the least-squares slope nu of -ln G(t) on ln(t/t0) (means of the reads) and
    its variance from the read noise; nan where a cell has fewer than two usable times."""
    n_cells = tab.n_cells
    nu = np.full(n_cells, np.nan)
    nu_var = np.full(n_cells, np.nan)
    mean_ct = tab.mean
    ok_ct = good[tab.cell] & (mean_ct > 0)
    x = np.log(tab.t_s / tab.t0)
    yv = np.log(np.where(mean_ct > 0, mean_ct, 1.0))
    # variance of ln(mean of reads) from the read noise (a cell's own variance where it is in the tail)
    rv = _read_var(read_fit, mean_ct)
    if tab.read_tail is not None:
        rv = np.where(tab.read_tail, np.maximum(rv, np.nan_to_num(tab.var, nan=0.0)), rv)
    vy = rv / tab.count / np.maximum(mean_ct * mean_ct, 1e-300)
    c = tab.cell[ok_ct]
    n_t = np.bincount(c, minlength=n_cells)
    sx = np.bincount(c, weights=x[ok_ct], minlength=n_cells)
    xm = sx / np.maximum(n_t, 1)
    dx = x[ok_ct] - xm[c]
    sxx = np.bincount(c, weights=dx * dx, minlength=n_cells)
    sxy = np.bincount(c, weights=dx * yv[ok_ct], minlength=n_cells)
    valid = (n_t >= 2) & (sxx > 0)
    nu[valid] = -sxy[valid] / sxx[valid]
    vnu = np.bincount(c, weights=dx * dx * vy[ok_ct], minlength=n_cells)
    nu_var[valid] = vnu[valid] / sxx[valid] ** 2
    return nu, nu_var


def _relaxation_forms(tab: _CellTable, good: np.ndarray) -> dict:
    """With three or more times: per cell, a power law (ln G linear in ln t) against a
    log-time law (G linear in ln t), both two parameters, compared by their residual sums of
    squares in uS over all cells (Gaussian likelihood ratio)."""
    if tab.times.size < 3:
        return {"tested": False, "why": f"{tab.times.size} read time(s): a relaxation law of two parameters per cell "
                                       "cannot be tested (needs three or more)"}
    ok = good[tab.cell] & (tab.mean > 0)
    c, x, g = tab.cell[ok], np.log(tab.t_s[ok] / tab.t0), tab.mean[ok]
    rss = {}
    for form in ("power", "log_time"):
        y = np.log(g) if form == "power" else g
        nc = tab.n_cells
        cnt = np.bincount(c, minlength=nc)
        xm = np.bincount(c, x, nc) / np.maximum(cnt, 1)
        ym = np.bincount(c, y, nc) / np.maximum(cnt, 1)
        dx = x - xm[c]
        sxx = np.bincount(c, dx * dx, nc)
        slope = np.bincount(c, dx * (y - ym[c]), nc) / np.maximum(sxx, 1e-300)
        pred = ym[c] + slope[c] * dx
        r = g - (np.exp(pred) if form == "power" else pred)
        rss[form] = float(r @ r)
    n = int(ok.sum())
    llr = n * np.log(rss["power"] / rss["log_time"])  # > 0: log-time fits better
    better = "log_time" if llr > 0 else "power"
    return {"tested": True, "rss_power_us2": rss["power"], "rss_log_time_us2": rss["log_time"],
            "minus2_log_lr_power_vs_log": float(llr), "better": better, "n_points": n}


def _fit_long_drift(tab: _CellTable, good: np.ndarray, read_fit, g_max: float, notes: list, *, seed, k_folds,
                    degrees):
    """(mu_nu law, sigma_nu law, per-cell nu, its variance); laws None (noted) without drift data."""
    if tab.times.size < 2:
        notes.append("one measurement time only: drift not fitted (nu = 0)")
        return None, None, np.full(tab.n_cells, np.nan), np.full(tab.n_cells, np.nan)
    nu, nu_var = _per_cell_exponents(tab, good, read_fit)
    cells = np.flatnonzero(np.isfinite(nu))
    if cells.size < 3:
        notes.append("too few cells with two or more times: drift not fitted")
        return None, None, nu, nu_var
    target = tab.target
    cv = dict(seed=seed, k_folds=k_folds)
    drift_mu = fit_mean_law_cv("drift_mu_nu", target[cells], nu[cells], cells, g_max, "1",
                               choice=_law_choice(degrees, "drift_mu_nu"), **cv)
    resid = nu[cells] - drift_mu(target[cells])
    mu_cv = drift_mu.cv
    drift_sig = fit_sigma_law_cv("drift_sigma_nu", target[cells], resid ** 2, cells, g_max, "1",
                                 extra=nu_var[cells], choice=_law_choice(degrees, "drift_sigma_nu"), **cv)
    # refit the mean with weights from the fitted spread
    drift_mu = fit_mean_law_cv("drift_mu_nu", target[cells], nu[cells], cells, g_max, "1",
                               var=drift_sig(target[cells]) ** 2 + nu_var[cells],
                               choice=(drift_mu.family, drift_mu.degree), **cv)
    drift_mu.cv = mu_cv
    drift_mu.method += f"; per-cell exponents from ln G vs ln(t/t0) over {tab.times.size} times"
    g = np.linspace(target.min(), target.max(), 50)
    ratio = np.abs(drift_mu(g)) / np.maximum(drift_sig(g), 1e-300)
    if ratio.min() < 2.0:
        notes.append(f"drift: |mu_nu| < 2 sigma_nu at part of the range (min ratio {ratio.min():.2g}); crossbar draws "
                     "nu = |mu_nu + sigma_nu z| (folded at 0), so a power-law model's relaxation there is biased "
                     "towards conductance loss (the log-time models, compared below, have no such limit)")
    if tab.times.size == 2:
        notes.append("two read times: the power law G(t) = G(t0) (t/t0)^-nu is not tested, only fitted through them; "
                     "between and beyond the reads the time dependence is assumed")
    return drift_mu, drift_sig, nu, nu_var


# --------------------------------------------------------------------------- relaxation model choice

#: the relaxation models calibration chooses between (crossbar terms they are written as)
RELAX_MODELS = {
    "power": "drift G(t) = G(t0) (t/t0)^-nu, nu = |mu_nu(G) + sigma_nu(G) z| (crossbar drift_mu_nu, drift_sigma_nu)",
    "log_time": "G(t) = G(t0) + (relax_mu(G) + relax_sigma(G) z) sqrt(ln(t/t0)) (crossbar relax_mu, relax_sigma)",
    "log_time_zero_mean": "G(t) = G(t0) + relax_sigma(G) z sqrt(ln(t/t0)) (crossbar relax_sigma only)",
}
#: the model kept unless another one's held-out log-likelihood is better by RELAX_MARGIN_SE paired
#: standard errors (per held-out cell): crossbar's power-law drift, as before this choice existed
DEFAULT_RELAX_MODEL = "power"
RELAX_MARGIN_SE = 2.0


@dataclass
class _RelaxPoints:
    """Every usable (cell, later time): the change from t0 and its read-noise variances."""

    cell: np.ndarray   # (n,) cell index
    x0: np.ndarray     # (n,) mean of the cell's reads at t0, uS
    x: np.ndarray      # (n,) mean of its reads at t, uS
    v0: np.ndarray     # (n,) read-noise variance of x0, uS^2
    v: np.ndarray      # (n,) read-noise variance of x, uS^2
    ln_t: np.ndarray   # (n,) ln(t / t0) > 0


def _relax_points(tab: _CellTable, good: np.ndarray, read_fit) -> _RelaxPoints:
    rv = _read_var(read_fit, tab.mean)
    if tab.read_tail is not None:  # a tail cell's own variance where it is larger than the core's
        rv = np.where(tab.read_tail, np.maximum(rv, np.nan_to_num(tab.var, nan=0.0)), rv)
    v_ct = rv / tab.count
    v0_cell = np.full(tab.n_cells, np.nan)
    first = tab.t_s == tab.t0
    v0_cell[tab.cell[first]] = v_ct[first]
    c = tab.cell
    ok = ~first & good[c] & tab.has_first[c] & (tab.mean > 0) & (np.nan_to_num(tab.g_first[c]) > 0)
    c = c[ok]
    return _RelaxPoints(cell=c, x0=tab.g_first[c], x=tab.mean[ok], v0=v0_cell[c], v=v_ct[ok],
                        ln_t=np.log(tab.t_s[ok] / tab.t0))


def _log_slopes(pts: _RelaxPoints, n_cells: int):
    """Per cell, the least-squares slope a of G(t) - G(t0) on s = sqrt(ln(t/t0)) through the
    origin, and its variance from the read noise (the shared t0 read included):
    ``var a = (sum s^2 v + (sum s)^2 v0) / (sum s^2)^2``; nan where a cell has no later time."""
    s = np.sqrt(pts.ln_t)
    s2 = np.bincount(pts.cell, s * s, n_cells)
    s1 = np.bincount(pts.cell, s, n_cells)
    sy = np.bincount(pts.cell, s * (pts.x - pts.x0), n_cells)
    sv = np.bincount(pts.cell, s * s * pts.v, n_cells)
    v0 = np.zeros(n_cells)
    v0[pts.cell] = pts.v0
    a = np.full(n_cells, np.nan)
    a_var = np.full(n_cells, np.nan)
    ok = s2 > 0
    a[ok] = sy[ok] / s2[ok]
    a_var[ok] = (sv[ok] + s1[ok] ** 2 * v0[ok]) / s2[ok] ** 2
    return a, a_var


def _fit_log_relaxation(tab: _CellTable, a, a_var, cells, g_max: float, *, with_mean: bool, seed, k_folds,
                        choices=None):
    """(relax_mu law or None, relax_sigma law) from per-cell log-time slopes ``a`` (uS per
    sqrt(ln(t/t0))) of ``cells``; ``choices`` = {"relax_mu": (family, degree), ...} forces them."""
    choices = choices or {}
    target = tab.target[cells]
    y, ev = a[cells], a_var[cells]
    cv = dict(seed=seed, k_folds=k_folds)
    mu = None
    if with_mean:
        mu = fit_mean_law_cv("relax_mu", target, y, cells, g_max, "uS", choice=choices.get("relax_mu"), **cv)
        resid = y - mu(target)
    else:
        resid = y
    sig = fit_sigma_law_cv("relax_sigma", target, resid ** 2, cells, g_max, "uS", extra=ev,
                           choice=choices.get("relax_sigma"), **cv)
    if with_mean:
        mu_cv = mu.cv
        mu = fit_mean_law_cv("relax_mu", target, y, cells, g_max, "uS", var=sig(target) ** 2 + ev,
                             choice=(mu.family, mu.degree), **cv)
        mu.cv = mu_cv
        mu.method += "; per-cell slopes of G(t) - G(t0) on sqrt(ln(t/t0))"
    sig.method += "; spread of the per-cell slopes of G(t) - G(t0) on sqrt(ln(t/t0)), read noise taken out"
    return mu, sig


def _loglik_log_time(pts: _RelaxPoints, target, mu, sig):
    """log p(G(t) - G(t0)) per point under the log-time model: Gaussian with mean
    relax_mu sqrt(L) and variance relax_sigma^2 L + read noise of both reads."""
    m = np.zeros(pts.cell.size) if mu is None else mu(target)
    s = sig(target)
    var = s * s * pts.ln_t + pts.v + pts.v0
    r = pts.x - pts.x0 - m * np.sqrt(pts.ln_t)
    return -0.5 * (np.log(2 * np.pi * var) + r * r / var)


def _loglik_power(pts: _RelaxPoints, target, mu_fit, sig_fit):
    """log p(G(t) - G(t0)) per point under crossbar's power law: the exponent estimate
    ``nu^ = -ln(G(t)/G(t0)) / L`` has read-noise variance ``w = (v/G(t)^2 + v0/G(t0)^2) / L^2``
    (delta method); nu = |mu + sigma z| (folded at 0, as crossbar draws it), so
    ``p(nu^) = sum over c = +-mu of N(nu^; c, sigma^2 + w) Phi(m_c / s_p)`` with the
    posterior mean ``m_c = (c w + nu^ sigma^2) / (sigma^2 + w)`` and sd
    ``s_p = sigma sqrt(w / (sigma^2 + w))``; times the Jacobian ``1 / (G(t) L)`` back to
    conductance."""
    from scipy.special import log_ndtr

    L = pts.ln_t
    nu_hat = -np.log(pts.x / pts.x0) / L
    w = (pts.v / pts.x ** 2 + pts.v0 / pts.x0 ** 2) / L ** 2
    w = np.maximum(w, 1e-30)
    mu = mu_fit(target)
    s2 = np.zeros_like(mu) if sig_fit is None else sig_fit(target) ** 2
    tot = s2 + w
    terms = []
    for c in (mu, -mu):
        lp = -0.5 * (np.log(2 * np.pi * tot) + (nu_hat - c) ** 2 / tot)
        mp = (c * w + nu_hat * s2) / tot
        sp = np.sqrt(np.maximum(s2 * w / tot, 1e-300))
        terms.append(lp + log_ndtr(mp / sp))
    ll = np.logaddexp(terms[0], terms[1])
    return ll - np.log(pts.x * L)


def _choose_relaxation(tab: _CellTable, good: np.ndarray, read_fit, g_max: float, drift_mu, drift_sig, notes: list,
                       *, seed, k_folds, degrees):
    """Fit the log-time laws (with and without a mean), then compare the three relaxation
    models by the log-likelihood of held-out cells' changes G(t) - G(t0) at every later time
    (K folds over cells; each fold refits the chosen law families on the other cells).

    Returns (relax_mu law or None, relax_sigma law or None, summary dict, per-cell slopes in
    uS per sqrt(ln(t/t0)), nan where not computed)."""
    none = np.full(tab.n_cells, np.nan)
    if drift_mu is None or tab.times.size < 2:
        return None, None, {"model": "power", "tested": False, "why": "fewer than two read times or drift not fitted",
                            "forms": RELAX_MODELS}, none
    pts = _relax_points(tab, good, read_fit)
    a, a_var = _log_slopes(pts, tab.n_cells)
    cells = np.flatnonzero(np.isfinite(a))
    if cells.size < 10:
        return None, None, {"model": "power", "tested": False, "why": f"{cells.size} cells with a later time",
                            "forms": RELAX_MODELS}, a
    cv = dict(seed=seed, k_folds=k_folds)
    fits = {}
    for name, with_mean in (("log_time", True), ("log_time_zero_mean", False)):
        mu, sig = _fit_log_relaxation(tab, a, a_var, cells, g_max, with_mean=with_mean, **cv,
                                      choices={k: _law_choice(degrees, k) for k in ("relax_mu", "relax_sigma")
                                               if _law_choice(degrees, k) is not None})
        fits[name] = (mu, sig)
    # held-out log-likelihood per cell (sum over its later times), K folds over cells
    k = int(min(k_folds, cells.size))
    rng = np.random.default_rng(seed + 101)
    fold = np.full(tab.n_cells, -1)
    fold[cells] = rng.permutation(cells.size) % k
    per_cell = {m: np.zeros(cells.size) for m in RELAX_MODELS}
    pos = np.full(tab.n_cells, -1)
    pos[cells] = np.arange(cells.size)
    tgt_pts = tab.target[pts.cell]
    for f in range(k):
        train = good & (fold != f) & (fold >= 0)
        te = fold[pts.cell] == f
        sub = _RelaxPoints(*(getattr(pts, n)[te] for n in ("cell", "x0", "x", "v0", "v", "ln_t")))
        lls = {}
        dm, ds, _, _ = _fit_long_drift(tab, train, read_fit, g_max, [], seed=seed, k_folds=k_folds, degrees={
            "drift_mu_nu": (drift_mu.family, drift_mu.degree),
            "drift_sigma_nu": (drift_sig.family, drift_sig.degree)})
        lls["power"] = _loglik_power(sub, tgt_pts[te], dm, ds)
        tr_cells = np.flatnonzero(train & np.isfinite(a))
        for name, with_mean in (("log_time", True), ("log_time_zero_mean", False)):
            mu0, sig0 = fits[name]
            ch = {"relax_sigma": (sig0.family, sig0.degree)}
            if mu0 is not None:
                ch["relax_mu"] = (mu0.family, mu0.degree)
            mu, sig = _fit_log_relaxation(tab, a, a_var, tr_cells, g_max, with_mean=with_mean, choices=ch, **cv)
            lls[name] = _loglik_log_time(sub, tgt_pts[te], mu, sig)
        for name, ll in lls.items():
            per_cell[name] += np.bincount(pos[sub.cell], np.where(np.isfinite(ll), ll, -1e300), cells.size)
    total = {m: float(v.sum()) for m, v in per_cell.items()}
    # the log-time variant: the zero-mean one unless the mean is worth it
    lt = "log_time_zero_mean"
    d = per_cell["log_time"] - per_cell[lt]
    if d.mean() > RELAX_MARGIN_SE * d.std() / np.sqrt(d.size):
        lt = "log_time"
    d = per_cell[lt] - per_cell[DEFAULT_RELAX_MODEL]
    margin = float(d.mean() / max(d.std() / np.sqrt(d.size), 1e-300))
    chosen = lt if margin > RELAX_MARGIN_SE else DEFAULT_RELAX_MODEL
    ranked = sorted(total, key=lambda m: -total[m])
    runner_up = next(m for m in ranked if m != chosen)
    two_times = tab.times.size == 2
    summary = {
        "model": chosen, "runner_up": runner_up, "tested": True, "forms": RELAX_MODELS,
        "heldout_loglik": total, "heldout_loglik_per_cell": {m: v / cells.size for m, v in total.items()},
        "n_cells": int(cells.size), "n_points": int(pts.cell.size), "k_folds": k, "n_times": int(tab.times.size),
        "paired_z_log_time_vs_power": margin,
        "rule": (f"default {DEFAULT_RELAX_MODEL!r}; a log-time model replaces it when its held-out log-likelihood per "
                 f"cell is higher by more than {RELAX_MARGIN_SE:g} paired standard errors (the zero-mean variant "
                 "unless the mean law is worth as much)"),
        "method": ("held-out cells (K folds): log-likelihood of G(t) - G(t0) at every later time, each time as a "
                   "marginal (composite likelihood); power law with crossbar's folded exponents, read noise of both "
                   "reads by the delta method; log-time Gaussian"),
    }
    if two_times:
        summary["two_times"] = ("two read times: the time dependence of the models cannot be told apart (each goes "
                                "through both reads); the held-out likelihood compares only how they represent the "
                                "spread of changes at the second read")
    msg = (f"relaxation model: {chosen} ({RELAX_MODELS[chosen]}); held-out log-likelihood " + ", ".join(
        f"{m} {total[m]:.6g}" for m in ranked) + f" (runner-up {runner_up}; log-time vs power {margin:+.3g} paired SE; "
        f"rule: {summary['rule']})")
    notes.append(msg)
    if two_times:
        notes.append("relaxation: " + summary["two_times"] + f"; between and beyond the reads the {chosen} time "
                     "dependence is assumed")
    mu, sig = fits[lt]
    return mu, sig, summary, a


def _fit_long_programming(tab: _CellTable, good: np.ndarray, read_fit, g_max: float, *, seed, k_folds, degrees):
    """(offset law, sigma law) of e = G(t0) - G_target, the read-noise variance of the mean
    of the reads taken out; each law fitted twice (the second with the other's weights)."""
    pc = np.flatnonzero(good & tab.has_first)
    target = tab.target[pc]
    e = tab.g_first[pc] - target
    extra = _read_var(read_fit, tab.g_first[pc]) / tab.n_first[pc]
    cv = dict(seed=seed, k_folds=k_folds)
    off0 = fit_mean_law_cv("prog_offset", target, e, pc, g_max, "uS", choice=_law_choice(degrees, "prog_offset"),
                           **cv)
    sig0 = fit_sigma_law_cv("prog_sigma", target, (e - off0(target)) ** 2, pc, g_max, "uS", extra=extra,
                            choice=_law_choice(degrees, "prog_sigma"), **cv)
    off = fit_mean_law_cv("prog_offset", target, e, pc, g_max, "uS", var=sig0(target) ** 2 + extra,
                          choice=(off0.family, off0.degree), **cv)
    sig = fit_sigma_law_cv("prog_sigma", target, (e - off(target)) ** 2, pc, g_max, "uS", extra=extra,
                           choice=(sig0.family, sig0.degree), **cv)
    off.cv, sig.cv = off0.cv, sig0.cv
    off.method += f"; e = G(t0) - G_target of {pc.size} cells (mean of their reads at t0={tab.t0:g} s)"
    return off, sig


def _long_levels(g_min, g_max, sig: PolyFit, read_fit, level_z):
    """Distinguishable levels at t0 with programming + read noise, and the level counts with
    the sigmas at their 95 % bounds: (levels, (n at the upper bounds, n at the lower bounds))."""
    def total_sigma(g, k=0.0):
        s_p = max(float(sig(g)[0] + k * sig.se(g)[0]), 0.0)
        s_r = float(np.sqrt(_read_var(read_fit, np.atleast_1d(g))[0]))
        s_r_se = 0.0 if read_fit is None else float(read_fit.se(g)[0])
        return np.sqrt(s_p ** 2 + max(s_r + k * s_r_se, 0.0) ** 2)

    levels = distinguishable_levels(g_min, g_max, total_sigma, level_z)
    lv_hi = distinguishable_levels(g_min, g_max, lambda g: total_sigma(g, -Z95), level_z)
    lv_lo = distinguishable_levels(g_min, g_max, lambda g: total_sigma(g, Z95), level_z)
    return levels, (int(lv_lo.size), int(lv_hi.size))


def _few_cells_notes(fit_laws, tab: _CellTable, good: np.ndarray, notes: list) -> None:
    for pf in fit_laws:
        if pf is not None and 0 < pf.n < FEW_CELLS:
            notes.append(f"{pf.name} rests on {pf.n} cells (< {FEW_CELLS}): treat its shape with care")
    lvl_t = np.unique(tab.target)
    if lvl_t.size <= 32:
        counts = np.array([int((good & (tab.target == t)).sum()) for t in lvl_t])
        thin = lvl_t[counts < 5]
        if thin.size:
            notes.append(f"{thin.size} target level(s) hold fewer than 5 working cells (e.g. {thin[0]:.4g} uS)")


def fit_long(data: LongData, *, seed: int = 0, level_z: float = 3.0, g_range_us=None, k_folds: int = 5,
             degrees: dict | None = None, time_model: dict | None = None) -> LongFit:
    """Fit the device model to a validated long-format table.

    Cells are screened first with robust statistics (median and MAD per target level):
    cells far outside the targets' range or at a bound are stuck, other cells more than 6
    robust sigma from their level (at t0, or in their change after t0) are outliers; both
    are kept out of the laws and listed. Each law's family (polynomial in G, polynomial in
    ln G, Gaussian bump in ln G) and degree are chosen on held-out cells.

    Args:
        data: from :func:`calibration.readers.read_long` (times already room-temperature-
            equivalent when it held bakes: :func:`to_equivalent_time`).
        seed: for the cross-validation folds.
        level_z: separation budget (in sigmas each side) for distinguishable levels.
        g_range_us: (g_min, g_max) to impose; default from the data (see README).
        k_folds: cross-validation folds over cells.
        degrees: force laws, e.g. {"prog_sigma": 2} (a polynomial in G) or
            {"prog_sigma": ("gauss_lng", 3)}; keys prog_offset, prog_sigma, read_sigma,
            drift_mu_nu, drift_sigma_nu, relax_mu, relax_sigma.
        time_model: the description from :func:`to_equivalent_time` (kept in the fit).

    Returns:
        LongFit.
    """
    cv = dict(seed=seed, k_folds=k_folds, degrees=dict(degrees or {}))
    notes: list[str] = []
    tab = _cell_table(data, notes)
    scr = _screen_programming(tab)
    g_min, g_max = _long_range(tab, scr, g_range_us)
    stuck = (_stuck_from_column(data, tab, g_min, g_max) if data.stuck is not None
             else _stuck_detected(tab, scr, g_min, g_max))
    relax_z = _relaxation_z(tab, ~stuck.any & (scr.z <= OUTLIER_Z))
    outlier, outlier_rows = _outlier_list(data, tab, scr, stuck, relax_z, g_min, g_max)
    note = _outlier_note(outlier_rows, tab.n_cells)
    if note:
        notes.append(note)
    good = ~stuck.any & ~outlier
    read_fit, read_summary = _fit_long_read_noise(tab, good, g_max, notes, **cv)
    drift_mu, drift_sig, nu, nu_var = _fit_long_drift(tab, good, read_fit, g_max, notes, **cv)
    relax_mu, relax_sig, relaxation, relax_slope = _choose_relaxation(tab, good, read_fit, g_max, drift_mu, drift_sig, notes, **cv)
    relaxation["per_cell_forms"] = _relaxation_forms(tab, good)
    off, sig = _fit_long_programming(tab, good, read_fit, g_max, **cv)
    _few_cells_notes([off, sig, read_fit, drift_mu, drift_sig, relax_mu, relax_sig], tab, good, notes)
    levels, levels_ci = _long_levels(g_min, g_max, sig, read_fit, level_z)
    (p_lo, ci_lo), (p_hi, ci_hi) = stuck.rate("min"), stuck.rate("max")
    raw = {
        "cell_target_us": tab.target, "cell_g_t0_us": tab.g_first, "cell_n_reads_t0": tab.n_first,
        "cell_stuck_min": stuck.lo_cell, "cell_stuck_max": stuck.hi_cell, "cell_outlier": outlier,
        "cell_nu": nu, "cell_nu_var": nu_var, "cell_relax_slope": relax_slope,
        "ct_cell": tab.cell, "ct_t_s": tab.t_s, "ct_mean_us": tab.mean, "ct_var_us2": np.nan_to_num(tab.var, nan=-1.0),
        "ct_n_reads": tab.count, "levels_us": levels,
    }
    return LongFit(
        g_min_us=g_min, g_max_us=g_max, t0_s=tab.t0, prog_offset=off, prog_sigma=sig, read_sigma=read_fit,
        drift_mu_nu=drift_mu, drift_sigma_nu=drift_sig, stuck_min_fraction=p_lo, stuck_max_fraction=p_hi,
        stuck_min_ci=ci_lo, stuck_max_ci=ci_hi,
        stuck_counts={"min": list(stuck.counts("min")), "max": list(stuck.counts("max")), "method": stuck.method},
        levels_us=levels, levels_ci=levels_ci, level_z=level_z, raw=raw, notes=notes,
        time_span_s=(float(tab.times[0]), float(tab.times[-1])), time_model=dict(time_model or {}),
        outliers=outlier_rows, read_noise=read_summary, relaxation=relaxation, relax_mu=relax_mu,
        relax_sigma=relax_sig)


# --------------------------------------------------------------------------- pulse ramps

@dataclass
class DirectionFit:
    """Step model of one pulse polarity (+1 potentiating / SET, -1 depressing / RESET)."""

    direction: int
    n_ramps: int
    n_steps: int
    mean_step: PolyFit
    c2c_sigma: PolyFit
    boot_mean: np.ndarray  # (B, n_grid) bootstrap of mean step on grid
    boot_c2c: np.ndarray


@dataclass(kw_only=True)
class PulseResponseFit:
    """What pulse ramps and dG lookup tables both give (uS): range, read noise, step laws
    per polarity, simulated program-and-verify and the programming-error laws, levels."""

    g_min_us: float
    g_max_us: float
    read_sigma_us: float
    directions: dict  # "up"/"down" -> DirectionFit (ramps) or TableDirectionFit (dG tables)
    grid_us: np.ndarray
    pv: dict
    prog_offset: PolyFit
    prog_sigma: PolyFit
    levels_us: np.ndarray
    levels_ci: tuple
    level_z: float
    raw: dict
    notes: list


@dataclass(kw_only=True)
class RampFit(PulseResponseFit):
    """Everything fitted from pulse ramps, with bootstrap intervals of range and read noise."""

    g_range_ci: dict
    read_sigma_ci: tuple

    def parameter_rows(self) -> list[dict]:
        """params.csv rows: range and read noise with bootstrap intervals, step laws per
        polarity (with bootstrap rows), program-and-verify, levels."""
        rows = [param_row("g_min_us", self.g_min_us, ci=self.g_range_ci["g_min_us"], unit="uS",
                          method="quantile of all readings; bootstrap over ramps"),
                param_row("g_max_us", self.g_max_us, ci=self.g_range_ci["g_max_us"], unit="uS",
                          method="quantile of all readings; bootstrap over ramps"),
                param_row("read_sigma_us", self.read_sigma_us, ci=self.read_sigma_ci, unit="uS",
                          method="lag-1 covariance of step residuals; bootstrap over ramps")]
        for name, df in self.directions.items():
            for pf in (df.mean_step, df.c2c_sigma):
                rows += poly_rows(dataclasses.replace(pf, name=f"{name}.{pf.name}"), self.g_max_us, self.g_min_us)
                if df.boot_mean.shape[0]:
                    rows += self._bootstrap_rows(name, pf, df.boot_mean if pf is df.mean_step else df.boot_c2c)
        return rows + _pv_rows(self) + [_levels_row(self)]

    def _bootstrap_rows(self, name: str, pf: PolyFit, boot: np.ndarray) -> list[dict]:
        rows = []
        for j in (0, boot.shape[1] // 2, boot.shape[1] - 1):
            g = self.grid_us[j]
            rows.append(param_row(f"{name}.{pf.name}(G={g:.4g} uS) bootstrap", float(pf(g)[0]),
                                  ci=(float(np.quantile(boot[:, j], 0.025)), float(np.quantile(boot[:, j], 0.975))),
                                  unit=pf.unit, method=f"bootstrap over ramps ({boot.shape[0]})"))
        return rows


def ramp_steps(ramps, idx):
    """Steps of the given ramps with the conductance at each step taken from the
    neighbouring reads (G[k-1] + G[k+2]) / 2, which share no read noise with the step."""
    xs, ds, rid, pos = [], [], [], []
    for i in idx:
        r = ramps[i]
        if r.size < 4:
            continue
        d = r[2:-1] - r[1:-2]          # steps k = 1 .. n-3
        x = 0.5 * (r[:-3] + r[3:])     # (G[k-1] + G[k+2]) / 2
        xs.append(x)
        ds.append(d)
        rid.append(np.full(d.size, i))
        pos.append(np.arange(d.size))
    return np.concatenate(xs), np.concatenate(ds), np.concatenate(rid), np.concatenate(pos)


def _lag1_read_var(resid, rid, pos):
    """Read-noise variance from the lag-1 covariance of step residuals within ramps:
    cov(d_k, d_{k+1}) = -sigma_read^2 when reads carry independent noise."""
    same = (rid[1:] == rid[:-1]) & (pos[1:] == pos[:-1] + 1)
    if same.sum() < 3:
        return 0.0
    return float(-np.mean(resid[1:][same] * resid[:-1][same]))


def _fit_direction(ramps, idx, g_scale, read_var, seed, k_folds, degrees):
    x, d, rid, pos = ramp_steps(ramps, idx)
    mean = fit_mean_cv("mean_step", x, d, rid, g_scale, "uS/pulse", seed=seed, k_folds=k_folds,
                       degree=degrees.get("mean_step"))
    r = d - mean(x)
    c2c = fit_sigma_cv("c2c_sigma", x, r * r, rid, g_scale, "uS/pulse", extra=2.0 * read_var, seed=seed,
                       k_folds=k_folds, degree=degrees.get("c2c_sigma"))
    return mean, c2c, (x, d, rid, pos)


def simulate_program_verify(g_min, g_max, up_mean, up_sigma, down_mean, down_sigma, read_sigma, targets,
                            n_cells=400, tol_us=None, max_pulses=200, seed=0):
    """Program-and-verify with the fitted pulse response.

    Each cell starts at a uniformly random conductance in [g_min, g_max]; each iteration
    reads G with Gaussian read noise, stops when the read is within tol of the target, and
    otherwise applies one SET (read below target) or RESET pulse, whose step is drawn from
    N(mean(G), c2c(G)^2); G stays in [g_min, g_max].

    Returns dict with per-target arrays: final error mean and std (true G - target), the
    fraction converged, the mean number of pulses, and the error matrix (targets x cells).
    """
    rng = np.random.default_rng(seed)
    targets = np.asarray(targets, float)
    if tol_us is None:
        tol_us = 0.5 * float(np.median(np.abs(np.concatenate([up_mean(targets), down_mean(targets)]))))
        tol_us = max(tol_us, 2.0 * read_sigma)
    T = np.repeat(targets[:, None], n_cells, axis=1)
    G = rng.uniform(g_min, g_max, size=T.shape)
    active = np.ones(T.shape, bool)
    pulses = np.zeros(T.shape, int)
    for _ in range(max_pulses):
        if not active.any():
            break
        read = G + read_sigma * rng.standard_normal(G.shape)
        done = np.abs(read - T) <= tol_us
        active &= ~done
        up = active & (read < T)
        dn = active & (read > T)
        z = rng.standard_normal(G.shape)
        if up.any():
            g = G[up]
            G[up] = g + up_mean(g) + up_sigma(g) * z[up]
        if dn.any():
            g = G[dn]
            G[dn] = g + down_mean(g) + down_sigma(g) * z[dn]
        np.clip(G, g_min, g_max, out=G)
        pulses += active
    err = G - T
    return {"targets_us": targets, "error_mean_us": err.mean(1), "error_std_us": err.std(1, ddof=1),
            "converged_fraction": 1.0 - active.mean(1), "mean_pulses": pulses.mean(1), "tol_us": tol_us,
            "max_pulses": max_pulses, "errors_us": err}


def _program_verify_fit(laws: dict, g_min, g_max, read_sigma, notes: list, what: str, *, seed, k_folds, pv_cells,
                        pv_targets, verify_tol_us, max_pulses):
    """Simulated program-and-verify with fitted step laws, and the programming-error laws
    fitted to its final errors.

    ``laws`` maps "up" / "down" to (mean_step, c2c_sigma); with one polarity only, the other
    pulse is its mirror image (noted). Targets: ``pv_targets`` evenly spaced over the middle
    90 % of [g_min, g_max]. Returns (pv dict of :func:`simulate_program_verify`, prog_offset,
    prog_sigma).
    """
    if "up" not in laws or "down" not in laws:
        only = next(iter(laws))
        notes.append(f"only {only} {what}: program-and-verify needs both polarities; the "
                     f"{'down' if only == 'up' else 'up'} pulse is modelled as the mirror image of the measured one")
        mean, c2c = laws[only]
        mirror = PolyFit("mean_step", -mean.coeffs, mean.cov, mean.g_scale_us, "uS/pulse")
        up_m, dn_m = (mean, mirror) if only == "up" else (mirror, mean)
        up_s = dn_s = c2c
    else:
        (up_m, up_s), (dn_m, dn_s) = laws["up"], laws["down"]
    targets = np.linspace(g_min + 0.05 * (g_max - g_min), g_max - 0.05 * (g_max - g_min), pv_targets)
    pv = simulate_program_verify(g_min, g_max, up_m, up_s, dn_m, dn_s, read_sigma, targets, n_cells=pv_cells,
                                 tol_us=verify_tol_us, max_pulses=max_pulses, seed=seed + 2)
    if pv["converged_fraction"].min() < 0.99:
        notes.append(f"program-and-verify: only {pv['converged_fraction'].min():.1%} of cells converged within "
                     f"{max_pulses} pulses at the worst target (tolerance {pv['tol_us']:.3g} uS)")
    err = pv["errors_us"]
    tgt = np.repeat(targets, err.shape[1])
    groups = np.repeat(np.arange(targets.size), err.shape[1])
    e = err.ravel()
    off = fit_mean_cv("prog_offset", tgt, e, groups, g_max, "uS", seed=seed, k_folds=k_folds, cap=3)
    sig = fit_sigma_cv("prog_sigma", tgt, (e - off(tgt)) ** 2, groups, g_max, "uS", seed=seed, k_folds=k_folds, cap=3)
    off.method += "; simulated program-and-verify"
    sig.method += "; simulated program-and-verify"
    return pv, off, sig


def _segment_short_polarities(data: RampData, notes: list) -> RampData:
    """Few long ramps (e.g. one potentiation and one depression trace): cross-validation and
    the bootstrap resample ramps, so each ramp of a polarity with fewer than
    MIN_RAMPS_PER_DIRECTION ramps is cut into segments of about SEGMENT_PULSES pulses that
    serve as the resampling units (a block bootstrap)."""
    ramps = data.ramps
    direction = np.asarray(data.direction)
    for sgn, label in ((1, "up"), (-1, "down")):
        idx = np.flatnonzero(direction == sgn)
        if 0 < idx.size < MIN_RAMPS_PER_DIRECTION:
            pieces = []
            for i in idx:
                r = ramps[i]
                n_seg = max(1, r.size // SEGMENT_PULSES)
                pieces += [seg for seg in np.array_split(r, n_seg)]
            keep = [i for i in range(len(ramps)) if direction[i] != sgn]
            ramps = [ramps[i] for i in keep] + pieces
            direction = np.concatenate([direction[keep], np.full(len(pieces), sgn)])
            notes.append(f"only {idx.size} {label} ramp(s): cut into {len(pieces)} segments of about "
                         f"{SEGMENT_PULSES} pulses for cross-validation and the block bootstrap")
    return RampData(sources=data.sources, ramps=ramps, direction=direction,
                    names=[str(i) for i in range(len(ramps))], unit=data.unit)


def _polarity_degrees(degrees: dict, n_ramps: int) -> dict:
    """Forced degrees; a polarity with one ramp (segment) gets a linear mean and a constant spread."""
    return {**degrees, **({} if n_ramps >= 2 else {"mean_step": 1, "c2c_sigma": 0})}


def _ramp_read_var(ramps, idx_all: dict, g_max: float, notes: list, *, seed, k_folds, degrees):
    """Read-noise variance from the lag-1 covariance of the step residuals of all polarities
    (first pass without read noise), and the first pass per polarity (mean law and steps)."""
    resid_all, rid_all, pos_all = [], [], []
    first = {}
    for name, idx in idx_all.items():
        if idx.size == 0:
            continue
        mean, _, (x, d, rid, pos) = _fit_direction(ramps, idx, g_max, 0.0, seed, k_folds,
                                                   _polarity_degrees(degrees, idx.size))
        first[name] = (mean, x, d, rid, pos)
        resid_all.append(d - mean(x))
        rid_all.append(rid)
        pos_all.append(pos)
    read_var = _lag1_read_var(np.concatenate(resid_all), np.concatenate(rid_all), np.concatenate(pos_all))
    if read_var < 0:
        notes.append(f"step residuals are positively correlated (lag-1 cov {-read_var:.3g} uS^2): read noise is "
                     "not resolved and set to 0; ramp-to-ramp variation dominates")
        read_var = 0.0
    return read_var, first


def _ramp_bootstrap(ramps, idx_all: dict, dirs: dict, grid, g_max: float, range_quantiles, n_boot: int,
                    seed: int) -> dict:
    """Bootstrap over ramps (degrees fixed at the chosen ones): fills each DirectionFit's
    boot_mean / boot_c2c on ``grid`` and returns the resampled g_min, g_max and read sigma."""
    qlo, qhi = range_quantiles
    rng = np.random.default_rng(seed + 1)
    boot = {"g_min": [], "g_max": [], "read": []}
    bm = {k: [] for k in dirs}
    bc = {k: [] for k in dirs}
    for _ in range(n_boot):
        res, rids, poss, allb = [], [], [], []
        per = {}
        for name, df in dirs.items():
            idx = idx_all[name]
            pick = rng.choice(idx, size=idx.size, replace=True)
            x, d, rid, pos = ramp_steps(ramps, pick)
            b, _ = fit_mean_poly(x / g_max, d, df.mean_step.degree)
            r = d - _vander(x / g_max, df.mean_step.degree) @ b
            per[name] = (x, r, b)
            res.append(r)
            rids.append(rid + (0 if name == "up" else 10 ** 6))
            poss.append(pos)
            allb.append(np.concatenate([ramps[i] for i in pick]))
        rv = max(_lag1_read_var(np.concatenate(res), np.concatenate(rids), np.concatenate(poss)), 0.0)
        ab = np.concatenate(allb)
        boot["g_min"].append(np.quantile(ab, qlo))
        boot["g_max"].append(np.quantile(ab, qhi))
        boot["read"].append(np.sqrt(rv))
        for name, (x, r, b) in per.items():
            c, _, _ = fit_sigma_poly(x / g_max, r * r, dirs[name].c2c_sigma.degree, extra=2 * rv)
            bm[name].append(_vander(grid / g_max, len(b) - 1) @ b)
            bc[name].append(np.maximum(_vander(grid / g_max, len(c) - 1) @ c, 0))
    for name in dirs:
        dirs[name].boot_mean = np.array(bm[name]) if n_boot else np.empty((0, grid.size))
        dirs[name].boot_c2c = np.array(bc[name]) if n_boot else np.empty((0, grid.size))
    return boot


def _ci95(a) -> tuple[float, float]:
    a = np.asarray(a, float)
    return (float(np.quantile(a, 0.025)), float(np.quantile(a, 0.975))) if a.size else (np.nan, np.nan)


def fit_ramps(data: RampData, *, seed: int = 0, n_boot: int = 100, level_z: float = 3.0, k_folds: int = 5,
              pv_cells: int = 400, pv_targets: int = 16, verify_tol_us=None, max_pulses: int = 200,
              range_quantiles=(0.005, 0.995), degrees: dict | None = None) -> RampFit:
    """Fit range, pulse response and read noise to pulse ramps; simulate program-and-verify.

    Args:
        data: from :func:`calibration.readers.read_pulse_ramps`.
        seed: folds, bootstrap and program-and-verify simulation.
        n_boot: bootstrap resamples over ramps (intervals of range, steps, read noise).
        level_z: separation budget for distinguishable levels.
        pv_cells, pv_targets: size of the program-and-verify simulation.
        verify_tol_us: acceptance window of the verify read (default: half the median mean
            step, at least twice the read noise).
        max_pulses: pulses allowed per cell in program-and-verify.
        range_quantiles: quantiles of all readings taken as g_min and g_max.
        degrees: force degrees {"mean_step": d, "c2c_sigma": d}.
    """
    degrees = dict(degrees or {})
    notes: list[str] = []
    allg = np.concatenate(data.ramps)
    data = _segment_short_polarities(data, notes)
    ramps = data.ramps
    qlo, qhi = range_quantiles
    g_min = float(np.quantile(allg, qlo))
    g_max = float(np.quantile(allg, qhi))
    if not g_max > g_min:
        raise ValueError("pulse ramps span no conductance range (all readings equal)")
    idx_all = {"up": np.flatnonzero(data.direction > 0), "down": np.flatnonzero(data.direction < 0)}
    read_var, first = _ramp_read_var(ramps, idx_all, g_max, notes, seed=seed, k_folds=k_folds, degrees=degrees)
    grid = np.linspace(g_min, g_max, 41)
    dirs = {}
    for name, idx in idx_all.items():
        if idx.size == 0:
            continue
        mean, c2c, (x, d, rid, pos) = _fit_direction(ramps, idx, g_max, read_var, seed, k_folds,
                                                     _polarity_degrees(degrees, idx.size))
        dirs[name] = DirectionFit(direction=1 if name == "up" else -1, n_ramps=int(idx.size), n_steps=int(d.size),
                                  mean_step=mean, c2c_sigma=c2c, boot_mean=np.empty((0, grid.size)),
                                  boot_c2c=np.empty((0, grid.size)))
    if not dirs:
        raise ValueError("no ramps")
    boot = _ramp_bootstrap(ramps, idx_all, dirs, grid, g_max, range_quantiles, n_boot, seed)
    read_sigma = float(np.sqrt(read_var))
    pv, off, sig = _program_verify_fit(
        {name: (df.mean_step, df.c2c_sigma) for name, df in dirs.items()}, g_min, g_max, read_sigma, notes, "ramps",
        seed=seed, k_folds=k_folds, pv_cells=pv_cells, pv_targets=pv_targets, verify_tol_us=verify_tol_us,
        max_pulses=max_pulses)

    def total_sigma(g):
        return np.sqrt(sig(g) ** 2 + read_var)

    levels = distinguishable_levels(g_min, g_max, total_sigma, level_z)
    gmin_ci, gmax_ci = _ci95(boot["g_min"]), _ci95(boot["g_max"])
    # levels interval: narrowest and widest plausible ranges with the same spread
    lv_lo = distinguishable_levels(gmin_ci[1], gmax_ci[0], total_sigma, level_z).size if n_boot else levels.size
    lv_hi = distinguishable_levels(gmin_ci[0], gmax_ci[1], total_sigma, level_z).size if n_boot else levels.size
    raw = {"all_g_us": allg, "pv_targets_us": pv["targets_us"], "pv_errors_us": pv["errors_us"], "grid_us": grid}
    for name, (mean, x, d, rid, pos) in first.items():
        raw[f"{name}_step_g_us"] = x
        raw[f"{name}_step_us"] = d
        raw[f"{name}_step_ramp"] = rid
    return RampFit(
        g_min_us=g_min, g_max_us=g_max, g_range_ci={"g_min_us": gmin_ci, "g_max_us": gmax_ci},
        read_sigma_us=read_sigma, read_sigma_ci=_ci95(boot["read"]), directions=dirs, grid_us=grid, pv=pv,
        prog_offset=off, prog_sigma=sig, levels_us=levels, levels_ci=(lv_lo, lv_hi), level_z=level_z, raw=raw,
        notes=notes)


# --------------------------------------------------------------------------- dG lookup tables

def _pad_tails(cdf, q):
    """CDF points extended to 0 and 1 with the first / last dG row repeated (constant tails)."""
    p = np.asarray(cdf, float)
    q = np.asarray(q, float)
    if p[0] > 0:
        p, q = np.concatenate([[0.0], p]), np.concatenate([q[:1], q])
    if p[-1] < 1:
        p, q = np.concatenate([p, [1.0]]), np.concatenate([q, q[-1:]])
    return p, q


def quantile_moments(cdf, q):
    """Mean and standard deviation of dG from a tabulated quantile function.

    Q(p) is linear between the CDF points (p_i, q_i), which is the distribution that
    inverse-CDF sampling of the table with linear interpolation draws from, and constant
    beyond the first and last points: the probability below p_0 sits at q_0, above p_last
    at q_last (nothing is extrapolated past the tabulated extremes, so a table that stops
    short of 0 and 1 gives a narrower spread than the device's). On each segment dG is
    then uniform between q_i and q_{i+1}, so the moments are exact:

        mean = sum_i dp_i (q_i + q_{i+1}) / 2                 (the trapezoid rule on Q(p) dp)
        var  = sum_i dp_i [((q_i + q_{i+1}) / 2 - mean)^2 + (q_{i+1} - q_i)^2 / 12]

    Args:
        cdf: (n_cdf,) increasing CDF points in [0, 1].
        q: (n_cdf,) or (n_cdf, n_bins) dG at those points, non-decreasing down the rows.

    Returns:
        (mean, std), each of shape q.shape[1:].

    Example:
        >>> quantile_moments([0.0, 1.0], [1.0, 3.0])  # uniform on [1, 3]
        (2.0, 0.5773502691896257)
    """
    p, q = _pad_tails(cdf, q)
    dp = np.diff(p).reshape((-1,) + (1,) * (q.ndim - 1))
    a, b = q[:-1], q[1:]
    mid = 0.5 * (a + b)
    mean = np.sum(dp * mid, axis=0)
    var = np.sum(dp * ((mid - mean) ** 2 + (b - a) ** 2 / 12.0), axis=0)
    if np.ndim(mean) == 0:
        return float(mean), float(np.sqrt(var))
    return mean, np.sqrt(var)


def sample_quantile_table(cdf, q, n: int, rng) -> np.ndarray:
    """n draws of dG from one tabulated quantile function (inverse-CDF sampling with the same
    linear interpolation and constant tails as :func:`quantile_moments`)."""
    p, qq = _pad_tails(cdf, q)
    return np.interp(rng.random(n), p, qq)


@dataclass
class TableDirectionFit:
    """Step laws of one pulse polarity fitted to a dG lookup table."""

    direction: int
    source: str
    table_mean_us: np.ndarray  # (n_bins,) mean dG per bin, from the quantile function
    table_std_us: np.ndarray
    mean_step: PolyFit
    c2c_sigma: PolyFit
    tail_mass: float  # probability outside the tabulated CDF range (put at the end values)


@dataclass(kw_only=True)
class DgLookupFit(PulseResponseFit):
    """Everything fitted from dG lookup tables (read noise is not in a table: 0, or the
    user's value when ``read_sigma_user``)."""

    g_bins_us: np.ndarray
    read_sigma_user: bool = False

    def parameter_rows(self) -> list[dict]:
        """params.csv rows: range (first / last bin), read noise (user or 0), step laws per
        polarity, program-and-verify, levels."""
        rows = [param_row("g_min_us", self.g_min_us, unit="uS", method="first conductance bin of the table"),
                param_row("g_max_us", self.g_max_us, unit="uS", method="last conductance bin of the table"),
                param_row("read_sigma_us", self.read_sigma_us, unit="uS",
                          method="user" if self.read_sigma_user else "not in a dG lookup table: unknown, set to 0")]
        for name, df in self.directions.items():
            for pf in (df.mean_step, df.c2c_sigma):
                rows += poly_rows(dataclasses.replace(pf, name=f"{name}.{pf.name}"), self.g_max_us, self.g_min_us)
        return rows + _pv_rows(self) + [_levels_row(self)]


def _crossing_pulses(dirs: dict, g_min: float, g_max: float, floor: int = 200) -> int:
    """Default pulse budget of program-and-verify: twice the pulses the mean step needs to
    cross the targets' span (the middle 90 % of the range), integral dG / |mu(G)|, in the
    slower polarity; at least ``floor``. A mean step of the wrong sign inside the span
    (the crossing never ends) gives ``floor``."""
    g = np.linspace(g_min + 0.05 * (g_max - g_min), g_max - 0.05 * (g_max - g_min), 401)
    worst = 0.0
    for df in dirs.values():
        rate = df.direction * df.mean_step(g)
        if np.any(rate <= 0):
            return floor
        worst = max(worst, float(np.trapezoid(1.0 / rate, g)))
    return int(max(floor, np.ceil(2.0 * worst)))


def fit_dg_lookup(data: DgLookupData, *, seed: int = 0, level_z: float = 3.0, k_folds: int = 5, pv_cells: int = 400,
                  pv_targets: int = 16, verify_tol_us=None, max_pulses: int | None = None,
                  degrees: dict | None = None, read_sigma_us: float | None = None) -> DgLookupFit:
    """Fit step laws to dG lookup tables and simulate program-and-verify with them.

    Per bin, the mean and standard deviation of dG come from the quantile function
    (:func:`quantile_moments`). The mean step mu(G) and the cycle-to-cycle spread
    sigma_c2c(G) are polynomials in G / g_max fitted by least squares to those per-bin
    values, the degree (0-3) chosen by cross-validation over held-out bins. A table carries
    no sample counts, so the standard errors describe the scatter of the bins about the
    polynomial, not the number of pulses behind the table. The range is the first and last
    bin. Read noise is not in a table: it is set to 0 (noted), or to ``read_sigma_us`` when
    given (user-supplied, constant over G; noted). Program-and-verify and the
    distinguishable levels are as for pulse ramps; the levels' interval is from the
    Monte-Carlo standard error of prog_sigma.

    Args:
        data: from :func:`calibration.readers.read_dg_lookup`.
        seed: folds and the program-and-verify simulation.
        level_z: separation budget for distinguishable levels.
        k_folds: cross-validation folds over bins.
        pv_cells, pv_targets, verify_tol_us: as for :func:`fit_ramps`.
        max_pulses: pulses allowed per cell in program-and-verify; default
            :func:`_crossing_pulses` (a table's device may need hundreds of pulses to cross
            its range).
        degrees: force degrees {"mean_step": d, "c2c_sigma": d}.
        read_sigma_us: read-noise standard deviation (uS, constant over G, > 0) from outside
            the table; used by the verify reads of program-and-verify (as the ramps' fitted
            read noise is) and in the levels. None: 0.

    Returns:
        DgLookupFit.
    """
    degrees = dict(degrees or {})
    notes: list[str] = []
    g = np.asarray(data.g_bins_us, float)
    g_min, g_max = float(g[0]), float(g[-1])
    bins = np.arange(g.size)
    dirs = {}
    for name, tab in data.tables.items():
        m, s = quantile_moments(tab.cdf, tab.dg_us)
        tail = float(tab.cdf[0] + 1.0 - tab.cdf[-1])
        if tail > 0:
            notes.append(f"{tab.source}: the CDF points cover [{tab.cdf[0]:g}, {tab.cdf[-1]:g}]; the probability "
                         f"{tail:.3g} outside sits at the first / last tabulated dG (no extrapolation), which narrows "
                         "the spread")
        how = "least squares on the per-bin {} of dG (quantile function over the CDF points)"
        mean = fit_mean_cv("mean_step", g, m, bins, g_max, "uS/pulse", seed=seed, k_folds=k_folds,
                           degree=degrees.get("mean_step"))
        c2c = fit_mean_cv("c2c_sigma", g, s, bins, g_max, "uS/pulse", seed=seed, k_folds=k_folds,
                          degree=degrees.get("c2c_sigma"))
        mean.method, c2c.method, c2c.lo = how.format("mean"), how.format("std"), 0.0
        dirs[name] = TableDirectionFit(direction=tab.direction, source=tab.source, table_mean_us=m, table_std_us=s,
                                       mean_step=mean, c2c_sigma=c2c, tail_mass=tail)
    if max_pulses is None:
        max_pulses = _crossing_pulses(dirs, g_min, g_max)
    if read_sigma_us is None:
        read_sigma = 0.0
        notes.append("a dG lookup table holds no repeated reads: read noise is unknown and set to 0 (the device model "
                     "has no read noise; program-and-verify reads are exact); add it from a read-noise measurement "
                     "(--read-noise-us)")
    else:
        read_sigma = float(read_sigma_us)
        if not (np.isfinite(read_sigma) and read_sigma > 0):
            raise ValueError(f"read_sigma_us must be > 0 and finite, got {read_sigma_us}")
        notes.append(f"a dG lookup table holds no repeated reads: read noise sigma_read = {read_sigma:g} uS (constant "
                     "over G) is user-supplied (--read-noise-us), not fitted; program-and-verify reads carry it and "
                     "the device model has it")
    pv, off, sig = _program_verify_fit(
        {name: (df.mean_step, df.c2c_sigma) for name, df in dirs.items()}, g_min, g_max, read_sigma, notes, "table",
        seed=seed, k_folds=k_folds, pv_cells=pv_cells, pv_targets=pv_targets, verify_tol_us=verify_tol_us,
        max_pulses=max_pulses)

    def total_sigma(gv, k=0.0):
        return np.sqrt(np.maximum(sig(gv) + k * sig.se(gv), 0.0) ** 2 + read_sigma ** 2)

    levels = distinguishable_levels(g_min, g_max, total_sigma, level_z)
    lv_lo = distinguishable_levels(g_min, g_max, lambda gv: total_sigma(gv, Z95), level_z).size
    lv_hi = distinguishable_levels(g_min, g_max, lambda gv: total_sigma(gv, -Z95), level_z).size
    raw = {"g_bins_us": g, "pv_targets_us": pv["targets_us"], "pv_errors_us": pv["errors_us"], "levels_us": levels}
    for name, tab in data.tables.items():
        raw[f"{name}_cdf"] = tab.cdf
        raw[f"{name}_dg_us"] = tab.dg_us
        raw[f"{name}_table_mean_us"] = dirs[name].table_mean_us
        raw[f"{name}_table_std_us"] = dirs[name].table_std_us
    return DgLookupFit(g_min_us=g_min, g_max_us=g_max, g_bins_us=g, read_sigma_us=read_sigma,
                       read_sigma_user=read_sigma_us is not None, directions=dirs,
                       grid_us=np.linspace(g_min, g_max, 41), pv=pv, prog_offset=off, prog_sigma=sig,
                       levels_us=levels, levels_ci=(lv_lo, lv_hi), level_z=level_z, raw=raw, notes=notes)
