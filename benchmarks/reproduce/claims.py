"""The statistics of the report: the paper's claims per sweep and the deployment table, with paired-seed CIs.

Everything the report quotes is computed here from the result files (nothing typed by hand).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .profiles import _DEVICE_KINDS, _noiseless
from .runner import _now
from .stages import _deploy_done

if TYPE_CHECKING:
    from .stages import Study


def amplitude(level: float, convention: str) -> float:
    """A noise level as an amplitude that grows with the noise (snr_db -> 10^(-dB/20); others as given)."""
    if convention == "snr_db":
        return 0.0 if math.isinf(level) and level > 0 else 10 ** (-level / 20)
    return float(level)


def paired_ci(diffs: np.ndarray, level: float = 0.95, m: int = 1) -> dict:
    """Mean of paired differences with a Student-t CI (Bonferroni over ``m`` comparisons when m > 1)."""
    from scipy import stats

    d = np.asarray(diffs, float)
    d = d[np.isfinite(d)]
    n = int(d.size)
    out = {"mean": float(d.mean()) if n else math.nan, "n": n, "ci_low": math.nan, "ci_high": math.nan}
    if n >= 2:
        alpha = (1 - level) / m
        half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * float(d.std(ddof=1)) / math.sqrt(n)
        out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    return out


def _mean_ci(values: np.ndarray) -> dict:
    from study.results import mean_ci

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    m, _, lo, hi = mean_ci(v)
    if v.size < 2:
        lo = hi = math.nan
    return {"mean": m, "ci_low": lo, "ci_high": hi, "n": int(v.size)}


def _verdict(tests: list[dict], what: str) -> tuple[str, str]:
    """confirmed (a Bonferroni CI above 0) / suggestive (only an unadjusted one) / not confirmed / ..."""
    if not tests or all(t["n"] < 2 for t in tests):
        return "not measurable", f"fewer than 2 paired seeds: no confidence interval for {what}"
    if any(t["bonferroni"]["ci_low"] > 0 for t in tests):
        return "confirmed", f"at least one {what} is above 0 with its Bonferroni-adjusted 95% CI"
    if any(t["ci_low"] > 0 for t in tests):
        return "suggestive", (f"some {what} has its unadjusted 95% CI above 0, but none survives the Bonferroni "
                              f"adjustment over {len(tests)} comparisons")
    if all(t["ci_high"] < 0 for t in tests):
        return "not confirmed (contradicted)", f"every {what} is below 0 with 95% confidence"
    return "not confirmed", f"no {what} has its 95% CI above 0"


def _read_sweep(h5: Path) -> tuple[np.ndarray, dict]:
    """Per-seed accuracies (mean over draws; NaN for missing jobs), shape (arch, sigma_train, seed, sigma_val),
    and the sweep's coordinates and settings from its results.h5."""
    import warnings

    import h5py

    warnings.simplefilter("ignore", RuntimeWarning)  # means of unfinished (all-NaN) cells are NaN on purpose
    with h5py.File(h5, "r") as f:
        acc = f["accuracy"][()]
        info = {"archs": list(f["arch"].asstr()[()]), "sigma_train": [float(v) for v in f["sigma_train"][()]],
                "sigma_val": [float(v) for v in f["sigma_val"][()]], "seeds": [int(v) for v in f["seed"][()]],
                "convention": str(f.attrs["noise_convention"]), "n_jobs_finished": int(f.attrs["n_jobs_finished"]),
                "n_jobs": int(f.attrs["n_jobs"]), "data": json.loads(f.attrs["data"]) if "data" in f.attrs else {}}
    return (np.nanmean(acc, axis=-1) if acc.size else acc), info


def _job_seconds(folder: Path) -> dict[str, float]:
    """Sum of the finished jobs' own wall times (total and training), from ``folder/jobs/*.json``."""
    job_s = {"total": 0.0, "train": 0.0}
    for jf in sorted((folder / "jobs").glob("*.json")):
        try:
            sec = json.loads(jf.read_text(encoding="utf-8")).get("seconds", {})
        except (OSError, json.JSONDecodeError):
            continue
        job_s["total"] += float(sec.get("total", 0.0))
        job_s["train"] += float(sec.get("train", 0.0))
    return job_s


