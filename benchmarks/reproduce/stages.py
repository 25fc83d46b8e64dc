"""The stages of the reproduction: the sweep and deploy commands each one runs, and what counts as done."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .profiles import _noiseless
from .runner import Runner, _show


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
        from .claims import compute_claims  # claims and report read what the stages wrote: imported here, not above
        from .report import write_report

        self.aggregate_partial()
        claims = compute_claims(self)
        write_report(self, claims, doc)
        return True


def _archs(cfg: dict) -> list[str]:
    return [a for a in cfg["archs"].split(",") if a]
