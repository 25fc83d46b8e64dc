"""``xbarsim train | sweep | deploy``: the main job from the command line.

Each entry point parses its own arguments, writes machine-readable results (JSON, CSV,
HDF5, PNG) under ``--out`` and prints a human table to the terminal. Exit status: 0 on
success, 2 for bad arguments (an ``--out`` that is a file or cannot be written included,
checked before any work), 1 for errors while running (bad data file, failed job), 130 after
Ctrl-C and 143 after SIGTERM (a sweep stops its workers first and keeps every finished job).
Nothing heavy is imported at module import time. See docs/MAIN_JOB.md.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from pathlib import Path

from xbarsim.cliargs import float_list, nonneg_float, nonneg_int, positive_float, positive_int

from .names import ARCHS

__all__ = ["train_main", "sweep_main", "deploy_main", "main", "train_parser", "sweep_parser", "deploy_parser", "arch_list"]

_DEFAULT_TIMES = "1,3600,86400,2592000,31536000"
_TIME_NAMES = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 2592000.0: "30 days", 31536000.0: "1 year"}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


# --------------------------------------------------------------------------- argument types
# Numbers: xbarsim.cliargs (positive_int, nonneg_int, positive_float, float_list); the two below are study's own.
def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def arch_list(text: str) -> list[str]:
    """An argparse type: a comma list of rnn, lstm, gru (lower-cased; order and duplicates kept)."""
    from_text = [a.strip().lower() for a in text.split(",") if a.strip()]
    bad = [a for a in from_text if a not in ARCHS]
    if not from_text or bad:
        raise argparse.ArgumentTypeError(f"architectures must be a comma list of rnn, lstm, gru; got {text!r}")
    return from_text


def _statistic(text: str) -> str | float:
    """An argparse type: a range statistic, "max" or a percentile in (0, 100]."""
    from models.ranges import check_statistic

    try:
        return check_statistic(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _override(text: str) -> tuple[str, object]:
    import json

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. adc_bits=6), got {text!r}")
    key, value = text.split("=", 1)
    if value.strip().lower() in ("none", "null"):
        return key.strip(), None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed


def _resolved_data_args(data: str | None, data_path: str | None, data_seed: int, n_train, n_test) -> dict:
    """The data arguments as a checkpoint stores them: paths resolved, so that a deploy from
    another folder finds the data (a built-in name stays a name)."""
    from .data import BUILTIN

    def resolve(p: str | None) -> str | None:
        return None if p is None else str(Path(p).expanduser().resolve())

    name = data
    if data is not None and data.strip().lower().replace("-", "_") not in BUILTIN and Path(data).expanduser().exists():
        name = resolve(data)
    return {"data": name, "data_path": resolve(data_path), "data_seed": data_seed, "n_train": n_train,
            "n_test": n_test}


def _checkpoint_data_args(meta: dict) -> dict:
    """The data a checkpoint was trained on: ``data_args`` (train) or the sweep job's settings."""
    if meta.get("data_args"):
        return dict(meta["data_args"])
    job = meta.get("job") or {}
    if "data" in job:
        return {k: job.get(k) for k in ("data", "data_path", "data_seed", "n_train", "n_test")}
    return {}


# --------------------------------------------------------------------------- shared options
def _add_data_args(p: argparse.ArgumentParser, default: str | None = "digits") -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", default=default,
                   help="digits (embedded), mnist (row by row, needs --data-path), japanese_vowels (bundled, UCI, "
                        "CC BY 4.0), or the path of a .npz/.h5 sequence file (see docs/MAIN_JOB.md)")
    g.add_argument("--data-path", default=None, help="where the MNIST files are: an mnist.npz or a folder of IDX files")
    g.add_argument("--n-train", type=positive_int, default=None, help="use a seeded subset of this many training examples")
    g.add_argument("--n-test", type=positive_int, default=None, help="use a seeded subset of this many test examples")
    g.add_argument("--data-seed", type=nonneg_int, default=0, help="seed of the train/test split and subsets")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and training")
    g.add_argument("--hidden", type=positive_int, default=32, help="hidden units per recurrent layer")
    g.add_argument("--layers", type=positive_int, default=1, help="stacked recurrent layers")
    g.add_argument("--epochs", type=nonneg_int, default=15, help="training epochs")
    g.add_argument("--batch-size", type=positive_int, default=64, help="training batch size")
    g.add_argument("--lr", type=positive_float, default=1e-2, help="learning rate")
    g.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="optimiser (sgd: momentum 0.9)")


