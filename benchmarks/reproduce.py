"""Reproduce Qin and Vucinic (2018) on row-by-row MNIST with xbarsim's own commands, and go past it.

``python -m benchmarks reproduce`` (also ``xbarsim bench reproduce``) runs the whole study as a
sequence of ``xbarsim sweep`` / ``xbarsim deploy`` commands with fixed seeds, one *stage* after
another, each writing under ``--out`` (default ``benchmarks/results/reproduction``):

=============  =================================================================================
stage          what it runs (folder)
=============  =================================================================================
speech         the DNI sweep on JapaneseVowels (``speech/``)
mnist          the paper's sweep on row-by-row MNIST, RNN and LSTM, relative noise (``mnist/``)
clean          every ``mnist`` model on the full 10k test set without noise (``clean/<job>/``)
deploy         conventional (sigma_train 0) and the best DNI model of each architecture on the
               pcm and rram presets, 1 s .. 1 year, drift compensation on/off (``deploy/``)
device         DNI with the device's own noise: the same networks trained on the pcm preset
               (``device_pcm/``)
device_deploy  those models deployed like ``deploy`` (``deploy/``)
conventions    a smaller sweep in each noise convention: relative, absolute, snr_db
               (``conventions/<convention>/``)
report         per-claim statistics with confidence intervals from the files above:
               ``claims.json``, ``claims.md``, ``deploy_summary.csv``, plots, and the generated
               block of ``--doc`` (docs/REPRODUCTION.md)
=============  =================================================================================

Every stage skips the work already done: a sweep resumes per job (and is not called at all
when all its jobs are finished, so its files stay byte-identical), a deploy is skipped when
its ``deploy.json`` exists with the same command. A killed run loses at most the jobs in
flight; run the same command again to resume. Wall time per stage and run, and every
command, are logged to ``stages.json``.

Profiles: ``full`` (the study, sized for a 2-core machine) and ``tiny`` (digits, one seed,
two levels; seconds; the tests run it).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PROFILES", "STAGES", "main", "compute_claims"]

STAGES = ("speech", "mnist", "clean", "deploy", "device", "device_deploy", "conventions", "report")

#: the study (``full``) and a seconds-long smoke run (``tiny``). Strings are passed to the CLI as given.
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "mnist": {"data": "mnist", "n_train": None, "n_test": 5000, "archs": "lstm,rnn", "hidden": 128,
                  "epochs": 10, "batch_size": 64, "lr": 1e-3, "optimizer": "adam",
                  "sigma_train": "0,0.05,0.1,0.2,0.4", "sigma_val": "0,0.05,0.1,0.2,0.3,0.4,0.6,0.8",
                  "seeds": "0,1,2,3,4", "draws": 20, "convention": "relative"},
        "clean": {"n_test": None},
        "deploy": {"presets": "pcm,rram", "times": "1,3600,86400,2592000,31536000", "instances": 4, "draws": 2,
                   "n_test": 2000, "seeds": "0,1,2", "seed": 0},
        "device": {"preset": "pcm", "sigma_train": "0,0.2", "sigma_val": "0", "seeds": "0,1,2", "draws": 10},
        "speech": {"data": "japanese_vowels", "n_train": None, "n_test": None, "archs": "lstm,rnn", "hidden": 128,
                   "epochs": 60, "batch_size": 16, "lr": 2e-3, "optimizer": "adam",
                   "sigma_train": "0,0.05,0.1,0.2,0.4", "sigma_val": "0,0.05,0.1,0.2,0.3,0.4,0.6,0.8",
                   "seeds": "0,1,2,3,4", "draws": 20, "convention": "relative"},
        "conventions": {"data": "mnist", "n_train": 10000, "n_test": 2000, "archs": "lstm", "hidden": 128,
                        "epochs": 10, "batch_size": 64, "lr": 1e-3, "optimizer": "adam", "seeds": "0,1,2",
                        "draws": 10,
                        "levels": {"relative": ("0,0.1,0.2,0.4", "0,0.1,0.2,0.4,0.8"),
                                   "absolute": ("0,0.1,0.2,0.4", "0,0.1,0.2,0.4,0.8"),
                                   "snr_db": ("inf,20,14,8", "inf,20,14,8,2")}},
    },
    "tiny": {
        "mnist": {"data": "digits", "n_train": 300, "n_test": 100, "archs": "lstm,rnn", "hidden": 8, "epochs": 1,
                  "batch_size": 64, "lr": 1e-2, "optimizer": "adam", "sigma_train": "0,0.2", "sigma_val": "0,0.2",
                  "seeds": "0", "draws": 2, "convention": "relative"},
        "clean": {"n_test": None},
        "deploy": {"presets": "pcm,rram", "times": "1,31536000", "instances": 2, "draws": 1, "n_test": 50,
                   "seeds": "0", "seed": 0},
        "device": {"preset": "pcm", "sigma_train": "0,0.2", "sigma_val": "0", "seeds": "0", "draws": 2},
        "speech": {"data": "digits", "n_train": 200, "n_test": 50, "archs": "lstm", "hidden": 4, "epochs": 1,
                   "batch_size": 64, "lr": 1e-2, "optimizer": "adam", "sigma_train": "0,0.2", "sigma_val": "0,0.2",
                   "seeds": "0", "draws": 2, "convention": "relative"},
        "conventions": {"data": "digits", "n_train": 200, "n_test": 50, "archs": "lstm", "hidden": 4, "epochs": 1,
                        "batch_size": 64, "lr": 1e-2, "optimizer": "adam", "seeds": "0", "draws": 2,
                        "levels": {"relative": ("0,0.2", "0,0.2"), "absolute": ("0,0.2", "0,0.2"),
                                   "snr_db": ("inf,14", "inf,14")}},
    },
}

_MARK_BEGIN = "<!-- reproduce:begin (generated by `python -m benchmarks reproduce --stages report`; do not edit) -->"
_MARK_END = "<!-- reproduce:end -->"
#: deployed model kinds trained on the device preset: its noise alone, and with the paper's output noise on top
_DEVICE_KINDS = ("dni_device", "dni_device_paper")
_KIND_COLORS = {"conventional": "C0", "dni_paper": "C1", "dni_device": "C2", "dni_device_paper": "C3"}
_TIME_NAMES = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 2592000.0: "30 days", 31536000.0: "1 year"}


# --------------------------------------------------------------------------- running xbarsim commands
def _cli(argv: list[str]) -> int:
    """Run ``xbarsim <argv>`` in this process (train/sweep/deploy); returns its exit status."""
    from study import cli

    entry = {"train": cli.train_main, "sweep": cli.sweep_main, "deploy": cli.deploy_main}[argv[0]]
    sys.stdout.flush()
    rc = int(entry(list(argv[1:])) or 0)
    sys.stdout.flush()
    return rc


def _show(argv: list[str]) -> str:
    return "xbarsim " + " ".join(shlex.quote(a) for a in argv)


def _git_state() -> dict:
    """The commit of the code that runs (and whether the tracked files differ from it), when in a git checkout."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                "crossbar", "models", "study", "calibration", "xbarsim", "benchmarks", ":(exclude)benchmarks/results"],  # results are data
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": head or None, "code_modified": bool(dirty)} if head else {}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Runner:
    """Runs the commands of the stages and logs them (with wall times) to ``stages.json``."""

    def __init__(self, out: Path, workers: int, dry_run: bool = False, quiet: bool = True):
        self.out = out
        self.workers = workers
        self.dry_run = dry_run
        self.quiet = quiet
        self.log_path = out / "stages.json"
        self.log = self._read_log()
        import threading

        self.lock = threading.RLock()
        self.touched: set[str] = set()
        for st in self.log["stages"].values():  # runs of an earlier, killed process
            for r in st.get("runs", []):
                if "finished" not in r:
                    r["interrupted"] = True
                    r["finished"] = r.get("alive")

    def _read_log(self) -> dict:
        try:
            return json.loads(self.log_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {"stages": {}}

    def save(self) -> None:
        """Write the stages this process ran into stages.json, keeping the other stages as they are there.

        So a second process (e.g. ``--stages report`` while the study runs) does not overwrite the
        first one's entries, nor the first the second's. The read-modify-write holds a file lock.
        """
        if self.dry_run:
            return
        import fcntl

        from study.results import write_json

        with self.lock, open(self.out / ".stages.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                disk = self._read_log()
                for name in self.touched:
                    disk["stages"][name] = self.log["stages"][name]
                write_json(self.log_path, disk)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def stage(self, name: str) -> dict:
        self.touched.add(name)
        return self.log["stages"].setdefault(name, {"status": "pending", "runs": [], "commands": []})

    def note_commands(self, name: str, cmds: list[list[str]]) -> None:
        st = self.stage(name)
        for c in cmds:
            text = _show(c)
            if text not in st["commands"]:
                st["commands"].append(text)

    def run(self, name: str, cmds: list[list[str]], parallel: bool = False, on_done=None) -> list[int]:
        """Run ``cmds`` (each ``[subcommand, args...]``); over ``workers`` processes if ``parallel``.

        ``on_done(cmd, rc)`` is called in this process as each command finishes (in completion order).
        """
        self.note_commands(name, cmds)
        self.save()
        if not cmds:
            return []
        if self.dry_run:
            for c in cmds:
                print(f"[reproduce:{name}] {_show(c)}", flush=True)
            return [0] * len(cmds)
        rcs: list[int] = [0] * len(cmds)
        if parallel and self.workers > 1 and len(cmds) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn")) as ex:
                futures = {}
                for i, c in enumerate(cmds):
                    print(f"[reproduce:{name}] {_show(c)}", flush=True)
                    futures[ex.submit(_cli, c)] = i
                for fut in as_completed(futures):
                    i = futures[fut]
                    rcs[i] = fut.result()
                    if on_done is not None:
                        on_done(cmds[i], rcs[i])
            return rcs
        for i, c in enumerate(cmds):
            print(f"[reproduce:{name}] {_show(c)}", flush=True)
            rcs[i] = _cli(c)
            if on_done is not None:
                on_done(c, rcs[i])
        return rcs


# --------------------------------------------------------------------------- stage helpers
def _data_args(cfg: dict, data_path: str | None) -> list[str]:
    args = ["--data", cfg["data"]]
    if cfg["data"] == "mnist":
        args += ["--data-path", data_path]
    if cfg.get("n_train") is not None:
        args += ["--n-train", str(cfg["n_train"])]
    if cfg.get("n_test") is not None:
        args += ["--n-test", str(cfg["n_test"])]
    return args


def _sweep_argv(cfg: dict, out: Path, data_path: str | None, workers: int, *, sigma_train: str | None = None,
                sigma_val: str | None = None, convention: str | None = None, preset: str = "paper",
                seeds: str | None = None, draws: int | None = None) -> list[str]:
    return ["sweep", *_data_args(cfg, data_path), "--arch", cfg["archs"], "--hidden", str(cfg["hidden"]),
            "--epochs", str(cfg["epochs"]), "--batch-size", str(cfg["batch_size"]), "--lr", f"{cfg['lr']:g}",
            "--optimizer", cfg["optimizer"], "--convention", convention or cfg["convention"], "--preset", preset,
            "--sigma-train", sigma_train or cfg["sigma_train"], "--sigma-val", sigma_val or cfg["sigma_val"],
            "--seeds", seeds or cfg["seeds"], "--draws", str(draws or cfg["draws"]), "--workers", str(workers),
            "--quiet", "--out", str(out)]


def _sweep_spec(argv: list[str]):
    """The SweepSpec that ``xbarsim sweep <argv>`` would run (to check which jobs are finished)."""
    from study.cli import sweep_parser
    from study.sweep import SweepSpec

    a = sweep_parser().parse_args(argv[1:])
    return SweepSpec(data=a.data, data_path=a.data_path, n_train=a.n_train, n_test=a.n_test, data_seed=a.data_seed,
                     archs=tuple(a.arch), hidden=a.hidden, num_layers=a.layers, epochs=a.epochs,
                     batch_size=a.batch_size, lr=a.lr, optimizer=a.optimizer, seeds=tuple(a.seeds),
                     sigma_train=tuple(a.sigma_train), sigma_val=tuple(a.sigma_val), convention=a.convention,
                     preset=a.preset, draws=a.draws, noise_draw=a.noise_draw), Path(a.out)


def _sweep_state(argv: list[str]) -> tuple[int, int]:
    """(finished jobs, all jobs) of a sweep command."""
    from study.sweep import finished_jobs, make_jobs

    spec, out = _sweep_spec(argv)
    jobs = make_jobs(spec)
    return len(finished_jobs(out, jobs)), len(jobs)


def _run_sweep_stage(runner: Runner, name: str, argvs: list[list[str]]) -> bool:
    """Run each sweep unless all its jobs are finished and its summary exists; True when all complete."""
    todo = []
    for argv in argvs:
        done, total = _sweep_state(argv)
        _, out = _sweep_spec(argv)
        if done == total and (out / "summary.csv").exists():
            print(f"[reproduce:{name}] {out}: all {total} jobs finished; skipped", flush=True)
            runner.note_commands(name, [argv])
        else:
            print(f"[reproduce:{name}] {out}: {done}/{total} jobs finished; running the rest", flush=True)
            todo.append(argv)
    rcs = [runner.run(name, [argv])[0] for argv in todo]
    if any(rcs):
        raise RuntimeError(f"stage {name}: a sweep failed (exit {rcs}); see the log above")
    return all(_sweep_state(a)[0] == _sweep_state(a)[1] for a in argvs) or runner.dry_run


def _deploy_argv(ckpt: Path, out: Path, preset: str, dcfg: dict, data_cfg: dict, data_path: str | None,
                 *, n_test: int | None, times: str, instances: int, draws: int, compensation: str) -> list[str]:
    cfg = dict(data_cfg, n_train=None, n_test=n_test)
    return ["deploy", "--checkpoint", str(ckpt), "--preset", preset, "--times", times, "--instances", str(instances),
            "--draws", str(draws), "--compensation", compensation, *_data_args(cfg, data_path),
            "--seed", str(dcfg["seed"]), "--quiet", "--out", str(out)]


def _deploy_done(argv: list[str]) -> bool:
    out = Path(argv[argv.index("--out") + 1])
    try:
        stamp = json.loads((out / "command.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return stamp.get("argv") == argv and (out / "deploy.json").exists()


def _run_deploys(runner: Runner, name: str, argvs: list[list[str]]) -> bool:
    from study.results import write_json

    todo = [a for a in argvs if not _deploy_done(a)]
    print(f"[reproduce:{name}] {len(argvs) - len(todo)}/{len(argvs)} deploys already done", flush=True)
    runner.note_commands(name, [a for a in argvs if a not in todo])
    failed: list[str] = []

    def stamp(argv: list[str], rc: int) -> None:  # as each finishes, so that a killed run keeps it
        if rc != 0:
            failed.append(f"{_show(argv)} (exit {rc})")
        elif not runner.dry_run:
            write_json(Path(argv[argv.index("--out") + 1]) / "command.json", {"argv": argv})

    runner.run(name, todo, parallel=True, on_done=stamp)
    if failed:
        raise RuntimeError(f"stage {name}: {len(failed)} deploy(s) failed: {'; '.join(failed)}")
    return True


def _ckpt(sweep_out: Path, arch: str, sigma_train: float, seed: int) -> Path:
    from study.sweep import job_id

    return sweep_out / "checkpoints" / f"{job_id(arch, float(sigma_train), int(seed))}.pt"


def _int_list(text: str) -> list[int]:
    return [int(v) for v in str(text).split(",") if v.strip()]


def _float_list(text: str) -> list[float]:
    return [float(v) for v in str(text).split(",") if v.strip()]


def best_dni_levels(summary_csv: Path, convention: str = "relative") -> dict[str, float]:
    """Per architecture, the sigma_train > 0 with the highest accuracy averaged over all sigma_val."""
    from study.results import read_summary_csv

    rows = read_summary_csv(summary_csv)
    best: dict[str, float] = {}
    for arch in sorted({r["arch"] for r in rows}):
        means: dict[float, list[float]] = {}
        for r in rows:
            if r["arch"] == arch and not _noiseless(r["sigma_train"], convention):
                means.setdefault(r["sigma_train"], []).append(r["accuracy_mean"])
        if means:
            best[arch] = max(means, key=lambda s: (float(np.mean(means[s])), -s))
    return best


# --------------------------------------------------------------------------- stages
class Study:
    """The stages of the reproduction for one profile."""

    def __init__(self, profile: dict, out: Path, data_path: str, workers: int, runner: Runner):
        self.p = profile
        self.out = out
        self.data_path = data_path
        self.workers = workers
        self.runner = runner

    # (a) the paper's sweep
    def mnist_argv(self) -> list[str]:
        return _sweep_argv(self.p["mnist"], self.out / "mnist", self.data_path, self.workers)

    def stage_mnist(self) -> bool:
        return _run_sweep_stage(self.runner, "mnist", [self.mnist_argv()])

    # full-test clean accuracy of every mnist model
    def clean_argvs(self) -> list[list[str]]:
        m = self.p["mnist"]
        spec, sweep_out = _sweep_spec(self.mnist_argv())
        argvs = []
        for arch in spec.archs:
            for st in spec.sigma_train:
                for seed in spec.seeds:
                    ck = _ckpt(sweep_out, arch, st, seed)
                    if ck.exists():
                        argvs.append(_deploy_argv(ck, self.out / "clean" / ck.stem, "ideal", self.p["deploy"], m,
                                                  self.data_path, n_test=self.p["clean"]["n_test"], times="1",
                                                  instances=1, draws=1, compensation="off"))
        return argvs

    def stage_clean(self) -> bool:
        done, total = _sweep_state(self.mnist_argv())
        argvs = self.clean_argvs()
        _run_deploys(self.runner, "clean", argvs)
        return done == total and len(argvs) == total

    # (b) deployment of the paper-noise models
    def deploy_models(self, kinds: tuple[str, ...]) -> tuple[list[list[str]], bool]:
        m, d = self.p["mnist"], self.p["deploy"]
        done, total = _sweep_state(self.mnist_argv())
        complete = True
        models: list[tuple[str, str, int, Path]] = []
        if "conventional" in kinds or "dni_paper" in kinds:
            if done < total:
                print("[reproduce:deploy] the mnist sweep is not complete: the best DNI level cannot be chosen yet",
                      flush=True)
                return [], False
            best = best_dni_levels(self.out / "mnist" / "summary.csv", m["convention"])
            from study.results import write_json

            if not self.runner.dry_run:
                write_json(self.out / "deploy" / "choice.json", {
                    "rule": "per architecture, the sigma_train > 0 of the mnist sweep with the highest accuracy "
                            "averaged over all its sigma_val (summary.csv)", "best_sigma_train": best,
                    "convention": m["convention"]})
            for arch in _archs(m):
                for seed in _int_list(d["seeds"]):
                    models.append((arch, "conventional", seed, _ckpt(self.out / "mnist", arch, 0.0, seed)))
                    models.append((arch, "dni_paper", seed, _ckpt(self.out / "mnist", arch, best[arch], seed)))
        if "dni_device" in kinds:
            dev = self.p["device"]
            for level in _float_list(dev["sigma_train"]):  # 0: the device's noise alone; > 0: plus the paper's
                kind = "dni_device" if level == 0 else "dni_device_paper"
                for arch in _archs(m):
                    for seed in _int_list(d["seeds"]):
                        ck = _ckpt(self.out / f"device_{dev['preset']}", arch, level, seed)
                        if ck.exists():
                            models.append((arch, kind, seed, ck))
                        else:
                            complete = False
        argvs = []
        for preset in d["presets"].split(","):
            for arch, kind, seed, ck in models:
                argvs.append(_deploy_argv(ck, self.out / "deploy" / preset / f"{arch}_{kind}_seed{seed}", preset, d, m,
                                          self.data_path, n_test=d["n_test"], times=d["times"],
                                          instances=d["instances"], draws=d["draws"], compensation="both"))
        return argvs, complete

    def stage_deploy(self) -> bool:
        argvs, complete = self.deploy_models(("conventional", "dni_paper"))
        _run_deploys(self.runner, "deploy", argvs)
        return complete and bool(argvs)

    # (c) DNI with the device's own noise
    def device_argv(self) -> list[str]:
        dev = self.p["device"]
        return _sweep_argv(self.p["mnist"], self.out / f"device_{dev['preset']}", self.data_path, self.workers,
                           sigma_train=dev["sigma_train"], sigma_val=dev["sigma_val"], preset=dev["preset"],
                           seeds=dev["seeds"], draws=dev["draws"])

    def stage_device(self) -> bool:
        return _run_sweep_stage(self.runner, "device", [self.device_argv()])

    def stage_device_deploy(self) -> bool:
        argvs, complete = self.deploy_models(("dni_device",))
        _run_deploys(self.runner, "device_deploy", argvs)
        return complete and bool(argvs)

    # (d) speech
    def speech_argv(self) -> list[str]:
        return _sweep_argv(self.p["speech"], self.out / "speech", self.data_path, self.workers)

    def stage_speech(self) -> bool:
        return _run_sweep_stage(self.runner, "speech", [self.speech_argv()])

    # (e) the three noise conventions
    def conventions_argvs(self) -> list[list[str]]:
        c = self.p["conventions"]
        return [_sweep_argv(dict(c, convention=conv), self.out / "conventions" / conv, self.data_path, self.workers,
                            sigma_train=st, sigma_val=sv) for conv, (st, sv) in c["levels"].items()]

    def stage_conventions(self) -> bool:
        return _run_sweep_stage(self.runner, "conventions", self.conventions_argvs())

    def sweep_argvs(self) -> list[list[str]]:
        return [self.speech_argv(), self.mnist_argv(), self.device_argv(), *self.conventions_argvs()]

    def aggregate_partial(self) -> None:
        """``xbarsim sweep ... --max-jobs 0`` for every sweep with finished jobs not yet in its results.h5.

        That runs no job: it only aggregates the finished ones (results.h5, summary.csv, plots; NaN
        for the rest), so that a report can be written while a sweep is still running.
        """
        import h5py

        for argv in self.sweep_argvs():
            done, _ = _sweep_state(argv)
            if done == 0:
                continue
            _, out = _sweep_spec(argv)
            try:
                with h5py.File(out / "results.h5", "r") as f:
                    have = int(f.attrs["n_jobs_finished"])
            except (OSError, KeyError):
                have = -1
            if have != done:
                rc = self.runner.run("report", [argv + ["--max-jobs", "0"]])
                if rc and rc[0]:
                    raise RuntimeError(f"aggregating {out} failed (exit {rc[0]})")

    def stage_report(self, doc: Path | None) -> bool:
        self.aggregate_partial()
        claims = compute_claims(self)
        write_report(self, claims, doc)
        return True


def _archs(cfg: dict) -> list[str]:
    return [a for a in cfg["archs"].split(",") if a]


# --------------------------------------------------------------------------- statistics
def _noiseless(level: float, convention: str) -> bool:
    return (convention == "snr_db" and math.isinf(level) and level > 0) or (convention != "snr_db" and level == 0)


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


def sweep_claims(h5: Path, clean: dict | None = None) -> dict:
    """The paper's three claims from a sweep's results.h5 (per architecture), with paired-seed CIs.

    Per-seed accuracies (mean over draws) are paired by seed across sigma_train: a seed fixes the
    weight init, the batch order and the evaluation draw seeds, so the models of one seed differ
    only in the training noise.

    Args:
        clean: optional ``{(arch, sigma_train, seed): accuracy}`` without noise on a larger test
            set (the ``clean`` stage); used for claim 2 when complete.
    """
    import warnings

    import h5py

    warnings.simplefilter("ignore", RuntimeWarning)  # means of unfinished (all-NaN) cells are NaN on purpose
    with h5py.File(h5, "r") as f:
        acc = f["accuracy"][()]
        archs = list(f["arch"].asstr()[()])
        st = [float(v) for v in f["sigma_train"][()]]
        sv = [float(v) for v in f["sigma_val"][()]]
        seeds = [int(v) for v in f["seed"][()]]
        conv = str(f.attrs["noise_convention"])
        n_done, n_jobs = int(f.attrs["n_jobs_finished"]), int(f.attrs["n_jobs"])
        data = json.loads(f.attrs["data"]) if "data" in f.attrs else {}
    m = np.nanmean(acc, axis=-1) if acc.size else acc  # (A, S, K, V); NaN for missing jobs
    i0 = next((i for i, v in enumerate(st) if _noiseless(v, conv)), None)
    v0 = next((j for j, v in enumerate(sv) if _noiseless(v, conv)), None)
    job_s = {"total": 0.0, "train": 0.0}
    for jf in sorted((Path(h5).parent / "jobs").glob("*.json")):
        try:
            sec = json.loads(jf.read_text(encoding="utf-8")).get("seconds", {})
        except (OSError, json.JSONDecodeError):
            continue
        job_s["total"] += float(sec.get("total", 0.0))
        job_s["train"] += float(sec.get("train", 0.0))
    out: dict[str, Any] = {"file": str(h5), "convention": conv, "sigma_train": st, "sigma_val": sv, "seeds": seeds,
                           "n_jobs_finished": n_done, "n_jobs": n_jobs, "data": data, "job_seconds": job_s,
                           "archs": {}}
    if i0 is None or v0 is None:
        out["error"] = "the sweep needs a noiseless sigma_train and sigma_val level"
        return out
    noisy_st = [i for i in range(len(st)) if i != i0]
    noisy_sv = [j for j in range(len(sv)) if j != v0]
    for a, arch in enumerate(archs):
        res: dict[str, Any] = {}
        # claim 1: the drop D = acc(sigma_val=0) - mean over sigma_val>0 shrinks as sigma_train grows
        if noisy_sv:
            drop = m[a, :, :, v0] - np.mean(m[a][:, :, noisy_sv], axis=-1)  # (S, K)
        else:
            drop = np.full(m.shape[1:3], np.nan)
        per_level = [{"sigma_train": st[i], "drop": _mean_ci(drop[i]),
                      "accuracy_noiseless": _mean_ci(m[a, i, :, v0]),
                      "accuracy_mean_over_sigma_val": _mean_ci(np.mean(m[a, i], axis=-1))} for i in range(len(st))]
        x = np.array([amplitude(st[i], conv) for i in range(len(st)) for _ in seeds])
        y = drop.ravel()
        ok = np.isfinite(y)
        slope = {"slope": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": int(ok.sum())}
        if ok.sum() >= 3 and len(set(x[ok])) >= 2:
            from scipy import stats

            lr = stats.linregress(x[ok], y[ok])
            half = float(stats.t.ppf(0.975, ok.sum() - 2)) * lr.stderr
            slope = {"slope": float(lr.slope), "ci_low": float(lr.slope - half), "ci_high": float(lr.slope + half),
                     "n": int(ok.sum())}
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
        res["claim1"] = {"statistic": "drop = accuracy at sigma_val=0 minus the mean accuracy over sigma_val>0, per "
                                      "seed; OLS slope of drop vs sigma_train amplitude; paired differences "
                                      "drop(sigma_train) - drop(0)",
                         "per_sigma_train": per_level, "slope": slope, "spearman_rho_mean_drop": rho,
                         "vs_conventional": diffs1, "verdict": v1[0], "reason": v1[1]}
        # claim 2: DNI improves accuracy without inference noise
        source = "sweep"
        base = m[a, :, :, v0].copy()  # (S, K)
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
        res["claim2"] = {"statistic": "paired difference (per seed) of noiseless test accuracy, DNI sigma_train vs "
                                      "sigma_train=0", "source": source,
                         "accuracy_noiseless": {f"{st[i]:g}": _mean_ci(base[i]) for i in range(len(st))},
                         "tests": tests2, "verdict": v2[0], "reason": v2[1]}
        # claim 3: some (sigma_train, sigma_val > 0) beat conventional training evaluated without noise
        tests3 = []
        for i in noisy_st:
            for j in noisy_sv:
                d = m[a, i, :, j] - m[a, i0, :, v0]
                tests3.append(dict(paired_ci(d), sigma_train=st[i], sigma_val=sv[j],
                                   bonferroni=paired_ci(d, m=len(noisy_st) * len(noisy_sv))))
        v3 = _verdict(tests3, "(sigma_train, sigma_val>0) pair's gain over conventional training at sigma_val=0")
        best3 = max(tests3, key=lambda t: t["mean"] if np.isfinite(t["mean"]) else -np.inf) if tests3 else None
        res["claim3"] = {"statistic": "paired difference (per seed): accuracy at (sigma_train>0, sigma_val>0) minus "
                                      "the conventional model's (sigma_train=0) at sigma_val=0",
                         "tests": tests3, "best": best3, "verdict": v3[0], "reason": v3[1]}
        out["archs"][arch] = res
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


# --------------------------------------------------------------------------- report
def _n(v: Any, missing: str = "?") -> str:
    """A count with thousands separators (60,000); ``missing`` when absent."""
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else (missing if v is None else str(v))


def _ci(d: dict, scale: float = 100.0, unit: str = "") -> str:
    if not np.isfinite(d.get("mean", math.nan)):
        return "n/a"
    if not np.isfinite(d.get("ci_low", math.nan)):
        return f"{scale * d['mean']:.2f}{unit} (no CI)"
    return f"{scale * d['mean']:+.2f}{unit} [{scale * d['ci_low']:+.2f}, {scale * d['ci_high']:+.2f}]"


def _acc_ci(d: dict) -> str:
    if not np.isfinite(d.get("mean", math.nan)):
        return "n/a"
    if not np.isfinite(d.get("ci_low", math.nan)):
        return f"{100 * d['mean']:.2f}"
    return f"{100 * d['mean']:.2f} [{100 * d['ci_low']:.2f}, {100 * d['ci_high']:.2f}]"


def _rel(path: Path, doc: Path | None) -> str:
    try:
        return os.path.relpath(path, doc.parent if doc is not None else Path.cwd())
    except ValueError:
        return str(path)


def _sweep_section(name: str, c: dict, folder: Path, doc: Path | None, lines: list[str]) -> None:
    from study.results import read_summary_csv

    conv = c["convention"]
    lines.append(f"Jobs finished: {c['n_jobs_finished']}/{c['n_jobs']}; convention `{conv}`; "
                 f"data {c['data'].get('name', '?')} ({_n(c['data'].get('n_train'))} train / "
                 f"{_n(c['data'].get('n_test'))} test); seeds {c['seeds']}. Sum of the jobs' own wall times "
                 f"(each job on one worker process; training + evaluation): {c['job_seconds']['total'] / 60:.1f} min, "
                 f"of which training {c['job_seconds']['train'] / 60:.1f} min.")
    lines.append("")
    if (folder / "heatmap.png").exists():
        lines.append(f"![{name} heatmap]({_rel(folder / 'heatmap.png', doc)})")
        lines.append("")
    if (folder / "summary.csv").exists():
        rows = read_summary_csv(folder / "summary.csv")
        for arch in c["archs"]:
            lines.append(f"{arch.upper()}: mean test accuracy (%) [95% CI over seeds], rows sigma_train, columns "
                         f"sigma_val ({conv}); curves: [{_rel(folder / f'curves_{arch}.png', doc)}]"
                         f"({_rel(folder / f'curves_{arch}.png', doc)})")
            lines.append("")
            lines.append("| sigma_train \\ sigma_val | " + " | ".join(f"{v:g}" for v in c["sigma_val"]) + " |")
            lines.append("|---" * (len(c["sigma_val"]) + 1) + "|")
            cells = {(r["sigma_train"], r["sigma_val"]): r for r in rows if r["arch"] == arch}
            for st in c["sigma_train"]:
                row = []
                for sv in c["sigma_val"]:
                    r = cells.get((st, sv))
                    row.append("-" if r is None else (f"{100 * r['accuracy_mean']:.2f} "
                                                       f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"))
                lines.append(f"| {st:g} | " + " | ".join(row) + " |")
            lines.append("")
    partial = c["n_jobs_finished"] < c["n_jobs"]
    if partial:
        lines.append(f"**Partial data ({c['n_jobs_finished']} of {c['n_jobs']} jobs): the verdicts below use the "
                     "finished jobs only and may change.**")
        lines.append("")
    for arch, res in c["archs"].items():
        c1, c2, c3 = res["claim1"], res["claim2"], res["claim3"]
        lines.append(f"**{arch.upper()}**")
        lines.append("")
        lines.append(f"- Claim 1 (flatter with larger sigma_train): **{c1['verdict']}** — {c1['reason']}. Slope of "
                     f"the drop per unit sigma_train: {_ci({'mean': c1['slope']['slope'], **c1['slope']})} "
                     f"percentage points; Spearman rho of the mean drops {c1['spearman_rho_mean_drop']:.2f}. "
                     "Drop (pp) by sigma_train: " + "; ".join(
                         f"{p['sigma_train']:g}: {_ci(p['drop'])}" for p in c1["per_sigma_train"]) + ".")
        lines.append(f"- Claim 2 (DNI helps without inference noise; {c2['source']} test set): **{c2['verdict']}** "
                     f"— {c2['reason']}. Gain over sigma_train=0 (pp, 95% CI; Bonferroni CI): " + "; ".join(
                         f"{t['sigma_train']:g}: {_ci(t)}; {_ci(t['bonferroni'])}" for t in c2["tests"]) + ".")
        b = c3["best"]
        best = "n/a" if b is None else (f"best pair sigma_train={b['sigma_train']:g}, sigma_val={b['sigma_val']:g}: "
                                        f"{_ci(b)} pp (Bonferroni {_ci(b['bonferroni'])})")
        wins = [t for t in c3["tests"] if np.isfinite(t["ci_low"]) and t["ci_low"] > 0]
        lines.append(f"- Claim 3 (some noisy (sigma_train, sigma_val) beat conventional training without noise): "
                     f"**{c3['verdict']}** — {c3['reason']}. {best}. Pairs with the unadjusted CI above 0: "
                     + (", ".join(f"({t['sigma_train']:g}, {t['sigma_val']:g})" for t in wins) or "none") + ".")
        lines.append("")


def write_report(study: Study, claims: dict, doc: Path | None) -> None:
    """claims.json, claims.md, deploy_summary.csv, deploy plots; the generated block of ``doc``."""
    from study.results import write_json
    from xbarsim.files import atomic_write_text

    out = study.out
    write_json(out / "claims.json", _jsonable(claims))
    lines: list[str] = []
    st = claims.get("stages", {})
    lines.append(f"Generated {claims['generated']} from the files under `{_rel(out, doc)}`.")
    lines.append("")
    lines.append("| stage | status | wall time (s), all runs | runs |")
    lines.append("|---|---|---|---|")
    for name in STAGES:
        s = st.get(name, {})
        lines.append(f"| {name} | {s.get('status', 'pending')} | {s.get('wall_s_total', 0):.0f} | "
                     f"{len(s.get('runs', []))} |")
    lines.append("")
    mn = claims.get("mnist")
    pending = [n for n in STAGES if n != "report" and st.get(n, {}).get("status") != "complete"]
    if pending:
        lines.append(f"Not complete yet: {', '.join(pending)}. Resume (from the repository root): "
                     "`nohup nice -n 10 .venv/bin/python -m benchmarks reproduce --keep-going > reproduce.log 2>&1 &`")
        lines.append("")
    lines.extend(_glance(study, claims))
    lines.append("### Row-by-row MNIST, relative noise (the paper's claims)")
    lines.append("")
    if mn is None:
        lines.append("Pending: no finished job yet.")
    else:
        clean = mn.get("clean", {})
        if clean:
            conv0 = {k: v for k, v in clean.items() if k.split("/")[1] == "0"}
            for arch in mn["archs"]:
                vals = [v for k, v in conv0.items() if k.startswith(arch + "/")]
                if vals:
                    lines.append(f"Conventionally trained {arch.upper()} (sigma_train=0), noiseless accuracy on "
                                 f"{_n(mn.get('clean_n_test'), 'all')} test examples: "
                                 + ", ".join(f"{100 * v:.2f}%" for v in vals)
                                 + f" (seeds; min {100 * min(vals):.2f}%, mean {100 * np.mean(vals):.2f}%).")
            lines.append("")
        _sweep_section("mnist", mn, out / "mnist", doc, lines)
    dep = claims.get("deploy")
    lines.append("### Deployment on the pcm and rram presets (past the paper)")
    lines.append("")
    if dep is None or not dep["rows"]:
        lines.append("Pending (needs the complete mnist sweep; stage `deploy`).")
    else:
        if dep.get("choice"):
            lines.append(f"Best DNI level per architecture (rule: {dep['choice']['rule']}): "
                         + ", ".join(f"{a.upper()} {v:g}" for a, v in dep["choice"]["best_sigma_train"].items())
                         + f" ({dep['choice']['convention']}).")
            lines.append("")
        _write_deploy_csv(out / "deploy_summary.csv", dep)
        _plot_deploy(out, dep)
        for png in sorted(out.glob("deploy_*.png")):
            lines.append(f"![{png.stem}]({_rel(png, doc)})")
        lines.append("")
        lines.append("Accuracy (%) [95% CI over training seeds] by time after programming; `comp` = global drift "
                     f"compensation. All rows: `{_rel(out / 'deploy_summary.csv', doc)}`.")
        lines.append("")
        times = dep["times_s"]
        lines.append("| preset | arch | model | comp | " + " | ".join(_TIME_NAMES.get(t, f"{t:g} s") for t in times)
                     + " |")
        lines.append("|---" * (4 + len(times)) + "|")
        keyed: dict[tuple, dict[float, dict]] = {}
        for r in dep["rows"]:
            keyed.setdefault((r["preset"], r["arch"], r["model"], r["drift_compensation"]), {})[r["time_s"]] = r
        for (preset, arch, kind, cv), by_t in sorted(keyed.items(), key=lambda kv: str(kv[0])):
            lines.append(f"| {preset} | {arch} | {kind} | {'on' if cv else 'off'} | "
                         + " | ".join(_acc_ci(by_t[t]) if t in by_t else "-" for t in times) + " |")
        lines.append("")
        if dep["comparisons"]:
            lines.append("Paired differences (pp, per training seed, 95% CI): model a minus model b.")
            lines.append("")
            lines.append("| preset | arch | a - b | comp | " + " | ".join(_TIME_NAMES.get(t, f"{t:g} s")
                                                                       for t in times) + " |")
            lines.append("|---" * (4 + len(times)) + "|")
            keyed2: dict[tuple, dict[float, dict]] = {}
            for r in dep["comparisons"]:
                keyed2.setdefault((r["preset"], r["arch"], f"{r['a']} - {r['b']}", r["drift_compensation"]),
                                  {})[r["time_s"]] = r
            for (preset, arch, ab, cv), by_t in sorted(keyed2.items(), key=lambda kv: str(kv[0])):
                lines.append(f"| {preset} | {arch} | {ab} | {'on' if cv else 'off'} | "
                             + " | ".join(_ci(by_t[t]) if t in by_t else "-" for t in times) + " |")
            lines.append("")
    dev = claims.get("device")
    if dev is not None:
        lines.append(f"DNI with the device's own noise (training on preset `{study.p['device']['preset']}`): "
                     f"{dev['n_jobs_finished']}/{dev['n_jobs']} jobs finished; its sweep's own evaluation on the "
                     "preset (fresh programming per test pass), by the paper-noise level added in training "
                     f"(sigma_train, {dev['convention']}): " + "; ".join(
                         f"{a.upper()} {p['sigma_train']:g}: {_acc_ci(p['accuracy_noiseless'])}%"
                         for a, r in dev["archs"].items() for p in r["claim1"]["per_sigma_train"]) + ".")
        lines.append("")
    sp = claims.get("speech")
    lines.append("### JapaneseVowels (speech)")
    lines.append("")
    if sp is None:
        lines.append("Pending (stage `speech`).")
    else:
        _sweep_section("speech", sp, out / "speech", doc, lines)
    lines.append("### The three noise conventions (smaller sweep)")
    lines.append("")
    any_conv = False
    for conv in study.p["conventions"]["levels"]:
        c = claims.get(f"conventions/{conv}")
        if c is None:
            continue
        any_conv = True
        lines.append(f"#### {conv}")
        lines.append("")
        _sweep_section(f"conventions/{conv}", c, out / "conventions" / conv, doc, lines)
    if not any_conv:
        lines.append("Pending (stage `conventions`).")
        lines.append("")
    lines.append(f"### Commands (as run, from the repository root; all of them in "
                 f"[{_rel(out / 'commands.txt', doc)}]({_rel(out / 'commands.txt', doc)}))")
    lines.append("")
    lines.append("```")
    for name in STAGES:
        for cmd in st.get(name, {}).get("commands", [])[:3]:
            lines.append(cmd)
        more = len(st.get(name, {}).get("commands", [])) - 3
        if more > 0:
            lines.append(f"# ... and {more} more `{name}` commands of the same form (all in stages.json)")
    lines.append("```")
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / "claims.md", text)
    atomic_write_text(out / "commands.txt", "".join(
        f"# stage {name}\n" + "".join(c + "\n" for c in st.get(name, {}).get("commands", []))
        for name in STAGES if st.get(name, {}).get("commands")))
    if doc is not None:
        _update_doc(doc, text)


def _word(r: dict | None, a: str, b: str) -> str:
    """Which of a, b is better by a paired difference a - b (its 95% CI), in words."""
    if r is None or not np.isfinite(r.get("mean", math.nan)):
        return "n/a"
    if not np.isfinite(r.get("ci_low", math.nan)):
        return "not measurable (< 2 seeds)"
    if r["ci_low"] > 0:
        return f"**{a}**"
    if r["ci_high"] < 0:
        return f"**{b}**"
    return "no resolved difference"


def _deploy_verdicts(dep: dict) -> list[str]:
    """A markdown table at the last time: the deployed models and which DNI holds up better (paired 95% CIs)."""
    times = dep.get("times_s") or []
    if not times:
        return []
    last = max(times)
    acc = {(r["preset"], r["arch"], r["model"], r["drift_compensation"]): r for r in dep["rows"]
           if r["time_s"] == last}
    cmp_ = {(r["preset"], r["arch"], r["a"], r["b"], r["drift_compensation"]): r for r in dep["comparisons"]
            if r["time_s"] == last}
    keys = sorted({k[:2] + (k[3],) for k in acc}, key=str)
    out = ["| preset | arch | comp | conventional | DNI, paper noise | DNI, device noise | DNI, device + paper noise "
           "| paper-noise DNI vs conventional | device vs paper noise (pp) | better | device + paper vs paper noise "
           "(pp) | better |", "|---" * 12 + "|"]
    for preset, arch, cv in keys:
        def a(kind):
            r = acc.get((preset, arch, kind, cv))
            return "-" if r is None else _acc_ci(r)
        pc = cmp_.get((preset, arch, "dni_paper", "conventional", cv))
        dp = cmp_.get((preset, arch, "dni_device", "dni_paper", cv))
        mp = cmp_.get((preset, arch, "dni_device_paper", "dni_paper", cv))
        out.append(f"| {preset} | {arch} | {'on' if cv else 'off'} | {a('conventional')} | {a('dni_paper')} | "
                   f"{a('dni_device')} | {a('dni_device_paper')} | {_ci(pc) if pc else '-'} | "
                   f"{_ci(dp) if dp else '-'} | {_word(dp, 'device noise', 'paper noise')} | "
                   f"{_ci(mp) if mp else '-'} | {_word(mp, 'device + paper noise', 'paper noise')} |")
    return out


def _glance(study: Study, claims: dict) -> list[str]:
    """The verdicts of every sweep and the 97% check, one table (details in the sections below)."""
    lines = ["### At a glance", ""]
    mn = claims.get("mnist")
    clean = (mn or {}).get("clean", {})
    conv0 = [v for k, v in clean.items() if k.startswith("lstm/0/")]
    n_seeds = len(_int_list(study.p["mnist"]["seeds"]))
    if conv0:
        ok = min(conv0) >= 0.97
        lines.append(f"- Competence check: the conventionally trained LSTM scores {100 * min(conv0):.2f}% to "
                     f"{100 * max(conv0):.2f}% noiseless on {_n(mn.get('clean_n_test'), 'all 10,000')} test images over "
                     f"{len(conv0)}/{n_seeds} seeds: **{'passes' if ok else 'fails'}** the 97% bar"
                     f"{'' if len(conv0) == n_seeds else ' (so far)'}.")
    else:
        lines.append("- Competence check (conventional LSTM >= 97% on all 10,000 test images): pending (stage `clean`).")
    lines.append("")
    sweeps = [("MNIST, relative (the paper's study)", "mnist"), ("JapaneseVowels, relative", "speech")]
    sweeps += [(f"MNIST 10k-subset, {c}", f"conventions/{c}") for c in study.p["conventions"]["levels"]]
    rows = []
    for label, key in sweeps:
        c = claims.get(key)
        if c is None:
            continue
        part = "" if c["n_jobs_finished"] == c["n_jobs"] else f" ({c['n_jobs_finished']}/{c['n_jobs']} jobs)"
        for arch, res in c["archs"].items():
            rows.append(f"| {label}{part} | {arch.upper()} | " + " | ".join(
                res[f"claim{i}"]["verdict"] for i in (1, 2, 3)) + " |")
    if rows:
        lines.append("| sweep | arch | claim 1: flatter with larger sigma_train | claim 2: DNI helps noiseless | "
                     "claim 3: a noisy pair beats conventional noiseless |")
        lines.append("|---|---|---|---|---|")
        lines.extend(rows)
        lines.append("")
    dep = claims.get("deploy")
    if dep and dep.get("rows"):
        last = max(dep["times_s"])
        lines.append(f"Deployment, {_TIME_NAMES.get(last, f'{last:g} s')} after programming: accuracy (%) [95% CI "
                     "over training seeds] and paired differences (pp) [95% CI]; `better` names the DNI flavour "
                     "whose paired CI excludes 0 (details and every time below).")
        lines.append("")
        lines.extend(_deploy_verdicts(dep))
        lines.append("")
    return lines


def _update_doc(doc: Path, text: str) -> None:
    from xbarsim.files import atomic_write_text

    block = f"{_MARK_BEGIN}\n{text}{_MARK_END}"
    try:
        old = doc.read_text(encoding="utf-8")
    except OSError:
        old = ""
    if _MARK_BEGIN in old and _MARK_END in old:
        head, rest = old.split(_MARK_BEGIN, 1)
        _, tail = rest.split(_MARK_END, 1)
        new = head + block + tail
    else:
        new = (old.rstrip() + "\n\n" if old else "") + block + "\n"
    atomic_write_text(doc, new)


def _write_deploy_csv(path: Path, dep: dict) -> None:
    import csv
    import io

    from xbarsim.files import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ["preset", "arch", "model", "drift_compensation", "time_s", "accuracy_mean", "ci_low", "ci_high",
            "n_seeds"]
    w.writerow(cols)
    for r in dep["rows"]:
        w.writerow([r["preset"], r["arch"], r["model"], r["drift_compensation"], f"{r['time_s']:g}",
                    f"{r['mean']:.6g}", f"{r['ci_low']:.6g}", f"{r['ci_high']:.6g}", r["n"]])
    atomic_write_text(path, buf.getvalue())


def _plot_deploy(out: Path, dep: dict) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from study.results import save_png

    groups: dict[tuple, list[dict]] = {}
    for r in dep["rows"]:
        groups.setdefault((r["preset"], r["arch"]), []).append(r)
    for (preset, arch), rows in groups.items():
        fig, ax = plt.subplots(figsize=(6.2, 4.0))
        for kind in _KIND_COLORS:
            for cv, ls in ((True, "-"), (False, "--")):
                sel = sorted((r for r in rows if r["model"] == kind and r["drift_compensation"] == cv),
                             key=lambda r: r["time_s"])
                if not sel:
                    continue
                t = [r["time_s"] for r in sel]
                (line,) = ax.plot(t, [r["mean"] for r in sel], ls=ls, marker="o", ms=3,
                                  label=f"{kind}, comp {'on' if cv else 'off'}",
                                  color=_KIND_COLORS[kind])
                lo = [r["ci_low"] if np.isfinite(r["ci_low"]) else r["mean"] for r in sel]
                hi = [r["ci_high"] if np.isfinite(r["ci_high"]) else r["mean"] for r in sel]
                ax.fill_between(t, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_xscale("log")
        ax.set_xlabel("time after programming (s)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{arch.upper()} on {preset}: mean over training seeds (95% CI)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        save_png(fig, out / f"deploy_{preset}_{arch}.png")
        plt.close(fig)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


# --------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xbarsim bench reproduce",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Reproduce Qin and Vucinic (2018) on row-by-row MNIST with xbarsim's own commands "
                    "(sweep, deploy), then go past it (pcm/rram deployment over a year, DNI with the device's "
                    "noise, JapaneseVowels, the three noise conventions). Resumable: run the same command again "
                    "to continue. See docs/REPRODUCTION.md.")
    p.add_argument("--profile", choices=sorted(PROFILES), default="full", help="study size (tiny: a smoke run)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma list of stages, in this order: {','.join(STAGES)}")
    p.add_argument("--out", default="benchmarks/results/reproduction", help="output folder")
    p.add_argument("--data-path", default="../shared/data/mnist", help="MNIST (mnist.npz or IDX folder)")
    p.add_argument("--workers", type=int, default=2, help="worker processes for sweeps and deploys (0: in this process)")
    p.add_argument("--doc", default="docs/REPRODUCTION.md",
                   help="markdown file whose generated block the report stage rewrites ('' for none)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--keep-going", action="store_true", help="after a failed stage, go on with the next ones")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the selected stages; 0 when they ran (complete or not), 1 when one failed, 2 on bad arguments."""
    p = _parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad:
        print(f"xbarsim bench reproduce: error: unknown stage(s) {bad}; expected {', '.join(STAGES)}",
              file=sys.stderr)
        return 2
    from study.executor import limit_threads

    limit_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(out, max(0, args.workers), dry_run=args.dry_run)
    study = Study(PROFILES[args.profile], out, args.data_path, max(0, args.workers), runner)
    doc = Path(args.doc) if args.doc else None
    failed = False
    import threading

    beat = {"entry": None, "t0": 0.0}
    stop = threading.Event()

    def heartbeat() -> None:  # keeps the running stage's wall time in stages.json, so a killed run keeps it
        while not stop.wait(30.0):
            with runner.lock:
                if beat["entry"] is not None:
                    beat["entry"]["runs"][-1]["wall_s"] = round(time.perf_counter() - beat["t0"], 2)
                    beat["entry"]["runs"][-1]["alive"] = _now()
                    beat["entry"]["wall_s_total"] = round(sum(r["wall_s"] or 0 for r in beat["entry"]["runs"]), 2)
            runner.save()

    threading.Thread(target=heartbeat, daemon=True).start()
    for name in (s for s in STAGES if s in stages):
        entry = runner.stage(name)
        started = _now()
        t0 = time.perf_counter()
        with runner.lock:
            entry["status"] = "running"
            entry["runs"].append({"started": started, "wall_s": None, "host_cpus": os.cpu_count(), **_git_state()})
            beat["entry"], beat["t0"] = entry, t0
        runner.save()
        print(f"[reproduce] stage {name}: start {started}", flush=True)
        try:
            if name == "report":
                complete = study.stage_report(doc)
            else:
                complete = getattr(study, f"stage_{name}")()
            entry["status"] = "complete" if complete else "incomplete"
        except Exception as exc:  # noqa: BLE001 - a failed stage is logged and reported
            entry["status"] = "failed"
            entry["error"] = f"{type(exc).__name__}: {exc}"
            print(f"[reproduce] stage {name} failed: {exc}", file=sys.stderr, flush=True)
            failed = True
        wall = time.perf_counter() - t0
        with runner.lock:
            beat["entry"] = None
            entry["runs"][-1]["wall_s"] = round(wall, 2)
            entry["runs"][-1]["finished"] = _now()
            entry["wall_s_total"] = round(sum(r["wall_s"] or 0 for r in entry["runs"]), 2)
        runner.save()
        print(f"[reproduce] stage {name}: {entry['status']} in {wall:.1f} s", flush=True)
        if failed and not args.keep_going:
            break
    stop.set()
    if "report" in stages and not failed:
        # refresh the report's stage table with this run's final times
        study.stage_report(doc)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
