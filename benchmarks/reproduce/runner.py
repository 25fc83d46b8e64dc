"""Running the stages' xbarsim commands (in this process or through study's executor) and logging them.

Every command and every stage's wall time per run go to ``stages.json``; see :class:`Runner`.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import sys
import time
from pathlib import Path


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

    root = Path(__file__).resolve().parents[2]  # the repository (this file: benchmarks/reproduce/runner.py)
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

    def begin_stage(self, name: str) -> dict:
        """Mark stage ``name`` running and start a run record (time, CPUs, git state); saved. Returns its entry."""
        entry = self.stage(name)
        with self.lock:
            entry["status"] = "running"
            entry["runs"].append({"started": _now(), "wall_s": None, "host_cpus": os.cpu_count(), **_git_state()})
        self.save()
        return entry

    def end_stage(self, entry: dict, wall_s: float) -> None:
        """Close the entry's last run with its wall time (the status is set by the caller); saved."""
        with self.lock:
            entry["runs"][-1]["wall_s"] = round(wall_s, 2)
            entry["runs"][-1]["finished"] = _now()
            entry["wall_s_total"] = round(sum(r["wall_s"] or 0 for r in entry["runs"]), 2)
        self.save()

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
        """Run ``cmds`` (each ``[subcommand, args...]``) through study's executor; returns their exit codes.

        With ``parallel`` (and more than one command and worker) the commands run on study's
        process pool (``study.executor.make_executor(workers)``: one thread per pool per worker,
        a dead worker's command rerun); otherwise one after another in this process.
        ``on_done(cmd, rc)`` is called in this process as each command finishes (in completion order).
        """
        from study.executor import make_executor

        self.note_commands(name, cmds)
        self.save()
        if not cmds:
            return []
        for c in cmds:
            print(f"[reproduce:{name}] {_show(c)}", flush=True)
        if self.dry_run:
            return [0] * len(cmds)
        rcs: list[int] = [0] * len(cmds)
        workers = self.workers if parallel and self.workers > 1 and len(cmds) > 1 else 0
        with make_executor(workers=workers) as ex:
            for key, rc in ex.run_unordered(_cli, {str(i): c for i, c in enumerate(cmds)}):
                rcs[int(key)] = rc
                if on_done is not None:
                    on_done(cmds[int(key)], rc)
        return rcs


class Heartbeat:
    """Every ``period_s``, write the running stage's wall time so far to stages.json (a killed run keeps it).

    A daemon thread while the ``with`` block runs; :meth:`watch` names the stage entry being run.
    """

    def __init__(self, runner: Runner, period_s: float = 30.0):
        import threading

        self.runner = runner
        self.period_s = period_s
        self._entry: dict | None = None
        self._t0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def watch(self, entry: dict | None) -> None:
        """Follow ``entry`` (its last run started now); None: no stage running."""
        with self.runner.lock:
            self._entry, self._t0 = entry, time.perf_counter()

    def _beat(self) -> None:
        while not self._stop.wait(self.period_s):
            with self.runner.lock:
                e = self._entry
                if e is not None:
                    e["runs"][-1]["wall_s"] = round(time.perf_counter() - self._t0, 2)
                    e["runs"][-1]["alive"] = _now()
                    e["wall_s_total"] = round(sum(r["wall_s"] or 0 for r in e["runs"]), 2)
            self.runner.save()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
