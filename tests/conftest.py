"""Session-wide test setup: one thread per pool (DESIGN.md), non-interactive plots."""
from __future__ import annotations

import os

# Before numpy/torch load, so their pools start with one thread.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

# And once they are loaded (threadpoolctl only limits pools that exist), in case a pool
# was started before this file ran.
torch.set_num_threads(1)
_LIMITS = threadpool_limits(limits=1)


@pytest.fixture
def rng():
    """A fresh, fixed-seed generator for each test."""
    return np.random.default_rng(12345)
