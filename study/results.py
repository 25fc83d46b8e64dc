"""Result files of the main job: atomic writes, per-job JSON, HDF5, CSV, plots, terminal tables.

Sweep output folder (see docs/MAIN_JOB.md):

    sweep.json                  the sweep's settings, versions, executor (rewritten each run)
    jobs/<job_id>.json          one finished job: accuracies (sigma_val x draws), history, meta
    checkpoints/<job_id>.pt     its trained model (study.experiment.save_checkpoint)
    results.h5                  every raw accuracy, dims (arch, sigma_train, seed, sigma_val, draw)
    summary.csv                 one row per (arch, sigma_train, sigma_val)
    heatmap.png                 accuracy over sigma_train x sigma_val, one panel per architecture
    curves_<arch>.png           accuracy vs sigma_val, one line per sigma_train

Every file is written atomically through :mod:`xbarsim.files` (a temp name in the same folder,
then ``os.replace``): a reader (or a resumed sweep) sees either the old file or the new one.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from xbarsim.files import atomic_path, atomic_write_bytes, atomic_write_text

__all__ = [
    "write_json",
    "json_default",
    "save_png",
    "level_text",
    "SUMMARY_COLUMNS",
    "mean_ci",
    "summarise",
    "write_summary_csv",
    "read_summary_csv",
    "write_sweep_h5",
    "plot_heatmaps",
    "plot_curves",
    "format_table",
    "write_history",
    "plot_history",
    "write_deploy",
    "plot_deploy",
]

#: columns of summary.csv, in order
SUMMARY_COLUMNS = ("arch", "sigma_train", "sigma_val", "accuracy_mean", "accuracy_std", "ci_low", "ci_high",
                   "n_seeds", "n_draws")


# --------------------------------------------------------------------------- files
def json_default(obj: Any):
    """``json.dumps(default=...)`` for result files: numpy arrays and scalars, paths."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write a result JSON atomically (indent 1; numpy values allowed; inf/nan as JSON Infinity/NaN).

    The sweep's settings hold ``inf`` for ``--convention snr_db``, so non-finite numbers are
    written as Python's json writes them (unlike :func:`xbarsim.files.atomic_write_json`).
    """
    atomic_write_text(path, json.dumps(obj, indent=1, default=json_default) + "\n")


#: the name this writer had before it moved to study/ (kept for old scripts)
atomic_write_json = write_json


def save_png(fig, path: str | os.PathLike) -> None:
    """Save a matplotlib figure as PNG (120 dpi, tight box) atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def level_text(v: float, *, exact: bool = False) -> str:
    """A noise level as text: ``"inf"``/``"-inf"``, else ``f"{v:g}"`` (plots, tables) or ``repr`` (``exact``).

    ``exact=True`` round-trips the float (job ids, file names: ``0.1`` and ``0.1000001`` differ).
    """
    v = float(v)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v) if exact else f"{v:g}"


# --------------------------------------------------------------------------- statistics
def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, std (ddof=1), ci_low, ci_high): Student-t interval on the mean of ``values``.

    With one value the interval collapses to the value itself (std 0).
    """
    from scipy import stats

    v = np.asarray(values, dtype=float).ravel()
    m = float(v.mean())
    if v.size < 2:
        return m, 0.0, m, m
    s = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1)) * s / math.sqrt(v.size)
    return m, s, m - half, m + half


def summarise(arch: list[str], sigma_train: list[float], sigma_val: list[float], acc: np.ndarray,
              level: float = 0.95) -> list[dict]:
    """Rows of summary.csv from ``acc`` of shape (arch, sigma_train, seed, sigma_val, draw).

    accuracy_mean and accuracy_std are over all seeds x draws of a cell. The confidence
    interval is a Student-t interval on the mean: over the per-seed means when there are
    >= 2 seeds (it then covers training variability), else over the draws of the one seed.
    Cells with missing jobs (NaN) use only the seeds that finished.
    """
    rows = []
    for a, name in enumerate(arch):
        for i, st in enumerate(sigma_train):
            for j, sv in enumerate(sigma_val):
                cell = acc[a, i, :, j, :]
                done = ~np.isnan(cell).any(axis=1)
                cell = cell[done]
                if cell.size == 0:
                    continue
                mean, std = float(cell.mean()), float(cell.std(ddof=1)) if cell.size > 1 else 0.0
                if cell.shape[0] >= 2:
                    _, _, lo, hi = mean_ci(cell.mean(axis=1), level)
                else:
                    _, _, lo, hi = mean_ci(cell[0], level)
                rows.append({"arch": name, "sigma_train": float(st), "sigma_val": float(sv),
                             "accuracy_mean": mean, "accuracy_std": std, "ci_low": lo, "ci_high": hi,
                             "n_seeds": int(cell.shape[0]), "n_draws": int(cell.shape[1])})
    return rows


def write_summary_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """summary.csv with :data:`SUMMARY_COLUMNS` (floats with 6 significant digits)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for r in rows:
        w.writerow([f"{r[c]:.6g}" if isinstance(r[c], float) else r[c] for c in SUMMARY_COLUMNS])
    atomic_write_text(path, buf.getvalue())


