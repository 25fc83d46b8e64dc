"""DAC input ranges from data, saturation made visible, and the deploy fixes of issue 11.

The synthetic case: digits scaled to [-3, 1] (well outside the presets' +-1 DAC range),
an LSTM trained without noise, deployed on pcm one second after programming.
"""
from __future__ import annotations

import copy
import csv
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import crossbar
import models
import xbarsim
from study import cli
from study.data import load_dataset
from study.experiment import load_checkpoint


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    """digits scaled to [-3, 1] as an .npz file, an LSTM trained on it without noise, its folder."""
    root = tmp_path_factory.mktemp("scaled")
    d = load_dataset("digits")
    x = np.concatenate([d.x_train, d.x_test]) * 4.0 - 3.0
    y = np.concatenate([d.y_train, d.y_test])
    np.savez(root / "digits_m3_1.npz", X=x.astype(np.float32), y=y)
    out = root / "train"
    here = os.getcwd()
    os.chdir(root)  # a relative data path: the checkpoint must store it resolved
    try:
        rc = xbarsim.main(["train", "--arch", "lstm", "--preset", "ideal", "--sigma-train", "0", "--epochs", "15",
                           "--hidden", "32", "--draws", "1", "--data", "digits_m3_1.npz", "--out", str(out),
                           "--quiet"])
    finally:
        os.chdir(here)
    assert rc == 0
    return root


