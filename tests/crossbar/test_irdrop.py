"""IR drop: the fast transfer matrix against the MNA reference, closed forms, the read path.

* ``transfer_matrix`` (row sweep, dense Norton frontier) against ``mna_read`` (sparse
  modified nodal analysis, an independent formulation) at 1e-6 relative, noise off, on
  tiles from 1x1 to 128x128 (square and not; the large ones are slow-marked), with
  realistic, extreme and zero resistances.
* A single row (and a single column) with uniform cells against the textbook ladder
  solution ``v_j = c cosh((N - 1/2 - j) theta)``, ``2 cosh(theta) = 2 + r G``.
* Zero resistance: the transfer matrix is G itself and the read equals the plain read.
* Noise: the reference's per-cell draws against its exact first-order variance (in
  distribution), and the fast path's attenuated variance against that variance within
  the stated bound (the tile's largest relative IR drop).
"""
from __future__ import annotations

import math
import warnings
import zlib

import numpy as np
import pytest

import crossbar
from crossbar import irdrop

REALISTIC = dict(row_ohm=2.5, col_ohm=2.5)                                   # 22 nm node estimate
WITH_ENDS = dict(row_ohm=0.35, col_ohm=0.35, driver_ohm=50.0, sense_ohm=20.0)  # aihwkit's wire + periphery
EXTREME = dict(row_ohm=1e3, col_ohm=1e3, driver_ohm=1e3, sense_ohm=1e3)       # wires ~ cells
TINY = dict(row_ohm=1e-6, col_ohm=1e-6)
MIXED = dict(row_ohm=0.0, col_ohm=7.5, driver_ohm=10.0, sense_ohm=0.0)        # zero resistances as 0 V sources
WIRE_SETS = {"realistic": REALISTIC, "with_ends": WITH_ENDS, "extreme": EXTREME, "tiny": TINY, "mixed": MIXED}


def _rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def _cells(rng, shape):
    return rng.uniform(0.0, 40.0, size=shape)  # includes near-zero cells (g_min = 0 devices)


def _applies(shape, wires):
    """Nested dissection needs both wire resistances > 0 and at least 2 x 2 cells."""
    w = WIRE_SETS[wires]
    return min(shape) >= 2 and w.get("row_ohm", 0.0) > 0.0 and w.get("col_ohm", 0.0) > 0.0


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2), (5, 9), (9, 5), (16, 16), (32, 24), (3, 40), (64, 80)])
@pytest.mark.parametrize("wires", list(WIRE_SETS))
@pytest.mark.parametrize("method", ["sweep", "dissection"])
def test_transfer_matrix_matches_mna(shape, wires, method):
    rng = np.random.default_rng(zlib.crc32(repr((shape, wires)).encode()))
    g = _cells(rng, shape)
    if method == "dissection" and not _applies(shape, wires):
        with pytest.raises(ValueError, match="method='dissection' needs"):
            irdrop.transfer_matrix(g, **WIRE_SETS[wires], method=method)
        return
    a = irdrop.transfer_matrix(g, **WIRE_SETS[wires], method=method)
    ref = irdrop.mna_read(np.eye(shape[0]), g, **WIRE_SETS[wires])   # unit input on each row
    assert _rel_err(a, ref) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(128, 128), (64, 128), (128, 48), (127, 130)])
@pytest.mark.parametrize("wires", ["realistic", "extreme", "with_ends"])
@pytest.mark.parametrize("method", ["sweep", "dissection"])
def test_transfer_matrix_matches_mna_large(shape, wires, method):
    rng = np.random.default_rng(7)
    g = _cells(rng, shape)
    a = irdrop.transfer_matrix(g, **WIRE_SETS[wires], method=method)
    ref = irdrop.mna_read(np.eye(shape[0]), g, **WIRE_SETS[wires])
    assert _rel_err(a, ref) < 1e-6


