"""``xbarsim deploy --energy``: the energy files and table of a small trained LSTM; a bad chip exits 2."""
from __future__ import annotations

import csv
import json

import pytest

import xbarsim

SMALL = ["--n-train", "120", "--n-test", "40", "--hidden", "8", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    assert xbarsim.main(["train", "--arch", "lstm", "--sigma-train", "0.1", "--seed", "1", "--draws", "1",
                         "--out", str(out), *SMALL]) == 0
    return out


def test_deploy_energy_writes_csv_json_plot(trained, tmp_path, capsys):
    out = tmp_path / "dep"
    rc = xbarsim.main(["deploy", "--checkpoint", str(trained / "model.pt"), "--preset", "pcm", "--set",
                       "tile_rows=16", "--times", "1", "--instances", "1", "--draws", "1", "--compensation", "off",
                       "--energy", "hermes", "--energy-sequences", "5", "--quiet", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "energy per inference on chip preset hermes" in text and "total" in text
    for name in ("energy.csv", "energy.json", "energy.png", "deploy.csv"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / "energy.csv", newline="")))
    assert [r["layer"] for r in rows] == ["rnn", "head", "total"]
    total = rows[-1]
    assert float(total["energy_j"]) > float(total["component_j"]) > 0
    assert float(total["latency_s"]) > 0 and float(total["tops_per_w"]) > 0
    doc = json.loads((out / "energy.json").read_text())
    digits_steps = 8                                       # digits: 8 steps of 8 features
    assert doc["inferences"] == 5
    assert doc["counts"]["rnn.weight_hh_l0"]["vectors"] == 5 * digits_steps
    assert doc["counts"]["head.weight"]["vectors"] == 5
    assert doc["chip_costs"]["name"] == "hermes" and doc["array_config"]["tile"]["rows"] == 16


def test_deploy_energy_auto_and_bad_chip(trained, tmp_path, capsys):
    base = ["deploy", "--checkpoint", str(trained / "model.pt"), "--times", "1", "--instances", "1", "--draws", "1",
            "--compensation", "off", "--quiet"]
    assert xbarsim.main([*base, "--preset", "rram", "--energy", "--energy-sequences", "2",
                         "--out", str(tmp_path / "a")]) == 0
    assert "chip preset neurram" in capsys.readouterr().out
    assert xbarsim.main([*base, "--preset", "pcm", "--energy", "tpu", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "--energy: unknown chip 'tpu'; expected one of" in err and "Traceback" not in err
