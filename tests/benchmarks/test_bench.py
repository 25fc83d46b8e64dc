"""The benchmark command lines (``xbarsim bench mvm|rnn``, ``python -m benchmarks``) at tiny sizes.

Checks what they print and write (rows of the table, the JSON records, ratios that are
positive finite numbers, every requested architecture, aihwkit reported skipped with its
reason) and that bad arguments exit with status 2 and say why. No timing assertions: the
numbers only have to exist.
"""
from __future__ import annotations

import json
import math
import sys
import types

import pytest
import torch

import crossbar
from benchmarks import __main__ as bench_main
from benchmarks import mvm, rnn

TINY_RNN = ["--hidden", "8", "--seq", "3", "--batch", "4", "--repeats", "2", "--warmup", "1"]
TINY_MVM = ["--rows", "16", "--cols", "8", "--batch", "4", "--repeat", "2"]
RNN_TIMED = ("seconds_median", "time_ratio_to_torch", "inference_seconds_median", "inference_sequences_per_s")
MVM_TIMED = ("seconds_median", "gflops", "time_ratio_to_blas")
_AIHWKIT_MODULES = ("aihwkit", "aihwkit.nn", "aihwkit.optim", "aihwkit.inference", "aihwkit.simulator",
                    "aihwkit.simulator.configs", "aihwkit.simulator.parameters", "aihwkit.simulator.parameters.enums")


@pytest.fixture
def no_aihwkit(monkeypatch):
    """Make every ``import aihwkit...`` fail, whether or not aihwkit is installed."""
    for name in [m for m in sys.modules if m.startswith("aihwkit.")] + list(_AIHWKIT_MODULES):
        monkeypatch.setitem(sys.modules, name, None)


def _run(main, argv, tmp_path, capsys):
    """main(argv + --json); returns (exit code, printed lines, the JSON)."""
    path = tmp_path / "out.json"
    rc = main([*argv, "--json", str(path)])
    lines = capsys.readouterr().out.splitlines()
    return rc, lines, json.loads(path.read_text(encoding="utf-8"))


def _positive_finite(record, keys):
    for key in keys:
        v = record[key]
        assert isinstance(v, float) and math.isfinite(v) and v > 0, (record["name"], key, v)


