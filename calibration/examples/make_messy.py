"""Write messy_cells.csv: messy synthetic RRAM data with a known truth (calibration.synthetic).

    python calibration/examples/make_messy.py [OUT.csv] [--cells-per-level N] [--seed S] [--relaxation log_time]

6 target levels x 650 cells (default), 3 reads at 60 s (25 C) and after an 1800 s bake at
80 C (Ea = 1.0 eV), 0.5 % outlier cells (one shorted at 1e4 uS), telegraph read noise in
3 % of the cells, a relaxation spread that peaks mid-range and falls > 30x towards g_max
(a power law by default; ``--relaxation log_time``: growing with sqrt(ln t), mean changing sign).
About 650 KB; not committed (regenerate it). Calibrate it with

    xbarsim calibrate messy_cells.csv --activation-energy-ev 1.0 --out messy.json --report rep/
"""
from __future__ import annotations

import argparse
from pathlib import Path

from calibration.readers import write_long_csv
from calibration.synthetic import messy_rram


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", default=str(Path(__file__).with_name("messy_cells.csv")))
    p.add_argument("--cells-per-level", type=int, default=650)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--relaxation", choices=("power", "log_time"), default="power")
    args = p.parse_args(argv)
    data, _ = messy_rram(n_per_level=args.cells_per_level, seed=args.seed, relaxation=args.relaxation)
    write_long_csv(args.out, data)
    print(f"wrote {args.out} ({data.n_cells} cells, {data.n_rows} rows)")
    return Path(args.out)


if __name__ == "__main__":
    main()
