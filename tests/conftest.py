"""Session-wide test setup: one thread per pool (DESIGN.md), non-interactive plots.

No torch here: a run of tests/crossbar or tests/calibration never loads it. Pools of
libraries loaded later (torch by tests/models and tests/study) start with one thread from
the environment set below; :func:`_one_thread_per_pool` pins whatever was loaded anyway.
"""
from __future__ import annotations

import os

# Before numpy/torch/numba load, so their pools start with one thread.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _one_thread_per_pool():
    """Pin every pool loaded by collection (numpy's BLAS, torch's if a test module imported it) to one thread."""
    from xbarsim.threads import limit_threads

    limit_threads(1)


@pytest.fixture
def rng():
    """A fresh, fixed-seed generator for each test."""
    return np.random.default_rng(12345)