def _usage_error(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


# --------------------------------------------------------------------------- bench rnn
def _check_rnn(rc, lines, data, archs, aihwkit_reason):
    assert rc == 0
    assert data["meta"]["archs"] == archs and data["meta"]["hidden"] == 8 and data["meta"]["batch"] == 4
    records = data["records"]
    assert [r["name"] for r in records] == [f"{who}_{a}" for a in archs for who in ("torch", "analog", "aihwkit")]
    by_name = {r["name"]: r for r in records}
    rows = {line.split()[1]: line for line in lines if line.split()[:1] and line.split()[0] in rnn.ARCHS}
    assert set(rows) == set(by_name)
    for arch in archs:
        analog_cls, torch_cls, _ = rnn.ARCHS[arch]
        twin, analog, peer = by_name[f"torch_{arch}"], by_name[f"analog_{arch}"], by_name[f"aihwkit_{arch}"]
        for r in (twin, analog):
            assert r["arch"] == arch
            _positive_finite(r, RNN_TIMED)
            assert r["seconds_iqr"] >= 0
            assert rows[r["name"]].split()[0] == arch and r["what"] in rows[r["name"]]
        assert twin["what"].startswith(f"torch.nn.{torch_cls} ") and analog["what"].startswith(f"models.{analog_cls},")
        # each ratio is to the torch twin of the same architecture
        assert twin["time_ratio_to_torch"] == 1.0
        assert analog["time_ratio_to_torch"] == pytest.approx(analog["seconds_median"] / twin["seconds_median"])
        assert peer == {"name": f"aihwkit_{arch}", "arch": arch, "skipped": peer["skipped"]}
        assert peer["skipped"].startswith(aihwkit_reason)
        assert rows[peer["name"]].split()[2] == "skipped" and rows[peer["name"]].endswith(peer["skipped"])


def test_rnn_all_archs_by_default_aihwkit_not_importable(no_aihwkit, tmp_path, capsys):
    rc, lines, data = _run(rnn.main, TINY_RNN, tmp_path, capsys)
    assert lines[1].split()[:5] == ["arch", "name", "step", "ms", "ratio"]
    _check_rnn(rc, lines, data, ["lstm", "gru", "rnn"], "aihwkit not importable (")


def test_rnn_arch_subset_in_given_order_no_aihwkit(tmp_path, capsys):
    rc, lines, data = _run(rnn.main, [*TINY_RNN, "--arch", "rnn,GRU,rnn", "--no-aihwkit"], tmp_path, capsys)
    _check_rnn(rc, lines, data, ["rnn", "gru"], "--no-aihwkit")
    assert not any("lstm" in line for line in lines)


@pytest.mark.parametrize("preset", ["pcm", "rram"])
def test_rnn_device_preset(preset, tmp_path, capsys):
    """--preset trains on a device's noise; the torch twin is still measured in the same run."""
    rc, lines, data = _run(rnn.main, [*TINY_RNN, "--arch", "lstm", "--preset", preset], tmp_path, capsys)
    _check_rnn(rc, lines, data, ["lstm"], "aihwkit's layer mirrors the paper preset only")
    assert data["meta"]["preset"] == preset and data["meta"]["sigma"] is None
    assert data["meta"]["config"]["name"] == preset
    assert f"{preset} preset, noise_draw=mvm" in data["records"][1]["what"]
    assert f"preset {preset}" in lines[0]


def test_rnn_device_file_preset_with_sigma(tmp_path, capsys):
    path = tmp_path / "dev.json"
    path.write_text(crossbar.preset("rram", adc_bits=6).to_json())
    rc, lines, data = _run(rnn.main, [*TINY_RNN, "--arch", "rnn", "--preset", str(path), "--sigma", "0.05"], tmp_path,
                           capsys)
    _check_rnn(rc, lines, data, ["rnn"], "aihwkit's layer mirrors the paper preset only")
    assert data["meta"]["config"]["adc"]["bits"] == 6 and data["meta"]["sigma"] == 0.05
    assert data["meta"]["config"]["output_noise"]["sigma"] == 0.05


def test_dispatcher_runs_rnn(capsys):
    assert bench_main.main(["rnn", *TINY_RNN, "--arch", "gru", "--no-aihwkit"]) == 0
    names = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("gru ")]
    assert names == ["torch_gru", "analog_gru", "aihwkit_gru"]


