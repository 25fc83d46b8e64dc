"""One multi-threaded pool per process (DESIGN.md): numpy's BLAS runs on one thread.

Two spinning pools on two cores (OpenBLAS beside torch's OpenMP or numba's) stall each
other by 10-170x: a (64, 128) @ (128, 512) read was measured at 9 ms instead of 125 us.
crossbar's kernels are serial numba and its products are small, so on import it pins the
BLAS pool to ``XBARSIM_BLAS_THREADS`` threads (default 1). Parallelise across processes
(``xbarsim sweep --workers``) or opt into more BLAS threads by setting that variable, or
call :func:`set_blas_threads` later.
"""
from __future__ import annotations

import os

__all__ = ["set_blas_threads", "blas_threads_from_env"]

_LIMITER = None


def blas_threads_from_env() -> int:
    """``XBARSIM_BLAS_THREADS`` as a positive int (default 1).

    Raises:
        ValueError: when the variable is set to anything but a positive integer.
    """
    raw = os.environ.get("XBARSIM_BLAS_THREADS", "1")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"XBARSIM_BLAS_THREADS must be a positive integer, got {raw!r}")
    return n


def set_blas_threads(n: int) -> None:
    """Limit every loaded BLAS library (numpy's OpenBLAS and any other) to ``n`` threads."""
    global _LIMITER
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"BLAS threads must be a positive int, got {n!r}")
    from threadpoolctl import threadpool_limits

    _LIMITER = threadpool_limits(limits=n, user_api="blas")
