"""Executors: local pool and Dask LocalCluster run jobs, pin threads, survive dead workers."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so spawned workers can import _jobs
import _jobs  # noqa: E402

from study.executor import JobError, PoolExecutor, SerialExecutor, make_executor  # noqa: E402


def test_make_executor_kinds():
    assert isinstance(make_executor(workers=0), SerialExecutor)
    ex = make_executor(workers=1)
    assert isinstance(ex, PoolExecutor) and ex.workers == 1
    with pytest.raises(ValueError, match="workers must be >= 0"):
        make_executor(workers=-1)


def test_serial_runs_in_order_and_reports_failures():
    with SerialExecutor() as ex:
        out = list(ex.run_unordered(_jobs.square, {"a": 2, "b": 3}))
    assert [(k, r["value"]) for k, r in out] == [("a", 4), ("b", 9)]
    with pytest.raises(JobError, match="job 'x' failed: ValueError: bad payload 7"):
        list(SerialExecutor().run_unordered(_jobs.fail, {"x": 7}))


def test_pool_runs_jobs_with_one_thread_each(pool):
    out = dict(pool.run_unordered(_jobs.square, {str(i): i for i in range(5)}))
    assert {k: r["value"] for k, r in out.items()} == {str(i): i * i for i in range(5)}
    for r in out.values():
        assert r["torch_threads"] == 1 and r["max_pool_threads"] == 1 and r["omp_env"] == "1"


def test_pool_reruns_jobs_of_a_killed_worker(pool, tmp_path):
    marker = str(tmp_path / "died")
    payloads = {"killer": (marker, 1), "b": (str(tmp_path / "never"), 2)}
    # "b" would also die on its first call: give it an existing marker so only "killer" dies once.
    open(payloads["b"][0], "w").close()
    assert pool.retries == 2
    out = dict(pool.run_unordered(_jobs.die_once, payloads))
    assert out == {"killer": 10, "b": 20}
    assert os.path.exists(marker)  # the first attempt really ran and killed its worker


def test_pool_gives_up_on_a_job_that_always_kills_its_worker(tmp_path):
    payload = (str(tmp_path / "m"), 1)
    ex = PoolExecutor(workers=1, retries=0)
    with pytest.raises(JobError, match="worker processes died 1 times"):
        list(ex.run_unordered(_jobs.die_once, {"k": payload}))
    ex.close()


def test_pool_job_exception_names_the_job(pool):
    with pytest.raises(JobError, match="job 'bad' failed: ValueError"):
        list(pool.run_unordered(_jobs.fail, {"bad": 1}))
    assert dict(pool.run_unordered(_jobs.die_once, {"next": (__file__, 4)})) == {"next": 40}  # usable again


def test_dask_local_cluster_runs_and_reruns_killed_worker(dask_local, tmp_path):
    marker = str(tmp_path / "died")
    ex = dask_local
    assert ex.describe() == {"kind": "dask", "workers": 2, "scheduler": "local"}
    out = dict(ex.run_unordered(_jobs.square, {str(i): i for i in range(4)}))
    assert {k: r["value"] for k, r in out.items()} == {str(i): i * i for i in range(4)}
    assert all(r["torch_threads"] == 1 and r["max_pool_threads"] == 1 for r in out.values())
    died = dict(ex.run_unordered(_jobs.die_once, {"killer": (marker, 3)}))
    assert died == {"killer": 30}
    assert os.path.exists(marker)
