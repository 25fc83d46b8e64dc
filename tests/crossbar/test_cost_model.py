"""crossbar.energy: exact counters on hand-computable cases, each cost law against its
formula, the cost model's validation and sources, and every chip preset within 2x of its
published figure."""
from __future__ import annotations

import dataclasses
import math
import types

import numpy as np
import pytest

import crossbar
from crossbar.energy import (CHIPS, CATEGORIES, CostModel, DigitalOps, MVMCounter, anchor_prediction, anchor_table,
                             cell_read_energy_j, chip, dac_energy_j, estimate, estimate_digital_ops, input_slices,
                             murmann_fom_db, node_scaled_j, schreier_energy_j, walden_energy_j)


# ----------------------------------------------------------------------------- counters
def test_one_tile_counts_by_hand():
    # 32 outputs x 64 inputs on one 256x256 tile, 8-bit DAC and ADC, 3 calls of 5 vectors
    c = MVMCounter(64, 32, tile_rows=256, tile_cols=256, dac_bits=8, adc_bits=8)
    for _ in range(3):
        c.add(5)
    t = c.totals()
    assert (t["vectors"], t["calls"]) == (15, 3)
    assert t["tile_reads"] == 15
    assert t["input_slices"] == 1
    assert t["rows_driven"] == t["dac_conversions"] == 64 * 15
    assert t["cells_read"] == 2 * 64 * 32 * 15          # both cells of every pair
    assert t["adc_conversions"] == 32 * 15
    assert t["shift_adds"] == 0 and t["tile_accumulations"] == 0
    assert t["scale_mults"] == 2 * 32 * 15               # column scale + input range
    assert t["buffer_bits_in"] == 64 * 8 * 15
    assert t["buffer_bits_out"] == 32 * 8 * 15
    assert t["macs"] == 64 * 32 * 15
    assert c.n_tiles == 1


def test_several_tiles_counts_by_hand():
    # 300 outputs x 600 inputs on 256x128 tiles: row tiles 256, 256, 88; column tiles 128, 128, 44
    c = MVMCounter(600, 300, tile_rows=256, tile_cols=128, dac_bits=6, adc_bits=7)
    c.add(2)
    assert c.row_tiles == [256, 256, 88] and c.col_tiles == [128, 128, 44]
    t = c.totals()
    assert t["tile_reads"] == 9 * 2
    assert t["rows_driven"] == 600 * 3 * 2               # every column tile drives its rows
    assert t["adc_conversions"] == 300 * 3 * 2           # every row tile converts every column
    assert t["tile_accumulations"] == 300 * 2 * 2        # 3 partial sums -> 2 adds per output
    assert t["scale_mults"] == 300 * 4 * 2
    assert t["buffer_bits_in"] == 600 * 3 * 6 * 2
    assert t["buffer_bits_out"] == 300 * 3 * 7 * 2
    tiles = c.per_tile()
    assert len(tiles) == 9
    assert sum(r["cells_read"] for r in tiles) == t["cells_read"] == 2 * 600 * 300 * 2
    assert sum(r["adc_conversions"] for r in tiles) == t["adc_conversions"]
    assert sum(r["rows_driven"] for r in tiles) == t["rows_driven"]
    corner = [r for r in tiles if r["row_tile"] == 2 and r["col_tile"] == 2][0]
    assert (corner["rows"], corner["cols"], corner["cells_read"]) == (88, 44, 2 * 88 * 44 * 2)


def test_bit_slicing_counts_by_hand():
    # 8-bit inputs in 3-bit slices: ceil(8/3) = 3 reads; 2 weight slices, each its own array and ADC
    assert input_slices(8, 3) == 3 and input_slices(8, 1) == 8 and input_slices(8, None) == 1
    c = MVMCounter(100, 40, tile_rows=64, tile_cols=64, dac_bits=8, adc_bits=6, slice_bits=3, weight_slices=2)
    c.add(1)
    t = c.totals()
    r, w, s = 2, 2, 3                                    # row tiles (64 + 36), weight slices, input slices
    assert t["input_slices"] == 3 and c.bits_per_slice == 3
    assert t["tile_reads"] == r * 1 * w * s
    assert t["rows_driven"] == 100 * w * s
    assert t["cells_read"] == 2 * w * 100 * 40 * s
    assert t["adc_conversions"] == 40 * r * w * s
    assert t["shift_adds"] == 40 * r * (w * s - 1)       # 6 slices of each tile -> 5 shift-adds per output
    assert t["tile_accumulations"] == 40 * (r - 1)
    assert t["buffer_bits_in"] == 100 * w * 8
    assert c.n_tiles == r * w


