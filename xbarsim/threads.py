"""Thread pools: one multi-threaded pool per process, set by the program, never by an import.

Two spinning pools on two cores (numpy's OpenBLAS beside torch's OpenMP or numba's)
stall each other by 10-170x: a (64, 128) @ (128, 512) read was measured at 9 ms instead of
125 us (DESIGN.md). xbarsim's kernels are serial numba and its products are small, so its
programs run every pool on one thread and parallelise across processes (``xbarsim sweep
--workers``, Dask). Importing a package changes nothing; the entry points decide:

- the ``xbarsim`` console script and every ``python -m <package>`` call
  :func:`init_from_env` before a command runs: numpy's BLAS gets ``XBARSIM_BLAS_THREADS``
  threads (default 1); a bad value is a one-line usage error (exit 2);
- the main job's commands and every sweep worker pin all pools to one thread
  (:func:`limit_threads`, through ``study.executor.limit_threads``);
- ``xbarsim bench`` sets the pools to its ``--threads``.

A library user who mixes torch and numpy in one process should do the same once, at the
start of the program (or set ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1``
before Python starts)::

    >>> from xbarsim.threads import limit_threads
    >>> limit_threads(1)          # every loaded pool, and the ones loaded later    # doctest: +SKIP

Standard library only at import; threadpoolctl (and numpy, torch) are imported inside the
functions that need them.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping

__all__ = ["ENV_VAR", "THREAD_ENV", "blas_threads_from_env", "set_blas_threads", "limit_threads", "init_from_env"]

#: the environment variable that opts numpy's BLAS into more threads at the entry points
ENV_VAR = "XBARSIM_BLAS_THREADS"

#: thread-count variables read by OpenMP/BLAS libraries when they load
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

# threadpoolctl limiters kept alive for the life of the process
_LIMITERS: list = []


def _check_threads(n: object, what: str) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{what} must be a positive int, got {n!r}")
    return n


def blas_threads_from_env(environ: Mapping[str, str] | None = None) -> int:
    """``XBARSIM_BLAS_THREADS`` as a positive int (default 1).

    Args:
        environ: the environment to read (default ``os.environ``).

    Raises:
        ValueError: the variable is set to anything but a positive integer.
    """
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "1")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{ENV_VAR} must be a positive integer, got {raw!r}")
    return n


def set_blas_threads(n: int) -> None:
    """Limit every loaded BLAS library (numpy's OpenBLAS and any other) to ``n`` threads.

    Only pools already loaded are limited (threadpoolctl's rule): import numpy first.
    """
    _check_threads(n, "BLAS threads")
    from threadpoolctl import threadpool_limits

    _LIMITERS.append(threadpool_limits(limits=n, user_api="blas"))


def limit_threads(n: int = 1) -> None:
    """Pin every thread pool of this process to ``n`` threads: loaded ones and ones loaded later.

    Sets the OpenMP/BLAS environment variables (read by libraries when they load), limits
    the loaded BLAS and OpenMP pools with threadpoolctl, and sets torch's intra-op threads
    when torch is already imported (this function never imports torch).
    """
    _check_threads(n, "threads")
    for var in THREAD_ENV:
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits

    _LIMITERS.append(threadpool_limits(limits=n))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


def init_from_env() -> int:
    """Entry-point setup: numpy's BLAS to ``XBARSIM_BLAS_THREADS`` threads (default 1).

    Imports numpy (so that its BLAS pool exists to be limited).

    Returns:
        The number of BLAS threads set.

    Raises:
        ValueError: ``XBARSIM_BLAS_THREADS`` is not a positive integer (checked before
            anything is imported).
    """
    n = blas_threads_from_env()
    import numpy  # noqa: F401 - loads the BLAS library threadpoolctl then limits

    set_blas_threads(n)
    return n
