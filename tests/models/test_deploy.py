"""Deployment (program, set_time, unprogram, evaluate) and saving/loading."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import crossbar
import models

IDEAL = crossbar.preset("ideal")
PCM = crossbar.preset("pcm")


class Net(nn.Module):
    def __init__(self, config=IDEAL):
        super().__init__()
        self.lstm = models.AnalogLSTM(4, 6, batch_first=True, config=config, seed=1)
        self.head = models.AnalogLinear(6, 3, config=config, seed=2)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 5, 4, generator=g)
    return X, torch.randint(0, 3, (40,), generator=g)


def test_program_draws_long_term_noise_once_per_seed(data):
    X, _ = data
    torch.manual_seed(0)
    net = Net(PCM).eval()
    with torch.no_grad():
        models.program(net, seed=3)
        models.reseed(net, 0)
        a = net(X)
        models.reseed(net, 0)
        a2 = net(X)                       # same programmed instance, same read seed
        models.reseed(net, 1)
        a3 = net(X)                       # fresh short-term noise
        models.program(net, seed=3)
        models.reseed(net, 0)
        b = net(X)                        # same programming seed: same instance
        models.program(net, seed=4)
        models.reseed(net, 0)
        c = net(X)                        # another instance
    torch.testing.assert_close(a, a2, rtol=0, atol=0)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, a3) and not torch.allclose(a, c)
    assert net.lstm.programmed and net.head.programmed
    models.unprogram(net)
    assert not net.lstm.programmed


def test_set_time_drifts_and_compensation_switch(data):
    X, _ = data
    torch.manual_seed(0)
    net = Net(crossbar.preset("pcm", read_sigma=None, adc_bits=None, dac_bits=None)).eval()
    with torch.no_grad():
        models.program(net, seed=0)
        models.set_time(net, 1.0)
        early = net(X)
        models.set_time(net, 3.0e7)
        late = net(X)
    assert not torch.allclose(early, late)
    # drift compensation is a crossbar config switch, carried by the layers
    models.set_config(net, net.lstm.config.replace(drift_compensation=True))
    assert net.lstm.config.drift_compensation and not net.lstm.programmed
    with pytest.raises(ValueError, match="t_s must be a finite number >= 0"):
        models.set_time(net, -1.0)


def test_programmed_ideal_reads_equal_weights(data):
    X, _ = data
    net = Net(IDEAL).eval()
    with torch.no_grad():
        ref = net(X)
        models.program(net, seed=0)
        torch.testing.assert_close(net(X), ref, rtol=0, atol=0)


def test_evaluate_shapes_reproducible_and_ideal_exact(data):
    X, y = data
    torch.manual_seed(0)
    net = Net(IDEAL)
    acc_clean = models.deploy.accuracy(net.eval(), X, y)
    acc = models.evaluate(net, X, y, instances=2, draws=3, seed=0)
    assert acc.shape == (2, 3) and np.all(acc == acc_clean)
    noisy = crossbar.preset("paper", out_noise_sigma=2.0)
    a1 = models.evaluate(net, X, y, noisy, instances=2, draws=3, seed=5)
    a2 = models.evaluate(net, X, y, noisy, instances=2, draws=3, seed=5)
    np.testing.assert_array_equal(a1, a2)
    assert len(np.unique(a1)) > 1            # draws differ
    assert net.lstm.config == IDEAL and not net.lstm.programmed   # the model itself is untouched
    with pytest.warns(UserWarning, match="no adc_calibration inputs were given"):   # said out loud
        over = models.evaluate_over_time(net, X, y, PCM, instances=2, draws=2, t_s=(1.0, 86400.0), seed=0)
    assert over.shape == (2, 2, 2) and np.all((over >= 0) & (over <= 1))
    with pytest.raises(ValueError, match="instances must be an int >= 1"):
        models.evaluate(net, X, y, instances=0)
    with pytest.raises(ValueError, match=r"y must have shape \(N,\) = \(40,\)"):
        models.evaluate(net, X, y[:5])
    with pytest.raises(ValueError, match="no analog layers"):
        models.program(nn.Linear(2, 2))


def test_save_load_roundtrip(tmp_path, data):
    X, _ = data
    torch.manual_seed(0)
    cfg = crossbar.preset("paper", out_noise_sigma=0.2, out_noise_convention="absolute")
    net = Net(cfg)
    wpath, jpath = models.save(net, tmp_path / "net.pt")
    state = torch.load(wpath, weights_only=True)
    assert set(state) == set(net.state_dict())
    meta = json.loads(jpath.read_text())
    assert meta["layers"]["lstm"]["config"]["output_noise"]["sigma"] == 0.2
    other = Net(IDEAL)
    models.load(wpath, other)
    assert other.lstm.config == cfg and other.head.seed == 2
    for k, v in net.state_dict().items():
        torch.testing.assert_close(other.state_dict()[k], v, rtol=0, atol=0)
    # a single layer rebuilds from the JSON alone
    lstm = models.AnalogLSTM(4, 6, num_layers=2, bidirectional=True, config=cfg, seed=7)
    models.save(lstm, tmp_path / "lstm.pt")
    back = models.load(tmp_path / "lstm.pt")
    assert isinstance(back, models.AnalogLSTM) and back.bidirectional and back.num_layers == 2
    torch.testing.assert_close(back(X.transpose(0, 1))[0], lstm(X.transpose(0, 1))[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="pass model="):
        models.load(wpath)
    with pytest.raises(ValueError, match="must not end in .json"):
        models.save(net, tmp_path / "x.json")


def test_save_load_programmed_deployment(tmp_path, data):
    X, _ = data
    torch.manual_seed(0)
    net = Net(PCM).eval()
    with pytest.raises(ValueError, match="must be programmed first"):
        models.save_programmed(net, tmp_path / "dep")
    models.program(net, seed=9)
    models.set_time(net, 3600.0)
    models.save_programmed(net, tmp_path / "dep")
    other = models.load_programmed(tmp_path / "dep", Net(IDEAL).eval())
    assert other.lstm.programmed and other.lstm.t_s == 3600.0
    with torch.no_grad():
        models.reseed(net, 4)
        models.reseed(other, 4)
        torch.testing.assert_close(other(X), net(X), rtol=0, atol=0)


def test_wired_layers_read_through_the_wires_and_reload(tmp_path, data):
    """Layers deployed with IR drop: the wires change the outputs; a saved deployment reads the same."""
    X, _ = data
    wired = crossbar.preset("rram", tile_rows=4, tile_cols=8, wire_row_ohm=50.0, wire_col_ohm=50.0)
    net = Net(wired).eval()
    plain = Net(wired.replace(wire_row_ohm=0.0, wire_col_ohm=0.0)).eval()
    models.program(net, seed=3)
    models.program(plain, seed=3)   # the same programmed conductances, no wires
    with torch.no_grad():
        y = net(X)
        assert (y - plain(X)).abs().max() > 1e-3
    models.save_programmed(net, tmp_path / "dep")
    other = models.load_programmed(tmp_path / "dep", Net(IDEAL).eval())
    with torch.no_grad():
        torch.testing.assert_close(other(X), y, rtol=0, atol=0)