def test_from_config_reads_slicing_fields_when_present():
    # the slicing fields may not exist yet on ArrayConfig: build the values the counter takes
    cfg = types.SimpleNamespace(tile=types.SimpleNamespace(rows=32, cols=None),
                                dac=types.SimpleNamespace(bits=8, slice_bits=2),
                                adc=types.SimpleNamespace(bits=9),
                                mapping=types.SimpleNamespace(weight_slices=3))
    c = MVMCounter.from_config((10, 40), cfg)
    assert (c.in_features, c.out_features, c.slice_bits, c.weight_slices, c.input_slices) == (40, 10, 2, 3, 4)
    plain = MVMCounter.from_config((10, 40), crossbar.preset("pcm", tile_rows=32))
    assert (plain.input_slices, plain.weight_slices) == (1, 1)   # unsliced by default


def test_counter_validates_geometry():
    with pytest.raises(ValueError, match="tile_rows must be an int >= 1 or None, got 0"):
        MVMCounter(4, 4, tile_rows=0)
    with pytest.raises(ValueError, match="weight_slices must be an int >= 1, got 0"):
        MVMCounter(4, 4, weight_slices=0)


def test_programmed_array_counts_its_reads_and_is_unchanged_by_counting():
    cfg = crossbar.preset("pcm", tile_rows=16, tile_cols=8)
    w = np.random.default_rng(0).normal(size=(20, 40))
    x = np.random.default_rng(1).normal(size=(7, 40)).astype(np.float32)
    plain = crossbar.program(w, cfg, seed=3)
    counted = crossbar.program(w, cfg, seed=3)
    counted.counters = MVMCounter.for_array(counted)
    y0 = plain.mvm(x, t_s=10.0, seed=5)
    y1 = counted.mvm(x, t_s=10.0, seed=5)
    np.testing.assert_array_equal(y0, y1)
    counted.mvm(x[0], seed=6)                            # one vector
    t = counted.counters.totals()
    assert (t["vectors"], t["calls"]) == (8, 2)
    assert t["tile_reads"] == 3 * 3 * 8                  # 40 inputs / 16 -> 3 row tiles; 20 outputs / 8 -> 3
    assert t["adc_conversions"] == 20 * 3 * 8
    assert t["cells_read"] == 2 * 20 * 40 * 8
    assert plain.counters is None
    digital = crossbar.program(w, crossbar.preset("ideal"), seed=0)
    digital.counters = MVMCounter.for_array(digital)
    digital.mvm(x)
    assert digital.counters.vectors == 7


# ----------------------------------------------------------------------------- cost laws
def test_cost_laws_against_their_formulas():
    assert walden_energy_j(8, 5e-15) == pytest.approx(5e-15 * 256)                       # 1.28 pJ
    sndr = 6.02 * 8 + 1.76
    assert schreier_energy_j(8, 170.0) == pytest.approx(0.5 * 10 ** ((sndr - 170.0) / 10))
    assert murmann_fom_db(1e9) == pytest.approx(302.74 - 6.461 * math.log(1e9))
    assert murmann_fom_db(1e3) == 180.1                                                    # the plateau
    assert schreier_energy_j(8, murmann_fom_db(1e9)) == pytest.approx(0.64e-12, rel=0.02)  # ENERGY.md: ~0.64 pJ
    assert cell_read_energy_j(0.2, 25.0, 100e-9) == pytest.approx(100e-15)                 # PCM at g_max, 100 ns
    assert cell_read_energy_j(0.5, 4.0, 2e-9) == pytest.approx(2e-15)                      # NeuRRAM cell (CiMLoop)
    assert dac_energy_j(1, 4e-15) == pytest.approx(4e-15)
    assert dac_energy_j(8, 4e-15, 100e-15, 1.0) == pytest.approx(4e-15 * 128 + 100e-15)
    assert node_scaled_j(0.1e-12, 14.0) == pytest.approx(0.1e-12 * 14 / 45)
    assert node_scaled_j(0.1e-12, 45.0, 2.0) == pytest.approx(0.1e-12)


