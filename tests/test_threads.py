"""crossbar pins numpy's BLAS pool to one thread on import (DESIGN.md: one pool per process)."""
import subprocess
import sys


def _blas_threads(env_value: str | None) -> str:
    import os

    # A clean slate: no *_NUM_THREADS (other tests' workers set them) and no opt-in.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS") and k != "XBARSIM_BLAS_THREADS"}
    if env_value is not None:
        env["XBARSIM_BLAS_THREADS"] = env_value
    code = ("import numpy, crossbar, threadpoolctl;"
            "print(max(d['num_threads'] for d in threadpoolctl.threadpool_info() if d['user_api'] == 'blas'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0 or env_value is not None, out.stderr
    return out.stdout.strip() if out.returncode == 0 else out.stderr


def test_blas_pinned_to_one_thread_by_default():
    assert _blas_threads(None) == "1"


def test_blas_threads_opt_in_and_bad_value():
    assert _blas_threads("2") == "2"
    assert "XBARSIM_BLAS_THREADS must be a positive integer, got 'many'" in _blas_threads("many")
