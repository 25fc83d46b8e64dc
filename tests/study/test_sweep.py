"""Sweeps end to end on a small digits subset: layout of the result files, local pool vs Dask,
a worker killed mid-sweep, and resume after an interrupted sweep."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from study.results import SUMMARY_COLUMNS, read_summary_csv
from study.sweep import SweepSpec, finished_jobs, make_jobs, run_sweep

SPEC = SweepSpec(data="digits", n_train=200, n_test=100, archs=("rnn", "lstm"), hidden=8, epochs=2,
                 sigma_train=(0.0, 0.2), sigma_val=(0.0, 0.1, 0.4), seeds=(0,), draws=3)
#: SPEC's RNN half: its two jobs are SPEC's first two (a job's numbers depend only on its own settings)
RNN_SPEC = SweepSpec(**{**SPEC.to_dict(), "archs": ("rnn",)})


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory, pool):
    """The reference sweep, on the session's process pool (2 workers); most tests compare with it."""
    out = tmp_path_factory.mktemp("pool")
    outcome = run_sweep(SPEC, out, executor=pool)
    return out, outcome


def _acc(out: Path) -> np.ndarray:
    with h5py.File(out / "results.h5", "r") as f:
        return f["accuracy"][()]


def test_spec_validation():
    with pytest.raises(ValueError, match=r"archs must be a non-empty list of rnn, lstm, gru, got \['cnn'\]"):
        SweepSpec(archs=("cnn",))
    with pytest.raises(ValueError, match="sigma_val values must be finite and >= 0 for convention 'relative'"):
        SweepSpec(sigma_val=(-0.1,))
    with pytest.raises(ValueError, match="sigma_train has repeated values"):
        SweepSpec(sigma_train=(0.1, 0.1))
    SweepSpec(convention="snr_db", sigma_val=(float("inf"), 20.0, 10.0))  # inf dB = no noise: allowed
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['sigma'\]"):
        SweepSpec.from_dict({"sigma": 1})
    assert list(make_jobs(SPEC)) == ["rnn_st0.0_seed0", "rnn_st0.2_seed0", "lstm_st0.0_seed0", "lstm_st0.2_seed0"]


