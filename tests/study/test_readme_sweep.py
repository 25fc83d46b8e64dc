"""The README's main-job command, end to end, and what its table is quoted for (slow: 30-80 s on 2 cores).

Run with ``pytest -m slow``. The default ``xbarsim sweep`` (digits, RNN + LSTM, hidden 32,
sigma_train 0/0.1/0.2/0.4, sigma_val 0..0.6, 3 seeds x 10 draws) must write the documented
files and show the paper's first claim for the LSTM with a margin: at sigma_val 0.6 the
model trained at sigma_train 0.4 beats the conventional one with disjoint 95% intervals
(measured: 0.639 [0.618, 0.660] vs 0.467 [0.438, 0.496]), and its accuracy drop from
sigma_val 0 to 0.6 is smaller (measured 0.27 vs 0.50).
"""
from __future__ import annotations

import csv

import pytest

from study.cli import sweep_main

pytestmark = pytest.mark.slow


def test_default_sweep_writes_its_files_and_shows_dni_robustness(tmp_path):
    out = tmp_path / "sweep"
    assert sweep_main(["--out", str(out), "--quiet"]) == 0
    for name in ("results.h5", "summary.csv", "heatmap.png", "curves_rnn.png", "curves_lstm.png", "sweep.json"):
        assert (out / name).is_file(), name
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["arch", "sigma_train", "sigma_val", "accuracy_mean", "accuracy_std", "ci_low",
                             "ci_high", "n_seeds", "n_draws"]
    assert len(rows) == 2 * 4 * 5
    cell = {(r["arch"], float(r["sigma_train"]), float(r["sigma_val"])): r for r in rows}
    dni, conv = cell[("lstm", 0.4, 0.6)], cell[("lstm", 0.0, 0.6)]
    assert float(dni["ci_low"]) > float(conv["ci_high"]), (dni, conv)
    drop_dni = float(cell[("lstm", 0.4, 0.0)]["accuracy_mean"]) - float(dni["accuracy_mean"])
    drop_conv = float(cell[("lstm", 0.0, 0.0)]["accuracy_mean"]) - float(conv["accuracy_mean"])
    assert drop_dni < drop_conv - 0.1, (drop_dni, drop_conv)
