"""Session-wide test setup: one thread per pool (DESIGN.md), non-interactive plots."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

# Two multi-threaded pools in one process stall each other on two cores: pin all to one.
_LIMITS = threadpool_limits(limits=1)
try:  # torch is a core dependency, but keep the crossbar/calibration tests independent of it
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def rng():
    """A fresh, fixed-seed generator for each test."""
    import numpy as np

    return np.random.default_rng(12345)
