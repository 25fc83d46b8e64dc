"""What a sweep does on Ctrl-C, SIGTERM, a second sweep into its folder, damaged job files,
lost Dask workers, and an --out that cannot take the results (issue 15)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so spawned workers can import _jobs
import _jobs  # noqa: E402

import xbarsim  # noqa: E402
from study.executor import PoolExecutor, SerialExecutor  # noqa: E402
from study.sweep import SweepBusy, SweepMismatch, SweepSpec, make_jobs, run_sweep, sweep_lock  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = SweepSpec(data="digits", n_train=100, n_test=50, archs=("rnn",), hidden=4, epochs=1, sigma_train=(0.0, 0.2),
                 sigma_val=(0.0,), seeds=(0,), draws=1)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _text_lines(stderr: str) -> list[str]:
    """stderr without progress bars (their \\r-rewritten lines and cursor moves)."""
    lines = [_ANSI.sub("", line.split("\r")[-1]).strip() for line in stderr.splitlines()]
    return [line for line in lines if line and "%|" not in line and "it/s" not in line]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    outcome = run_sweep(TINY, out, workers=0)
    assert outcome.complete
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- two sweeps, one folder
def test_second_sweep_into_a_locked_folder_is_refused(tiny, tmp_path):
    out = _copy(tiny, tmp_path / "busy")
    with sweep_lock(out):
        with pytest.raises(SweepBusy, match=rf"another sweep is running into this folder \(pid {os.getpid()}, "
                                            r"started .*\); wait for it to finish, or use another --out"):
            run_sweep(TINY, out, workers=0)
    assert run_sweep(TINY, out, workers=0).n_resumed == 2   # released: the next run goes on


def test_folder_with_other_settings_is_refused_with_how_to_go_on(tiny, tmp_path):
    out = _copy(tiny, tmp_path / "other")
    changed = SweepSpec(**{**TINY.to_dict(), "epochs": 2})
    with pytest.raises(SweepMismatch, match=r"holds a sweep with other settings \(epochs 1 there, 2 now\); to go on, "
                                            r"use another --out, or --fresh"):
        run_sweep(changed, out, workers=0)
    grown = SweepSpec(**{**TINY.to_dict(), "seeds": (0, 1)})   # a grid axis may grow: only new jobs run
    outcome = run_sweep(grown, out, workers=0)
    assert (outcome.n_run, outcome.n_resumed) == (2, 2)
    fresh = run_sweep(changed, out, workers=0, resume=False)   # --fresh: replace with the new settings
    assert fresh.complete and json.loads((out / "sweep.json").read_text())["spec"]["epochs"] == 2


# ----------------------------------------------------------------------------- damaged job files
def test_resume_reruns_jobs_whose_files_are_damaged_and_names_them(tiny, tmp_path, capsys):
    out = _copy(tiny, tmp_path / "damaged")
    (out / "checkpoints" / "rnn_st0.0_seed0.pt").unlink()                      # checkpoint deleted
    job = out / "jobs" / "rnn_st0.2_seed0.json"
    rec = json.loads(job.read_text())
    rec["accuracy"].append(rec["accuracy"][0])                                  # wrong shape
    job.write_text(json.dumps(rec))
    stale = out / "jobs" / ".rnn_st0.2_seed0.json.abc123.tmp"
    stale.write_text("{half")                                                   # a killed writer's temp file
    outcome = run_sweep(TINY, out, workers=0)
    err = capsys.readouterr().err
    assert (outcome.n_run, outcome.n_resumed) == (2, 0) and outcome.complete
    assert "rnn_st0.0_seed0.pt: checkpoint of finished job rnn_st0.0_seed0 is missing; rerunning that job" in err
    assert ("rnn_st0.2_seed0.json: malformed job file: 'accuracy' has shape (2, 1), expected (1, 1); "
            "rerunning that job") in err
    assert f"removed {stale}" in err and not stale.exists()
    # a checkpoint whose bytes changed, and a job file that is not JSON
    ckpt = out / "checkpoints" / "rnn_st0.0_seed0.pt"
    raw = bytearray(ckpt.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(raw))
    (out / "jobs" / "rnn_st0.2_seed0.json").write_text("{not json")
    outcome = run_sweep(TINY, out, workers=0)
    err = capsys.readouterr().err
    assert outcome.n_run == 2
    assert "rnn_st0.0_seed0.pt: checkpoint of job rnn_st0.0_seed0 is damaged (sha256 differs" in err
    assert "rnn_st0.2_seed0.json: not a readable JSON job file; rerunning that job" in err


def test_checkpoints_removed_on_purpose_are_declared_not_rerun(tiny, tmp_path, capsys):
    out = _copy(tiny, tmp_path / "pruned")
    for ckpt in (out / "checkpoints").glob("*.pt"):
        ckpt.unlink()
    (out / "checkpoints.pruned").write_text("removed to save space\n")
    outcome = run_sweep(TINY, out, workers=0)
    assert (outcome.n_run, outcome.n_resumed) == (0, 2) and capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- progress per job
def test_sweep_shows_epochs_and_evaluation_per_job(tmp_path, capsys):
    run_sweep(SweepSpec(**{**TINY.to_dict(), "epochs": 2, "sigma_train": (0.0,)}), tmp_path / "p", workers=0,
              progress=True)
    err = capsys.readouterr().err
    assert "rnn_st0.0_seed0" in err and "epoch 2/2 loss" in err and "evaluating sigma_val 0 (1/1, 1 draws)" in err


def test_progress_bars_one_per_running_job_and_late_messages_ignored(capsys):
    from study.sweep import _Bars

    bars = _Bars(n_jobs=2, n_done=0)
    bars.job({"job": "a", "stage": "train", "done": 1, "total": 3, "note": "epoch 1/2"})
    bars.job({"job": "b", "stage": "train", "done": 0, "total": 3})
    assert sorted(bars._bars) == ["a", "b"]
    bars.finished("a", "a: clean 0.9")
    bars.job({"job": "a", "stage": "eval", "done": 2, "total": 3})   # late: must not reopen a bar
    assert sorted(bars._bars) == ["b"] and bars.total.n == 1
    bars.close()


def test_job_progress_reaches_the_sweep_process_and_abort_kills_busy_workers():
    got = []
    with SerialExecutor() as ex:
        assert dict(ex.run_unordered(_jobs.reporting, {"a": "a"}, on_progress=got.append)) == {"a": "a"}
    assert [(m["job"], m["stage"], m["done"]) for m in got] == [("a", "train", 1), ("a", "eval", 2)]
    got.clear()
    ex = PoolExecutor(workers=1)
    assert dict(ex.run_unordered(_jobs.reporting, {"b": "b"}, on_progress=got.append)) == {"b": "b"}
    deadline = time.monotonic() + 10   # progress and result travel on different pipes: either may come first
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(m["job"], m["stage"], m["done"]) for m in got] == [("b", "train", 1), ("b", "eval", 2)]
    # a busy worker (a 60 s job) is killed by abort, at once; close() would wait for it
    it = ex.run_unordered(_jobs.sleep_long, {"s": 60}, on_progress=got.append)
    ended = []

    def consume():
        try:
            ended.append(next(it, "stopped"))
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion below
            ended.append(exc)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while not any("pid" in m for m in got) and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = next(m["pid"] for m in got if "pid" in m)
    t0 = time.monotonic()
    ex.abort()
    assert time.monotonic() - t0 < 10
    time.sleep(0.2)
    assert _alive([pid]) == []
    t.join(10)   # the abandoned run ends (or stays blocked in its daemon thread); it must not take the test down


# ----------------------------------------------------------------------------- Dask without workers
@pytest.mark.slow  # ~15 s on the loaded 2-core machine: a Dask scheduler, then a worker
def test_dask_without_workers_says_it_is_waiting(capfd):
    distributed = pytest.importorskip("distributed")
    from study.executor import DaskExecutor

    cluster = distributed.LocalCluster(n_workers=0, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=40)
    try:
        ex = DaskExecutor(cluster.scheduler_address)
        ex.wait_report_s = 0.5
        threading.Timer(2.0, lambda: cluster.scale(1)).start()   # a worker arrives later; the job then runs
        assert dict(ex.run_unordered(_jobs.square, {"a": 3}))["a"]["value"] == 9
        ex.close()
    finally:
        cluster.close()
    err = capfd.readouterr().err
    assert f"xbarsim: waiting: no worker is connected to {cluster.scheduler_address}; 1 job(s) not finished; " \
           f"start workers with `dask worker {cluster.scheduler_address}`" in err


# ----------------------------------------------------------------------------- --out checked first
@pytest.mark.parametrize("command", ["train", "deploy", "sweep"])
def test_out_that_is_a_file_or_not_writable_fails_before_the_work(tmp_path, capsys, command):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    extra = {"train": ["--epochs", "1"], "deploy": ["--checkpoint", str(tmp_path / "none.pt")],
             "sweep": ["--workers", "0"]}[command]
    t0 = time.perf_counter()
    assert xbarsim.main([command, *extra, "--out", str(blocker)]) == 2
    assert capsys.readouterr().err.strip() == f"xbarsim {command}: error: --out {blocker} is an existing file; " \
                                              "give a folder (it is created if missing)"
    assert xbarsim.main([command, *extra, "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"xbarsim {command}: error: --out {blocker / 'sub'}: cannot create the folder: ")
    assert "\n" not in err and time.perf_counter() - t0 < 10


# ----------------------------------------------------------------------------- Ctrl-C and SIGTERM
def _start_sweep(out: Path, workers: int) -> subprocess.Popen:
    args = [sys.executable, "-m", "study", "sweep", "--data", "digits", "--n-train", "100", "--n-test", "50",
            "--arch", "rnn,lstm", "--hidden", "4", "--epochs", "2", "--sigma-train", "0,0.1,0.2,0.3",
            "--sigma-val", "0", "--seeds", "0,1", "--draws", "1", "--workers", str(workers), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)   # its own process group, as a terminal's foreground job


def _wait_first_job(proc: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not list((out / "jobs").glob("*.json")):
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.fail(f"sweep ended before the signal: {proc.stderr.read()[-2000:]}")


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] != "Z":
                    alive.append(pid)
        except FileNotFoundError:
            pass
    return alive


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


@pytest.mark.slow  # 45-50 s each on the loaded 2-core machine (a CLI process and 2 spawned workers)
@pytest.mark.parametrize("how, code", [("ctrl-c", 130), ("sigterm", 143)])
def test_stopped_sweep_stops_its_workers_keeps_jobs_and_says_one_line(tmp_path, how, code):
    out = tmp_path / "sw"
    proc = _start_sweep(out, workers=2)
    _wait_first_job(proc, out)
    workers = _children(proc.pid)
    assert workers, "the sweep has no worker processes"
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)      # what the terminal does: the whole foreground group
    else:
        os.kill(proc.pid, signal.SIGTERM)       # what a batch system does: the sweep's process only
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code
    lines = _text_lines(stderr)
    assert len(lines) == 1, stderr
    what = "Ctrl-C" if how == "ctrl-c" else "SIGTERM"
    m = re.fullmatch(rf"xbarsim sweep: stopped by {what}; workers stopped; (\d+) of 16 job\(s\) finished and kept "
                     rf"in {re.escape(str(out))}/jobs; run the same command again to resume", lines[0])
    assert m and int(m.group(1)) == len(list((out / "jobs").glob("*.json"))) >= 1
    time.sleep(0.5)
    assert _alive(workers) == []
    assert not list((out / "jobs").glob(".*.tmp")) and not list((out / "checkpoints").glob(".*.tmp"))


_KILLED_PARENT = """
import sys, time
sys.path.insert(0, {tests!r})
import _jobs
from study.executor import PoolExecutor
ex = PoolExecutor(workers=2)
for msg in ex.run_unordered(_jobs.sleep_long, {{"a": 300, "b": 300}}, on_progress=lambda m: print(m["pid"], flush=True)):
    pass
"""


@pytest.mark.slow  # ~10-20 s on the loaded machine (two spawned workers)
def test_pool_workers_exit_when_the_sweep_is_sigkilled(tmp_path):
    code = _KILLED_PARENT.format(tests=os.path.dirname(__file__))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    pids = [int(proc.stdout.readline()), int(proc.stdout.readline())]
    assert set(pids) <= set(_children(proc.pid))   # (the other child is multiprocessing's resource tracker)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(pids) == []
