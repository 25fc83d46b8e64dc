"""crossbar.StepNoise and crossbar.fill_standard_normal_steps (crossbar/_fused_noise.py)
against a numpy twin built on crossbar.fill_standard_normal."""
from __future__ import annotations

import math

import numpy as np
import pytest

import crossbar
from crossbar._normals import derive_key


def _normals(key, step, shape):
    z = np.empty(shape, np.float32)
    crossbar.fill_standard_normal(z, int(derive_key(key, step)))
    return z


def test_fill_steps_is_one_derived_key_per_step():
    out = np.empty((3, 4, 5), np.float32)
    crossbar.fill_standard_normal_steps(out, 11)
    for s in range(3):
        assert np.array_equal(out[s], _normals(11, s, (4, 5)))
    out64 = np.empty((3, 4, 5))
    crossbar.fill_standard_normal_steps(out64, 11)
    assert np.array_equal(out64, out.astype(np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_noise_equals_numpy_twin(dtype):
    rng = np.random.default_rng(0)
    ys = rng.normal(size=(3, 4, 8)).astype(dtype)
    add = rng.normal(size=(3, 4, 8)).astype(dtype)
    bias = rng.normal(size=8).astype(dtype)
    want = ys.copy()
    k_ms, extra = 0.04, 0.5
    noise = crossbar.StepNoise(ys, 5, k_ms, 0.0, add=add, bias=bias, double_cols=(2, 4))
    var = noise(1, 7, extra)
    y = want[1].astype(np.float64)
    want_var = k_ms * float(np.mean(y * y)) + extra
    assert math.isclose(var, want_var, rel_tol=1e-12)
    s = dtype(math.sqrt(var))
    z = _normals(5, 7, (4, 8)).astype(dtype)
    w = ((want[1] + s * z) + add[1]) + bias
    w[:, 2:4] = w[:, 2:4] + w[:, 2:4]
    assert np.array_equal(ys[1], w)
    assert np.array_equal(ys[0], want[0]) and np.array_equal(ys[2], want[2])   # other steps untouched


def test_step_noise_plain_absolute():
    ys = np.zeros((1, 2, 3), np.float32)
    assert crossbar.StepNoise(ys, 3, 0.0, 0.25)(0, 2) == 0.25
    assert np.array_equal(ys[0], np.float32(0.5) * _normals(3, 2, (2, 3)))


def test_step_noise_rejects_bad_input():
    y = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="ys must be a 3-D"):
        crossbar.StepNoise(np.zeros((3, 4), np.float32), 1, 0.1, 0.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        crossbar.StepNoise(y.transpose(0, 2, 1), 1, 0.1, 0.0)
    with pytest.raises(ValueError, match="add must have dtype"):
        crossbar.StepNoise(y, 1, 0.1, 0.0, add=np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="bias must have shape"):
        crossbar.StepNoise(y, 1, 0.1, 0.0, bias=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="double_cols"):
        crossbar.StepNoise(y, 1, 0.1, 0.0, double_cols=(3, 5))
    with pytest.raises(ValueError, match="key must be an int"):
        crossbar.StepNoise(y, -1, 0.1, 0.0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        crossbar.StepNoise(y, 1, -0.1, 0.0)
    with pytest.raises(ValueError, match="leading step axis"):
        crossbar.fill_standard_normal_steps(np.float32(1.0), 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_kernels_equal_numpy_twin(dtype):
    """lstm_cell_update / lstm_hidden: g = 2s - 1, c = f c_prev + i g, 2c; then tanh(c) =
    2s - 1 and h = o tanh(c), each operation rounded in the arrays' dtype."""
    rng = np.random.default_rng(1)
    steps, b, hs = 3, 4, 5
    acts = rng.uniform(size=(steps, b, 4 * hs)).astype(dtype)
    cs = np.zeros((steps, b, hs), dtype)
    tcs = np.zeros((steps, b, hs), dtype)
    out = np.zeros((steps, b, hs), dtype)
    c_prev = rng.normal(size=(b, hs)).astype(dtype)
    a0 = acts.copy()
    crossbar.lstm_cell_update(acts, cs, tcs, c_prev, 1)
    one = dtype(1)
    i, f, s, o = (a0[1, :, k * hs:(k + 1) * hs] for k in range(4))
    g = (s + s) - one
    c = f * c_prev + i * g
    assert np.array_equal(acts[1, :, 2 * hs:3 * hs], g)
    assert np.array_equal(cs[1], c) and np.array_equal(tcs[1], c + c)
    assert np.array_equal(acts[0], a0[0]) and not cs[0].any()
    sig = (1 / (1 + np.exp(-tcs[1]))).astype(dtype)
    tcs[1] = sig
    crossbar.lstm_hidden(acts, tcs, out, 1)
    tc = (sig + sig) - one
    assert np.array_equal(tcs[1], tc) and np.array_equal(out[1], o * tc)
    assert not out[0].any() and not out[2].any()