def _add_noise_args(p: argparse.ArgumentParser, preset_default: str = "paper") -> None:
    g = p.add_argument_group("noise")
    g.add_argument("--convention", choices=("relative", "absolute", "snr_db"), default="relative",
                   help="scale of the output-noise levels: relative (x RMS of the noiseless MVM output), "
                        "absolute (output units) or snr_db (signal-to-noise ratio in dB; inf = no noise)")
    g.add_argument("--preset", default=preset_default,
                   help="crossbar device preset (ideal, paper, pcm, rram, sonos) or a device-model JSON path; "
                        "the output noise is added on top of it")
    g.add_argument("--noise-draw", choices=("mvm", "step", "sequence", "batch"), default="mvm",
                   help="which reads share one output-noise draw (mvm: fresh on every MVM, as in the paper)")


def _add_run_args(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--out", default=out_default, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _parse(parser: argparse.ArgumentParser, argv) -> argparse.Namespace | int:
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on errors (2)
        return int(exc.code or 0)


def _fail(prog: str, exc: BaseException) -> int:
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return 1


def _out_problem(path: str) -> str | None:
    """Why ``--out path`` cannot take the results (None: it can); creates the folder."""
    import tempfile

    p = Path(path)
    if p.exists() and not p.is_dir():
        return f"--out {p} is an existing file; give a folder (it is created if missing)"
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--out {p}: cannot create the folder: {exc.strerror or exc}"
    try:
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as exc:
        return f"--out {p}: cannot write in this folder: {exc.strerror or exc}"
    return None


def _bad_out(prog: str, path: str) -> int | None:
    problem = _out_problem(path)
    if problem is None:
        return None
    print(f"{prog}: error: {problem}", file=sys.stderr)
    return 2


class _Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread by the handler :func:`_on_sigterm` installs)."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def _limit_threads() -> None:
    from .executor import limit_threads

    limit_threads(1)


def _pivot(rows: list[dict], arch: str, sigma_train: list[float], sigma_val: list[float]) -> str:
    from .results import format_table

    cells = {(r["sigma_train"], r["sigma_val"]): r for r in rows if r["arch"] == arch}
    table = []
    for st in sigma_train:
        row = {"sigma_train": f"{st:g}"}
        for sv in sigma_val:
            r = cells.get((st, sv))
            row[f"{sv:g}"] = "-" if r is None else f"{r['accuracy_mean']:.3f}±{(r['ci_high'] - r['ci_low']) / 2:.3f}"
        table.append(row)
    return format_table(table)


# --------------------------------------------------------------------------- train
def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xbarsim train", formatter_class=_Formatter,
        description="Train one RNN/LSTM/GRU classifier with Deep Noise Injection (output noise at --sigma-train "
                    "on every MVM) and write a checkpoint, its config and training curves.",
        epilog="example:\n  xbarsim train --arch lstm --sigma-train 0.1 --epochs 20 --out runs/train")
    p.add_argument("--arch", type=str.lower, choices=("rnn", "lstm", "gru"), default="lstm", help="architecture")
    _add_data_args(p)
    _add_model_args(p)
    _add_noise_args(p)
    p.add_argument("--sigma-train", type=float, default=0.1,
                   help="training output-noise level in --convention units (0: conventional training)")
    p.add_argument("--draws", type=positive_int, default=10, help="noise draws of the final test evaluation")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of weight init, batch order and noise")
    p.add_argument("--range-statistic", type=_statistic, default="max",
                   help="DAC input ranges, calibrated on the training data after training: 'max' of |x| per "
                        "analog matrix or a percentile (e.g. 99.99); stored in the checkpoint")
    p.add_argument("--learn-input-ranges", action="store_true",
                   help="learn each analog matrix's DAC input range during training instead (clip in the "
                        "forward pass, straight-through range gradient and decay as aihwkit's "
                        "InputRangeParameter); stored in the checkpoint like calibrated ones")
    _add_run_args(p, "runs/train")
    return p


