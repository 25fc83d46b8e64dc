"""Generate example_cells.csv: a small long-format table sampled from a known device model.

    python calibration/examples/make_example.py          # rewrites example_cells.csv

The model (EXAMPLE_DEVICE) is PCM-like, in uS: programming offset 0.2 uS, programming
sigma 0.3 + 1.2 G/g_max, read noise 0.05 + 0.2 G/g_max, drift exponent nu with mean
0.06 - 0.03 G/g_max and spread 0.01, t0 = 20 s, 1 % of cells stuck at g_min and 0.5 % at
g_max. 8 target levels x 30 cells, reads at 20 s, 200 s and 2000 s, 4 reads each
(2880 rows, about 120 KB). Seed 2024. ``xbarsim calibrate`` on this file should give
these values back within the intervals it reports.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import crossbar
from calibration.readers import write_long_csv
from calibration.model import sample_long

EXAMPLE_DEVICE = crossbar.DeviceConfig(
    g_min_us=0.5, g_max_us=25.0,
    prog_offset=crossbar.Law("poly", (0.2,), x="g_norm"),
    prog_sigma=crossbar.Law("poly", (0.3, 1.2), x="g_norm", lo=0.0),
    read_sigma=crossbar.Law("poly", (0.05, 0.2), x="g_norm", lo=0.0),
    drift_mu_nu=crossbar.Law("poly", (0.06, -0.03), x="g_norm"),
    drift_sigma_nu=crossbar.Law("poly", (0.01,), x="g_norm", lo=0.0),
    t0_s=20.0, stuck_min_fraction=0.01, stuck_max_fraction=0.005)
LEVELS_US = np.linspace(3.0, 22.0, 8)
TIMES_S = (20.0, 200.0, 2000.0)
CELLS_PER_LEVEL = 30
READS = 4
SEED = 2024


def main(out: Path | None = None) -> Path:
    out = Path(out) if out is not None else Path(__file__).with_name("example_cells.csv")
    data = sample_long(EXAMPLE_DEVICE, LEVELS_US, CELLS_PER_LEVEL, TIMES_S, READS, seed=SEED)
    write_long_csv(out, data)
    return out


if __name__ == "__main__":
    print(f"wrote {main()}")
