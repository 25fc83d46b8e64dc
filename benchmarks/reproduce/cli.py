"""``python -m benchmarks reproduce`` / ``xbarsim bench reproduce``: run the selected stages in order."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .profiles import PROFILES, STAGES
from .runner import Heartbeat, Runner
from .stages import Study


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xbarsim bench reproduce",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Reproduce Qin and Vucinic (2018) on row-by-row MNIST with xbarsim's own commands "
                    "(sweep, deploy), then go past it (pcm/rram deployment over a year, DNI with the device's "
                    "noise, JapaneseVowels, the three noise conventions). Resumable: run the same command again "
                    "to continue. See docs/REPRODUCTION.md.")
    p.add_argument("--profile", choices=sorted(PROFILES), default="full", help="study size (tiny: a smoke run)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma list of stages, in this order: {','.join(STAGES)}")
    p.add_argument("--out", default="benchmarks/results/reproduction", help="output folder")
    p.add_argument("--data-path", default="../shared/data/mnist", help="MNIST (mnist.npz or IDX folder)")
    p.add_argument("--workers", type=int, default=2, help="worker processes for sweeps and deploys (0: in this process)")
    p.add_argument("--doc", default="docs/REPRODUCTION.md",
                   help="markdown file whose generated block the report stage rewrites ('' for none)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--keep-going", action="store_true", help="after a failed stage, go on with the next ones")
    return p


def _selected_stages(text: str) -> list[str] | None:
    """The stages named in ``--stages``, in the study's order; None (after a message) when one is unknown."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in STAGES]
    if bad:
        print(f"xbarsim bench reproduce: error: unknown stage(s) {bad}; expected {', '.join(STAGES)}",
              file=sys.stderr)
        return None
    return [s for s in STAGES if s in names]


def run_stage(study: Study, runner: Runner, beat: Heartbeat, name: str, doc: Path | None) -> bool:
    """Run one stage, logging its run (start, wall time, status, error) to stages.json; True when it did not fail."""
    entry = runner.begin_stage(name)
    beat.watch(entry)
    print(f"[reproduce] stage {name}: start {entry['runs'][-1]['started']}", flush=True)
    t0 = time.perf_counter()
    ok = True
    try:
        complete = study.stage_report(doc) if name == "report" else getattr(study, f"stage_{name}")()
        entry["status"] = "complete" if complete else "incomplete"
    except Exception as exc:  # noqa: BLE001 - a failed stage is logged and reported
        entry["status"] = "failed"
        entry["error"] = f"{type(exc).__name__}: {exc}"
        print(f"[reproduce] stage {name} failed: {exc}", file=sys.stderr, flush=True)
        ok = False
    wall = time.perf_counter() - t0
    beat.watch(None)
    runner.end_stage(entry, wall)
    print(f"[reproduce] stage {name}: {entry['status']} in {wall:.1f} s", flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the selected stages; 0 when they ran (complete or not), 1 when one failed, 2 on bad arguments."""
    p = _parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    stages = _selected_stages(args.stages)
    if stages is None:
        return 2
    from study.executor import limit_threads

    limit_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(out, max(0, args.workers), dry_run=args.dry_run)
    study = Study(PROFILES[args.profile], out, args.data_path, max(0, args.workers), runner)
    doc = Path(args.doc) if args.doc else None
    failed = False
    with Heartbeat(runner) as beat:
        for name in stages:
            failed |= not run_stage(study, runner, beat, name, doc)
            if failed and not args.keep_going:
                break
    if "report" in stages and not failed:
        # refresh the report's stage table with this run's final times
        study.stage_report(doc)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