def train_main(argv: list[str] | None = None) -> int:
    """``xbarsim train``: train one model; write model.pt, config.json, history.csv, curves.png, metrics.json."""
    parser = train_parser()
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    if math.isnan(args.sigma_train) or (args.convention != "snr_db" and (args.sigma_train < 0
                                                                         or math.isinf(args.sigma_train))):
        parser.print_usage(sys.stderr)
        print(f"xbarsim train: error: --sigma-train must be finite and >= 0 for --convention {args.convention}, "
              f"got {args.sigma_train}", file=sys.stderr)
        return 2
    bad = _bad_out("xbarsim train", args.out)
    if bad is not None:
        return bad
    _limit_threads()
    from .data import DataError, load_dataset
    from .experiment import (ModelSpec, build_model, calibrate_ranges, evaluate_draws, noise_config,
                             save_checkpoint, set_noise, train_model, versions)
    from .results import write_json, format_table, plot_history, write_history

    t0 = time.perf_counter()
    try:
        data = load_dataset(args.data, args.data_path, seed=args.data_seed, n_train=args.n_train, n_test=args.n_test)
        cfg = noise_config(args.sigma_train, args.convention, args.preset)
    except (DataError, ValueError) as exc:
        return _fail("xbarsim train", exc)
    out = Path(args.out)
    spec = ModelSpec(arch=args.arch, input_size=data.n_features, hidden_size=args.hidden,
                     num_classes=data.n_classes, num_layers=args.layers)
    model = build_model(spec, cfg, noise_draw=args.noise_draw, seed=args.seed)
    try:
        history = train_model(model, data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                              optimizer=args.optimizer, seed=args.seed, progress=not args.quiet,
                              desc=f"train {args.arch}", learn_input_ranges=args.learn_input_ranges)
    except FloatingPointError as exc:
        return _fail("xbarsim train", exc)
    acc = evaluate_draws(model, data, args.draws, seed=args.seed, stream=1,
                         deterministic=cfg.is_digital and not cfg.output_noise.active)
    clean_cfg = noise_config(math.inf if args.convention == "snr_db" else 0.0, args.convention, args.preset)
    set_noise(model, clean_cfg)
    clean = float(evaluate_draws(model, data, 1, seed=args.seed, stream=2)[0])
    set_noise(model, cfg)
    if args.learn_input_ranges:
        from models.ranges import input_ranges

        ranges, statistic = input_ranges(model), "learned"
    else:
        ranges, statistic = calibrate_ranges(model, data, statistic=args.range_statistic), args.range_statistic
    data_args = _resolved_data_args(args.data, args.data_path, args.data_seed, args.n_train, args.n_test)
    config = {"command": "train", "args": vars(args), "model": spec.to_dict(), "train_config": cfg.to_dict(),
              "device_preset": cfg.name, "noise_convention": args.convention, "seed": args.seed,
              "data": data.describe(), "data_args": data_args, "versions": versions(),
              "input_ranges": ranges, "range_statistic": statistic}
    metrics = {"accuracy_at_sigma_train": {"mean": float(acc.mean()), "std": float(acc.std()), "draws": acc.tolist()},
               "accuracy_noiseless": clean, "seconds": time.perf_counter() - t0, "seed": args.seed,
               "noise_convention": args.convention, "device_preset": cfg.name}
    try:
        save_checkpoint(out / "model.pt", model, spec, cfg, noise_draw=args.noise_draw, meta=config)
        write_json(out / "config.json", config)
        write_history(out / "history.csv", history)
        if history["epoch"]:
            plot_history(out / "curves.png", history, title=f"{args.arch.upper()} on {data.name}, "
                                                            f"sigma_train={args.sigma_train:g} ({args.convention})")
        write_json(out / "metrics.json", metrics)
    except OSError as exc:
        return _fail("xbarsim train", f"cannot write the results in {out}: {exc}")
    every = max(1, len(history["epoch"]) // 10)
    rows = [{k: history[k][i] for k in history} for i in range(0, len(history["epoch"]), every)]
    if rows and rows[-1]["epoch"] != history["epoch"][-1]:
        rows.append({k: history[k][-1] for k in history})
    print(format_table(rows) if rows else "(no epochs)")
    print(f"\n{args.arch.upper()} on {data.name} ({data.describe()['n_train']} train / {data.describe()['n_test']} test), "
          f"sigma_train={args.sigma_train:g} {args.convention}, preset {cfg.name}, seed {args.seed}")
    print(f"test accuracy at sigma_train over {args.draws} draws: {acc.mean():.4f} ± {acc.std():.4f}; "
          f"without output noise: {clean:.4f}")
    how = ("learned during training" if statistic == "learned" else
           ("max" if statistic == "max" else f"{statistic:g}th percentile") + " of |x| on the training data")
    print(f"DAC input ranges ({how}): " + ", ".join(f"{k} {v:.3g}" for k, v in ranges.items()))
    print(f"wrote {out / 'model.pt'}, config.json, history.csv, metrics.json"
          f"{', curves.png' if history['epoch'] else ''} in {out}  ({time.perf_counter() - t0:.1f} s)")
    return 0


# --------------------------------------------------------------------------- sweep
def sweep_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xbarsim sweep", formatter_class=_Formatter,
        description="Train each architecture at each sigma_train and seed, evaluate every trained model at each "
                    "sigma_val over many noise draws. Writes results.h5 (raw accuracies), summary.csv (mean, std, "
                    "95% CI per cell), heatmap.png and curves_<arch>.png. A killed sweep resumes where it stopped. "
                    "With no arguments: a small sweep on the embedded digits (RNN and LSTM) in runs/sweep.",
        epilog="examples:\n"
               "  xbarsim sweep                                   # the default small sweep\n"
               "  xbarsim sweep --arch lstm --sigma-train 0,0.1,0.2 --sigma-val 0,0.1,0.2,0.4 --seeds 0,1,2\n"
               "  xbarsim sweep --data mnist --data-path ../shared/data/mnist --hidden 64 --scheduler local\n"
               "  xbarsim sweep --scheduler tcp://10.0.0.5:8786   # an existing Dask cluster")
    from .sweep import SweepSpec

    d = SweepSpec()  # the defaults: the README's small sweep

    def join(values) -> str:
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)

    p.add_argument("--arch", type=arch_list, default=join(d.archs), help="comma list of rnn, lstm, gru")
    _add_data_args(p)
    _add_model_args(p)
    p.set_defaults(epochs=d.epochs, hidden=d.hidden)
    _add_noise_args(p)
    p.add_argument("--sigma-train", type=float_list, default=join(d.sigma_train),
                   help="comma list of training noise levels (--convention units)")
    p.add_argument("--sigma-val", type=float_list, default=join(d.sigma_val),
                   help="comma list of inference noise levels (--convention units)")
    p.add_argument("--seeds", type=_int_list, default=join(d.seeds), help="comma list of training seeds")
    p.add_argument("--draws", type=positive_int, default=d.draws, help="noise draws (test passes) per sigma_val")
    p.add_argument("--learn-input-ranges", action="store_true",
                   help="learn each analog matrix's DAC input range during training (as xbarsim train "
                        "--learn-input-ranges) instead of calibrating it after")
    g = p.add_argument_group("execution")
    g.add_argument("--workers", type=nonneg_int, default=None,
                   help="worker processes (one thread each; 0 = in this process); default min(2, CPUs)")
    g.add_argument("--scheduler", default=None,
                   help="run on Dask: 'local' starts a LocalCluster of --workers processes; tcp://host:port uses "
                        "an existing cluster (workers need xbarsim installed)")
    g.add_argument("--fresh", action="store_true", help="rerun every job instead of resuming finished ones")
    g.add_argument("--max-jobs", type=nonneg_int, default=None, help="run at most this many new jobs now")
    _add_run_args(p, "runs/sweep")
    return p


