"""Run independent jobs on a local process pool or a Dask distributed cluster.

All executors share one method, :meth:`BaseExecutor.run_unordered`, which takes a picklable
module-level function and ``{key: payload}`` and yields ``(key, result)`` as jobs finish, so
the caller can write each result to disk the moment it arrives (a killed sweep loses no
finished job). Every job runs with one thread per pool (OpenMP, BLAS, torch), as DESIGN.md
asks: parallelism comes from processes.

- :class:`SerialExecutor` (``workers=0``): in this process, in key order. For debugging.
- :class:`PoolExecutor` (default): ``concurrent.futures.ProcessPoolExecutor`` with the
  ``spawn`` start method. If a worker dies (killed, out of memory), the pool is rebuilt and
  the unfinished jobs run again, up to ``retries`` times each.
- :class:`DaskExecutor` (``scheduler="local"`` or ``"tcp://host:port"``): a
  ``dask.distributed`` client. ``"local"`` starts a ``LocalCluster`` of ``workers`` processes
  with one thread each. Dask reruns the jobs of a worker that dies (its nanny restarts it).
  With a remote scheduler the workers must have xbarsim installed; results travel back to
  this process, so no shared file system is needed.

Example:
    >>> with make_executor(workers=2) as ex:                       # doctest: +SKIP
    ...     for key, value in ex.run_unordered(pow2, {"a": 3, "b": 4}):
    ...         print(key, value)
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["BaseExecutor", "SerialExecutor", "PoolExecutor", "DaskExecutor", "make_executor", "limit_threads",
           "JobError"]

_LIMITED = False


class JobError(RuntimeError):
    """A job raised an exception (the message names the job key and the original error)."""


def limit_threads(n: int = 1) -> None:
    """Pin every thread pool of this process, torch's included, to ``n`` threads (idempotent).

    Called by the train/sweep/deploy commands and in each worker before its first job:
    imports torch, then :func:`xbarsim.threads.limit_threads` (OpenMP/BLAS environment
    variables for libraries not yet loaded, threadpoolctl for the loaded pools, torch's
    intra-op threads), and torch's inter-op threads.
    """
    global _LIMITED
    if _LIMITED:
        return
    import torch

    from xbarsim.threads import limit_threads as _limit_all

    _limit_all(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already set once in this process (e.g. the test session)
        pass
    _LIMITED = True


def _call(fn: Callable[[Any], Any], payload: Any) -> Any:
    """Worker-side wrapper: pin threads, then run the job."""
    limit_threads(1)
    return fn(payload)


class BaseExecutor:
    """Common interface: ``run_unordered(fn, payloads)`` and the context-manager protocol."""

    kind = "base"
    workers = 1

    def run_unordered(self, fn: Callable[[Any], Any], payloads: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """Run ``fn(payload)`` for every item; yield ``(key, result)`` in completion order.

        Raises:
            JobError: a job raised (after any retries the backend does).
        """
        raise NotImplementedError

    def describe(self) -> dict:
        """What ran the jobs, for the result files."""
        return {"kind": self.kind, "workers": self.workers}

    def close(self) -> None:
        """Release processes and clusters."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialExecutor(BaseExecutor):
    """Run jobs one after another in this process (``--workers 0``)."""

    kind = "serial"

    def run_unordered(self, fn, payloads):
        for key, payload in payloads.items():
            try:
                result = _call(fn, payload)
            except Exception as exc:  # noqa: BLE001 - re-raised with the job key
                raise JobError(f"job {key!r} failed: {type(exc).__name__}: {exc}") from exc
            yield key, result


