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

Stopping: worker processes are started with SIGINT ignored, so a Ctrl-C in the terminal
reaches only the sweep's own process, which then calls :meth:`BaseExecutor.abort` (kill
the workers, cancel what is queued) instead of every process printing a traceback.

Progress: a job may call :func:`report` (``{"job": key, "stage": ..., "done": i, "total": n}``);
with ``run_unordered(..., on_progress=callback)`` the messages reach ``callback`` in this
process (a queue for the pool, Dask's event topics for a cluster, a direct call in serial).

Example:
    >>> with make_executor(workers=2) as ex:                       # doctest: +SKIP
    ...     for key, value in ex.run_unordered(pow2, {"a": 3, "b": 4}):
    ...         print(key, value)
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["BaseExecutor", "SerialExecutor", "PoolExecutor", "DaskExecutor", "make_executor", "limit_threads",
           "JobError", "report"]

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


#: where :func:`report` sends progress messages in this process (None: nowhere)
_CHANNEL: Callable[[dict], None] | None = None


def report(message: dict) -> None:
    """Send a progress message from inside a job to the process running the executor.

    A no-op when nobody listens; never raises (progress must not fail a job).
    """
    channel = _CHANNEL
    if channel is not None:
        with contextlib.suppress(Exception):
            channel(message)


def _die_with(parent_pid: int) -> None:
    """Linux: have the kernel send this process SIGTERM when its parent dies (even by SIGKILL).

    Without it, pool workers of a SIGKILLed sweep stay alive and idle forever.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _init_worker(n_threads: int, queue=None, parent_pid: int | None = None) -> None:
    """Pool worker initializer: exit with the parent; pin threads; send progress to ``queue``."""
    global _CHANNEL
    if parent_pid is not None:
        _die_with(parent_pid)
    limit_threads(n_threads)
    if queue is not None:
        _CHANNEL = queue.put


def _call(fn: Callable[[Any], Any], payload: Any) -> Any:
    """Worker-side wrapper: pin threads, then run the job."""
    limit_threads(1)
    return fn(payload)


def _call_dask(fn: Callable[[Any], Any], payload: Any, topic: str | None) -> Any:
    """Dask worker-side wrapper: progress goes to the client as events on ``topic``."""
    global _CHANNEL
    if topic is not None:
        from distributed import get_worker

        worker = get_worker()
        _CHANNEL = lambda msg: worker.log_event(topic, msg)  # noqa: E731
    try:
        return _call(fn, payload)
    finally:
        _CHANNEL = None


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while child processes start, so they inherit "ignored".

    A Ctrl-C then reaches only this process (the whole foreground process group gets it),
    which stops the children itself. Only the main thread can change signal handlers;
    elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


class BaseExecutor:
    """Common interface: ``run_unordered(fn, payloads)`` and the context-manager protocol."""

    kind = "base"
    workers = 1

    def run_unordered(self, fn: Callable[[Any], Any], payloads: dict[str, Any], *,
                      on_progress: Callable[[dict], None] | None = None) -> Iterator[tuple[str, Any]]:
        """Run ``fn(payload)`` for every item; yield ``(key, result)`` in completion order.

        Args:
            on_progress: called in this process with every message a job sends with
                :func:`report` (from a helper thread for the pool and Dask).

        Raises:
            JobError: a job raised (after any retries the backend does).
        """
        raise NotImplementedError

    def describe(self) -> dict:
        """What ran the jobs, for the result files."""
        return {"kind": self.kind, "workers": self.workers}

    def close(self) -> None:
        """Release processes and clusters (waits for running jobs)."""

    def abort(self) -> None:
        """Stop now: kill worker processes, drop queued jobs (for Ctrl-C and SIGTERM)."""
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialExecutor(BaseExecutor):
    """Run jobs one after another in this process (``--workers 0``)."""

    kind = "serial"

    def run_unordered(self, fn, payloads, *, on_progress=None):
        global _CHANNEL
        for key, payload in payloads.items():
            _CHANNEL = on_progress
            try:
                result = _call(fn, payload)
            except Exception as exc:  # noqa: BLE001 - re-raised with the job key
                raise JobError(f"job {key!r} failed: {type(exc).__name__}: {exc}") from exc
            finally:
                _CHANNEL = None
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
        self._queue = self._drain = self._on_progress = None

    def _new_pool(self):
        """A pool whose workers send progress into one queue, drained by a thread of this process."""
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")
        queue = ctx.SimpleQueue()

        def drain():
            while True:
                try:
                    msg = queue.get()
                except Exception:  # noqa: BLE001 - the queue is gone: stop forwarding
                    return
                if msg is None:
                    return
                callback = self._on_progress
                if callback is not None:
                    with contextlib.suppress(Exception):
                        callback(msg)

        self._queue = queue
        self._drain = threading.Thread(target=drain, name="xbarsim-progress", daemon=True)
        self._drain.start()
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(1, queue, os.getpid()))

    def _stop_drain(self, graceful: bool = True) -> None:
        """Stop forwarding progress. ``graceful=False`` after workers were killed: one may have
        died holding the queue's write lock, so putting the stop marker could block forever;
        the (daemon) drain thread is left waiting instead."""
        if self._drain is not None and graceful:
            with contextlib.suppress(Exception):
                self._queue.put(None)
            self._drain.join(5)
        self._drain = self._queue = None

    def run_unordered(self, fn, payloads, *, on_progress=None):
        # Kept after the run: a job's last messages travel on another pipe than its result and
        # may be read after it (the sweep's bars ignore messages of finished jobs).
        self._on_progress = on_progress
        yield from self._run(fn, payloads)

    def _run(self, fn, payloads):
        from concurrent.futures import FIRST_COMPLETED, CancelledError, wait
        from concurrent.futures.process import BrokenProcessPool

        todo = dict(payloads)
        attempts = {k: 0 for k in todo}
        while todo:
            if self._pool is None:
                self._pool = self._new_pool()
            with sigint_ignored():  # the pool starts its workers on submit: they inherit SIGINT ignored
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
                        if self._pool is None:  # aborted from another thread: stop quietly
                            return
                        broken = True
                        continue
                    except CancelledError:  # aborted: the queued jobs were dropped
                        return
                    except Exception as exc:  # noqa: BLE001 - re-raised with the job key
                        self.abort()  # stop the other workers now; the sweep fails anyway
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
                self._stop_drain(graceful=False)
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
        self._stop_drain()

    def abort(self):
        pool, self._pool = self._pool, None
        if pool is None:
            self._stop_drain(graceful=False)
            return
        # Python 3.11's ProcessPoolExecutor cannot kill busy workers (3.14 adds terminate_workers):
        # take its process table before shutdown clears it.
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.join(5)
        self._stop_drain(graceful=False)


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

    #: seconds between "waiting for workers" messages while no worker is connected
    wait_report_s = 30.0

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
            with sigint_ignored():  # nannies and workers inherit SIGINT ignored: Ctrl-C reaches only us
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

    def _n_workers(self) -> int | None:
        try:
            return len(self.client.scheduler_info().get("workers", {}))
        except Exception:  # noqa: BLE001 - scheduler unreachable: unknown
            return None

    def _say_waiting(self, n_pending: int, n_workers: int | None) -> None:
        where = "the local cluster" if self.scheduler == "local" else self.scheduler
        why = ("no worker is connected to " + where if n_workers == 0
               else f"the scheduler {where} does not answer")
        hint = "" if self.scheduler == "local" else f"; start workers with `dask worker {self.scheduler}`"
        print(f"xbarsim: waiting: {why}; {n_pending} job(s) not finished{hint} (Ctrl-C stops; finished jobs "
              "are kept)", file=sys.stderr, flush=True)

    def run_unordered(self, fn, payloads, *, on_progress=None):
        import asyncio
        import uuid

        from distributed import wait

        tag = uuid.uuid4().hex[:8]
        topic = None
        if on_progress is not None:
            topic = f"xbarsim-progress-{tag}"
            self.client.subscribe_topic(topic, lambda event: on_progress(event[1]))
        futures = {}
        for key, payload in payloads.items():
            fut = self.client.submit(_call_dask, fn, payload, topic, key=f"xbarsim-{tag}-{key}", pure=False,
                                     retries=self.retries)
            futures[fut] = key
        pending = set(futures)
        try:
            last_ok = time.monotonic()
            while pending:
                try:
                    done, pending = wait(pending, timeout=min(5.0, self.wait_report_s), return_when="FIRST_COMPLETED")
                    done, pending = set(done), set(pending)
                except (TimeoutError, asyncio.TimeoutError):  # distributed.wait raises when nothing finished
                    done = set()
                if not done:
                    n_workers = self._n_workers()
                    if n_workers:
                        last_ok = time.monotonic()
                    elif time.monotonic() - last_ok >= self.wait_report_s:
                        self._say_waiting(len(pending), n_workers)
                        last_ok = time.monotonic()
                    continue
                for fut in done:
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
            if topic is not None:
                with contextlib.suppress(Exception):
                    self.client.unsubscribe_topic(topic)

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
