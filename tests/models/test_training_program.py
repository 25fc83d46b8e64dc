"""The training forward of a device preset programs through crossbar.program_and_prepare.

With numpy's normals fed to the fused kernel, a training step gives exactly the numbers of
the general path (crossbar.program, then the read state built on the first read): the only
change the fused path makes to training is the source of the programming normals (the
crossbar's ziggurat, exactly N(0, 1): tests/crossbar/test_program_kernel.py).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import crossbar
import crossbar.array as CA
import models


def _numpy_normals_program_and_prepare(weights, config, seed=None, dtype=np.float32, dac_range=None):
    dt = np.dtype(dtype)
    if config.is_digital or CA._fused_laws(config) is None:
        return crossbar.program_and_prepare(weights, config, seed=seed, dtype=dtype, dac_range=dac_range)
    w = np.asarray(weights)
    rng = crossbar.as_generator(seed)
    z = rng.standard_normal((2, w.shape[1], w.shape[0])) if config.device.prog_sigma is not None \
        else np.empty((2, 0, 0))
    return CA._program_pairs(w, z, config, rng, dt, dac_range)


def _program_and_prepare_by_program(weights, config, seed=None, dtype=np.float32, dac_range=None):
    arr = crossbar.program(weights, config, seed=seed)
    if dac_range is not None:
        arr.set_ranges(dac_range=dac_range)
    return arr


def _train_steps(cls, preset, ranges=False, dtype=torch.float32):
    torch.manual_seed(0)
    layer = cls(6, 8, batch_first=True, config=crossbar.preset(preset), seed=5, dtype=dtype)
    if ranges:  # stored DAC input ranges (as after calibration): the training programs use them
        layer.set_input_ranges({"weight_ih_l0": 1.7, "weight_hh_l0": 0.6})
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    x = torch.randn(3, 5, 6, dtype=dtype)
    outs = []
    for _ in range(3):
        out = layer(x)[0]
        loss = out[:, -1].square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        outs.append(out.detach())
    return torch.stack(outs), [p.detach().clone() for p in layer.parameters()]


@pytest.mark.parametrize("ranges,dtype", [(False, torch.float32), (True, torch.float32), (False, torch.float64)])
@pytest.mark.parametrize("cls", [models.AnalogLSTM, models.AnalogGRU, models.AnalogRNN])
@pytest.mark.parametrize("preset", ["pcm", "rram"])
def test_fused_training_program_equals_the_general_path_with_numpy_normals(monkeypatch, cls, preset, ranges, dtype):
    """Three SGD steps: outputs and parameters bit for bit equal between the general path
    (program, its stored DAC range set, state built on first read) and the fused one fed the
    same (numpy) normals, with and without stored input ranges, float32 and float64 layers."""
    monkeypatch.setattr(crossbar, "program_and_prepare", _program_and_prepare_by_program)
    ref_out, ref_params = _train_steps(cls, preset, ranges, dtype)
    monkeypatch.setattr(crossbar, "program_and_prepare", _numpy_normals_program_and_prepare)
    out, params = _train_steps(cls, preset, ranges, dtype)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0)
    for p, q in zip(params, ref_params):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_training_forward_reads_the_prepared_state(monkeypatch):
    """pcm training forward: each weight matrix is programmed once per forward through
    program_and_prepare with its stored DAC range, and its reads find the t = 0 state ready
    (no rebuild)."""
    calls = []
    real = crossbar.program_and_prepare

    def spy(weights, config, seed=None, dtype=np.float32, dac_range=None):
        arr = real(weights, config, seed=seed, dtype=dtype, dac_range=dac_range)
        calls.append(arr)
        return arr

    monkeypatch.setattr(crossbar, "program_and_prepare", spy)
    built = []
    real_state = CA.ProgrammedArray._state

    def state_spy(self, t, dtype):
        if (t, dtype.char) not in self._cache:
            built.append((t, dtype.char))
        return real_state(self, t, dtype)

    monkeypatch.setattr(CA.ProgrammedArray, "_state", state_spy)
    layer = models.AnalogLSTM(6, 8, config=crossbar.preset("pcm"), seed=1)
    layer.set_input_ranges({"weight_ih_l0": 2.0})  # a stored DAC range does not drop the prepared read
    layer(torch.randn(4, 2, 6))[0].sum().backward()
    assert len(calls) == 2   # weight_ih_l0 and weight_hh_l0
    assert [a.dac_range for a in calls] == [2.0, 1.0]
    assert built == []


@pytest.mark.parametrize("preset,sigma", [("pcm", None), ("rram", None), ("pcm", 0.1)])
def test_read_one_is_the_one_step_read(preset, sigma):
    """MatrixReader.read_one gives the numbers and draws of reader(h.unsqueeze(0), t)[0] (two
    readers on equal generators), and exists only where the read is the crossbar's alone
    (with the paper's output noise added in models it is not used)."""
    from models.reader import MatrixReader

    cfg = crossbar.preset(preset) if sigma is None else crossbar.preset(preset, out_noise_sigma=sigma, adc_bits=None)
    w = np.random.default_rng(0).uniform(-0.2, 0.2, size=(12, 7)).astype(np.float32)
    arr = crossbar.program_and_prepare(w, models.noise.read_config(cfg), seed=3)

    def reader():
        return MatrixReader(arr, cfg, "mvm", 4, 5, torch.Generator().manual_seed(1), np.random.default_rng(2), None, 12)

    a, b = reader(), reader()
    assert a.crossbar_only == (sigma is None)
    if not a.crossbar_only:
        return
    h = torch.randn(5, 7)
    for t in range(3):
        torch.testing.assert_close(a.read_one(h), b(h.unsqueeze(0), t)[0], rtol=0, atol=0)