def sweep_main(argv: list[str] | None = None) -> int:
    """``xbarsim sweep``: the DNI sweep; see ``xbarsim sweep --help``."""
    parser = sweep_parser()
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    from .sweep import SweepSpec

    try:
        spec = SweepSpec(data=args.data, data_path=args.data_path, n_train=args.n_train, n_test=args.n_test,
                         data_seed=args.data_seed, archs=tuple(args.arch), hidden=args.hidden, num_layers=args.layers,
                         epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                         seeds=tuple(args.seeds), sigma_train=tuple(args.sigma_train),
                         sigma_val=tuple(args.sigma_val), convention=args.convention, preset=args.preset,
                         draws=args.draws, noise_draw=args.noise_draw, learn_input_ranges=args.learn_input_ranges)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"xbarsim sweep: error: {exc}", file=sys.stderr)
        return 2
    bad = _bad_out("xbarsim sweep", args.out)
    if bad is not None:
        return bad
    _limit_threads()
    from .data import DataError
    from .executor import JobError
    from .sweep import SweepBusy, run_sweep

    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        outcome = run_sweep(spec, args.out, workers=args.workers, scheduler=args.scheduler, resume=not args.fresh,
                            max_jobs=args.max_jobs, progress=not args.quiet)
    except (DataError, JobError, ValueError, ImportError, OSError, SweepBusy) as exc:
        return _fail("xbarsim sweep", exc)
    except KeyboardInterrupt:
        return _interrupted(spec, args.out, "Ctrl-C", 130)
    except _Terminated:
        return _interrupted(spec, args.out, "SIGTERM", 143)
    finally:
        signal.signal(signal.SIGTERM, old_term)
    print()
    for arch in spec.archs:
        print(f"{arch.upper()}: test accuracy (mean ± 95% CI half-width), rows sigma_train, columns sigma_val "
              f"({spec.convention}, preset {spec.preset}, {len(spec.seeds)} seed(s) x {spec.draws} draws)")
        print(_pivot(outcome.rows, arch, list(spec.sigma_train), list(spec.sigma_val)))
        print()
    status = "complete" if outcome.complete else f"INCOMPLETE ({outcome.n_jobs - outcome.n_resumed - outcome.n_run} " \
                                                 f"job(s) left; run the same command again to resume)"
    print(f"{outcome.n_run} job(s) run, {outcome.n_resumed} resumed from {outcome.out}/jobs; sweep {status}; "
          f"{outcome.seconds:.1f} s")
    for name, path in outcome.files.items():
        print(f"  {name:<12} {path}")
    return 0