@pytest.mark.parametrize("shape", [(2, 3), (7, 4), (31, 33), (65, 96), (100, 70)])
@pytest.mark.parametrize("ends", [(0.0, 0.0), (25.0, 0.0), (0.0, 10.0), (50.0, 20.0)])
def test_dissection_equals_sweep(shape, ends):
    """The two exact algorithms agree to rounding, odd sizes and every end condition included."""
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    g = _cells(rng, shape)
    w = dict(row_ohm=3.0, col_ohm=1.5, driver_ohm=ends[0], sense_ohm=ends[1])
    nd = irdrop.transfer_matrix(g, **w, method="dissection")
    sw = irdrop.transfer_matrix(g, **w, method="sweep")
    assert _rel_err(nd, sw) < 1e-10
    assert np.array_equal(irdrop.transfer_matrix(g, **w), nd if min(shape) >= irdrop.DISSECTION_MIN else sw)


def test_transfer_matrix_method_is_checked():
    g = np.full((4, 4), 10.0)
    with pytest.raises(ValueError, match="method must be 'auto', 'sweep' or 'dissection', got 'lu'"):
        irdrop.transfer_matrix(g, row_ohm=1.0, method="lu")
    with pytest.raises(ValueError, match="conductances >= 0"):
        irdrop.transfer_matrix(g - 20.0, row_ohm=1.0, col_ohm=1.0, method="dissection")
    # a negative cell (possible after a noise draw) takes the sweep under "auto"
    neg = g.copy()
    neg[1, 2] = -1.0
    big = np.pad(neg, ((0, 70), (0, 70)), constant_values=10.0)
    w = dict(row_ohm=1.0, col_ohm=1.0)
    assert np.array_equal(irdrop.transfer_matrix(big, **w), irdrop.transfer_matrix(big, **w, method="sweep"))


def test_schur_kernel_matches_dense_elimination():
    """The numba elimination kernel against the float64 formula M_kk - M_ke M_ee^-1 M_ek."""
    from crossbar import _kernels
    rng = np.random.default_rng(11)
    for n, k in [(1, 1), (5, 2), (12, 12), (30, 7), (40, 39)]:
        a = rng.normal(size=(3, n, n))
        m = a @ np.swapaxes(a, 1, 2) + n * np.eye(n)               # symmetric positive definite
        want = m[:, :k, :k] - m[:, :k, k:] @ np.linalg.solve(m[:, k:, k:], m[:, k:, :k])
        work = m.copy()
        assert _kernels.schur_tail(work, k) == 0
        np.testing.assert_allclose(work[:, :k, :k], want, rtol=1e-12, atol=1e-12 * n)
    bad = np.eye(4)[None].repeat(2, axis=0)
    bad[1, 3, 3] = 0.0                                               # a zero pivot in the second matrix
    assert _kernels.schur_tail(bad, 2) == 2


def test_sweep_direction_does_not_matter():
    """Reciprocity: sweeping the turned-over tile (used when it is wider than tall) gives the same map."""
    rng = np.random.default_rng(3)
    g = _cells(rng, (6, 11))
    w = WITH_ENDS
    wide = irdrop.transfer_matrix(g, **w)                                  # sweeps the turned-over tile
    tall = irdrop._sweep(g * 1e-6, w["row_ohm"], w["col_ohm"], w["driver_ohm"], w["sense_ohm"]) / 1e-6
    assert _rel_err(wide, tall) < 1e-10


def _ladder(n, g_us, r, r_drv):
    """Node voltages of a driven line of n cells to ground: ``v_j = c cosh((n - 1/2 - j) theta)``.

    Interior KCL ``v_{j-1} + v_{j+1} = (2 + r G) v_j`` gives ``2 cosh(theta) = 2 + r G``; the open
    far end ``v_{n-2} = (1 + r G) v_{n-1}`` fixes the phase (n - 1/2); the driver end
    ``(V - v_0) / R_d = G v_0 + (v_0 - v_1) / r`` fixes ``c`` for V = 1.
    """
    g = g_us * 1e-6
    theta = math.acosh(1.0 + r * g / 2.0)
    j = np.arange(n)
    c = 1.0 / ((1.0 + r_drv * g) * math.cosh((n - 0.5) * theta)
               + (2.0 * r_drv / r) * math.sinh((n - 1) * theta) * math.sinh(theta / 2.0))
    return c * np.cosh((n - 0.5 - j) * theta)


