"""``python -m benchmarks irdrop mnist|noise|precompute``: what the wires of the array cost (IR drop).

* ``mnist``: the row-by-row MNIST LSTM of the reproduction deployed on the rram preset with
  wire resistance ``r`` per cell segment on rows and columns (driver and sense ideal), for
  several ``r`` and tile sizes; accuracy over programmed instances x read draws with a
  95 % Student-t interval over the per-instance means. Writes ``mnist.csv``,
  ``mnist.json`` and ``mnist.png`` (accuracy vs r, one curve per tile size).
* ``noise``: the fast path's read-noise std (per-cell sigma carried through the
  attenuation ``A / G``) against the exact first-order std of the circuit (adjoint MNA),
  over wire resistances and tile sizes, next to the tile's largest relative IR drop and
  the stated bound the read checks (``crossbar.irdrop.noise_error_bound``). Writes
  ``noise.csv`` and ``noise.json``; exits 1 if a row passes the bound.
* ``precompute``: CPU seconds of one ``transfer_matrix`` per array by nested dissection and
  by the row sweep, per tile side (one thread, interleaved, median of ``--repeats``), and
  the largest relative difference between the two. Writes ``precompute.csv`` and
  ``precompute.json``.

Example:
    python -m benchmarks irdrop mnist --data-path ../shared/data/mnist --n-test 1000 --instances 3
    python -m benchmarks irdrop noise
    python -m benchmarks irdrop precompute --sizes 64,128,256,512
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from xbarsim.cliargs import float_list, int_at_least
from xbarsim.files import atomic_write_bytes, atomic_write_json, atomic_write_text

DEFAULT_CHECKPOINT = "benchmarks/results/reproduction/mnist/checkpoints/lstm_st0.0_seed0.pt"
DEFAULT_OUT = "benchmarks/results/irdrop"


def _t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval on the mean of ``values`` (collapses for one value)."""
    from scipy import stats

    v = np.asarray(values, dtype=float).ravel()
    m = float(v.mean())
    if v.size < 2:
        return m, m, m
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return m, m - half, m + half


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else "-" if v is None else str(v)

    width = {c: max(len(c), *(len(fmt(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.rjust(width[c]) for c in cols)]
    lines += ["  ".join(fmt(r[c]).rjust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- mnist
def run_mnist(args) -> int:
    import crossbar
    from study.data import load_dataset
    from study.experiment import deploy_model
    from xbarsim.threads import limit_threads

    limit_threads(1)
    data = load_dataset("mnist", args.data_path, seed=0, n_test=args.n_test)
    rows, raw = [], {}
    t0 = time.perf_counter()
    digital = None
    for tile in args.tiles:
        for ohm in args.ohms:
            cfg = crossbar.preset("rram", tile_rows=tile, tile_cols=tile, wire_row_ohm=ohm, wire_col_ohm=ohm)
            t1 = time.perf_counter()
            acc, digital = deploy_model(args.checkpoint, data, cfg, times_s=[1.0], compensation=[False],
                                        instances=args.instances, draws=args.draws, seed=args.seed)
            per_instance = acc[0, 0].mean(axis=1)
            mean, low, high = _t_interval(per_instance)
            rows.append(dict(tile=tile, wire_ohm=float(ohm), accuracy_mean=mean, ci_low=low, ci_high=high,
                             accuracy_std=float(acc[0, 0].std(ddof=1)) if acc[0, 0].size > 1 else 0.0,
                             n_instances=args.instances, n_draws=args.draws, seconds=time.perf_counter() - t1))
            raw[f"tile{tile}_ohm{ohm:g}"] = acc[0, 0].tolist()
            if not args.quiet:
                r = rows[-1]
                print(f"tile {tile:>4}  r {ohm:>6g} ohm  acc {mean:.4f} [{low:.4f}, {high:.4f}]  "
                      f"({r['seconds']:.1f} s)", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(command="python -m benchmarks irdrop mnist " + " ".join(args.argv), checkpoint=args.checkpoint,
                preset="rram", data=data.describe(), n_test=args.n_test, instances=args.instances,
                draws=args.draws, seed=args.seed, accuracy_digital=digital, t_s=1.0, drift_compensation=False,
                wires="row_ohm = col_ohm = r per cell segment, driver_ohm = sense_ohm = 0",
                ci="95 % Student-t over per-instance means", seconds=time.perf_counter() - t0)
    atomic_write_text(out / "mnist.csv", _csv_text(rows))
    atomic_write_json(out / "mnist.json", dict(meta=meta, rows=rows, raw=raw))
    _plot_mnist(out / "mnist.png", rows, digital, meta)
    print(_table(rows, ["tile", "wire_ohm", "accuracy_mean", "ci_low", "ci_high"]))
    print(f"digital accuracy {digital:.4f}; wrote mnist.csv, mnist.json, mnist.png in {out} "
          f"({meta['seconds']:.0f} s)")
    return 0


def _plot_mnist(path: Path, rows: list[dict], digital: float, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    positive = [r["wire_ohm"] for r in rows if r["wire_ohm"] > 0]
    x_zero = min(positive) / 2.5 if positive else 1.0   # where r = 0 sits on the log axis
    for tile in sorted({r["tile"] for r in rows}):
        rs = [r for r in rows if r["tile"] == tile]
        x = np.array([r["wire_ohm"] if r["wire_ohm"] > 0 else x_zero for r in rs])
        m = np.array([r["accuracy_mean"] for r in rs])
        lo = np.array([r["ci_low"] for r in rs])
        hi = np.array([r["ci_high"] for r in rs])
        ax.errorbar(x, m, yerr=[m - lo, hi - m], marker="o", capsize=3, label=f"{tile} x {tile} tiles")
    ax.axhline(digital, color="k", ls="--", lw=1, label="digital")
    ax.set_xscale("log")
    ax.set_xlabel(f"wire resistance per cell segment, ohm (0 plotted at {x_zero:g})")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"MNIST LSTM on rram with IR drop ({meta['instances']} inst. x {meta['draws']} draws, "
                 f"{meta['n_test']} images)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------------- noise
def run_noise(args) -> int:
    from crossbar import irdrop

    rng = np.random.default_rng(args.seed)
    g_max = 39.26
    rows = []
    for n in args.sizes:
        for ohm in args.ohms:
            w = rng.normal(size=(n, n))
            w /= np.abs(w).max()
            gp = 1.0 + (g_max - 1.0) * np.clip(w, 0, None)
            gm = 1.0 + (g_max - 1.0) * np.clip(-w, 0, None)
            sp, sm = 0.03 * gp, 0.03 * gm
            wires = dict(row_ohm=ohm, col_ohm=ohm)
            ap, am = irdrop.transfer_matrix(gp, **wires), irdrop.transfer_matrix(gm, **wires)
            x = rng.uniform(-1, 1, (8, n))
            exact = irdrop.linear_noise_std(x, gp, gm, sp, sm, **wires)
            att_p = np.clip(irdrop.attenuation(ap, gp), 0, 1)
            att_m = np.clip(irdrop.attenuation(am, gm), 0, 1)
            fast = np.sqrt((x * x) @ ((att_p * sp) ** 2 + (att_m * sm) ** 2))
            plain = np.sqrt((x * x) @ (sp ** 2 + sm ** 2))
            drop = max(irdrop.max_relative_drop(ap, gp, g_max), irdrop.max_relative_drop(am, gm, g_max))
            err = float(np.abs(fast / exact - 1).max())
            rows.append(dict(tile=n, wire_ohm=float(ohm), max_drop=drop, stated_bound=irdrop.noise_error_bound(drop),
                             std_error_fast=err, std_error_no_attenuation=float(np.abs(plain / exact - 1).max()),
                             within_bound=bool(err <= irdrop.noise_error_bound(drop))))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(command="python -m benchmarks irdrop noise " + " ".join(args.argv),
                cells="rram-like pair, g in [1, 39.26] uS from N(0,1) weights, read sigma 3 % of G",
                inputs="8 vectors uniform in [-1, 1]", reference="exact first-order std (adjoint MNA)",
                error="max over outputs and inputs of |std_fast / std_exact - 1|", seed=args.seed)
    atomic_write_text(out / "noise.csv", _csv_text(rows))
    atomic_write_json(out / "noise.json", dict(meta=meta, rows=rows))
    print(_table(rows, ["tile", "wire_ohm", "max_drop", "stated_bound", "std_error_fast", "std_error_no_attenuation"]))
    print(f"wrote noise.csv, noise.json in {out}")
    return 0 if all(r["within_bound"] for r in rows) else 1


# ----------------------------------------------------------------------------- precompute
def run_precompute(args) -> int:
    from crossbar import irdrop
    from xbarsim.threads import limit_threads

    limit_threads(1)
    rng = np.random.default_rng(args.seed)
    wires = dict(row_ohm=args.ohm, col_ohm=args.ohm, driver_ohm=args.ohm, sense_ohm=args.ohm)
    rows = []
    for n in args.sizes:
        g = rng.uniform(0.0, 25.0, (n, n))
        irdrop.transfer_matrix(g[:8, :8], **wires, method="dissection")    # compile/load the kernel untimed
        methods = ["dissection"] + (["sweep"] if n <= args.sweep_max else [])
        times = {m: [] for m in methods}
        result = {}
        for _ in range(args.repeats):
            for m in methods:
                t = time.process_time()
                result[m] = irdrop.transfer_matrix(g, **wires, method=m)
                times[m].append(time.process_time() - t)
        row = dict(tile=n, wire_ohm=float(args.ohm), dissection_cpu_s=float(np.median(times["dissection"])),
                   sweep_cpu_s=float(np.median(times["sweep"])) if "sweep" in times else None)
        if "sweep" in result:
            diff = np.abs(result["dissection"] - result["sweep"]).max() / np.abs(result["sweep"]).max()
            row["speedup"] = row["sweep_cpu_s"] / row["dissection_cpu_s"]
            row["max_rel_difference"] = float(diff)
        else:
            row["speedup"] = row["max_rel_difference"] = None
        rows.append(row)
        if not args.quiet:
            print(f"tile {n:>4}: dissection {row['dissection_cpu_s']:.3f} s"
                  + (f", sweep {row['sweep_cpu_s']:.3f} s" if row["sweep_cpu_s"] is not None else ""), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(command="python -m benchmarks irdrop precompute " + " ".join(args.argv),
                cells="uniform(0, 25) uS", wires="row = col = driver = sense = --ohm", threads=1,
                timing=f"time.process_time, median of {args.repeats}, methods interleaved", seed=args.seed)
    atomic_write_text(out / "precompute.csv", _csv_text(rows))
    atomic_write_json(out / "precompute.json", dict(meta=meta, rows=rows))
    print(_table(rows, ["tile", "dissection_cpu_s", "sweep_cpu_s", "speedup", "max_rel_difference"]))
    print(f"wrote precompute.csv, precompute.json in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m benchmarks irdrop", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("mnist", formatter_class=argparse.ArgumentDefaultsHelpFormatter, help="accuracy of the MNIST LSTM on rram vs wire resistance and tile size")
    m.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="trained LSTM checkpoint (.pt) to deploy")
    m.add_argument("--data-path", default="../shared/data/mnist", help="mnist.npz or a folder of IDX files")
    m.add_argument("--ohms", type=float_list, default=float_list("0,0.5,1,2,4,8,16"),
                   help="wire resistances per cell segment (rows and columns), ohm")
    m.add_argument("--tiles", type=float_list, default=float_list("256,512"), help="tile sizes (square)")
    m.add_argument("--instances", type=int_at_least(1), default=3, help="programmed instances")
    m.add_argument("--draws", type=int_at_least(1), default=1, help="read draws per instance")
    m.add_argument("--n-test", type=int_at_least(1), default=1000, help="test images (seeded subset)")
    m.add_argument("--seed", type=int, default=0, help="seed of the test subset, programming and reads")
    m.add_argument("--out", default=DEFAULT_OUT, help="folder for mnist.csv, mnist.json and mnist.png")
    m.add_argument("--quiet", action="store_true", help="no line per (tile, resistance) point")
    n = sub.add_parser("noise", formatter_class=argparse.ArgumentDefaultsHelpFormatter, help="fast read-noise error vs the exact circuit, over wire resistance and tile size")
    n.add_argument("--sizes", type=float_list, default=float_list("16,64,128"), help="tile sizes (square)")
    n.add_argument("--ohms", type=float_list, default=float_list("0.35,1,2.5,7.5,30"), help="ohm per segment")
    n.add_argument("--seed", type=int, default=0, help="seed of cells, inputs and noise")
    n.add_argument("--out", default=DEFAULT_OUT, help="folder for noise.csv and noise.json")
    p = sub.add_parser("precompute", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       help="CPU time of one transfer matrix per array: nested dissection vs row sweep")
    p.add_argument("--sizes", type=float_list, default=float_list("64,128,256,512"), help="tile sides (square)")
    p.add_argument("--ohm", type=float, default=1.0, help="row, column, driver and sense resistance, ohm")
    p.add_argument("--repeats", type=int_at_least(1), default=3, help="timed calls per method (median)")
    p.add_argument("--sweep-max", type=int_at_least(1), default=512, help="largest side the sweep is timed at")
    p.add_argument("--seed", type=int, default=0, help="seed of the cells")
    p.add_argument("--out", default=DEFAULT_OUT, help="folder for precompute.csv and precompute.json")
    p.add_argument("--quiet", action="store_true", help="no line per tile side")
    args = ap.parse_args(argv)
    args.argv = argv[1:]
    if args.what == "precompute":
        args.sizes = [int(s) for s in args.sizes]
        return run_precompute(args)
    if args.what == "mnist":
        args.tiles = [int(t) for t in args.tiles]
        return run_mnist(args)
    args.sizes = [int(s) for s in args.sizes]
    return run_noise(args)


if __name__ == "__main__":
    sys.exit(main())
