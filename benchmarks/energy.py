"""``xbarsim bench energy``: each chip preset's predicted TOPS/W beside its published figure.

For every published anchor of every chip preset (``crossbar.energy.CHIPS``): one full-tile
MVM at the anchor's bits, costed by the chip's cost model (components from counters x
per-operation costs, plus the one overhead fitted to the chip's ``fit`` anchor). Printed:
published and predicted TOPS/W, their ratio, the physics alone (no overhead), the band
from the ADC figure of merit (pessimistic Walden 20 fJ/step to the optimistic Murmann
frontier) and whether the overhead was fitted on that anchor (then it matches by
construction; the other anchors of the same chip are the test).

Example:
    xbarsim bench energy --json energy.json
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xbarsim bench energy", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="PATH", help="write one record per chip anchor as JSON to PATH")
    p.add_argument("--chips", default=None, help="comma list of chip presets (default all)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Print the anchor table; optionally write it as JSON (``records``: name, predicted_tops_per_w,
    published_tops_per_w, ratio, ...)."""
    p = _parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from crossbar.energy import CHIPS, anchor_table
    from xbarsim import version
    from xbarsim.files import atomic_write_json

    chips = CHIPS
    if args.chips:
        names = [c.strip() for c in args.chips.split(",") if c.strip()]
        bad = [c for c in names if c not in CHIPS]
        if bad or not names:
            p.print_usage(sys.stderr)
            print(f"xbarsim bench energy: error: --chips must be a comma list of {', '.join(CHIPS)}, got "
                  f"{args.chips!r}", file=sys.stderr)
            return 2
        chips = {c: CHIPS[c] for c in names}
    rows = anchor_table(chips)
    head = (f"{'chip:anchor':<24} {'published':>9} {'predicted':>9} {'ratio':>6} {'physics':>8} "
            f"{'ADC band':>15} {'ns/MVM':>8}  overhead")
    print(head)
    print("-" * len(head))
    for r in rows:
        band = "-" if not r["band_tops_per_w"] else f"{r['band_tops_per_w'][0]:.2f}-{r['band_tops_per_w'][1]:.2f}"
        print(f"{r['name']:<24} {r['published_tops_per_w']:>9.2f} {r['predicted_tops_per_w']:>9.2f} "
              f"{r['ratio']:>6.2f} {r['component_tops_per_w']:>8.2f} {band:>15} "
              f"{r['latency_per_mvm_s'] * 1e9:>8.1f}  {'fitted here' if r['fitted'] else 'predicted'}")
    print("\nTOPS/W of one full-tile MVM (1 MAC = 2 ops). physics: components only, no overhead. "
          "ADC band: Walden 20 fJ/step .. Murmann frontier, overhead kept.")
    for r in rows:
        if r["published_tops_per_mm2"]:
            print(f"  area check {r['name']}: {r['predicted_tops_per_mm2']:.2f} TOPS/mm2 predicted "
                  f"({r['area_per_tile_mm2']:.3f} mm2 per tile) vs {r['published_tops_per_mm2']:.2f} published "
                  f"(ratio {r['predicted_tops_per_mm2'] / r['published_tops_per_mm2']:.2f})")
    for c in chips.values():
        print(f"  {c.name}: overhead {c.costs.overhead_power_w_per_tile * 1e3:.4g} mW per busy tile "
              f"({c.costs.sources['overhead_power_w_per_tile']})")
    if args.json:
        records = [{k: r[k] for k in ("name", "chip", "anchor", "predicted_tops_per_w", "published_tops_per_w",
                                      "ratio", "component_tops_per_w", "band_tops_per_w",
                                      "component_band_tops_per_w", "fitted", "energy_per_mvm_j",
                                      "latency_per_mvm_s", "breakdown_j", "source", "area_per_tile_mm2",
                                      "predicted_tops_per_mm2", "published_tops_per_mm2")} for r in rows]
        meta = {"benchmark": "energy", "version": version(),
                "costs": {c.name: c.costs.to_dict() for c in chips.values()}}
        atomic_write_json(args.json, {"meta": meta, "records": records})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