@pytest.mark.parametrize("n, r, r_drv", [(64, 2.5, 0.0), (256, 1.0, 25.0), (40, 200.0, 0.0), (512, 0.35, 0.0)])
def test_single_row_reproduces_the_ladder_profile(n, r, r_drv):
    g_us = 30.0
    v = _ladder(n, g_us, r, r_drv)
    expected = g_us * v                          # current of each column per volt on the row
    a = irdrop.transfer_matrix(np.full((1, n), g_us), row_ohm=r, driver_ohm=r_drv)[0]
    assert _rel_err(a, expected) < 1e-9
    if n <= 256:
        ref = irdrop.mna_read(np.ones(1), np.full((1, n), g_us), row_ohm=r, driver_ohm=r_drv)[0]
        assert _rel_err(ref, expected) < 1e-9
    assert np.all(np.diff(a) < 0) and a[-1] < g_us  # the far end sees the largest drop


@pytest.mark.parametrize("n, r, r_sense", [(64, 2.5, 0.0), (128, 10.0, 40.0)])
def test_single_column_reproduces_the_ladder_profile(n, r, r_sense):
    """All rows of one column at 1 V: ``u = 1 - v_col`` obeys the same ladder from the sense end."""
    g_us = 30.0
    u = _ladder(n, g_us, r, r_sense)                 # index k = cells counted from the sense end
    total = g_us * u.sum()                           # current into the sense
    a = irdrop.transfer_matrix(np.full((n, 1), g_us), col_ohm=r, sense_ohm=r_sense)
    assert abs(a.sum() - total) / total < 1e-9


def test_zero_resistance_is_the_plain_read_exactly():
    rng = np.random.default_rng(0)
    g = _cells(rng, (12, 7))
    assert np.array_equal(irdrop.transfer_matrix(g), g)
    x = rng.uniform(-1, 1, (3, 12))
    assert _rel_err(irdrop.mna_read(x, g), x @ g) < 1e-12         # all zero: 0 V sources everywhere
    w = rng.normal(size=(7, 12))
    plain = crossbar.preset("pcm", tile_rows=8, tile_cols=4)
    zero = plain.replace(wire_row_ohm=0.0, wire_col_ohm=0.0, wire_noise_tolerance=0.5)
    assert zero != plain and not zero.wires.active
    y0 = crossbar.program(w, plain, seed=1).mvm(x, t_s=60.0, seed=2)
    y1 = crossbar.program(w, zero, seed=1).mvm(x, t_s=60.0, seed=2)
    assert np.array_equal(y0, y1)