def test_dispatcher_help_and_unknown_benchmark(capsys):
    assert bench_main.main([]) == 0
    out = capsys.readouterr().out
    assert "mvm" in out and "GRU" in out
    assert bench_main.main(["lstm"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'lstm'" in err and "mvm, rnn" in err


@pytest.mark.parametrize("argv, words", [
    (["--arch", "lstm,transformer"], ["--arch", "rnn, lstm, gru", "'lstm,transformer'"]),
    (["--arch", ","], ["--arch", "rnn, lstm, gru"]),
    (["--hidden", "0"], ["--hidden", ">= 1", "got 0"]),
    (["--batch", "-4"], ["--batch", ">= 1", "got -4"]),
    (["--seq", "0"], ["--seq", ">= 1"]),
    (["--input", "0"], ["--input", ">= 1"]),
    (["--repeats", "0"], ["--repeats", ">= 1"]),
    (["--warmup", "-1"], ["--warmup", ">= 0", "got -1"]),
    (["--threads", "0"], ["--threads", ">= 1"]),
    (["--sigma", "-0.1"], ["--sigma", "out_noise_sigma", "got -0.1"]),
    (["--preset", "nosuch"], ["--preset", "'nosuch'"]),
])
def test_rnn_bad_arguments_exit_2(argv, words, capsys):
    err = _usage_error(rnn.main, [*TINY_RNN, *argv], capsys)
    assert "usage: xbarsim bench rnn" in err
    for word in words:
        assert word in err, (word, err)


def test_rnn_bad_arch_through_dispatcher_exits_2(capsys):
    assert "rnn, lstm, gru" in _usage_error(bench_main.main, ["rnn", "--arch", "lstn"], capsys)


# --------------------------------------------------------------------------- aihwkit code path (a fake)
class _Forward:
    __slots__ = ("out_noise", "inp_res", "out_res", "inp_bound", "out_bound", "noise_management", "bound_management")


class _Mapping:
    __slots__ = ("weight_scaling_omega", "weight_scaling_columnwise", "max_input_size", "max_output_size")


class _InferenceRPUConfig:
    """Only the fields of aihwkit's config that the bench sets: a misspelt one raises AttributeError."""

    __slots__ = ("forward", "mapping", "drift_compensation")

    def __init__(self):
        self.forward, self.mapping, self.drift_compensation = _Forward(), _Mapping(), "default"


@pytest.fixture
def fake_aihwkit(monkeypatch):
    """aihwkit's public names used by ``benchmarks.rnn`` (aihwkit.nn.AnalogRNN(cell, input, hidden, rpu_config=)
    with time-first input and output (out, states), the three cells, AnalogSGD, the enums), on torch layers.
    Returns the list of the cell classes AnalogRNN was built with."""
    built = []
    cells = {name: type(name, (), {"twin": twin}) for name, twin in
             (("AnalogLSTMCell", torch.nn.LSTM), ("AnalogGRUCell", torch.nn.GRU),
              ("AnalogVanillaRNNCell", torch.nn.RNN))}

    class AnalogRNN(torch.nn.Module):
        def __init__(self, cell, input_size, hidden_size, bias=True, rpu_config=None):
            super().__init__()
            assert isinstance(rpu_config, _InferenceRPUConfig) and rpu_config.drift_compensation is None
            built.append(cell.__name__)
            self.layer = cell.twin(input_size, hidden_size)  # time-first, as aihwkit's

        def forward(self, x, states=None):
            assert x.shape[:2] == (3, 4), f"expected time-first (T=3, B=4, F), got {tuple(x.shape)}"
            out, state = self.layer(x)
            return out, [state]

    enums = types.SimpleNamespace(NONE="none")
    contents = {"aihwkit.nn": dict(cells, AnalogRNN=AnalogRNN), "aihwkit.optim": {"AnalogSGD": torch.optim.SGD},
                "aihwkit.simulator.configs": {"InferenceRPUConfig": _InferenceRPUConfig},
                "aihwkit.simulator.parameters.enums": {"BoundManagementType": enums, "NoiseManagementType": enums}}
    for name in _AIHWKIT_MODULES:
        module = types.ModuleType(name)
        module.__dict__.update(contents.get(name, {}))
        monkeypatch.setitem(sys.modules, name, module)
    return built


def test_rnn_aihwkit_path_with_a_fake_aihwkit(fake_aihwkit, tmp_path, capsys):
    rc, lines, data = _run(rnn.main, [*TINY_RNN, "--arch", "gru,rnn,lstm"], tmp_path, capsys)
    assert rc == 0
    assert fake_aihwkit == ["AnalogGRUCell", "AnalogVanillaRNNCell", "AnalogLSTMCell"]
    by_name = {r["name"]: r for r in data["records"]}
    for arch in ("gru", "rnn", "lstm"):
        peer, twin = by_name[f"aihwkit_{arch}"], by_name[f"torch_{arch}"]
        assert peer["arch"] == arch and f"AnalogRNN({rnn.ARCHS[arch][2]})" in peer["what"]
        _positive_finite(peer, RNN_TIMED)
        assert peer["time_ratio_to_torch"] == pytest.approx(peer["seconds_median"] / twin["seconds_median"])
    assert sum(" skipped " in line for line in lines) == 0


# --------------------------------------------------------------------------- bench mvm
def test_mvm_pcm_aihwkit_not_importable(no_aihwkit, tmp_path, capsys):
    rc, lines, data = _run(mvm.main, [*TINY_MVM, "--preset", "pcm"], tmp_path, capsys)
    assert rc == 0
    records = data["records"]
    assert [r["name"] for r in records] == ["blas", "fast", "fast_floor", "normals", "fast_uniform", "fast_column_mean",
                                            "fast_bitserial", "bitserial_floor", "per_cell", "torch", "aihwkit"]
    for r in records[:-1]:
        _positive_finite(r, MVM_TIMED)
        assert r["shape"] == [4, 16, 8]
    assert records[0]["time_ratio_to_blas"] == 1.0
    assert records[2]["products"] == 2  # pcm, one tile: x @ G and x^2 @ sigma^2
    assert 0 < records[5]["std_rel_error_rms"] <= records[5]["std_rel_error_max"]  # the approximation's error
    serial = records[6]
    # pcm: 8 one-bit slices, each a product and a variance product (per-cell read sigmas)
    assert serial["slices"] == 8 and serial["matmuls"] == 16 and serial["floor_ratio_to_blas"] == 16.0
    assert records[-1]["skipped"].startswith("aihwkit not importable (")
    rows = {line.split()[0]: line for line in lines[2:]}
    assert list(rows) == [r["name"] for r in records]
    assert rows["aihwkit"].split()[1] == "skipped" and rows["aihwkit"].endswith(records[-1]["skipped"])
    assert lines[0].startswith("mvm  preset=pcm  batch x rows x cols = 4 x 16 x 8")
    assert data["meta"]["preset"] == "pcm" and data["meta"]["repeat"] == 2


def test_mvm_digital_preset_no_aihwkit(tmp_path, capsys):
    rc, lines, data = _run(mvm.main, [*TINY_MVM, "--preset", "ideal", "--no-aihwkit"], tmp_path, capsys)
    assert rc == 0
    skipped = {r["name"]: r["skipped"] for r in data["records"] if "skipped" in r}
    assert skipped == {"fast_uniform": "no read-noise law in this preset", "aihwkit": "--no-aihwkit",
                       "torch": skipped["torch"], "fast_floor": "digital preset: no conductances to read",
                       "normals": "digital preset: no per-tile normals",
                       "bitserial_floor": "needs an analog preset with dac_bits a multiple of 8",
                       "fast_column_mean": "needs per-cell heterogeneous read noise (else the fast path is already "
                                           "uniform)",
                       "fast_bitserial": "needs an analog preset with dac_bits a multiple of 8"}
    assert skipped["torch"].startswith("digital preset")
    for r in data["records"]:
        if r["name"] not in skipped:
            _positive_finite(r, MVM_TIMED)
    assert bench_main.main(["mvm", *TINY_MVM, "--preset", "ideal", "--no-aihwkit"]) == 0


@pytest.mark.parametrize("argv, words", [
    (["--rows", "0"], ["--rows", ">= 1", "got 0"]),
    (["--cols", "-8"], ["--cols", ">= 1", "got -8"]),
    (["--batch", "0"], ["--batch", ">= 1"]),
    (["--repeat", "0"], ["--repeat", ">= 1"]),
    (["--threads", "0"], ["--threads", ">= 1"]),
    (["--preset", "nope"], ["preset: expected one of", "'nope'"]),
    (["--dac-bits", "0"], ["dac_bits must be", "got 0"]),
    (["--tile-rows", "0"], ["tile_rows must be", "got 0"]),
    (["--only", "fast,nope"], ["--only takes a comma list out of blas, fast", "unknown: nope"]),
    (["--only", " , "], ["--only takes a comma list"]),
])
def test_mvm_bad_arguments_exit_2(argv, words, capsys):
    err = _usage_error(mvm.main, [*TINY_MVM, *argv], capsys)
    assert "usage: xbarsim bench mvm" in err
    for word in words:
        assert word in err, (word, err)


def test_mvm_only_times_blas_and_the_chosen_variants(tmp_path, capsys):
    """--only: blas first, then the named variants in table order, nothing else."""
    rc, lines, data = _run(mvm.main, [*TINY_MVM, "--only", "normals,fast", "--no-aihwkit"], tmp_path, capsys)
    assert rc == 0
    assert [r["name"] for r in data["records"]] == ["blas", "fast", "normals"]
    for rec in data["records"]:
        _positive_finite(rec, MVM_TIMED)
    assert not any(line.startswith(("fast_floor", "per_cell", "torch")) for line in lines)


# --------------------------------------------------------------------------- IR drop
def test_mvm_with_wires_adds_the_ir_records(tmp_path, capsys):
    rc, lines, data = _run(mvm.main, [*TINY_MVM, "--no-aihwkit", "--wire-ohm", "2.5", "--ir-ref-batch", "2"],
                           tmp_path, capsys)
    assert rc == 0
    by_name = {r["name"]: r for r in data["records"]}
    assert {"fast", "precompute_ir", "fast_ir", "reference_ir"} <= set(by_name)
    _positive_finite(by_name["fast_ir"], (*MVM_TIMED, "time_ratio_to_fast", "cpu_ratio_to_fast"))
    _positive_finite(by_name["reference_ir"], (*MVM_TIMED, "seconds_per_vector"))
    _positive_finite(by_name["precompute_ir"], ("seconds", "cpu_seconds", "seconds_per_tile"))
    assert by_name["reference_ir"]["shape"][0] == 2 and by_name["fast_ir"]["wire_ohm"] == 2.5
    assert any(line.startswith("fast_ir") and "x fast" in line for line in lines)


def test_mvm_rejects_a_bad_wire_resistance(capsys):
    assert "--wire-ohm must be a finite number > 0" in _usage_error(mvm.main, [*TINY_MVM, "--wire-ohm", "0"], capsys)


def test_irdrop_noise_table(tmp_path, capsys):
    from benchmarks import irdrop

    rc = irdrop.main(["noise", "--sizes", "4,8", "--ohms", "1,30", "--out", str(tmp_path)])
    assert rc == 0
    rows = json.loads((tmp_path / "noise.json").read_text())["rows"]
    assert [(r["tile"], r["wire_ohm"]) for r in rows] == [(4, 1.0), (4, 30.0), (8, 1.0), (8, 30.0)]
    assert all(r["within_bound"] and 0 <= r["std_error_fast"] <= r["stated_bound"] for r in rows)
    assert (tmp_path / "noise.csv").read_text().startswith("tile,wire_ohm,max_drop,stated_bound")


def test_irdrop_precompute_table(tmp_path, capsys):
    from benchmarks import irdrop

    rc = irdrop.main(["precompute", "--sizes", "6,12", "--sweep-max", "6", "--repeats", "2", "--quiet",
                      "--out", str(tmp_path)])
    assert rc == 0
    rows = json.loads((tmp_path / "precompute.json").read_text())["rows"]
    assert [r["tile"] for r in rows] == [6, 12]
    assert rows[0]["sweep_cpu_s"] > 0 and rows[0]["max_rel_difference"] < 1e-10   # the two algorithms agree
    assert rows[1]["sweep_cpu_s"] is None and rows[1]["dissection_cpu_s"] > 0      # past --sweep-max
    assert (tmp_path / "precompute.csv").read_text().startswith("tile,wire_ohm,dissection_cpu_s,sweep_cpu_s")
    assert "wrote precompute.csv" in capsys.readouterr().out
