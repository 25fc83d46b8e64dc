"""``xbarsim bench normals``: nanoseconds per float32 standard normal, crossbar's generators
beside numpy's and torch's.

Generators, each filling a float32 array of ``n`` normals in place:

* ``boxmuller``: crossbar's default, ``crossbar.fill_standard_normal(out, key)``
  (counter-based SplitMix64 + vectorised float32 Box-Muller, crossbar/_normals.py);
* ``ziggurat``: crossbar's legacy generator (``normal_generator="legacy"``: scalar
  SplitMix64 + ziggurat), ``crossbar.standard_normal(rng, out)`` (which also draws the
  call's 64-bit seed from ``rng``);
* ``numpy``: ``np.random.Generator(PCG64).standard_normal(out=..., dtype=np.float32)``;
* ``torch``: ``Tensor.normal_()`` on a float32 tensor (skipped when torch is not importable).

Each of these rows is one Python call per fill, so it includes each library's call
overhead (most of the time at n = 512). Two more rows time the generators without it:
``boxmuller_in_kernel`` calls ``crossbar.fill_normals`` (the numba core) from a compiled
loop over ``--rows`` rows of ``n``, one key per row from ``crossbar.derive_key``, the way
crossbar's read path uses it; ``ziggurat_block`` fills the same ``(rows, n)`` block in one
``crossbar.standard_normal`` call (its kernel loops over all of it). All variants of one
``n`` are timed round robin (one sample of each per round, ``--repeat`` rounds, a sample
being enough calls for about ``--sample-ms``); the table gives medians of the wall time
and of the CPU time (what one unloaded core takes when other processes share the
machine) and the ratio to ``boxmuller`` (one-call rows) or ``boxmuller_in_kernel``
(block rows). One thread.

Example:
    xbarsim bench normals --sizes 512,32768 --json normals.json
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from xbarsim.cliargs import int_at_least, positive_float

__all__ = ["main"]

#: the rows that draw a (rows, n) block per call
_BLOCK_ROWS = ("boxmuller_in_kernel", "ziggurat_block")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xbarsim bench normals", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="512,32768",
                   help="comma list of fill sizes n (normals per call), default 512,32768")
    p.add_argument("--rows", type=int_at_least(1), default=64,
                   help="rows of n per call in the block rows (default 64)")
    p.add_argument("--repeat", type=int_at_least(3), default=41, help="timed rounds (default 41; medians)")
    p.add_argument("--sample-ms", type=positive_float, default=2.0,
                   help="length of one timed sample, ms (enough calls to fill it)")
    p.add_argument("--threads", type=int_at_least(1), default=1, help="threads for numpy/torch (default 1)")
    p.add_argument("--seed", type=int, default=0, help="key / seed of the fills")
    p.add_argument("--no-torch", action="store_true", help="skip torch even when importable")
    p.add_argument("--json", "--out", dest="json", metavar="PATH", help="write one record per row as JSON to PATH")
    return p


def _sizes(text: str) -> list[int] | None:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        return None
    return sizes if sizes and all(s >= 1 for s in sizes) else None


def _variants(n: int, rows: int, seed: int, torch) -> dict[str, Callable[[], object]]:
    """name -> a function that draws ``n`` normals (one-call rows) or ``rows * n`` (block rows)."""
    from numba import njit

    import crossbar

    fill, derive_key = crossbar.fill_normals, crossbar.derive_key

    @njit(cache=False, nogil=True)
    def bm_rows(block, seed):
        for r in range(block.shape[0]):
            fill(block[r], derive_key(seed, np.uint64(r)))

    out = np.empty(n, np.float32)
    block = np.empty((rows, n), np.float32)
    key = np.uint64(seed)
    gen = np.random.Generator(np.random.PCG64(seed))
    zig_rng = np.random.Generator(np.random.SFC64(seed))
    fns: dict[str, Callable[[], object]] = {
        "boxmuller": lambda: crossbar.fill_standard_normal(out, seed),
        "ziggurat": lambda: crossbar.standard_normal(zig_rng, out),
        "numpy": lambda: gen.standard_normal(out=out, dtype=np.float32),
    }
    if torch is not None:
        t = torch.empty(n, dtype=torch.float32)
        torch.manual_seed(seed)
        fns["torch"] = lambda: t.normal_()
    fns["boxmuller_in_kernel"] = lambda: bm_rows(block, key)
    fns["ziggurat_block"] = lambda: crossbar.standard_normal(zig_rng, block)
    return fns


def _calls_per_sample(fn: Callable[[], object], sample_s: float) -> int:
    for _ in range(3):
        fn()
    k = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        dt = time.perf_counter() - t0
        if dt >= sample_s / 4 or k >= 1 << 20:
            return max(1, int(k * sample_s / max(dt, 1e-9)))
        k *= 4


def _time_round_robin(fns: dict[str, Callable[[], object]], calls: dict[str, int], repeat: int):
    """name -> (median wall s per call, median CPU s per call), one sample of each per round."""
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            k = calls[name]
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(k):
                fn()
            wall[name].append((time.perf_counter() - t0) / k)
            cpu[name].append((time.process_time() - c0) / k)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def main(argv: list[str] | None = None) -> int:
    """Print ns/normal per generator and size; optionally write the rows as JSON (``records``:
    name, n, normals_per_call, ns_per_normal, cpu_ns_per_normal, ratio, ...)."""
    p = _parser()
    try:  # argparse's usage errors (its own and the two below): usage and one line on stderr, exit 2
        args = p.parse_args(argv)
        sizes = _sizes(args.sizes)
        if sizes is None:
            p.error(f"--sizes must be a comma list of ints >= 1, got {args.sizes!r}")
        if not 0 <= args.seed < 1 << 63:
            p.error(f"--seed must be in [0, 2**63), got {args.seed}")
    except SystemExit as exc:
        return int(exc.code or 0)
    from xbarsim import version
    from xbarsim.files import atomic_write_json
    from xbarsim.threads import limit_threads

    limit_threads(args.threads)
    torch = None
    torch_note = "skipped (--no-torch)" if args.no_torch else ""
    if not args.no_torch:
        try:
            import torch  # noqa: F811
            torch.set_num_threads(args.threads)
        except ImportError as exc:
            torch_note = f"torch not importable ({exc})"
            torch = None
        limit_threads(args.threads)
    records = []
    head = f"{'generator':<21} {'n':>7} {'ns/normal':>10} {'cpu ns':>8} {'ratio':>7}"
    print(head)
    print("-" * len(head))
    for n in sizes:
        fns = _variants(n, args.rows, args.seed, torch)
        count = {k: (args.rows * n if k in _BLOCK_ROWS else n) for k in fns}
        calls = {k: _calls_per_sample(fn, args.sample_ms * 1e-3) for k, fn in fns.items()}
        timed = _time_round_robin(fns, calls, args.repeat)
        for name, (wall, cpu) in timed.items():
            ref = "boxmuller_in_kernel" if name in _BLOCK_ROWS else "boxmuller"
            ns, cpu_ns = wall / count[name] * 1e9, cpu / count[name] * 1e9
            ratio = wall / count[name] / (timed[ref][0] / count[ref])
            records.append(dict(name=name, n=n, normals_per_call=count[name], calls_per_sample=calls[name],
                                seconds_per_call_median=wall, cpu_seconds_per_call_median=cpu,
                                ns_per_normal=ns, cpu_ns_per_normal=cpu_ns, ratio_to=ref, ratio=ratio))
            print(f"{name:<21} {n:>7} {ns:>10.3f} {cpu_ns:>8.3f} {ratio:>7.2f}")
    if torch_note:
        print(f"torch: {torch_note}")
    print(f"\nmedians of {args.repeat} round-robin samples of ~{args.sample_ms:g} ms, {args.threads} thread(s); "
          "ratio: to boxmuller (one-call rows) or boxmuller_in_kernel (block rows, "
          f"{args.rows} rows of n per call)")
    if args.json:
        meta = dict(benchmark="normals", version=version(), sizes=sizes, rows=args.rows, repeat=args.repeat,
                    sample_ms=args.sample_ms, threads=args.threads, seed=args.seed, numpy=np.__version__,
                    torch=None if torch is None else torch.__version__, torch_note=torch_note,
                    machine=platform.machine(), processor=_cpu_name(), python=platform.python_version(),
                    time_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        atomic_write_json(args.json, {"meta": meta, "records": records})
        print(f"wrote {args.json}")
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