def test_result_files_have_the_documented_layout(pool_run):
    out, outcome = pool_run
    assert outcome.complete and outcome.n_run == 4 and outcome.n_resumed == 0
    for name in ("results.h5", "summary.csv", "heatmap.png", "curves_rnn.png", "curves_lstm.png", "sweep.json"):
        assert (out / name).is_file(), name
    for key in make_jobs(SPEC):
        job = json.loads((out / "jobs" / f"{key}.json").read_text())
        assert (out / job["checkpoint"]).is_file()
        # every result names its seed, convention, device preset and versions
        assert job["seed"] == 0 and job["noise_convention"] == "relative" and job["device_preset"] == "paper"
        assert {"torch", "numpy", "python", "xbarsim"} <= set(job["versions"])
    with h5py.File(out / "results.h5", "r") as f:
        acc = f["accuracy"][()]
        assert acc.shape == (2, 2, 1, 3, 3)
        assert json.loads(f["accuracy"].attrs["dims"]) == ["arch", "sigma_train", "seed", "sigma_val", "draw"]
        assert [a.decode() if isinstance(a, bytes) else a for a in f["arch"][()]] == ["rnn", "lstm"]
        assert list(f["sigma_train"][()]) == [0.0, 0.2] and list(f["sigma_val"][()]) == [0.0, 0.1, 0.4]
        assert f["accuracy_noiseless"].shape == (2, 2, 1)
        assert f["history/train_loss"].shape == (2, 2, 1, 2)
        assert f.attrs["noise_convention"] == "relative" and f.attrs["device_preset"] == "paper"
        assert json.loads(f.attrs["spec"])["draws"] == 3 and "torch" in json.loads(f.attrs["versions"])
    assert np.all((acc >= 0) & (acc <= 1))
    # noise-free columns are deterministic: all draws equal; noisy ones vary
    assert np.all(acc[..., 0, :] == acc[..., 0, :1])
    assert np.any(acc[..., 2, :].std(axis=-1) > 0)
    with open(out / "summary.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == SUMMARY_COLUMNS
    rows = read_summary_csv(out / "summary.csv")
    assert len(rows) == 2 * 2 * 3
    for r in rows:
        a, i, j = ["rnn", "lstm"].index(r["arch"]), [0.0, 0.2].index(r["sigma_train"]), [0.0, 0.1, 0.4].index(
            r["sigma_val"])
        cell = acc[a, i, :, j, :]
        assert r["accuracy_mean"] == pytest.approx(cell.mean(), abs=1e-6)
        assert r["ci_low"] <= r["accuracy_mean"] <= r["ci_high"]
        assert (r["n_seeds"], r["n_draws"]) == (1, 3)


def test_dask_cluster_gives_the_same_numbers_and_survives_a_killed_worker(pool_run, dask_local, tmp_path):
    """One sweep on the session's Dask LocalCluster, a worker killed while it runs a job: Dask reruns the job,
    and the numbers equal the process pool's."""
    ref = _acc(pool_run[0])
    ex = dask_local
    killed = {}

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            busy = [w for w, tasks in ex.client.processing().items() if tasks]
            if busy:
                pids = ex.client.run(os.getpid, workers=[busy[0]])
                pid = pids.get(busy[0])
                if pid:
                    os.kill(pid, signal.SIGKILL)
                    killed["pid"] = pid
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    outcome = run_sweep(RNN_SPEC, tmp_path / "killed", executor=ex)
    thread.join()
    assert killed, "no worker was busy to kill"
    assert outcome.complete and outcome.n_run == 2
    assert np.array_equal(_acc(tmp_path / "killed"), ref[:1])


def test_resume_runs_only_missing_jobs(pool_run, tmp_path):
    out = tmp_path / "resume"
    first = run_sweep(SPEC, out, workers=0, max_jobs=1)
    assert not first.complete and first.n_run == 1
    done_path = out / "jobs" / "rnn_st0.0_seed0.json"
    stamp = done_path.stat().st_mtime_ns
    with h5py.File(out / "results.h5", "r") as f:  # partial results are written too, NaN where missing
        assert np.isnan(f["accuracy"][1]).all() and not np.isnan(f["accuracy"][0, 0]).any()
    second = run_sweep(SPEC, out, workers=0)
    assert second.complete and (second.n_run, second.n_resumed) == (3, 1)
    assert done_path.stat().st_mtime_ns == stamp  # the finished job was not rerun
    assert np.array_equal(_acc(out), _acc(pool_run[0]))  # and the numbers are the uninterrupted ones
    # a changed setting reruns only the jobs it affects
    more = SweepSpec(**{**SPEC.to_dict(), "sigma_train": (0.0, 0.2, 0.1)})
    third = run_sweep(more, out, workers=0)
    assert (third.n_run, third.n_resumed) == (2, 4)
    fewer_draws = SweepSpec(**{**SPEC.to_dict(), "draws": 2})
    assert finished_jobs(out, make_jobs(fewer_draws)) == {}


def test_killed_sweep_process_resumes(pool_run, tmp_path, capsys):
    """SIGKILL the whole `python -m study sweep` process after its first finished job, then rerun the same
    command (in this process: the resume, not the start-up, is under test) (RNN_SPEC)."""
    out = tmp_path / "killed_cli"
    args = [sys.executable, "-m", "study", "sweep", "--data", "digits", "--n-train", "200", "--n-test", "100",
            "--arch", "rnn", "--hidden", "8", "--epochs", "2", "--sigma-train", "0,0.2",
            "--sigma-val", "0,0.1,0.4", "--seeds", "0", "--draws", "3", "--workers", "0", "--quiet", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not list((out / "jobs").glob("*.json")):
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.fail(f"sweep exited before it could be killed: {proc.stderr.read().decode()[-2000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_done = len(list((out / "jobs").glob("*.json")))
    assert n_done == 1
    assert not list((out / "jobs").glob(".*.tmp"))  # no half-written job files
    from study.cli import sweep_main

    assert args[1:4] == ["-m", "study", "sweep"]
    assert sweep_main(args[4:]) == 0
    assert "1 job(s) run, 1 resumed" in capsys.readouterr().out
    assert np.array_equal(_acc(out), _acc(pool_run[0])[:1])