def read_summary_csv(path: str | os.PathLike) -> list[dict]:
    """Read summary.csv back (numbers as float/int)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        d: dict[str, Any] = {"arch": r["arch"]}
        for c in SUMMARY_COLUMNS[1:]:
            d[c] = int(r[c]) if c.startswith("n_") else float(r[c])
        out.append(d)
    return out


# --------------------------------------------------------------------------- HDF5
def write_sweep_h5(path: str | os.PathLike, *, arch: list[str], sigma_train: list[float], seeds: list[int],
                   sigma_val: list[float], acc: np.ndarray, clean: np.ndarray, history: dict[str, np.ndarray],
                   attrs: dict[str, Any]) -> None:
    """results.h5: raw accuracies with their coordinates; settings as JSON attributes.

    Datasets: ``accuracy`` (arch, sigma_train, seed, sigma_val, draw) float64, NaN where a
    job is missing; ``accuracy_noiseless`` (arch, sigma_train, seed): test accuracy with the
    output noise off; ``history/<name>`` (arch, sigma_train, seed, epoch); coordinates ``arch``,
    ``sigma_train``, ``seed``, ``sigma_val``, ``draw``. Root attributes: every key of ``attrs``
    (dicts as JSON strings).
    """
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("arch", data=np.array(arch, dtype=h5py.string_dtype()))
            f.create_dataset("sigma_train", data=np.asarray(sigma_train, dtype=float))
            f.create_dataset("seed", data=np.asarray(seeds, dtype=np.int64))
            f.create_dataset("sigma_val", data=np.asarray(sigma_val, dtype=float))
            f.create_dataset("draw", data=np.arange(acc.shape[-1], dtype=np.int64))
            ds = f.create_dataset("accuracy", data=acc)
            ds.attrs["dims"] = json.dumps(["arch", "sigma_train", "seed", "sigma_val", "draw"])
            ds = f.create_dataset("accuracy_noiseless", data=clean)
            ds.attrs["dims"] = json.dumps(["arch", "sigma_train", "seed"])
            g = f.create_group("history")
            for name, arr in history.items():
                d = g.create_dataset(name, data=arr)
                d.attrs["dims"] = json.dumps(["arch", "sigma_train", "seed", "epoch"])
            for key, value in attrs.items():
                f.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value,
                                                                                               default=json_default)


# --------------------------------------------------------------------------- plots
def plot_heatmaps(path: str | os.PathLike, rows: list[dict], arch: list[str], sigma_train: list[float],
                  sigma_val: list[float], convention: str, title: str = "") -> None:
    """One heatmap panel per architecture: mean accuracy over sigma_train (rows) x sigma_val (columns)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    grid = np.full((len(arch), len(sigma_train), len(sigma_val)), np.nan)
    for r in rows:
        grid[arch.index(r["arch"]), sigma_train.index(r["sigma_train"]), sigma_val.index(r["sigma_val"])] = \
            r["accuracy_mean"]
    fig, axes = plt.subplots(1, len(arch), figsize=(1.2 + 0.9 * len(sigma_val) * len(arch) + 1.5 * len(arch),
                                                    1.4 + 0.6 * len(sigma_train)), squeeze=False,
                             layout="constrained")
    finite = grid[np.isfinite(grid)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = None
    for a, name in enumerate(arch):
        ax = axes[0, a]
        im = ax.imshow(grid[a], cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto", origin="lower")
        for i in range(len(sigma_train)):
            for j in range(len(sigma_val)):
                if np.isfinite(grid[a, i, j]):
                    ax.text(j, i, f"{grid[a, i, j]:.3f}", ha="center", va="center", fontsize=7,
                            color="white" if grid[a, i, j] < (vmin + vmax) / 2 else "black")
        ax.set_xticks(range(len(sigma_val)), [level_text(v) for v in sigma_val])
        ax.set_yticks(range(len(sigma_train)), [level_text(v) for v in sigma_train])
        ax.set_xlabel(f"sigma_val ({convention})")
        ax.set_ylabel(f"sigma_train ({convention})")
        ax.set_title(name.upper())
    fig.colorbar(im, ax=axes.ravel().tolist(), label="test accuracy")
    if title:
        fig.suptitle(title, fontsize=9)
    save_png(fig, path)
    plt.close(fig)


def plot_curves(path: str | os.PathLike, rows: list[dict], arch: str, sigma_train: list[float],
                sigma_val: list[float], convention: str) -> None:
    """Accuracy vs sigma_val for one architecture, one line (with CI band) per sigma_train."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    xs = np.arange(len(sigma_val)) if any(math.isinf(v) for v in sigma_val) else np.asarray(sigma_val, float)
    for st in sigma_train:
        sel = {r["sigma_val"]: r for r in rows if r["arch"] == arch and r["sigma_train"] == st}
        if not sel:
            continue
        m = np.array([sel[v]["accuracy_mean"] if v in sel else np.nan for v in sigma_val])
        lo = np.array([sel[v]["ci_low"] if v in sel else np.nan for v in sigma_val])
        hi = np.array([sel[v]["ci_high"] if v in sel else np.nan for v in sigma_val])
        (line,) = ax.plot(xs, m, marker="o", label=f"sigma_train={level_text(st)}")
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
    if xs is not None and any(math.isinf(v) for v in sigma_val):
        ax.set_xticks(xs, [level_text(v) for v in sigma_val])
    ax.set_xlabel(f"sigma_val ({convention})")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{arch.upper()}: accuracy vs inference noise (95% CI)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no finished jobs yet", ha="center", va="center", transform=ax.transAxes)
    save_png(fig, path)
    plt.close(fig)


# --------------------------------------------------------------------------- terminal tables
def format_table(rows: list[dict], columns: list[str] | None = None, floatfmt: str = ".4f") -> str:
    """A plain aligned text table (no dependencies) for the terminal."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[(format(r[c], floatfmt) if isinstance(r[c], float) and not math.isinf(r[c]) else str(r[c]))
              for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.rjust(w) for c, w in zip(columns, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join([line, sep, *body])


# --------------------------------------------------------------------------- training outputs
def write_history(path: str | os.PathLike, history: dict[str, list[float]]) -> None:
    """Training curves as CSV: one row per epoch."""
    keys = list(history)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    for i in range(len(history[keys[0]]) if keys else 0):
        w.writerow([f"{history[k][i]:.6g}" if isinstance(history[k][i], float) else history[k][i] for k in keys])
    atomic_write_text(path, buf.getvalue())


def plot_history(path: str | os.PathLike, history: dict[str, list[float]], title: str = "") -> None:
    """Loss and accuracies per epoch."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ep = history["epoch"]
    ax1.plot(ep, history["train_loss"], marker=".")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss")
    ax2.plot(ep, history["train_accuracy"], marker=".", label="train (running)")
    ax2.plot(ep, history["test_accuracy"], marker=".", label="test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    save_png(fig, path)
    plt.close(fig)


# --------------------------------------------------------------------------- deployment outputs
def write_deploy(out: str | os.PathLike, *, times_s: list[float], compensation: list[bool], acc: np.ndarray,
                 attrs: dict[str, Any], clips: np.ndarray | None = None,
                 matrices: list[str] | None = None) -> list[dict]:
    """deploy.h5 (raw accuracies) and deploy.csv (one row per time and compensation); returns the rows.

    ``acc`` has shape (compensation, time, instance, draw). ``clips`` (compensation, time,
    matrix, 2) holds the fraction of DAC inputs and ADC conversions that saturated per
    analog matrix (named by ``matrices``): deploy.h5 keeps them per matrix (datasets
    ``dac_clip_fraction`` and ``adc_clip_fraction``, dims (compensation, time, matrix),
    and ``matrices``); each CSV row has the worst matrix's (columns ``dac_clip_fraction``,
    ``adc_clip_fraction``; 0 without analog matrices).
    """
    if clips is None:
        clips = np.zeros((len(compensation), len(times_s), 0, 2))
        matrices = []
    import h5py

    out = Path(out)
    with atomic_path(out / "deploy.h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("time_s", data=np.asarray(times_s, float))
            f.create_dataset("drift_compensation", data=np.asarray(compensation, bool))
            ds = f.create_dataset("accuracy", data=acc)
            ds.attrs["dims"] = json.dumps(["drift_compensation", "time_s", "instance", "draw"])
            f.create_dataset("matrices", data=np.asarray(list(matrices or []), dtype=h5py.string_dtype()))
            for q, key in enumerate(("dac_clip_fraction", "adc_clip_fraction")):
                ds = f.create_dataset(key, data=np.asarray(clips[..., q], dtype=float))
                ds.attrs["dims"] = json.dumps(["drift_compensation", "time_s", "matrix"])
            for key, value in attrs.items():
                f.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value,
                                                                                               default=json_default)
    rows = []
    for c, comp in enumerate(compensation):
        for t, ts in enumerate(times_s):
            cell = acc[c, t]
            per_instance = cell.mean(axis=1)
            m, _, lo, hi = mean_ci(per_instance if per_instance.size >= 2 else cell.ravel())
            rows.append({"time_s": float(ts), "drift_compensation": bool(comp), "accuracy_mean": float(cell.mean()),
                         "accuracy_std": float(cell.std(ddof=1)) if cell.size > 1 else 0.0, "ci_low": lo,
                         "ci_high": hi, "n_instances": int(cell.shape[0]), "n_draws": int(cell.shape[1]),
                         "dac_clip_fraction": float(clips[c, t, :, 0].max()) if clips.shape[2] else 0.0,
                         "adc_clip_fraction": float(clips[c, t, :, 1].max()) if clips.shape[2] else 0.0})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = list(rows[0])
    w.writerow(cols)
    for r in rows:
        w.writerow([f"{r[c]:.6g}" if isinstance(r[c], float) else r[c] for c in cols])
    atomic_write_text(out / "deploy.csv", buf.getvalue())
    return rows


def plot_deploy(path: str | os.PathLike, rows: list[dict], title: str = "",
                reference: float | None = None) -> None:
    """Accuracy vs time after programming (log time axis), with and without drift compensation."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.8, 3.8))
    for comp in (False, True):
        sel = sorted((r for r in rows if r["drift_compensation"] == comp), key=lambda r: r["time_s"])
        if not sel:
            continue
        t = np.array([r["time_s"] for r in sel])
        (line,) = ax.plot(t, [r["accuracy_mean"] for r in sel], marker="o",
                          label="with drift compensation" if comp else "no compensation")
        ax.fill_between(t, [r["ci_low"] for r in sel], [r["ci_high"] for r in sel], color=line.get_color(),
                        alpha=0.2)
    if reference is not None:
        ax.axhline(reference, color="gray", ls="--", lw=1, label="digital (noise-free)")
    ax.set_xscale("log")
    ax.set_xlabel("time after programming (s)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    save_png(fig, path)
    plt.close(fig)
