"""crossbar test setup: compile (or load) the numba kernels once per session."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _warm_kernels():
    from crossbar import _kernels

    _kernels.warm()
