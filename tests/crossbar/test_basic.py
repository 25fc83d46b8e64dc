"""Public API smoke: presets, dtypes, ideal equals x @ W.T, seeds, save/load."""
from __future__ import annotations

import numpy as np
import pytest

import crossbar


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ideal_equals_matmul(rng, dtype):
    w = rng.normal(size=(7, 13))
    x = rng.normal(size=(5, 13)).astype(dtype)
    y = crossbar.mvm(x, w, crossbar.preset("ideal"))
    assert y.dtype == dtype and y.shape == (5, 7)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, x.astype(np.float64) @ w.T, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(crossbar.PRESETS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_preset_runs_in_both_dtypes(rng, name, dtype):
    w = rng.normal(size=(6, 20))
    x = rng.uniform(-1, 1, size=(3, 20)).astype(dtype)
    arr = crossbar.program(w, crossbar.preset(name, tile_rows=8), seed=3)
    y = arr.mvm(x, t_s=100.0, seed=4)
    assert y.dtype == dtype and y.shape == (3, 6) and np.isfinite(y).all()
    assert arr.effective_weights(100.0).shape == (6, 20)


@pytest.mark.parametrize("name", ["paper", "pcm"])
def test_same_seed_same_numbers(rng, name):
    w = rng.normal(size=(6, 20))
    x = rng.uniform(-1, 1, size=(3, 20))
    a = crossbar.mvm(x, w, crossbar.preset(name), seed=11, t_s=10.0)
    b = crossbar.mvm(x, w, crossbar.preset(name), seed=11, t_s=10.0)
    c = crossbar.mvm(x, w, crossbar.preset(name), seed=12, t_s=10.0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_one_dimensional_input(rng):
    w = rng.normal(size=(4, 6))
    arr = crossbar.program(w, crossbar.preset("ideal"))
    x = rng.normal(size=6)
    np.testing.assert_allclose(arr.mvm(x), w @ x, rtol=1e-12)