def _interrupted(spec, out: str, what: str, code: int) -> int:
    """The one line after a stopped sweep; the exit status 128 + signal number."""
    from .sweep import finished_jobs, make_jobs

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the count
    try:
        jobs = make_jobs(spec)
        n = len(finished_jobs(Path(out), jobs))
        print(f"xbarsim sweep: stopped by {what}; workers stopped; {n} of {len(jobs)} job(s) finished and kept in "
              f"{out}/jobs; run the same command again to resume", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return code


# --------------------------------------------------------------------------- deploy
def deploy_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xbarsim deploy", formatter_class=_Formatter,
        description="Program a trained model onto a device (preset or calibrated device-model JSON) and evaluate "
                    "its accuracy at times after programming, over programmed instances and noise draws, with and "
                    "without global drift compensation. Writes deploy.h5, deploy.csv, deploy.json, deploy.png.",
        epilog="examples:\n"
               "  xbarsim deploy --checkpoint runs/train/model.pt --preset pcm\n"
               "  xbarsim deploy --checkpoint runs/sweep/checkpoints/lstm_st0.1_seed0.pt --preset device.json "
               "--times 1,3600,86400 --instances 10 --draws 5\n"
               "  xbarsim deploy --checkpoint runs/train/model.pt --preset pcm --set adc_bits=6 --set tile_rows=256")
    p.add_argument("--checkpoint", required=True, help="model.pt from xbarsim train or checkpoints/<job>.pt of a sweep")
    p.add_argument("--preset", default="pcm", help="device preset (ideal, paper, pcm, rram, sonos) or a device-model "
                                                   "JSON (e.g. from xbarsim calibrate)")
    p.add_argument("--set", dest="overrides", type=_override, action="append", default=[], metavar="KEY=VALUE",
                   help="crossbar config override, repeatable (adc_bits=6, out_noise_sigma=0.05, tile_rows=256, "
                        "dac_slice_bits=1, ...); none or null sets None (adc_bits=none: no ADC)")
    p.add_argument("--input-ranges", choices=("stored", "calibrate", "preset"), default="stored",
                   help="DAC input range of each analog matrix: stored (the checkpoint's; calibrated on the "
                        "model's training data when it has none), calibrate (recalibrate on the training data) or "
                        "preset (the preset's dac_input_range everywhere)")
    p.add_argument("--range-statistic", type=_statistic, default="max",
                   help="statistic of |x| when calibrating: max or a percentile (e.g. 99.99)")
    p.add_argument("--clip-warn", type=nonneg_float, default=0.01, metavar="FRACTION",
                   help="warn when a matrix's DAC inputs or ADC conversions saturate more often than this")
    p.add_argument("--times", type=float_list, default=float_list(_DEFAULT_TIMES),
                   help="comma list of times after programming, seconds")
    p.add_argument("--instances", type=positive_int, default=5, help="programmed instances (long-term noise draws)")
    p.add_argument("--draws", type=positive_int, default=3, help="short-term noise draws per instance and time")
    p.add_argument("--compensation", choices=("both", "on", "off"), default="both", help="global drift compensation")
    _add_data_args(p, default=None)
    p.set_defaults(data=None)
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of programming and reads")
    g = p.add_argument_group("energy")
    g.add_argument("--energy", nargs="?", const="auto", default=None, metavar="CHIP",
                   help="also cost one inference: energy, latency, area and TOPS/W per layer and in total with a "
                        "chip preset's costs (hermes, neurram, speech, digital; auto: by device preset) from the "
                        "counted reads of --energy-sequences test sequences; writes energy.csv, energy.json, "
                        "energy.png")
    g.add_argument("--energy-sequences", type=positive_int, default=64,
                   help="test sequences counted for --energy (counts do not depend on the values)")
    _add_run_args(p, "runs/deploy")
    return p