@pytest.mark.parametrize("shape, tiles", [((9, 13), (None, None)), ((20, 30), (16, 8)), ((5, 40), (32, 3))])
@pytest.mark.parametrize("adc_bits", [None, 8])
def test_read_fast_path_matches_circuit_reference(shape, tiles, adc_bits):
    """rram has no read noise: the fast read and the per-read MNA solve must agree (1e-6)."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=shape)
    x = rng.uniform(-1, 1, (4, shape[1]))
    cfg = crossbar.preset("rram", adc_bits=adc_bits, tile_rows=tiles[0], tile_cols=tiles[1],
                          wire_row_ohm=5.0, wire_col_ohm=5.0, wire_driver_ohm=20.0)
    fast = crossbar.program(w, cfg, seed=4).mvm(x, t_s=1.0)
    ref = crossbar.program(w, cfg.replace(read_noise_path="per_cell"), seed=4).mvm(x, t_s=1.0)
    if adc_bits is None:
        assert _rel_err(fast, ref) < 1e-6
    else:  # the same ADC codes, except where a partial sum sits within rounding of a code edge
        assert np.mean(np.abs(fast - ref) > 1e-9) < 0.02
    plain = crossbar.program(w, cfg.replace(wire_row_ohm=0.0, wire_col_ohm=0.0, wire_driver_ohm=0.0),
                             seed=4).mvm(x, t_s=1.0)
    assert np.abs(fast - plain).max() > 1e-3  # the wires do change the read


def test_effective_weights_include_the_wires():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(6, 10))
    arr = crossbar.program(w, crossbar.preset("ideal", wire_row_ohm=3.0, wire_col_ohm=3.0), seed=0)
    assert not arr.is_digital
    x = rng.uniform(-1, 1, (5, 10))
    assert _rel_err(arr.mvm(x), x @ arr.effective_weights().T) < 1e-12
    assert np.abs(arr.effective_weights() - w).max() > 1e-4


def test_save_load_keeps_the_wired_read(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    w = rng.normal(size=(8, 12))
    cfg = crossbar.preset("pcm", tile_rows=8, **crossbar.WIRE_EXAMPLES["node_22nm"])
    arr = crossbar.program(w, cfg, seed=3)
    x = rng.uniform(-1, 1, (4, 12)).astype(np.float32)
    y = arr.mvm(x, t_s=3600.0, seed=9)
    arr.save(tmp_path / "a.h5")

    def no_recompute(*args, **kwargs):
        raise AssertionError("transfer matrix recomputed after load")

    monkeypatch.setattr(irdrop, "transfer_matrix", no_recompute)
    back = crossbar.load_programmed(tmp_path / "a.h5")
    assert back.config == cfg
    assert np.array_equal(back.mvm(x, t_s=3600.0, seed=9), y)


def test_wire_config_validates_and_round_trips():
    cfg = crossbar.preset("rram", wire_row_ohm=2.5, wire_col_ohm=1.0, wire_sense_ohm=30.0, wire_noise_policy="ignore")
    back = crossbar.ArrayConfig.from_json(cfg.to_json())
    assert back == cfg and back.wires.sense_ohm == 30.0 and back.wires.active
    assert "WireConfig(row_ohm=2.5" in repr(cfg.wires)
    with pytest.raises(ValueError, match="wire_row_ohm must be a finite number"):
        crossbar.preset("rram", wire_row_ohm=-1.0)
    with pytest.raises(ValueError, match="wire_noise_policy must be one of"):
        crossbar.preset("rram", wire_noise_policy="fallback")
    with pytest.raises(ValueError, match="unknown key"):
        crossbar.WireConfig.from_dict({"row_ohms": 1.0})
    assert not crossbar.ArrayConfig().wires.active
    assert not crossbar.preset("ideal", wire_row_ohm=1.0).is_digital


# ------------------------------------------------------------------------------- noise
def _pair(rng, shape, g_max=39.0):
    w = rng.normal(size=shape)
    w /= np.abs(w).max()
    return 1.0 + (g_max - 1.0) * np.clip(w, 0, None), 1.0 + (g_max - 1.0) * np.clip(-w, 0, None)


def test_reference_noise_matches_its_first_order_variance():
    """Per-cell draws through the MNA solve: sample variance within 5 sigma of the linear theory.

    N reads of one input; var estimate bound ``5 var sqrt(2 / (N - 1))`` (normal sample
    variance), plus 2 % for the second-order terms of 1 % cell noise.
    """
    rng = np.random.default_rng(11)
    gp, gm = _pair(rng, (6, 5))
    sp, sm = 0.01 * gp, 0.01 * gm
    x = rng.uniform(-1, 1, 6)
    wires = dict(row_ohm=2000.0, col_ohm=2000.0, sense_ohm=1000.0)
    n = 800
    reads = irdrop.mna_read(np.tile(x, (n, 1)), gp, gm, **wires, sigma_pos_us=sp, sigma_neg_us=sm, rng=rng)
    theory = irdrop.linear_noise_std(x, gp, gm, sp, sm, **wires)[0] ** 2
    bound = 5 * theory * math.sqrt(2 / (n - 1)) + 0.02 * theory
    assert np.all(np.abs(reads.var(axis=0, ddof=1) - theory) < bound)
    clean = irdrop.mna_read(x, gp, gm, **wires)[0]
    assert np.all(np.abs(reads.mean(axis=0) - clean) < 5 * np.sqrt(theory / n) + 1e-3 * np.abs(clean))
    # the test would see wires ignored: the plain-read variance differs by more than the bound
    plain = ((x * x) @ (sp ** 2 + sm ** 2))
    assert np.any(np.abs(plain - theory) > bound)


@pytest.mark.parametrize("shape", [(1, 2), (2, 1), (3, 3), (8, 8), (16, 4), (24, 16)])
@pytest.mark.parametrize("ohm", [0.3, 3.0, 30.0, 300.0])
def test_fast_noise_within_stated_bound(shape, ohm):
    """Fast path: sigma_ij A_ij / G_ij. Its output std is within the stated bound
    (``noise_error_bound(d)``, d the largest relative cell IR drop, the check the read
    makes) of the exact first-order std."""
    rng = np.random.default_rng(int(ohm * 10) + shape[0])
    gp, gm = _pair(rng, shape)
    sp, sm = 0.03 * gp, 0.03 * gm
    wires = dict(row_ohm=ohm, col_ohm=ohm, sense_ohm=ohm, driver_ohm=ohm / 2)
    ap, am = irdrop.transfer_matrix(gp, **wires), irdrop.transfer_matrix(gm, **wires)
    att_p = np.clip(irdrop.attenuation(ap, gp), 0, 1)
    att_m = np.clip(irdrop.attenuation(am, gm), 0, 1)
    x = rng.uniform(-1, 1, (5, shape[0]))
    exact = irdrop.linear_noise_std(x, gp, gm, sp, sm, **wires)
    fast = np.sqrt((x * x) @ ((att_p * sp) ** 2 + (att_m * sm) ** 2))
    drop = max(irdrop.max_relative_drop(ap, gp, 39.0), irdrop.max_relative_drop(am, gm, 39.0))
    err = np.abs(fast / exact - 1).max()
    assert 0 < drop < 1 and err <= irdrop.noise_error_bound(drop)


def test_fast_read_noise_variance_matches_attenuated_sigma():
    """The array's fast read draws exactly N(0, x^2 @ (att sigma)^2) per output (5-sigma bound)."""
    rng = np.random.default_rng(4)
    w = rng.normal(size=(6, 16))
    cfg = crossbar.preset("sonos", dac_bits=None, adc_bits=None, wire_row_ohm=20.0, wire_col_ohm=20.0,
                          wire_noise_policy="ignore")
    arr = crossbar.program(w, cfg, seed=0)
    x = np.tile(rng.uniform(-1, 1, 16), (4000, 1))
    y = arr.mvm(x, seed=1)
    gp, gm = arr.conductances()
    dev = cfg.device
    sp = dev.read_sigma(gp, g_max_us=dev.g_max_us) * np.clip(irdrop.attenuation(arr._wired(0.0)[0], gp), 0, 1)
    sm = dev.read_sigma(gm, g_max_us=dev.g_max_us) * np.clip(irdrop.attenuation(arr._wired(0.0)[1], gm), 0, 1)
    dg = dev.g_max_us - dev.g_min_us
    var = (x[0] ** 2) @ ((sp ** 2 + sm ** 2) / dg ** 2) * arr._scales[0] ** 2
    n = len(x)
    assert np.all(np.abs(y.var(axis=0, ddof=1) - var) < 5 * var * math.sqrt(2 / (n - 1)))
    assert np.allclose(y.mean(axis=0), x[0] @ arr.effective_weights().T, atol=5 * np.sqrt(var.max() / n))