def test_estimate_matches_hand_sum():
    costs = CostModel(name="t", node_nm=45.0, v_read_v=0.1, g_mean_us=10.0, t_cell_on_s=1e-9, input_activity=0.0,
                      t_input_lsb_s=0.0, t_read_s=5e-9, dac_e_1bit_j=1e-15, row_c_per_cell_f=0.0,
                      adc_fom_walden_j=2e-15, adc_t_lsb_s=None, adc_fs_hz=1e8, add_j_45nm=1e-13, mult_j_45nm=2e-13,
                      sram_j_per_bit_45nm=1e-14, overhead_power_w_per_tile=0.01)
    c = MVMCounter(300, 50, tile_rows=256, tile_cols=256, dac_bits=4, adc_bits=5)
    c.add(3)
    t = c.totals()
    e = estimate(c, costs)
    assert e.energy["cells"] == pytest.approx(t["cells_read"] * 0.01 * 10e-6 * 1e-9)
    assert e.energy["dac"] == pytest.approx(t["dac_conversions"] * 1e-15 * 8)
    assert e.energy["adc"] == pytest.approx(t["adc_conversions"] * 2e-15 * 32)
    assert e.energy["accumulate"] == pytest.approx(t["tile_accumulations"] * 1e-13)
    assert e.energy["scale"] == pytest.approx(t["scale_mults"] * 2e-13)
    assert e.energy["buffers"] == pytest.approx((t["buffer_bits_in"] + t["buffer_bits_out"]) * 1e-14)
    t_read = 5e-9 + 1e-8                                 # settle + one conversion at 100 MS/s
    assert e.energy["overhead"] == pytest.approx(0.01 * t["tile_reads"] * t_read)
    assert e.latency_s == pytest.approx(t_read)
    assert e.ops == 2 * 300 * 50 * 3
    assert e.energy_j == pytest.approx(sum(e.energy.values()))
    assert e.component_j == pytest.approx(e.energy_j - e.energy["overhead"])
    d = estimate_digital_ops(DigitalOps(adds=10, mults=4, nonlinear=3), costs)
    assert d.energy["rnn_digital"] == pytest.approx(10 * 1e-13 + 4 * 2e-13 + 3 * costs.nonlinear_j_45nm)


def test_ideal_converters_are_costed_at_default_bits_with_a_note():
    c = MVMCounter(16, 16)
    c.add(1)
    e = estimate(c, CostModel(), default_bits=6)
    assert any("ADC bits unset" in n for n in e.notes)
    assert e.energy["adc"] == pytest.approx(16 * CostModel().adc_energy_j(6))


def test_cost_model_validation_sources_and_round_trip():
    with pytest.raises(ValueError, match="adc_law must be one of"):
        CostModel(adc_law="magic")
    with pytest.raises(ValueError, match="v_read_v must be a finite number >= 0, got -1"):
        CostModel(v_read_v=-1)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['nope'\]; valid fields are"):
        CostModel().replace(nope=1)
    base = CostModel()
    assert "Horowitz" in base.sources["add_j_45nm"]
    mine = base.replace(adc_fom_walden_j=1e-15, source="my measurement")
    assert mine.sources["adc_fom_walden_j"] == "my measurement"
    assert mine.adc_energy_j(8) < base.adc_energy_j(8)
    back = CostModel.from_dict(mine.to_dict())
    assert back == mine
    with pytest.raises(ValueError, match="unknown key"):
        CostModel.from_dict({"bogus": 1})


