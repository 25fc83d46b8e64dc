"""Small module-level job functions for the executor tests (picklable by worker processes)."""
from __future__ import annotations

import os
import signal


def square(x):
    """x * x, and the thread settings the worker runs with."""
    import torch
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info()]
    return {"value": x * x, "torch_threads": torch.get_num_threads(), "max_pool_threads": max(blas, default=1),
            "omp_env": os.environ.get("OMP_NUM_THREADS")}


def die_once(payload):
    """Kill this worker process the first time (marker file absent), return the value after."""
    marker, value = payload
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return value * 10


def fail(payload):
    """Always raises."""
    raise ValueError(f"bad payload {payload}")


def reporting(payload):
    """Send two progress messages, then return the payload."""
    from study.executor import report

    report({"job": str(payload), "stage": "train", "done": 1, "total": 2})
    report({"job": str(payload), "stage": "eval", "done": 2, "total": 2})
    return payload


def sleep_long(payload):
    """Sleep (a busy worker for abort tests); report the pid first."""
    import time

    from study.executor import report

    report({"job": "sleeper", "pid": os.getpid()})
    time.sleep(float(payload))
    return payload
