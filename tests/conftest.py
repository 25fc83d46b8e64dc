"""Session-wide test setup: one thread per pool (DESIGN.md), non-interactive plots.

No torch here: a run of tests/crossbar or tests/calibration never loads it. Pools of
libraries loaded later (torch by tests/models and tests/study) start with one thread from
the environment set below; :func:`_one_thread_per_pool` pins whatever was loaded anyway.

Figures: the main job's PNGs (``study.results.save_png``: 120 dpi, tight bounding box) are
rendered in this process at 40 dpi without the tight box (:func:`_quick_png`), about 3x
faster; the plotting code runs in full and the files are real PNGs. The test of
``save_png`` itself uses the real one (the ``real_save_png`` fixture).
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


@pytest.fixture(scope="session", autouse=True)
def _quick_png():
    """Swap study.results.save_png for a 40-dpi render without the tight bounding box; yields the real one."""
    import io

    import study.results as results
    from xbarsim.files import atomic_write_bytes

    def quick_png(fig, path) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=40)
        atomic_write_bytes(path, buf.getvalue())

    real = results.save_png
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(results, "save_png", quick_png)
        yield real


@pytest.fixture
def real_save_png(_quick_png):
    """The real study.results.save_png (the session runs with a quicker one)."""
    return _quick_png


@pytest.fixture
def rng():
    """A fresh, fixed-seed generator for each test."""
    return np.random.default_rng(12345)