class PoolExecutor(BaseExecutor):
    """A spawn-context process pool that survives dead workers.

    Args:
        workers: number of worker processes (>= 1).
        retries: how many times a job may be rerun after its worker died.
    """

    kind = "process"

    def __init__(self, workers: int = 2, retries: int = 2):
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1 for a process pool, got {workers}")
        self.workers = int(workers)
        self.retries = int(retries)
        self._pool = None

    def _new_pool(self):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                   initializer=limit_threads, initargs=(1,))

    def run_unordered(self, fn, payloads):
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        todo = dict(payloads)
        attempts = {k: 0 for k in todo}
        while todo:
            if self._pool is None:
                self._pool = self._new_pool()
            futures = {self._pool.submit(_call, fn, payload): key for key, payload in todo.items()}
            broken = False
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    key = futures[fut]
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    except Exception as exc:  # noqa: BLE001 - re-raised with the job key
                        self.close()
                        raise JobError(f"job {key!r} failed: {type(exc).__name__}: {exc}") from exc
                    todo.pop(key, None)
                    yield key, result
                if broken:
                    break
            if broken:
                # Keep whatever finished before the pool broke.
                for fut in pending:
                    key = futures[fut]
                    if fut.done() and not fut.cancelled() and fut.exception() is None and key in todo:
                        todo.pop(key)
                        yield key, fut.result()
                # A worker died: every unfinished job of this round counts one attempt, then reruns.
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                for key in todo:
                    attempts[key] += 1
                over = [k for k in todo if attempts[k] > self.retries]
                if over:
                    raise JobError(f"worker processes died {self.retries + 1} times while running {over}; giving up")
                print(f"xbarsim: a worker process died; rerunning {len(todo)} unfinished job(s)", file=sys.stderr)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor(BaseExecutor):
    """Jobs on a ``dask.distributed`` cluster.

    Args:
        scheduler: ``"local"`` (start a LocalCluster here) or a scheduler address
            (``"tcp://host:8786"``).
        workers: LocalCluster worker processes (one thread each); ignored for an address.
        retries: extra attempts for a job that raised (worker deaths are retried by Dask itself,
            ``distributed.scheduler.allowed-failures`` times).
    """

    kind = "dask"

    def __init__(self, scheduler: str = "local", workers: int = 2, retries: int = 0):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - exercised only without dask installed
            raise ImportError("--scheduler needs dask.distributed: pip install xbarsim[dask]") from exc
        self.scheduler = str(scheduler)
        self.retries = int(retries)
        self._cluster = None
        if self.scheduler == "local":
            if int(workers) < 1:
                raise ValueError(f"workers must be >= 1 for a local Dask cluster, got {workers}")
            self.workers = int(workers)
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=40)
            self.client = Client(self._cluster)
        else:
            if "://" not in self.scheduler:
                raise ValueError(f"--scheduler must be 'local' or an address like tcp://host:8786, got {scheduler!r}")
            self.client = Client(self.scheduler, timeout="20s")
            self.workers = len(self.client.scheduler_info().get("workers", {}))

    def describe(self) -> dict:
        return {"kind": self.kind, "workers": self.workers, "scheduler": self.scheduler}

    def run_unordered(self, fn, payloads):
        import uuid

        from distributed import as_completed

        tag = uuid.uuid4().hex[:8]
        futures = {}
        for key, payload in payloads.items():
            fut = self.client.submit(_call, fn, payload, key=f"xbarsim-{tag}-{key}", pure=False, retries=self.retries)
            futures[fut] = key
        try:
            for fut in as_completed(list(futures)):
                key = futures[fut]
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - re-raised with the job key
                    raise JobError(f"job {key!r} failed: {type(exc).__name__}: {exc}") from exc
                fut.release()
                yield key, result
        finally:
            for fut in futures:
                if not fut.done():
                    fut.cancel()

    def close(self):
        try:
            self.client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()
                self._cluster = None


def make_executor(workers: int | None = None, scheduler: str | None = None) -> BaseExecutor:
    """Pick the executor from the CLI flags.

    Args:
        workers: worker processes; ``0`` runs in this process; ``None`` means 2 (or fewer CPUs).
        scheduler: ``None`` for the local pool; ``"local"`` for a Dask LocalCluster; an address
            (``tcp://...``) for an existing Dask cluster.
    """
    if workers is None:
        workers = max(1, min(2, os.cpu_count() or 1))
    if int(workers) < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if scheduler:
        return DaskExecutor(scheduler, workers=max(1, int(workers)))
    if int(workers) == 0:
        return SerialExecutor()
    return PoolExecutor(int(workers))
