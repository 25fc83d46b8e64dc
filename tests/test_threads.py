"""Thread pools are set by the entry points, never by an import (xbarsim/threads.py).

Each check runs in a fresh interpreter with a clean environment (no *_NUM_THREADS, which
this test session and other tests' workers set, and no XBARSIM_BLAS_THREADS unless asked).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

BLAS = ("import threadpoolctl;"
        "print(max(d['num_threads'] for d in threadpoolctl.threadpool_info() if d['user_api'] == 'blas'))")


def _run(code: str, env_value: str | None = None, args: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS") and k != "XBARSIM_BLAS_THREADS"}
    if env_value is not None:
        env["XBARSIM_BLAS_THREADS"] = env_value
    cmd = [sys.executable, *(args if args is not None else ["-c", code])]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def default_blas_threads() -> int:
    """numpy's BLAS threads in a fresh interpreter, before anything of xbarsim runs."""
    out = _run("import numpy;" + BLAS)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_import_crossbar_changes_no_thread_pool_and_ignores_a_bad_env(default_blas_threads):
    out = _run("import numpy, crossbar;" + BLAS, env_value="many")
    assert out.returncode == 0, out.stderr  # a bad value no longer breaks the import
    assert int(out.stdout) == default_blas_threads


def test_entry_point_setup_pins_blas_to_one_thread_by_default():
    out = _run("from xbarsim.threads import init_from_env; init_from_env();" + BLAS)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_entry_point_setup_honours_the_opt_in():
    out = _run("from xbarsim.threads import init_from_env; init_from_env();" + BLAS, env_value="2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


@pytest.mark.parametrize("args", [["-m", "xbarsim", "calibrate", "--help"], ["-m", "benchmarks", "mvm", "--help"]])
def test_bad_env_is_a_one_line_cli_error(args):
    out = _run("", env_value="many", args=args)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"{'xbarsim calibrate' if args[1] == 'xbarsim' else 'python -m benchmarks'}: error: "
        "XBARSIM_BLAS_THREADS must be a positive integer, got 'many'"]


def test_limit_threads_pins_every_loaded_pool_and_the_env():
    code = ("import numpy; from xbarsim.threads import limit_threads; limit_threads(1);"
            "import os, threadpoolctl;"
            "print(max(d['num_threads'] for d in threadpoolctl.threadpool_info()), os.environ['OMP_NUM_THREADS'])")
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]


def test_thread_counts_are_checked():
    from xbarsim.threads import blas_threads_from_env, limit_threads, set_blas_threads

    assert blas_threads_from_env({}) == 1 and blas_threads_from_env({"XBARSIM_BLAS_THREADS": "3"}) == 3
    for bad in ("0", "-1", "1.5", ""):
        with pytest.raises(ValueError, match="XBARSIM_BLAS_THREADS must be a positive integer"):
            blas_threads_from_env({"XBARSIM_BLAS_THREADS": bad})
    for fn in (set_blas_threads, limit_threads):
        with pytest.raises(ValueError, match="must be a positive int, got 0"):
            fn(0)
