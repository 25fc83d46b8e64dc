"""The DNI sweep: train each architecture at each sigma_train and seed, evaluate at each sigma_val.

One *job* = one (arch, sigma_train, seed): train a model with output noise sigma_train,
then measure its test accuracy at every sigma_val over ``draws`` independent noise draws
(the same draw seeds at every sigma_val: common random numbers). Jobs are independent and
run through an executor (:mod:`study.executor`). As each job finishes, this process writes
its checkpoint and then its ``jobs/<job_id>.json`` atomically; a job counts as done when
that JSON exists and records the same job settings, so a killed or partial sweep resumes
where it stopped. A job counts as done only when its checkpoint is there and intact too (its
SHA-256 is recorded in the job file); a damaged or malformed job file is named on stderr and
the job rerun. Checkpoints removed on purpose (to save space) are declared by a file
``checkpoints.pruned`` in the sweep folder; then a missing one is not a reason to rerun.

One sweep at a time per folder: :func:`run_sweep` holds ``<out>/.lock`` (an ``fcntl`` lock,
released by the kernel when the process ends, however it ends; the file records the pid), and
refuses a folder whose ``sweep.json`` records different common settings (everything except
the grid axes archs, sigma_train and seeds, which may grow or shrink: new grid points run,
finished ones are kept). Stale temp files of killed writers are removed under the lock.

Example:
    >>> spec = SweepSpec(archs=("rnn",), sigma_train=(0.0, 0.1), sigma_val=(0.0, 0.2), epochs=2)  # doctest: +SKIP
    >>> outcome = run_sweep(spec, "runs/sweep", workers=2)                                          # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from xbarsim.files import atomic_write_bytes, remove_stale_temps

from .names import ARCHS, CONVENTIONS
from .results import level_text, write_json

__all__ = ["SweepSpec", "job_id", "make_jobs", "run_job", "run_sweep", "collect", "SweepOutcome", "SweepBusy",
           "SweepMismatch", "check_job"]

#: SweepSpec fields that name grid points (one job each); every other field is common to all jobs
GRID_FIELDS = ("archs", "sigma_train", "seeds")


class SweepBusy(RuntimeError):
    """Another process is running a sweep into the same folder."""


class SweepMismatch(ValueError):
    """The folder holds a sweep with different common settings."""


@dataclass(frozen=True)
class SweepSpec:
    """Settings of a sweep (all JSON-able; recorded in sweep.json and every job)."""

    data: str = "digits"
    """data set name or path (see study.data.load_dataset)."""
    data_path: str | None = None
    """where the MNIST files are."""
    n_train: int | None = None
    """keep at most this many training examples (seeded subset)."""
    n_test: int | None = None
    """keep at most this many test examples (seeded subset)."""
    data_seed: int = 0
    """seed of the data split and subsets (the same for every job)."""
    archs: tuple[str, ...] = ("rnn", "lstm")
    hidden: int = 32
    num_layers: int = 1
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-2
    optimizer: str = "adam"
    seeds: tuple[int, ...] = (0, 1, 2)
    sigma_train: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4)
    sigma_val: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4, 0.6)
    convention: str = "relative"
    """output-noise convention of sigma_train and sigma_val: relative, absolute or snr_db."""
    preset: str = "paper"
    """crossbar preset name or device-model JSON path the noise is added to."""
    draws: int = 10
    """noise draws (full test passes) per sigma_val."""
    noise_draw: str = "mvm"
    """which reads share one noise draw (models.functional)."""
    learn_input_ranges: bool = False
    """learn the DAC input ranges during training (models.ranges.LearnedInputRanges) instead of
    calibrating them after; only in a job's settings when True, so older sweeps resume."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "archs", tuple(self.archs))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "sigma_train", tuple(float(s) for s in self.sigma_train))
        object.__setattr__(self, "sigma_val", tuple(float(s) for s in self.sigma_val))
        bad = [a for a in self.archs if a not in ARCHS]
        if not self.archs or bad:
            raise ValueError(f"archs must be a non-empty list of {', '.join(ARCHS)}, got {list(self.archs)}")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {self.convention!r}")
        for name in ("sigma_train", "sigma_val", "seeds", "archs"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must not be empty")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has repeated values: {list(values)}")
        for name in ("sigma_train", "sigma_val"):
            for v in getattr(self, name):
                if math.isnan(v) or (self.convention != "snr_db" and (v < 0 or math.isinf(v))):
                    raise ValueError(f"{name} values must be finite and >= 0 for convention "
                                     f"{self.convention!r}, got {v}")
        for name, lo in (("hidden", 1), ("num_layers", 1), ("epochs", 0), ("batch_size", 1), ("draws", 1)):
            if int(getattr(self, name)) < lo:
                raise ValueError(f"{name} must be >= {lo}, got {getattr(self, name)}")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be >= 0, got {list(self.seeds)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepSpec":
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ValueError(f"SweepSpec: unknown key(s) {unknown}; valid keys are {sorted(valid)}")
        return cls(**data)


def job_id(arch: str, sigma_train: float, seed: int) -> str:
    """File-name-safe identifier of one job, e.g. ``lstm_st0.1_seed0``."""
    return f"{arch}_st{level_text(sigma_train, exact=True)}_seed{int(seed)}"


def make_jobs(spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """``{job_id: payload}`` for every (arch, sigma_train, seed), in a fixed order."""
    common = spec.to_dict()
    for k in ("archs", "seeds", "sigma_train"):
        common.pop(k)
    if not common["learn_input_ranges"]:
        common.pop("learn_input_ranges")
    jobs = {}
    for arch in spec.archs:
        for st in spec.sigma_train:
            for seed in spec.seeds:
                jobs[job_id(arch, st, seed)] = {**common, "arch": arch, "sigma_train": st, "seed": seed}
    return jobs


@functools.lru_cache(maxsize=4)
def _data(name: str, data_path: str | None, seed: int, n_train: int | None, n_test: int | None):
    from .data import load_dataset

    return load_dataset(name, data_path, seed=seed, n_train=n_train, n_test=n_test)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train one model and evaluate it at every sigma_val (runs inside a worker).

    Returns:
        JSON-able result (accuracies (sigma_val, draws), noiseless accuracy, history,
        metadata) plus ``checkpoint``: the bytes of the trained model's checkpoint.
    """
    from .experiment import (ModelSpec, build_model, calibrate_ranges, checkpoint_bytes, evaluate_draws,
                             noise_config, set_noise, train_model, versions)

    from .executor import report

    key = job_id(job["arch"], job["sigma_train"], job["seed"])
    t0 = time.perf_counter()
    data = _data(job["data"], job["data_path"], job["data_seed"], job["n_train"], job["n_test"])
    n_val = len(job["sigma_val"])
    report({"job": key, "stage": "train", "done": 0, "total": int(job["epochs"]) + n_val + 1})

    def on_epoch(epoch: int, row: dict) -> None:
        report({"job": key, "stage": "train", "done": epoch, "total": int(job["epochs"]) + n_val + 1,
                "note": f"epoch {epoch}/{job['epochs']} loss {row['train_loss']:.3f} test {row['test_accuracy']:.3f}"})

    spec = ModelSpec(arch=job["arch"], input_size=data.n_features, hidden_size=int(job["hidden"]),
                     num_classes=data.n_classes, num_layers=int(job["num_layers"]))
    train_cfg = noise_config(job["sigma_train"], job["convention"], job["preset"])
    model = build_model(spec, train_cfg, noise_draw=job["noise_draw"], seed=job["seed"])
    history = train_model(model, data, epochs=int(job["epochs"]), batch_size=int(job["batch_size"]),
                          lr=float(job["lr"]), optimizer=job["optimizer"], seed=job["seed"], on_epoch=on_epoch,
                          learn_input_ranges=bool(job.get("learn_input_ranges", False)))
    t_train = time.perf_counter() - t0
    acc = np.empty((len(job["sigma_val"]), int(job["draws"])))
    for j, sv in enumerate(job["sigma_val"]):
        report({"job": key, "stage": "eval", "done": int(job["epochs"]) + j, "total": int(job["epochs"]) + n_val + 1,
                "note": f"evaluating sigma_val {sv:g} ({j + 1}/{n_val}, {job['draws']} draws)"})
        cfg = noise_config(sv, job["convention"], job["preset"])
        set_noise(model, cfg)
        deterministic = cfg.is_digital and not cfg.output_noise.active
        acc[j] = evaluate_draws(model, data, int(job["draws"]), seed=job["seed"], deterministic=deterministic,
                                stream=1)
    clean_cfg = noise_config(0.0 if job["convention"] != "snr_db" else math.inf, job["convention"], job["preset"])
    set_noise(model, clean_cfg)
    clean = evaluate_draws(model, data, 1, seed=job["seed"], stream=2)[0]
    set_noise(model, train_cfg)
    from .data import BUILTIN

    if job.get("learn_input_ranges"):
        from models.ranges import input_ranges

        ranges = input_ranges(model)  # learned during training, stored in the layers
    else:
        ranges = calibrate_ranges(model, data)  # DAC input ranges: max |x| per matrix on the training data
    data_args = {k: job[k] for k in ("data", "data_path", "data_seed", "n_train", "n_test")}
    for k in ("data", "data_path"):  # stored resolved: a deploy from another folder still finds the data
        builtin = k == "data" and str(data_args[k]).strip().lower().replace("-", "_") in BUILTIN
        if data_args[k] is not None and not builtin and Path(str(data_args[k])).expanduser().exists():
            data_args[k] = str(Path(str(data_args[k])).expanduser().resolve())
    ckpt = checkpoint_bytes(model, spec, train_cfg, noise_draw=job["noise_draw"],
                            meta={"job": job, "data": data.describe(), "data_args": data_args})
    return {
        "job": job,
        "accuracy": acc.tolist(),
        "accuracy_noiseless": float(clean),
        "history": history,
        "train_config": train_cfg.to_dict(),
        "data": data.describe(),
        "versions": versions(),
        "device_preset": train_cfg.name,
        "noise_convention": job["convention"],
        "seed": job["seed"],
        "input_ranges": ranges,
        "seconds": {"train": t_train, "total": time.perf_counter() - t0},
        "worker_pid": os.getpid(),
        "checkpoint": ckpt,
    }


def _read_job(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def write_job(out: Path, key: str, result: dict) -> None:
    """Checkpoint first, then the job JSON (its presence marks the job done), both atomic.

    The job JSON records the checkpoint's SHA-256 (``checkpoint_sha256``), checked on resume.
    """
    result = dict(result)
    ckpt = result.pop("checkpoint", None)
    if ckpt is not None:
        atomic_write_bytes(out / "checkpoints" / f"{key}.pt", ckpt)
        result["checkpoint"] = f"checkpoints/{key}.pt"
        result["checkpoint_sha256"] = hashlib.sha256(ckpt).hexdigest()
    write_json(out / "jobs" / f"{key}.json", result)


#: a file in a sweep folder saying its checkpoints were removed on purpose (its text: why)
PRUNED = "checkpoints.pruned"


def check_job(out: Path, key: str, payload: dict) -> tuple[dict | None, str | None]:
    """Is job ``key`` finished in ``out`` with these settings?

    Returns:
        (result, None) when it is; (None, None) when it has not run (or ran with other
        settings); (None, reason) when its files are there but damaged: a job file that is
        not JSON or lacks fields or has the wrong shapes, a missing checkpoint, or one whose
        SHA-256 differs from the one the job file records. A missing checkpoint is accepted
        only where ``out/checkpoints.pruned`` says the checkpoints were removed on purpose.
    """
    path = out / "jobs" / f"{key}.json"
    if not path.exists():
        return None, None
    res = _read_job(path)
    if not isinstance(res, dict):
        return None, f"{path}: not a readable JSON job file"
    if not _same(res.get("job", {}), payload):
        return None, None
    n_val, draws, epochs = len(payload["sigma_val"]), int(payload["draws"]), int(payload["epochs"])
    try:
        acc = np.asarray(res["accuracy"], dtype=float)
        clean = float(res["accuracy_noiseless"])
        hist = {h: np.asarray(res["history"][h], dtype=float)
                for h in ("train_loss", "train_accuracy", "test_accuracy")}
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"{path}: malformed job file ({type(exc).__name__}: {exc})"
    if acc.shape != (n_val, draws):
        return None, f"{path}: malformed job file: 'accuracy' has shape {acc.shape}, expected ({n_val}, {draws})"
    if any(h.shape != (epochs,) for h in hist.values()):
        return None, f"{path}: malformed job file: 'history' must hold {epochs} epoch(s)"
    if not (np.all((acc >= 0) & (acc <= 1)) and 0 <= clean <= 1):
        return None, f"{path}: malformed job file: accuracies must lie in [0, 1]"
    ckpt = res.get("checkpoint")
    if ckpt is not None:
        cpath = out / ckpt
        if not cpath.is_file():
            if (out / PRUNED).is_file():
                return res, None
            return None, f"{cpath}: checkpoint of finished job {key} is missing"
        want = res.get("checkpoint_sha256")
        if want is not None:
            got = hashlib.sha256(cpath.read_bytes()).hexdigest()
            if got != want:
                return None, f"{cpath}: checkpoint of job {key} is damaged (sha256 differs from {path.name})"
        else:  # a job file from before checkpoint digests: load it (checks its own digest, finiteness)
            from .experiment import load_checkpoint

            try:
                load_checkpoint(cpath, digital=True)
            except ValueError as exc:
                return None, str(exc)
    return res, None


def finished_jobs(out: Path, jobs: dict[str, dict], problems: list[str] | None = None) -> dict[str, dict]:
    """The jobs of ``jobs`` that are finished in ``out`` with the same settings (see :func:`check_job`).

    Args:
        problems: if given, gets one line per job whose files are damaged (those jobs rerun).
    """
    out = Path(out)
    done = {}
    for key, payload in jobs.items():
        res, problem = check_job(out, key, payload)
        if res is not None:
            done[key] = res
        elif problem is not None and problems is not None:
            problems.append(problem)
    return done


@contextlib.contextmanager
def sweep_lock(out: Path):
    """Hold ``out/.lock`` (fcntl, non-blocking) for one sweep; raise :class:`SweepBusy` if held.

    The kernel drops the lock when the holder exits, even on SIGKILL, so a stale lock file
    never blocks a later run. The file keeps the holder's pid and start time, for the message.
    """
    import fcntl

    path = out / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise SweepBusy(f"{out}: another sweep is running into this folder ({holder}); wait for it to finish, "
                            f"or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _check_same_sweep(out: Path, spec: "SweepSpec") -> None:
    """Refuse ``out`` if its sweep.json records different common (non-grid) settings."""
    path = out / "sweep.json"
    if not path.exists():
        return
    old = _read_job(path)
    if not isinstance(old, dict) or not isinstance(old.get("spec"), dict):
        raise SweepMismatch(f"{path}: not a readable sweep record; move it away (or use another --out) to go on")
    new = spec.to_dict()
    diff = [k for k in new if k not in GRID_FIELDS and json.dumps(old["spec"].get(k)) != json.dumps(new[k])]
    if diff:
        shown = ", ".join(f"{k} {old['spec'].get(k)!r} there, {new[k]!r} now" for k in diff[:4])
        raise SweepMismatch(f"{out} holds a sweep with other settings ({shown}); to go on, use another --out, "
                            "or --fresh to rerun every job here with the new settings (the old results are replaced)")


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did and wrote."""

    out: Path
    rows: list[dict]
    n_jobs: int
    n_run: int
    n_resumed: int
    complete: bool
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def collect(spec: SweepSpec, out: str | os.PathLike, results: dict[str, dict] | None = None,
            executor_info: dict | None = None) -> SweepOutcome:
    """Aggregate the finished jobs of ``spec`` in ``out`` into results.h5, summary.csv and plots."""
    from .experiment import versions
    from .results import plot_curves, plot_heatmaps, summarise, write_summary_csv, write_sweep_h5

    out = Path(out)
    jobs = make_jobs(spec)
    if results is None:
        results = finished_jobs(out, jobs)
    A, S, K, V, D = len(spec.archs), len(spec.sigma_train), len(spec.seeds), len(spec.sigma_val), spec.draws
    acc = np.full((A, S, K, V, D), np.nan)
    clean = np.full((A, S, K), np.nan)
    hist_keys = ("train_loss", "train_accuracy", "test_accuracy")
    history = {k: np.full((A, S, K, spec.epochs), np.nan) for k in hist_keys}
    for a, arch in enumerate(spec.archs):
        for i, st in enumerate(spec.sigma_train):
            for k, seed in enumerate(spec.seeds):
                res = results.get(job_id(arch, st, seed))
                if res is None:
                    continue
                acc[a, i, k] = np.asarray(res["accuracy"], dtype=float)
                clean[a, i, k] = res["accuracy_noiseless"]
                for h in hist_keys:
                    history[h][a, i, k, :len(res["history"][h])] = res["history"][h]
    rows = summarise(list(spec.archs), list(spec.sigma_train), list(spec.sigma_val), acc)
    any_res = next(iter(results.values()), {})
    attrs = {
        "spec": spec.to_dict(),
        "noise_convention": spec.convention,
        "device_preset": any_res.get("device_preset", str(spec.preset)),
        "train_config": any_res.get("train_config", {}),
        "data": any_res.get("data", {}),
        "versions": versions(),
        "executor": executor_info or {},
        "n_jobs": len(jobs),
        "n_jobs_finished": len(results),
        "ci": "95% Student-t on the mean: over per-seed means when n_seeds >= 2, else over draws",
    }
    files = {"results": out / "results.h5", "summary": out / "summary.csv", "heatmap": out / "heatmap.png"}
    write_sweep_h5(files["results"], arch=list(spec.archs), sigma_train=list(spec.sigma_train),
                   seeds=list(spec.seeds), sigma_val=list(spec.sigma_val), acc=acc, clean=clean, history=history,
                   attrs=attrs)
    write_summary_csv(files["summary"], rows)
    if rows:
        title = f"{attrs['data'].get('name', spec.data)}, preset {attrs['device_preset']}, {spec.draws} draws"
        plot_heatmaps(files["heatmap"], rows, list(spec.archs), list(spec.sigma_train), list(spec.sigma_val),
                      spec.convention, title=title)
        for arch in spec.archs:
            files[f"curves_{arch}"] = out / f"curves_{arch}.png"
            plot_curves(files[f"curves_{arch}"], rows, arch, list(spec.sigma_train), list(spec.sigma_val),
                        spec.convention)
    return SweepOutcome(out, rows, len(jobs), 0, 0, len(results) == len(jobs), files)


def run_sweep(spec: SweepSpec, out: str | os.PathLike, *, workers: int | None = None, scheduler: str | None = None,
              executor=None, resume: bool = True, max_jobs: int | None = None,
              progress: bool = False) -> SweepOutcome:
    """Run the jobs of ``spec`` that are not done yet, write each as it finishes, then aggregate.

    Args:
        out: output folder (created).
        workers, scheduler: see :func:`study.executor.make_executor` (ignored if ``executor`` is given).
        executor: an executor to use (left open).
        resume: skip jobs already finished in ``out`` with the same settings (False: rerun all,
            and accept a folder whose sweep.json records other settings).
        max_jobs: run at most this many new jobs now (the rest on a later run); None: all.
        progress: tqdm bars: one over jobs, and one per running job (epochs, then evaluation).

    Returns:
        SweepOutcome; ``complete`` says whether every job is finished.

    Raises:
        study.data.DataError: the data set cannot be loaded (checked here before any job starts).
        study.executor.JobError: a job failed.
        SweepBusy: another sweep holds the folder's lock.
        SweepMismatch: ``out`` holds a sweep with other common settings (and ``resume``).
        KeyboardInterrupt: on Ctrl-C; the workers are stopped first (an executor this function
            made is aborted), every finished job is already on disk.
    """
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with sweep_lock(out):
        for folder in (out, out / "jobs", out / "checkpoints"):
            for stale in remove_stale_temps(folder):
                print(f"xbarsim sweep: removed {stale} (a temp file of an interrupted write)", file=sys.stderr)
        if resume:
            _check_same_sweep(out, spec)
        outcome = _run_locked(spec, out, workers, scheduler, executor, resume, max_jobs, progress)
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _run_locked(spec, out, workers, scheduler, executor, resume, max_jobs, progress) -> SweepOutcome:
    from .executor import make_executor

    # Fail fast, in this process, on bad data or a bad preset before starting workers.
    data = _data(spec.data, spec.data_path, spec.data_seed, spec.n_train, spec.n_test)
    from .experiment import noise_config

    noise_config(spec.sigma_train[0], spec.convention, spec.preset)
    jobs = make_jobs(spec)
    problems: list[str] = []
    done = finished_jobs(out, jobs, problems) if resume else {}
    for line in problems:
        print(f"xbarsim sweep: {line}; rerunning that job", file=sys.stderr)
    todo = {k: v for k, v in jobs.items() if k not in done}
    if max_jobs is not None:
        todo = dict(list(todo.items())[:max(0, int(max_jobs))])
    own = executor is None
    ex = make_executor(workers, scheduler) if (own and todo) else executor
    info = ex.describe() if ex is not None else {"kind": "none (all jobs already finished)"}
    write_json(out / "sweep.json", {"spec": spec.to_dict(), "data": data.describe(), "executor": info,
                                    "jobs": list(jobs)})
    results = dict(done)
    bars = _Bars(len(jobs), len(done)) if progress else None
    ok = False
    try:
        if todo:
            for key, result in ex.run_unordered(run_job, todo, on_progress=bars.job if bars else None):
                write_job(out, key, result)
                results[key] = _read_job(out / "jobs" / f"{key}.json")
                if bars is not None:
                    bars.finished(key, f"{key}: clean {result['accuracy_noiseless']:.3f}")
        ok = True
    finally:
        if bars is not None:
            bars.close()
        if own and ex is not None:
            if ok:
                ex.close()
            else:  # Ctrl-C, SIGTERM, a failed job: stop the workers now, do not wait for them
                ex.abort()
    outcome = collect(spec, out, results, info)
    outcome.n_run = len(todo)
    outcome.n_resumed = len(done)
    return outcome


class _Bars:
    """tqdm bars in the sweep's process: one over jobs, one per running job (fed by executor.report)."""

    def __init__(self, n_jobs: int, n_done: int):
        import threading

        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._lock = threading.Lock()
        self.total = tqdm(total=n_jobs, initial=n_done, desc="sweep", unit="job", position=0)
        self._bars: dict[str, Any] = {}
        self._done: set[str] = set()
        self._free: list[int] = []
        self._next = 1

    def job(self, msg: dict) -> None:
        """A progress message from a running job."""
        key = msg.get("job")
        if not isinstance(key, str):
            return
        with self._lock:
            if key in self._done:  # a late message (Dask events can trail the result)
                return
            bar = self._bars.get(key)
            if bar is None:
                pos = self._free.pop(0) if self._free else self._next
                self._next = max(self._next, pos + 1)
                bar = self._tqdm(total=int(msg.get("total", 1)), desc=key, unit="step", position=pos, leave=False)
                self._bars[key] = bar
            bar.n = int(msg.get("done", 0))
            if msg.get("note"):
                bar.set_postfix_str(str(msg["note"]), refresh=False)
            bar.refresh()

    def finished(self, key: str, note: str) -> None:
        with self._lock:
            self._done.add(key)
            bar = self._bars.pop(key, None)
            if bar is not None:
                self._free.append(bar.pos if isinstance(bar.pos, int) else abs(int(bar.pos)))
                bar.close()
            self.total.update(1)
            self.total.set_postfix_str(note)

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
            self.total.close()
