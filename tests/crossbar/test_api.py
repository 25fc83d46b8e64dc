"""Boundary checks of the public functions and the HDF5 round trip."""
from __future__ import annotations

import numpy as np
import pytest

import crossbar


@pytest.fixture
def arr(rng):
    return crossbar.program(rng.normal(size=(4, 6)), crossbar.preset("pcm"), seed=1)


@pytest.mark.parametrize("bad, message", [
    (np.full((2, 6), np.nan), "x must be finite, got 12 NaN/Inf value(s)"),
    (np.array([[np.inf, 0, 0, 0, 0, 0]]), "x must be finite, got 1 NaN/Inf value(s)"),
    (np.ones((2, 5)), "x.shape[-1] must equal the array's in_features=6, got 5"),
    (np.ones((2, 6), dtype=np.int64), "x.dtype must be float32 or float64, got int64"),
    (np.ones((2, 6), dtype=np.float16), "x.dtype must be float32 or float64, got float16"),
    (np.ones((0, 6)), "x must not be empty, got shape (0, 6)"),
    (np.ones((2, 3, 6)), "x must be 2-D, got shape (2, 3, 6)"),
])
def test_mvm_rejects_bad_input(arr, bad, message):
    with pytest.raises(ValueError) as err:
        arr.mvm(bad)
    assert message in str(err.value)


@pytest.mark.parametrize("kw, message", [
    (dict(t_s=-1.0), "t_s must be a finite number >= 0"),
    (dict(t_s=float("nan")), "t_s must be a finite number >= 0"),
    (dict(seed=-3), "seed must be a non-negative int, a numpy.random.Generator or None, got -3"),
    (dict(seed="a"), "seed must be a non-negative int"),
])
def test_mvm_rejects_bad_time_and_seed(arr, kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        arr.mvm(np.ones((1, 6)), **kw)


def test_program_rejects_bad_weights_and_config():
    with pytest.raises(ValueError, match="weights must be 2-D, got shape"):
        crossbar.program(np.ones(5), crossbar.preset("ideal"))
    with pytest.raises(ValueError, match="weights must be finite"):
        crossbar.program(np.array([[1.0, np.nan]]), crossbar.preset("pcm"))
    with pytest.raises(ValueError, match="weights.dtype must be float32 or float64, got complex128"):
        crossbar.program(np.ones((2, 2), complex), crossbar.preset("ideal"))
    with pytest.raises(ValueError, match="config must be an ArrayConfig"):
        crossbar.program(np.ones((2, 2)), "pcm")
    with pytest.raises(ValueError, match="weights must not be empty"):
        crossbar.mvm(np.ones((1, 0)), np.ones((2, 0)), crossbar.preset("paper"))


@pytest.mark.parametrize("name", ["paper", "pcm", "sonos"])
def test_save_load_round_trip(tmp_path, rng, name):
    w = rng.normal(size=(5, 9))
    arr = crossbar.program(w, crossbar.preset(name, tile_rows=4), seed=2)
    path = tmp_path / "arr.h5"
    arr.save(path)
    back = crossbar.load_programmed(path)
    assert back.config == arr.config and back.shape == arr.shape
    np.testing.assert_array_equal(back.effective_weights(500.0), arr.effective_weights(500.0))
    x = rng.normal(size=(3, 9))
    np.testing.assert_array_equal(back.mvm(x, t_s=500.0, seed=7), arr.mvm(x, t_s=500.0, seed=7))


def test_load_rejects_foreign_file(tmp_path):
    import h5py

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "something else"
    with pytest.raises(ValueError, match="other.h5: attribute 'format' must be 'xbarsim.programmed_array'"):
        crossbar.load_programmed(path)