def _slope_ci(x: np.ndarray, y: np.ndarray) -> dict:
    """OLS slope of y on x over the finite y, with its 95% CI (NaN with fewer than 3 points or 2 x values)."""
    ok = np.isfinite(y)
    slope = {"slope": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": int(ok.sum())}
    if ok.sum() >= 3 and len(set(x[ok])) >= 2:
        from scipy import stats

        lr = stats.linregress(x[ok], y[ok])
        half = float(stats.t.ppf(0.975, ok.sum() - 2)) * lr.stderr
        slope = {"slope": float(lr.slope), "ci_low": float(lr.slope - half), "ci_high": float(lr.slope + half),
                 "n": int(ok.sum())}
    return slope


def _claim1(ma: np.ndarray, info: dict, i0: int, v0: int, noisy_st: list[int], noisy_sv: list[int]) -> dict:
    """Claim 1: the drop D = acc(sigma_val=0) - mean over sigma_val>0 shrinks as sigma_train grows.

    ``ma``: one architecture's per-seed accuracies (sigma_train, seed, sigma_val).
    """
    st, seeds, conv = info["sigma_train"], info["seeds"], info["convention"]
    if noisy_sv:
        drop = ma[:, :, v0] - np.mean(ma[:, :, noisy_sv], axis=-1)  # (S, K)
    else:
        drop = np.full(ma.shape[:2], np.nan)
    per_level = [{"sigma_train": st[i], "drop": _mean_ci(drop[i]),
                  "accuracy_noiseless": _mean_ci(ma[i, :, v0]),
                  "accuracy_mean_over_sigma_val": _mean_ci(np.mean(ma[i], axis=-1))} for i in range(len(st))]
    x = np.array([amplitude(st[i], conv) for i in range(len(st)) for _ in seeds])
    slope = _slope_ci(x, drop.ravel())
    means = [p["drop"]["mean"] for p in per_level]
    rho = math.nan
    if sum(np.isfinite(means)) >= 3:
        from scipy import stats

        fin = [k for k, v in enumerate(means) if np.isfinite(v)]
        rho = float(stats.spearmanr([amplitude(st[k], conv) for k in fin], [means[k] for k in fin]).statistic)
    diffs1 = [dict(paired_ci(drop[i] - drop[i0]), sigma_train=st[i],
                   bonferroni=paired_ci(drop[i] - drop[i0], m=len(noisy_st))) for i in noisy_st]
    if slope["n"] < 3 or not np.isfinite(slope["ci_high"]):
        v1 = ("not measurable", "too few finished jobs for a regression")
    elif slope["ci_high"] < 0 and rho <= -0.9:
        v1 = ("confirmed", "the drop falls with sigma_train: regression slope < 0 with 95% confidence and "
                           "Spearman rho of the mean drops <= -0.9")
    elif slope["ci_high"] < 0:
        v1 = ("partly confirmed", "regression slope < 0 with 95% confidence, but the mean drops are not "
                                  "near-monotone in sigma_train (Spearman rho > -0.9)")
    elif slope["ci_low"] > 0:
        v1 = ("not confirmed (contradicted)", "the drop grows with sigma_train (slope > 0 with 95% confidence)")
    else:
        v1 = ("not confirmed", "the regression slope's 95% CI includes 0")
    return {"statistic": "drop = accuracy at sigma_val=0 minus the mean accuracy over sigma_val>0, per "
                         "seed; OLS slope of drop vs sigma_train amplitude; paired differences "
                         "drop(sigma_train) - drop(0)",
            "per_sigma_train": per_level, "slope": slope, "spearman_rho_mean_drop": rho,
            "vs_conventional": diffs1, "verdict": v1[0], "reason": v1[1]}


def _claim2(ma: np.ndarray, arch: str, info: dict, i0: int, v0: int, noisy_st: list[int],
            clean: dict | None) -> dict:
    """Claim 2: DNI improves accuracy without inference noise (on the clean stage's larger test set if complete)."""
    st, seeds = info["sigma_train"], info["seeds"]
    source = "sweep"
    base = ma[:, :, v0].copy()  # (S, K)
    if clean:
        full = np.array([[clean.get((arch, st[i], seeds[k]), math.nan) for k in range(len(seeds))]
                         for i in range(len(st))])
        if np.isfinite(full[np.isfinite(base)]).all() and np.isfinite(full).any():
            base, source = full, "clean"
    tests2 = []
    for i in noisy_st:
        d = base[i] - base[i0]
        tests2.append(dict(paired_ci(d), sigma_train=st[i], bonferroni=paired_ci(d, m=len(noisy_st))))
    v2 = _verdict(tests2, "noiseless-accuracy gain of a DNI model over the conventional one")
    return {"statistic": "paired difference (per seed) of noiseless test accuracy, DNI sigma_train vs "
                         "sigma_train=0", "source": source,
            "accuracy_noiseless": {f"{st[i]:g}": _mean_ci(base[i]) for i in range(len(st))},
            "tests": tests2, "verdict": v2[0], "reason": v2[1]}


def _claim3(ma: np.ndarray, info: dict, i0: int, v0: int, noisy_st: list[int], noisy_sv: list[int]) -> dict:
    """Claim 3: some (sigma_train, sigma_val > 0) beat conventional training evaluated without noise."""
    st, sv = info["sigma_train"], info["sigma_val"]
    tests3 = []
    for i in noisy_st:
        for j in noisy_sv:
            d = ma[i, :, j] - ma[i0, :, v0]
            tests3.append(dict(paired_ci(d), sigma_train=st[i], sigma_val=sv[j],
                               bonferroni=paired_ci(d, m=len(noisy_st) * len(noisy_sv))))
    v3 = _verdict(tests3, "(sigma_train, sigma_val>0) pair's gain over conventional training at sigma_val=0")
    best3 = max(tests3, key=lambda t: t["mean"] if np.isfinite(t["mean"]) else -np.inf) if tests3 else None
    return {"statistic": "paired difference (per seed): accuracy at (sigma_train>0, sigma_val>0) minus "
                         "the conventional model's (sigma_train=0) at sigma_val=0",
            "tests": tests3, "best": best3, "verdict": v3[0], "reason": v3[1]}


def sweep_claims(h5: Path, clean: dict | None = None) -> dict:
    """The paper's three claims from a sweep's results.h5 (per architecture), with paired-seed CIs.

    Per-seed accuracies (mean over draws) are paired by seed across sigma_train: a seed fixes the
    weight init, the batch order and the evaluation draw seeds, so the models of one seed differ
    only in the training noise.

    Args:
        clean: optional ``{(arch, sigma_train, seed): accuracy}`` without noise on a larger test
            set (the ``clean`` stage); used for claim 2 when complete.
    """
    m, info = _read_sweep(h5)
    st, sv, conv = info["sigma_train"], info["sigma_val"], info["convention"]
    i0 = next((i for i, v in enumerate(st) if _noiseless(v, conv)), None)
    v0 = next((j for j, v in enumerate(sv) if _noiseless(v, conv)), None)
    out: dict[str, Any] = {"file": str(h5), "convention": conv, "sigma_train": st, "sigma_val": sv,
                           "seeds": info["seeds"], "n_jobs_finished": info["n_jobs_finished"],
                           "n_jobs": info["n_jobs"], "data": info["data"], "job_seconds": _job_seconds(Path(h5).parent),
                           "archs": {}}
    if i0 is None or v0 is None:
        out["error"] = "the sweep needs a noiseless sigma_train and sigma_val level"
        return out
    noisy_st = [i for i in range(len(st)) if i != i0]
    noisy_sv = [j for j in range(len(sv)) if j != v0]
    for a, arch in enumerate(info["archs"]):
        out["archs"][arch] = {"claim1": _claim1(m[a], info, i0, v0, noisy_st, noisy_sv),
                              "claim2": _claim2(m[a], arch, info, i0, v0, noisy_st, clean),
                              "claim3": _claim3(m[a], info, i0, v0, noisy_st, noisy_sv)}
    return out


def _read_clean(study: Study) -> dict:
    out = {}
    for argv in study.clean_argvs():
        p = Path(argv[argv.index("--out") + 1]) / "deploy.json"
        if not _deploy_done(argv):
            continue
        d = json.loads(p.read_text(encoding="utf-8"))
        job = d["trained_with"]
        out[(job["arch"], float(job["sigma_train"]), int(job["seed"]))] = float(d["accuracy_digital"])
        out.setdefault("_n_test", d["data"].get("n_test"))
    return out


def deploy_table(study: Study) -> dict:
    """Per (preset, arch, model kind, compensation, time): accuracy over seeds (mean of instances x draws)."""
    import h5py

    root = study.out / "deploy"
    per: dict[tuple, dict[int, np.ndarray]] = {}
    times = None
    for h5 in sorted(root.glob("*/*/deploy.h5")):
        preset, name = h5.parent.parent.name, h5.parent.name
        arch, rest = name.split("_", 1)
        kind, seed = rest.rsplit("_seed", 1)
        with h5py.File(h5, "r") as f:
            acc = f["accuracy"][()]  # (comp, time, instance, draw)
            comp = [bool(c) for c in f["drift_compensation"][()]]
            times = [float(t) for t in f["time_s"][()]]
            digital = float(f.attrs["accuracy_digital"])
        for c, cv in enumerate(comp):
            per.setdefault((preset, arch, kind, cv), {})[int(seed)] = acc[c].mean(axis=(1, 2))
            per.setdefault((preset, arch, kind, "digital"), {})[int(seed)] = np.array([digital])
    rows = []
    for (preset, arch, kind, cv), seeds in sorted(per.items(), key=lambda kv: str(kv[0])):
        if cv == "digital":
            continue
        arr = np.array([seeds[s] for s in sorted(seeds)])  # (seeds, time)
        for t, ts in enumerate(times or []):
            rows.append({"preset": preset, "arch": arch, "model": kind, "drift_compensation": cv, "time_s": ts,
                         **{k: v for k, v in _mean_ci(arr[:, t]).items()}, "seeds": sorted(seeds)})
    # paired by seed: each DNI kind minus the references it is compared with, per time
    refs = {**{k: ("dni_paper", "conventional") for k in _DEVICE_KINDS}, "dni_paper": ("conventional",)}
    comparisons = []
    for (preset, arch, kind, cv), seeds in per.items():
        if kind not in refs or cv == "digital":
            continue
        for other in refs[kind]:
            ref = per.get((preset, arch, other, cv))
            if not ref:
                continue
            common = sorted(set(seeds) & set(ref))
            for t, ts in enumerate(times or []):
                d = np.array([seeds[s][t] - ref[s][t] for s in common])
                comparisons.append({"preset": preset, "arch": arch, "a": kind, "b": other,
                                    "drift_compensation": cv, "time_s": ts, **paired_ci(d), "seeds": common})
    digital = {f"{k[1]}/{k[2]}": _mean_ci(np.concatenate(list(v.values())))
               for k, v in per.items() if k[3] == "digital" and k[0] == (study.p["deploy"]["presets"].split(",")[0])}
    return {"rows": rows, "comparisons": comparisons, "times_s": times, "digital": digital}


def compute_claims(study: Study) -> dict:
    """Everything the report quotes, computed from the result files (nothing typed by hand)."""
    out: dict[str, Any] = {"generated": _now(), "profile": study.p}
    if (study.out / "mnist" / "results.h5").exists():
        clean = _read_clean(study)
        n_test_clean = clean.pop("_n_test", None)
        out["mnist"] = sweep_claims(study.out / "mnist" / "results.h5", clean)
        out["mnist"]["clean_n_test"] = n_test_clean
        out["mnist"]["clean"] = {f"{a}/{s:g}/{k}": v for (a, s, k), v in clean.items()}
    for name, path in (("speech", study.out / "speech" / "results.h5"),
                       *((f"conventions/{c}", study.out / "conventions" / c / "results.h5")
                         for c in study.p["conventions"]["levels"]),
                       ("device", study.out / f"device_{study.p['device']['preset']}" / "results.h5")):
        if path.exists():
            out[name] = sweep_claims(path)
    if (study.out / "deploy").exists():
        out["deploy"] = deploy_table(study)
        try:
            out["deploy"]["choice"] = json.loads((study.out / "deploy" / "choice.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            pass
    disk = study.runner._read_log().get("stages", {})
    out["stages"] = {**disk, **{k: v for k, v in study.runner.log.get("stages", {}).items()
                                if k in study.runner.touched}}
    return out