def _deploy(scaled, tmp_path, *extra):
    out = tmp_path / "deploy"
    rc = cli.deploy_main(["--checkpoint", str(scaled / "train" / "model.pt"), "--preset", "pcm", "--times", "1",
                          "--instances", "2", "--draws", "1", "--compensation", "off", "--out", str(out), "--quiet",
                          *extra])
    assert rc == 0
    with open(out / "deploy.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return out, rows


def test_stored_ranges_keep_pcm_within_two_points_without_clipping(scaled, tmp_path, capsys):
    _, info = load_checkpoint(scaled / "train" / "model.pt", digital=True)
    ranges = info["input_ranges"]
    assert ranges["rnn.weight_ih_l0"] == pytest.approx(3.0)  # max |x| of the scaled digits
    assert ranges["rnn.weight_hh_l0"] <= 1.0                   # |h| < 1 in an LSTM
    assert Path(info["meta"]["data_args"]["data"]).is_absolute()
    out, rows = _deploy(scaled, tmp_path)  # run from the test's folder, not where training ran
    text = capsys.readouterr()
    assert "DAC input ranges from the checkpoint" in text.out
    assert "warning" not in text.err
    (row,) = rows
    with h5py.File(out / "deploy.h5") as f:
        digital = float(f.attrs["accuracy_digital"])
        matrices = [m.decode() if isinstance(m, bytes) else m for m in f["matrices"][...]]
        dac = f["dac_clip_fraction"][...]
        assert dac.shape == (1, 1, 3) and f["adc_clip_fraction"].shape == (1, 1, 3)
    assert sorted(matrices) == ["head.weight", "rnn.weight_hh_l0", "rnn.weight_ih_l0"]
    assert float(row["accuracy_mean"]) >= digital - 0.02, (row, digital)
    assert float(row["dac_clip_fraction"]) < 1e-3 and float(row["adc_clip_fraction"]) < 1e-3
    assert float(row["dac_clip_fraction"]) == pytest.approx(dac.max())


def test_ranges_forced_to_one_clip_and_warn(scaled, tmp_path, capsys):
    out, rows = _deploy(scaled, tmp_path, "--input-ranges", "preset")
    text = capsys.readouterr()
    (row,) = rows
    # x in [-3, 1] against +-1: every value below -1, about half of them, saturates
    assert float(row["dac_clip_fraction"]) > 0.3
    assert "warning:" in text.err and "rnn.weight_ih_l0" in text.err and "DAC inputs" in text.err
    with h5py.File(out / "deploy.h5") as f:
        matrices = [m.decode() if isinstance(m, bytes) else m for m in f["matrices"][...]]
        dac = dict(zip(matrices, f["dac_clip_fraction"][0, 0]))
    assert dac["rnn.weight_ih_l0"] > 0.3 and dac["rnn.weight_hh_l0"] < 0.01
    # a threshold above the worst fraction silences the warning
    _deploy(scaled, tmp_path, "--input-ranges", "preset", "--clip-warn", "0.99")
    assert "warning" not in capsys.readouterr().err


def test_deploy_calibrates_when_the_checkpoint_has_no_ranges(scaled, tmp_path, capsys):
    model, info = load_checkpoint(scaled / "train" / "model.pt")
    models.set_input_ranges(model, None)
    from study.experiment import save_checkpoint

    save_checkpoint(tmp_path / "bare.pt", model, info["spec"], info["config"], meta=info["meta"])
    assert load_checkpoint(tmp_path / "bare.pt")[1]["input_ranges"] == {}
    rc = cli.deploy_main(["--checkpoint", str(tmp_path / "bare.pt"), "--preset", "pcm", "--times", "1",
                          "--instances", "1", "--draws", "1", "--compensation", "off", "--out", str(tmp_path / "d"),
                          "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "calibrated on the model's training data (the checkpoint has none" in out


def test_python_api_calibrates_and_returns_clip_fractions():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    x = torch.rand(64, 6) * 4 - 3
    y = net(x).argmax(-1)
    analog = models.convert(net, crossbar.preset("pcm"), seed=0)
    found = models.calibrate_input_ranges(analog, [x])
    assert found["0.weight"] == pytest.approx(float(x.abs().max()))
    assert found["2.weight"] <= 1.0
    acc, clips = models.evaluate_over_time(analog, x, y, instances=2, draws=2, t_s=(1.0, 3600.0), seed=0,
                                           return_clips=True, adc_calibration=x)
    assert acc.shape == (2, 2, 2) and set(clips) == {"0.weight", "2.weight"}
    assert clips["0.weight"].shape == (2, 2) and clips["0.weight"][:, 0].max() == 0.0
    models.set_input_ranges(analog, 1.0)
    _, clips = models.evaluate_over_time(analog, x, y, t_s=(1.0,), return_clips=True, adc_calibration=x)
    frac = float((x.abs() > 1).float().mean())
    assert clips["0.weight"][0, 0] == pytest.approx(frac)  # exactly the inputs outside +-1
    # a percentile statistic: the 50th percentile of |x| clips about half of the inputs
    models.calibrate_input_ranges(analog, [x], statistic=50)
    models.program(analog, seed=1)
    analog(x)
    assert models.clip_fractions(analog)["0.weight"][0] == pytest.approx(0.5, abs=0.05)


def test_ranges_survive_save_load_convert_and_deepcopy(tmp_path):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 3))
    analog = models.convert(net, crossbar.preset("pcm"), seed=0)
    models.set_input_ranges(analog, {"0.weight": 2.5})
    models.save(analog, tmp_path / "m.pt")
    assert '"input_ranges": {\n        "weight": 2.5' in (tmp_path / "m.json").read_text()
    back = models.load(tmp_path / "m.pt", models.convert(net, crossbar.preset("pcm")))
    assert models.input_ranges(back) == {"0.weight": 2.5}
    again = models.convert(back, crossbar.preset("rram"))  # analog already: a new config, same ranges
    assert models.input_ranges(again) == {"0.weight": 2.5}
    assert models.input_ranges(copy.deepcopy(again)) == {"0.weight": 2.5}
    models.program(again, seed=0)
    assert again[0]._programmed["weight"].dac_range == 2.5
    models.save_programmed(again, tmp_path / "prog")
    loaded = models.load_programmed(tmp_path / "prog", models.convert(net, crossbar.preset("rram")))
    assert loaded[0]._programmed["weight"].dac_range == 2.5
    with pytest.raises(ValueError, match="unknown analog matrices"):
        models.set_input_ranges(analog, {"nope.weight": 1.0})
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        models.set_input_ranges(analog, {"0.weight": -1.0})


def test_set_none_is_accepted_and_documented(capsys):
    assert cli._override("adc_bits=None") == ("adc_bits", None)
    assert cli._override("adc_bits=null") == ("adc_bits", None)
    assert cli._override("adc_bits=6") == ("adc_bits", 6)
    assert cli.deploy_main(["--help"]) == 0
    assert "none or null sets None" in capsys.readouterr().out


def test_deploy_reads_the_data_of_a_sweep_checkpoint():
    meta = {"job": {"data": "/abs/x.npz", "data_path": None, "data_seed": 2, "n_train": 10, "n_test": None,
                    "arch": "lstm"}}
    assert cli._checkpoint_data_args(meta) == {"data": "/abs/x.npz", "data_path": None, "data_seed": 2,
                                               "n_train": 10, "n_test": None}
    meta["data_args"] = {"data": "digits", "data_path": None, "data_seed": 0, "n_train": None, "n_test": None}
    assert cli._checkpoint_data_args(meta)["data"] == "digits"
    assert cli._checkpoint_data_args({}) == {}


def test_calibrated_adc_ranges_stop_adc_clipping():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(16, 6))
    x = torch.rand(128, 16)
    y = net(x).argmax(-1)
    cfg = crossbar.preset("pcm", adc_output_range=1.0, adc_range_mode="fixed")  # far too small a fixed range
    analog = models.convert(net, cfg, seed=0)
    models.calibrate_input_ranges(analog, [x])
    _, clips = models.evaluate_over_time(analog, x, y, t_s=(1.0,), return_clips=True)
    assert clips["0.weight"][0, 1] > 0.2
    with pytest.warns(UserWarning, match="no adc_calibration inputs"):
        models.evaluate_over_time(analog, x, y, cfg.replace(adc_range_mode="calibrated"))
    _, clips = models.evaluate_over_time(analog, x, y, cfg.replace(adc_range_mode="calibrated"), t_s=(1.0,),
                                         return_clips=True, adc_calibration=x)
    assert clips["0.weight"][0, 1] < 0.01  # ranges from the same inputs at t = 0: only read noise can exceed them


