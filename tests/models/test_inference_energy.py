"""models.energy: an LSTM of two time steps counted exactly on every read path, the cell's
digital work, per-inference totals against a hand sum, and the report files."""
from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

import crossbar
import models
from crossbar.energy import CHIPS, CostModel, DigitalOps, estimate, estimate_digital_ops
from models import rnn as rnn_module
from models.energy import cell_ops, measure, measure_sequences


class _Tiny(nn.Module):
    def __init__(self, arch: str = "lstm"):
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[arch](3, 4, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _deployed(config, arch="lstm"):
    torch.manual_seed(0)
    model = models.convert(_Tiny(arch), config, seed=1)
    models.program(model, seed=2)
    return model


def test_cell_ops_by_hand():
    assert cell_ops("lstm", 4) == DigitalOps(adds=5 * 4 + 4 * 4, mults=12, nonlinear=20, steps=1)
    assert cell_ops("lstm", 4, bias=False).adds == 20
    assert cell_ops("RNN_TANH", 4) == DigitalOps(adds=8, mults=0, nonlinear=4, steps=1)
    assert cell_ops("gru", 4) == DigitalOps(adds=36, mults=8, nonlinear=12, steps=1)
    with pytest.raises(ValueError, match="mode must be one of"):
        cell_ops("tcn", 4)


@pytest.mark.parametrize("preset,fast", [("pcm", True), ("ideal", True), ("ideal", False)])
def test_lstm_of_two_steps_counts_every_read(preset, fast, monkeypatch):
    # analog reads (ProgrammedArray.mvm), the digital read in torch, and the one-node LSTM recurrence
    monkeypatch.setattr(rnn_module, "FAST_RECURRENCE", fast)
    cfg = crossbar.preset(preset, tile_rows=2, tile_cols=8) if preset == "pcm" else crossbar.preset(preset)
    model = _deployed(cfg)
    x = torch.randn(5, 2, 3)                         # 5 sequences of 2 steps
    rep = measure_sequences(model, x, CHIPS["hermes"])
    c = rep.counters
    assert c["rnn.weight_ih_l0"].vectors == 5 * 2
    assert c["rnn.weight_hh_l0"].vectors == 5 * 2
    assert c["head.weight"].vectors == 5
    assert rep.inferences == 5
    if preset == "pcm":
        # W_ih: 16 x 3 on 2x8 tiles -> 2 row tiles x 2 column tiles; W_hh: 16 x 4 -> 2 x 2
        t = c["rnn.weight_ih_l0"].totals()
        assert t["tile_reads"] == 4 * 10 and t["tile_accumulations"] == 16 * 1 * 10
        assert c["rnn.weight_hh_l0"].totals()["adc_conversions"] == 16 * 2 * 10
    for _, layer in models.analog_layers(model):     # counters are detached afterwards
        assert all(a.counters is None for a in layer.programmed_arrays().values())


def test_per_inference_energy_is_the_hand_sum():
    costs = CHIPS["hermes"].costs
    model = _deployed(crossbar.preset("pcm", tile_rows=256, tile_cols=256, adc_bits=8, dac_bits=8))
    rep = measure_sequences(model, torch.randn(6, 2, 3), costs)
    c = rep.counters
    rnn_row, head_row = rep.layers
    hand = (estimate(c["rnn.weight_ih_l0"], costs).energy_j + estimate(c["rnn.weight_hh_l0"], costs).energy_j
            + estimate_digital_ops(cell_ops("lstm", 4).scaled(12), costs).energy_j) / 6
    assert rnn_row["estimate"].energy_j == pytest.approx(hand)
    assert rnn_row["estimate"].energy["rnn_digital"] == pytest.approx(
        (36 * costs.digital_j(costs.add_j_45nm) + 12 * costs.digital_j(costs.mult_j_45nm)
         + 20 * costs.digital_j(costs.nonlinear_j_45nm)) * 2)       # 2 steps per inference
    head_hand = (estimate(c["head.weight"], costs).energy_j
                 + estimate_digital_ops(DigitalOps(adds=2 * 6), costs).energy_j) / 6
    assert head_row["estimate"].energy_j == pytest.approx(head_hand)
    assert rep.total.energy_j == pytest.approx(hand + head_hand)
    assert rep.total.ops == pytest.approx(2 * (16 * 3 + 16 * 4) * 2 + 2 * 2 * 4)
    t_ih = estimate(c["rnn.weight_ih_l0"], costs).latency_s
    t_hh = estimate(c["rnn.weight_hh_l0"], costs).latency_s
    t_dig = estimate_digital_ops(cell_ops("lstm", 4), costs).latency_s
    assert rep.total.latency_s == pytest.approx(2 * (max(t_ih, t_hh) + t_dig) + estimate(c["head.weight"], costs).latency_s)


def test_measure_needs_a_programmed_model_and_a_count():
    torch.manual_seed(0)
    model = models.convert(_Tiny(), crossbar.preset("pcm"), seed=1)
    with pytest.raises(ValueError, match="is not programmed; call models.program"):
        measure_sequences(model, torch.randn(2, 2, 3), CHIPS["hermes"])
    models.program(model, seed=0)
    with pytest.raises(ValueError, match="must return the number of inferences"):
        measure(model, lambda m: 0, CHIPS["hermes"])
    with pytest.raises(TypeError, match="chip must be"):
        measure(model, lambda m: 1, "hermes")


def test_report_files(tmp_path):
    model = _deployed(crossbar.preset("rram", tile_rows=4, tile_cols=8), arch="gru")
    rep = measure_sequences(model, torch.randn(3, 2, 3), CostModel(name="mine"))
    rep.write_csv(tmp_path / "energy.csv")
    rep.plot(tmp_path / "energy.png")
    rows = list(csv.DictReader(open(tmp_path / "energy.csv", newline="")))
    assert [r["layer"] for r in rows] == ["rnn", "head", "total"]
    assert float(rows[-1]["energy_j"]) == pytest.approx(rep.total.energy_j)
    assert (tmp_path / "energy.png").stat().st_size > 1000
    assert rep.to_dict()["counts"]["rnn.weight_hh_l0"]["vectors"] == 6


@pytest.mark.parametrize("arch", ["gru", "rnn"])
@pytest.mark.parametrize("preset", ["ideal", "pcm"])
def test_gru_and_rnn_of_two_steps_count_every_read(arch, preset):
    # the fused recurrences read W_hh inlined on a digital config and through the reader otherwise
    model = _deployed(crossbar.preset(preset), arch=arch)
    rep = measure_sequences(model, torch.randn(4, 2, 3), CHIPS["hermes"])
    assert rep.counters["rnn.weight_ih_l0"].vectors == 4 * 2
    assert rep.counters["rnn.weight_hh_l0"].vectors == 4 * 2
    assert rep.counters["head.weight"].vectors == 4
    step = cell_ops(arch, 4)
    costs = CHIPS["hermes"].costs
    assert rep.layers[0]["estimate"].energy["rnn_digital"] == pytest.approx(
        estimate_digital_ops(step.scaled(8), costs).energy_j / 4)
