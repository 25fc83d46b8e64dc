"""``xbarsim bench energy``: one JSON record per chip anchor with the required fields, every
prediction within 2x of its published figure; a bad --chips exits 2."""
from __future__ import annotations

import json

from benchmarks import __main__ as bench_main
from crossbar.energy import CHIPS


def test_bench_energy_table_and_json(tmp_path, capsys):
    path = tmp_path / "energy.json"
    assert bench_main.main(["energy", "--json", str(path)]) == 0
    text = capsys.readouterr().out
    assert "hermes:1-phase" in text and "neurram:8b-in/10b-out" in text and "fitted here" in text
    records = json.loads(path.read_text())["records"]
    assert len(records) == sum(len(c.anchors) for c in CHIPS.values())
    for r in records:
        assert {"name", "predicted_tops_per_w", "published_tops_per_w", "ratio"} <= set(r)
        assert r["ratio"] == r["predicted_tops_per_w"] / r["published_tops_per_w"]
        assert 0.5 <= r["ratio"] <= 2.0, r["name"]


def test_bench_energy_bad_chip(capsys):
    assert bench_main.main(["energy", "--chips", "hermes,tpu"]) == 2
    assert "--chips must be a comma list of" in capsys.readouterr().err