def test_sweep_checkpoint_has_ranges_and_deploys_on_its_own_data(scaled, tmp_path, capsys):
    """A sweep calibrates after training; deploying its checkpoint from another folder without
    --data uses the data it was trained on (a relative path, stored resolved)."""
    import json

    out = tmp_path / "sweep"
    here = os.getcwd()
    os.chdir(scaled)
    try:
        rc = cli.sweep_main(["--arch", "lstm", "--sigma-train", "0", "--sigma-val", "0", "--seeds", "0", "--draws", "1",
                             "--workers", "0", "--epochs", "1", "--hidden", "8", "--data", "digits_m3_1.npz",
                             "--out", str(out), "--quiet"])
    finally:
        os.chdir(here)
    assert rc == 0
    (ckpt,) = (out / "checkpoints").glob("*.pt")
    _, info = load_checkpoint(ckpt, digital=True)
    assert info["input_ranges"]["rnn.weight_ih_l0"] == pytest.approx(3.0)
    assert Path(info["meta"]["data_args"]["data"]).is_absolute()
    capsys.readouterr()
    rc = cli.deploy_main(["--checkpoint", str(ckpt), "--preset", "pcm", "--times", "1", "--instances", "1",
                          "--draws", "1", "--compensation", "off", "--out", str(tmp_path / "d"), "--quiet"])
    assert rc == 0
    meta = json.loads((tmp_path / "d" / "deploy.json").read_text())
    assert meta["data"]["name"] == "digits_m3_1", meta["data"]


def test_learned_ranges_train_store_and_deploy(scaled, tmp_path, capsys):
    """train --learn-input-ranges: the ranges are learned (not the calibrated max), stored like
    calibrated ones, and deploy uses them; sweep --learn-input-ranges does the same per job."""
    import json

    out = tmp_path / "train"
    rc = xbarsim.main(["train", "--arch", "lstm", "--preset", "ideal", "--sigma-train", "0", "--epochs", "1",
                       "--hidden", "8", "--draws", "1", "--data", str(scaled / "digits_m3_1.npz"),
                       "--learn-input-ranges", "--out", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "DAC input ranges (learned during training)" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["range_statistic"] == "learned"
    model, info = load_checkpoint(out / "model.pt")
    ranges = info["input_ranges"]
    assert set(ranges) == {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"}
    assert ranges == pytest.approx(config["input_ranges"]) and ranges == pytest.approx(models.input_ranges(model))
    assert ranges["rnn.weight_ih_l0"] != pytest.approx(3.0, abs=1e-3)  # not the calibrated max |x|
    assert all(layer._range_learner is None for _, layer in models.analog_layers(model))
    rc = cli.deploy_main(["--checkpoint", str(out / "model.pt"), "--preset", "pcm", "--times", "1", "--instances",
                          "1", "--draws", "1", "--compensation", "off", "--out", str(tmp_path / "d"), "--quiet"])
    assert rc == 0
    assert "DAC input ranges from the checkpoint" in capsys.readouterr().out
    rc = cli.sweep_main(["--arch", "lstm", "--sigma-train", "0", "--sigma-val", "0", "--seeds", "0", "--draws", "1",
                         "--workers", "0", "--epochs", "1", "--hidden", "8", "--data", str(scaled / "digits_m3_1.npz"),
                         "--learn-input-ranges", "--out", str(tmp_path / "sweep"), "--quiet"])
    assert rc == 0
    (job,) = (tmp_path / "sweep" / "jobs").glob("*.json")
    res = json.loads(job.read_text())
    assert res["job"]["learn_input_ranges"] is True
    assert res["input_ranges"]["rnn.weight_ih_l0"] != pytest.approx(3.0, abs=1e-3)


def test_sweep_jobs_without_learned_ranges_keep_their_settings():
    """Older sweeps resume: the job settings carry learn_input_ranges only when it is on."""
    from study.sweep import SweepSpec, make_jobs

    assert all("learn_input_ranges" not in j for j in make_jobs(SweepSpec(archs=("lstm",), seeds=(0,))).values())
    assert all(j["learn_input_ranges"] for j in make_jobs(SweepSpec(archs=("lstm",), seeds=(0,),
                                                                    learn_input_ranges=True)).values())