def deploy_main(argv: list[str] | None = None) -> int:
    """``xbarsim deploy``: accuracy vs time after programming; see ``xbarsim deploy --help``."""
    parser = deploy_parser()
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    if any(t < 0 or math.isinf(t) for t in args.times):
        parser.print_usage(sys.stderr)
        print(f"xbarsim deploy: error: --times must be finite and >= 0, got {args.times}", file=sys.stderr)
        return 2
    bad = _bad_out("xbarsim deploy", args.out)
    if bad is not None:
        return bad
    _limit_threads()
    from .data import DataError, load_dataset
    from .experiment import deploy_model, load_checkpoint, noise_config, versions
    from .results import write_json, format_table, plot_deploy, write_deploy

    t0 = time.perf_counter()
    try:
        _, info = load_checkpoint(args.checkpoint, digital=True)
        data_args = _checkpoint_data_args(info["meta"])
        if args.data is not None:
            data_args = {"data": args.data, "data_path": args.data_path, "data_seed": args.data_seed,
                         "n_train": args.n_train, "n_test": args.n_test}
        elif not data_args:
            data_args = {"data": "digits", "data_path": None, "data_seed": args.data_seed, "n_train": None,
                         "n_test": None}
        if args.n_test is not None:
            data_args["n_test"] = args.n_test
        data = load_dataset(data_args["data"], data_args.get("data_path"), seed=data_args.get("data_seed", 0),
                            n_train=data_args.get("n_train"), n_test=data_args.get("n_test"))
        spec = info["spec"]
        if data.n_features != spec.input_size or data.n_classes > spec.num_classes:
            raise DataError(f"{data.source}: has {data.n_features} features and {data.n_classes} classes, but the "
                            f"model expects {spec.input_size} features and {spec.num_classes} classes")
        base = noise_config(None, "relative", args.preset, **dict(args.overrides))
    except (DataError, ValueError) as exc:
        return _fail("xbarsim deploy", exc)
    from crossbar import time_span_warning

    span_warning = time_span_warning(args.preset, args.times)
    if span_warning:
        print(f"xbarsim deploy: warning: {span_warning}", file=sys.stderr)
    energy_chip = None
    if args.energy is not None:
        from models.energy import chip_for

        try:
            energy_chip = chip_for(args.energy, args.preset)
        except ValueError as exc:
            parser.print_usage(sys.stderr)
            print(f"xbarsim deploy: error: --energy: {exc}", file=sys.stderr)
            return 2
    comps = {"both": [False, True], "on": [True], "off": [False]}[args.compensation]
    try:
        acc, digital, details = deploy_model(args.checkpoint, data, base, times_s=args.times, compensation=comps,
                                             instances=args.instances, draws=args.draws, seed=args.seed,
                                             progress=not args.quiet, ranges=args.input_ranges,
                                             statistic=args.range_statistic, details=True)
    except ValueError as exc:
        return _fail("xbarsim deploy", exc)
    out = Path(args.out)
    attrs = {"command": "deploy", "checkpoint": str(args.checkpoint), "device_preset": base.name,
             "array_config": base.to_dict(), "seed": args.seed, "model": spec.to_dict(), "data": data.describe(),
             "noise_convention": base.output_noise.convention, "accuracy_digital": digital, "versions": versions(),
             "trained_with": info["meta"].get("train_config") or info["meta"].get("job", {}),
             "input_ranges": details["input_ranges"], "input_ranges_source": details["ranges_source"],
             "clip_warn": args.clip_warn}
    try:
        rows = write_deploy(out, times_s=args.times, compensation=comps, acc=acc, attrs=attrs,
                            clips=details["clips"], matrices=details["matrices"])
        write_json(out / "deploy.json", {**attrs, "rows": rows})
        plot_deploy(out / "deploy.png", rows, title=f"{spec.arch.upper()} on {base.name}: {args.instances} "
                                                    f"instances x {args.draws} draws", reference=digital)
    except OSError as exc:
        return _fail("xbarsim deploy", f"cannot write the results in {out}: {exc}")
    show = [{"time": _TIME_NAMES.get(r["time_s"], f"{r['time_s']:g} s"),
             "drift_comp": "on" if r["drift_compensation"] else "off", "accuracy_mean": r["accuracy_mean"],
             "accuracy_std": r["accuracy_std"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
             "dac_clip_fraction": r["dac_clip_fraction"], "adc_clip_fraction": r["adc_clip_fraction"]} for r in rows]
    print(format_table(show))
    print(f"\n{spec.arch.upper()} ({args.checkpoint}) on preset {base.name}; digital accuracy {digital:.4f}; "
          f"{args.instances} instances x {args.draws} draws, seed {args.seed}")
    for line in _range_notes(details, args, base):
        print(line)
    for line in _clip_warnings(details, comps, args.times, args.clip_warn):
        print(line, file=sys.stderr)
    print(f"wrote deploy.h5, deploy.csv, deploy.json, deploy.png in {out}  ({time.perf_counter() - t0:.1f} s)")
    if energy_chip is not None:
        _deploy_energy(args, base, data, energy_chip, out, digital)
    return 0


def _range_notes(details: dict, args: argparse.Namespace, base) -> list[str]:
    """What the terminal says about the DAC input ranges and the device's short-term noise."""
    notes = []
    ranges = ", ".join(f"{k} {v:.3g}" for k, v in details["input_ranges"].items())
    source = details["ranges_source"]
    if source == "preset":
        notes.append(f"DAC input ranges: the preset's +-{base.dac.input_range:g} for every matrix (--input-ranges preset)")
    elif source == "checkpoint":
        notes.append(f"DAC input ranges from the checkpoint: {ranges}")
    else:
        why = "the checkpoint has none" if args.input_ranges == "stored" else "--input-ranges calibrate"
        notes.append(f"DAC input ranges calibrated on the model's training data ({why}; "
                     f"statistic {args.range_statistic}): {ranges}")
    if base.dac.range_mode != "fixed" or not base.dac.active:
        notes.append(f"(the DAC {'is off' if not base.dac.active else 'ranges each input vector itself'} in this "
                     "config: the ranges are not used)")
    dev = base.device
    if not base.is_digital and dev.read_sigma is None and not base.output_noise.active:
        notes.append(f"note: preset {base.name} has no read-noise law: every draw of one programmed instance at "
                     "one time reads the same")
    return notes


def _clip_warnings(details: dict, comps: list[bool], times: list[float], limit: float) -> list[str]:
    """One warning per matrix and converter whose saturated fraction exceeds ``limit`` somewhere."""
    import numpy as np

    clips = details["clips"]  # (comp, time, matrix, 2)
    lines = []
    for j, name in enumerate(details["matrices"]):
        for q, conv in enumerate(("DAC inputs", "ADC conversions")):
            worst = clips[:, :, j, q]
            if worst.size and worst.max() > limit:
                c, k = np.unravel_index(int(np.argmax(worst)), worst.shape)
                lines.append(f"warning: {worst.max():.1%} of the {conv} of {name} saturated (at t = {times[k]:g} s, "
                             f"drift compensation {'on' if comps[c] else 'off'}; over {limit:.1%}: "
                             + ("widen its input range, e.g. --input-ranges calibrate)" if q == 0 else
                                "widen the ADC range, e.g. --set adc_range_mode=calibrated or adc_output_range)"))
    return lines


def _deploy_energy(args: argparse.Namespace, base, data, chip, out: Path, digital: float) -> None:
    """``--energy``: program one instance (seed ``args.seed``), count the reads of the first
    test sequences, cost them with ``chip`` (models.energy), write energy.csv/json/png.

    The counting pass sets no converter ranges: counts depend on shapes and the config
    (tiles, slicing, bits), never on the values read."""
    from models import program
    from models.energy import format_report, measure_sequences, write_report

    from .experiment import load_checkpoint

    model, _ = load_checkpoint(args.checkpoint, config=base)
    program(model, seed=args.seed)
    n = min(args.energy_sequences, len(data.x_test))
    lengths = None if data.lengths_test is None else data.lengths_test[:n]
    rep = measure_sequences(model, data.x_test[:n], chip, lengths=lengths)
    attrs = {"command": "deploy --energy", "checkpoint": str(args.checkpoint), "device_preset": base.name,
             "array_config": base.to_dict(), "chip_costs": chip.costs.to_dict(), "seed": args.seed,
             "accuracy_digital": digital}
    write_report(rep, out, title=f"{base.name} read with {chip.name} costs: energy per inference", attrs=attrs)
    print(f"\nenergy per inference on chip preset {chip.name} (costs; reads counted on {n} test sequences of "
          f"config {base.name}):")
    print(format_report(rep))
    for note in rep.notes:
        print(f"  note: {note}")
    print(f"wrote energy.csv, energy.json, energy.png in {out}")


# --------------------------------------------------------------------------- python -m study
def main(argv: list[str] | None = None) -> int:
    """``python -m study train|sweep|deploy ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": train_main, "sweep": sweep_main, "deploy": deploy_main}
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m study {train,sweep,deploy} [options]\n\n"
              "  train   train one analog RNN with Deep Noise Injection\n"
              "  sweep   sigma_train x sigma_val sweep: results.h5, summary.csv, heatmaps\n"
              "  deploy  program a trained model onto a device and evaluate over time\n\n"
              "Run 'python -m study <command> --help' for the options of one command.")
        return 0
    if argv[0] not in commands:
        print(f"python -m study: unknown command {argv[0]!r}; expected one of {', '.join(commands)}", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])