# ----------------------------------------------------------------------------- chip presets
@pytest.mark.parametrize("row", anchor_table(), ids=lambda r: r["name"])
def test_every_chip_anchor_within_2x_of_its_published_figure(row):
    assert 0.5 <= row["ratio"] <= 2.0, row
    if row["fitted"]:
        assert row["ratio"] == pytest.approx(1.0, rel=1e-9)     # fitted there: equal by construction
    assert row["component_tops_per_w"] >= row["predicted_tops_per_w"]   # the overhead only adds energy
    if row["band_tops_per_w"]:
        lo, hi = row["band_tops_per_w"]
        assert lo <= row["predicted_tops_per_w"] <= hi


def test_chips_with_two_published_points_check_one_they_were_not_fitted_to():
    for name in ("hermes", "neurram"):
        anchors = CHIPS[name].anchors
        assert sum(a.fit for a in anchors) == 1 and len(anchors) >= 2
    # NeuRRAM: fitted on 1b/3b, the 8b/10b point is a prediction of the slicing + converter model
    r = anchor_prediction(CHIPS["neurram"], [a for a in CHIPS["neurram"].anchors if a.label == "8b-in/10b-out"][0])
    assert not r["fitted"] and 0.5 <= r["ratio"] <= 2.0


def test_fitted_overhead_is_labelled_and_apart_from_the_physics():
    for c in CHIPS.values():
        assert c.costs.sources["overhead_power_w_per_tile"].startswith("fitted")
        assert c.costs.overhead_power_w_per_tile >= 0
    hermes = CHIPS["hermes"]
    r = anchor_prediction(hermes, hermes.anchors[0])
    assert r["latency_per_mvm_s"] == pytest.approx(133e-9, rel=0.01)   # 63.1 TOPS / 64 cores
    assert set(r["breakdown_j"]) == set(CATEGORIES)
    with pytest.raises(ValueError, match="unknown chip 'x'; expected one of"):
        chip("x")


def test_chip_array_config_is_a_crossbar_config():
    cfg = CHIPS["hermes"].array_config()
    assert (cfg.tile.rows, cfg.tile.cols, cfg.dac.bits, cfg.adc.bits) == (256, 256, 8, 8)
    assert cfg.device.g_max_us == crossbar.preset("pcm").device.g_max_us


def test_hermes_area_within_2x_of_its_core_without_fitting():
    # area is never fitted: cells, an ADC per column (4 um pitch, assumed length), drivers, digital
    r = anchor_prediction(CHIPS["hermes"], CHIPS["hermes"].anchors[0])
    assert 0.5 <= r["predicted_tops_per_mm2"] / r["published_tops_per_mm2"] <= 2.0


def test_adc_count_agrees_with_the_arrays_own_conversion_count():
    # crossbar.array counts ADC conversions itself (saturation statistics) once ranges' work is in:
    # two independent counts of the same reads, over plain, bit-serial and weight-sliced configs
    probe = crossbar.program(np.ones((2, 2)), crossbar.preset("pcm"), seed=0)
    if not hasattr(probe, "clip_counts"):
        pytest.skip("crossbar.array has no conversion counts of its own yet")
    dac_fields = {f.name for f in dataclasses.fields(crossbar.DACConfig)}
    map_fields = {f.name for f in dataclasses.fields(crossbar.MappingConfig)}
    cases = [{}]
    if "slice_bits" in dac_fields:
        cases.append({"dac_slice_bits": 3})
    if "weight_slices" in map_fields:
        cases.append({"weight_slices": 2})
    x = np.random.default_rng(1).uniform(-1, 1, size=(7, 40)).astype(np.float32)
    for kw in cases:
        arr = crossbar.program(np.random.default_rng(0).normal(size=(20, 40)),
                               crossbar.preset("pcm", tile_rows=16, tile_cols=8, **kw), seed=1)
        arr.counters = MVMCounter.for_array(arr)
        arr.mvm(x)
        arr.mvm(x[0])
        assert arr.counters.totals()["adc_conversions"] == arr.clip_counts()["adc_conversions"], kw
