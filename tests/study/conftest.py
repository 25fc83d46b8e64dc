"""Executors shared by the study tests: one process pool and one Dask LocalCluster per session.

Starting a spawn pool or a LocalCluster (and importing torch in its workers) costs seconds;
the executor and sweep tests share these instead of starting their own. A test that kills a
worker leaves the pool to rebuild itself (PoolExecutor) or Dask's nanny to restart it, which
is what those tests check.
"""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def pool():
    """A PoolExecutor of 2 spawn workers (one thread per pool each)."""
    from study.executor import PoolExecutor

    with PoolExecutor(workers=2, retries=2) as ex:
        yield ex


@pytest.fixture(scope="session")
def dask_local():
    """``make_executor(workers=2, scheduler="local")``: a Dask LocalCluster of 2 one-thread workers."""
    pytest.importorskip("distributed")
    from study.executor import make_executor

    with make_executor(workers=2, scheduler="local") as ex:
        yield ex
