"""The command line: train, sweep and deploy end to end on small digits; bad input exits non-zero."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import xbarsim
from study import cli
from study.results import SUMMARY_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--n-train", "200", "--n-test", "100", "--hidden", "8", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    rc = xbarsim.main(["train", "--arch", "gru", "--sigma-train", "0.1", "--seed", "3", "--draws", "2",
                       "--out", str(out), *SMALL])
    assert rc == 0
    return out


def test_help_texts(capsys):
    for name, entry in (("train", cli.train_main), ("sweep", cli.sweep_main), ("deploy", cli.deploy_main)):
        assert entry(["--help"]) == 0
        text = capsys.readouterr().out
        assert f"xbarsim {name}" in text
    assert cli.sweep_main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--data", "--data-path", "--arch", "--hidden", "--epochs", "--seeds", "--sigma-train",
                 "--sigma-val", "--convention", "--draws", "--out", "--workers", "--scheduler"):
        assert flag in text
    assert cli.main(["--help"]) == 0 and "train" in capsys.readouterr().out
    assert cli.main(["bogus"]) == 2


def test_sweep_defaults_are_the_readme_sweep():
    args = cli.sweep_parser().parse_args([])
    assert (args.data, args.arch, args.out, args.convention) == ("digits", ["rnn", "lstm"], "runs/sweep", "relative")
    assert len(args.sigma_train) >= 3 and len(args.sigma_val) >= 4 and args.sigma_train[0] == 0.0


def test_train_writes_checkpoint_config_and_curves(trained):
    for name in ("model.pt", "config.json", "history.csv", "curves.png", "metrics.json"):
        assert (trained / name).is_file(), name
    config = json.loads((trained / "config.json").read_text())
    assert config["seed"] == 3 and config["noise_convention"] == "relative" and config["device_preset"] == "paper"
    assert config["model"]["arch"] == "gru" and config["train_config"]["output_noise"]["sigma"] == 0.1
    assert "torch" in config["versions"]
    with open(trained / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and set(rows[0]) >= {"train_loss", "test_accuracy"}
    metrics = json.loads((trained / "metrics.json").read_text())
    assert len(metrics["accuracy_at_sigma_train"]["draws"]) == 2


def test_train_is_reproducible(trained, tmp_path):
    rc = xbarsim.main(["train", "--arch", "gru", "--sigma-train", "0.1", "--seed", "3", "--draws", "2",
                       "--out", str(tmp_path), *SMALL])
    assert rc == 0
    a = json.loads((trained / "metrics.json").read_text())["accuracy_at_sigma_train"]["draws"]
    b = json.loads((tmp_path / "metrics.json").read_text())["accuracy_at_sigma_train"]["draws"]
    assert a == b
    assert (trained / "history.csv").read_text() == (tmp_path / "history.csv").read_text()


def test_sweep_cli_in_process(tmp_path, capsys):
    out = tmp_path / "sweep"
    rc = cli.sweep_main(["--arch", "rnn", "--sigma-train", "0,0.3", "--sigma-val", "0,0.3", "--seeds", "0,1",
                         "--draws", "2", "--workers", "0", "--out", str(out), *SMALL])
    assert rc == 0
    text = capsys.readouterr().out
    assert "RNN: test accuracy" in text and "sweep complete" in text and str(out / "summary.csv") in text
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == SUMMARY_COLUMNS and len(rows) == 4
    assert all(r["n_seeds"] == "2" and r["n_draws"] == "2" for r in rows)
    with h5py.File(out / "results.h5", "r") as f:
        assert f["accuracy"].shape == (1, 2, 2, 2, 2) and list(f["seed"][()]) == [0, 1]


def test_sweep_snr_db_convention(tmp_path):
    out = tmp_path / "snr"
    rc = cli.sweep_main(["--arch", "rnn", "--convention", "snr_db", "--sigma-train", "inf,10",
                         "--sigma-val", "inf,20,5", "--seeds", "0", "--draws", "2", "--workers", "0", "--out", str(out), *SMALL])
    assert rc == 0
    with h5py.File(out / "results.h5", "r") as f:
        acc = f["accuracy"][()]
        assert f.attrs["noise_convention"] == "snr_db"
    assert np.all(acc[:, :, :, 0, :] == acc[:, :, :, 0, :1])  # inf dB: no noise, every draw the same
    assert acc[:, :, :, 2].mean() < acc[:, :, :, 0].mean()  # 5 dB costs accuracy


def test_deploy_with_preset_and_device_file(trained, tmp_path, capsys):
    out = tmp_path / "deploy"
    rc = xbarsim.main(["deploy", "--checkpoint", str(trained / "model.pt"), "--preset", "pcm", "--times", "1,86400",
                       "--instances", "2", "--draws", "2", "--out", str(out), "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "1 day" in text and "drift_comp" in text
    for name in ("deploy.h5", "deploy.csv", "deploy.json", "deploy.png"):
        assert (out / name).is_file(), name
    with h5py.File(out / "deploy.h5", "r") as f:
        assert f["accuracy"].shape == (2, 2, 2, 2)
        assert list(f["time_s"][()]) == [1.0, 86400.0] and list(f["drift_compensation"][()]) == [False, True]
        assert f.attrs["device_preset"] == "pcm" and f.attrs["seed"] == 0
    with open(out / "deploy.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    # a calibrated device-model file, as xbarsim calibrate writes it, loads through crossbar.preset(path)
    import crossbar

    device = tmp_path / "device.json"
    device.write_text(json.dumps({"array_config": crossbar.preset("rram").to_dict(), "calibration": {"note": "x"}}))
    rc = cli.deploy_main(["--checkpoint", str(trained / "model.pt"), "--preset", str(device), "--times", "1",
                          "--instances", "2", "--draws", "1", "--compensation", "off", "--set", "adc_bits=6",
                          "--out", str(tmp_path / "dev"), "--quiet"])
    assert rc == 0
    cfg = json.loads((tmp_path / "dev" / "deploy.json").read_text())["array_config"]
    assert cfg["adc"]["bits"] == 6 and cfg["name"] == "rram"


def test_deploy_with_wires(trained, tmp_path):
    rc = cli.deploy_main(["--checkpoint", str(trained / "model.pt"), "--preset", "rram", "--times", "1",
                          "--instances", "1", "--draws", "1", "--compensation", "off", "--set", "wire_row_ohm=2.5",
                          "--set", "wire_col_ohm=2.5", "--out", str(tmp_path / "w"), "--quiet"])
    assert rc == 0
    cfg = json.loads((tmp_path / "w" / "deploy.json").read_text())["array_config"]
    assert cfg["wires"]["row_ohm"] == 2.5 and cfg["wires"]["col_ohm"] == 2.5


def _bad_npz(tmp_path: Path) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, X=np.zeros((10, 4)), y=np.zeros(10, int))
    return path


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["sweep", "--arch", "cnn"], 2, "architectures must be a comma list of rnn, lstm, gru"),
        (["sweep", "--sigma-val", "0,abc"], 2, "expected a comma list of numbers"),
        (["sweep", "--sigma-val", "-0.1"], 2, "sigma_val values must be finite and >= 0"),
        (["sweep", "--draws", "0"], 2, "expected an integer >= 1"),
        (["sweep", "--convention", "db"], 2, "invalid choice: 'db'"),
        (["train", "--sigma-train", "-1"], 2, "--sigma-train must be finite and >= 0"),
        (["train", "--arch", "tcn"], 2, "invalid choice: 'tcn'"),
        (["deploy"], 2, "the following arguments are required: --checkpoint"),
        (["sweep", "--data", "{tmp}/missing.npz", "--workers", "0"], 1, "missing.npz: data file does not exist"),
        (["train", "--data", "{bad}"], 1, "bad.npz: array 'X' must have shape (N, T, F), got shape (10, 4)"),
        (["sweep", "--data", "mnist", "--workers", "0"], 1, "give the MNIST location with --data-path"),
        (["train", "--preset", "nosuch"], 1, "preset: expected one of"),
        (["deploy", "--checkpoint", "{bad}"], 1, "bad.npz: checkpoint is damaged or truncated"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(tmp_path, capsys, argv, code, message):
    bad = _bad_npz(tmp_path)
    argv = [a.format(tmp=tmp_path, bad=bad) for a in argv] + ["--out", str(tmp_path / "o")]
    assert xbarsim.main(argv) == code
    assert message in capsys.readouterr().err


def test_deploy_rejects_data_that_does_not_fit_the_model(trained, tmp_path, capsys):
    path = tmp_path / "other.npz"
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.normal(size=(20, 5, 3)), y=np.arange(20) % 2)
    rc = cli.deploy_main(["--checkpoint", str(trained / "model.pt"), "--data", str(path), "--out", str(tmp_path)])
    assert rc == 1
    assert "has 3 features and 2 classes, but the model expects 8 features and 10 classes" in capsys.readouterr().err


def test_console_script_and_python_m(tmp_path):
    exe = Path(sys.executable).with_name("xbarsim")
    if exe.exists():
        r = subprocess.run([str(exe), "sweep", "--help"], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0 and "--sigma-val" in r.stdout
    r = subprocess.run([sys.executable, "-m", "study", "train", "--arch", "nope"], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 2 and "invalid choice: 'nope'" in r.stderr