def test_noise_policy_warns_or_reads_the_circuit():
    rng = np.random.default_rng(6)
    w = rng.normal(size=(6, 8))
    x = rng.uniform(-1, 1, (3, 8))
    big = dict(wire_row_ohm=2000.0, wire_col_ohm=2000.0)
    arr = crossbar.program(w, crossbar.preset("pcm", **big), seed=0)
    with pytest.warns(RuntimeWarning, match="IR drop: the largest relative drop"):
        arr.mvm(x, t_s=10.0)
    quiet = crossbar.program(w, crossbar.preset("pcm", wire_noise_policy="ignore", **big), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.mvm(x, t_s=10.0)
    ref = crossbar.program(w, crossbar.preset("pcm", wire_noise_policy="reference", **big), seed=0)
    called = []
    orig = irdrop.mna_read

    def spy(*a, **k):
        called.append(1)
        return orig(*a, **k)

    irdrop.mna_read = spy
    try:
        y = ref.mvm(x, t_s=10.0, seed=1)
    finally:
        irdrop.mna_read = orig
    assert called and y.shape == (3, 6) and np.isfinite(y).all()


@pytest.mark.parametrize("extra", [dict(dac_slice_bits=2), dict(weight_slices=2, weight_slice_bits=3)])
def test_wires_with_bit_and_weight_slicing(extra):
    """Bit-serial inputs and weight slices read through the wires too: fast == circuit (no noise)."""
    rng = np.random.default_rng(8)
    w = rng.normal(size=(7, 10))
    x = rng.uniform(-1, 1, (3, 10))
    cfg = crossbar.preset("rram", adc_bits=None, dac_bits=6, tile_rows=6, tile_cols=4, wire_row_ohm=8.0,
                          wire_col_ohm=8.0, **extra)
    fast = crossbar.program(w, cfg, seed=2).mvm(x, t_s=1.0)
    ref = crossbar.program(w, cfg.replace(read_noise_path="per_cell"), seed=2).mvm(x, t_s=1.0)
    plain = crossbar.program(w, cfg.replace(wire_row_ohm=0.0, wire_col_ohm=0.0), seed=2).mvm(x, t_s=1.0)
    assert _rel_err(fast, ref) < 1e-6 and np.abs(fast - plain).max() > 1e-4


def test_calibrated_adc_ranges_see_the_wires():
    rng = np.random.default_rng(9)
    w = rng.normal(size=(8, 12))
    x = rng.uniform(-1, 1, (20, 12))
    cfg = crossbar.preset("rram", tile_rows=6, wire_row_ohm=40.0, wire_col_ohm=40.0)
    arr = crossbar.program(w, cfg, seed=1)
    plain = crossbar.program(w, cfg.replace(wire_row_ohm=0.0, wire_col_ohm=0.0), seed=1)
    r_wired, r_plain = arr.calibrate_adc(x, t_s=1.0), plain.calibrate_adc(x, t_s=1.0)
    assert np.all(r_wired <= r_plain + 1e-12) and np.any(r_wired < r_plain * 0.999)
    ref = crossbar.program(w, cfg.replace(read_noise_path="per_cell"), seed=1)
    ref.calibrate_adc(x, t_s=1.0)
    assert np.mean(np.abs(arr.mvm(x, t_s=1.0) - ref.mvm(x, t_s=1.0)) > 1e-9) < 0.02


def test_frozen_read_noise_through_the_wires():
    """read_noise_draw="per_time": the circuit reference solves the frozen draw exactly (the
    same read every call); the fast path carries the frozen offsets through the attenuation
    (first order), within the stated noise bound times the offsets' share of the read."""
    rng = np.random.default_rng(12)
    w = rng.normal(size=(6, 9))
    x = rng.uniform(-1, 1, (4, 9))
    cfg = crossbar.preset("pcm", adc_bits=None, dac_bits=None, tile_rows=None, tile_cols=None,
                          read_noise_draw="per_time", wire_row_ohm=5.0, wire_col_ohm=5.0, wire_noise_policy="ignore")
    ref = crossbar.program(w, cfg.replace(read_noise_path="per_cell"), seed=3)
    y1, y2 = ref.mvm(x, t_s=60.0, seed=1), ref.mvm(x, t_s=60.0, seed=2)
    assert np.array_equal(y1, y2)
    fast = crossbar.program(w, cfg, seed=3).mvm(x, t_s=60.0)
    assert _rel_err(fast, y1) < 1e-3
