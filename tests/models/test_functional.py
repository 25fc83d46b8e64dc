"""AnalogMVM (gradcheck, straight-through backward), the LSTM step, noise levels and draws."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import crossbar
import models
from models import functional as Fn
from models.fused import _DigitalRead, _LSTMSequence

IDEAL = crossbar.preset("ideal")
GENERATORS = ("boxmuller", "legacy")


def _reader(w: torch.Tensor, config, noise_draw="mvm", steps=1, batch=1, seed=0):
    prog = crossbar.program(w.detach().numpy(), Fn.read_config(config), seed=seed)
    g = torch.Generator().manual_seed(seed)
    return Fn.MatrixReader(prog, config, noise_draw, steps, batch, g, np.random.default_rng(seed), None, w.shape[0])


def test_gradcheck_analog_mvm_float64_noise_off():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)

    def read(xx, t0):  # programs the current (possibly perturbed) w on every call
        arr = crossbar.program(w.detach().numpy(), IDEAL)
        y = arr.mvm(xx.detach().reshape(-1, 5).numpy())
        return torch.from_numpy(y).reshape(xx.shape[0], xx.shape[1], 4)

    assert torch.autograd.gradcheck(lambda a, b: models.analog_mvm(a, b, read), (x, w))


def test_straight_through_backward_uses_parameter_weights_under_noise():
    """With noise on, the gradient is that of x W^T with the float parameter W."""
    torch.manual_seed(1)
    x = torch.randn(1, 6, 5, requires_grad=True)
    w = torch.randn(3, 5, requires_grad=True)
    read = _reader(w, crossbar.preset("paper", out_noise_sigma=0.5), batch=6)
    gy = torch.randn(1, 6, 3)
    models.analog_mvm(x, w, read).backward(gy)
    torch.testing.assert_close(x.grad, gy @ w.detach())
    torch.testing.assert_close(w.grad, gy[0].t() @ x.detach()[0])


def test_gradcheck_lstm_step():
    torch.manual_seed(2)
    gi = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    gh = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    c = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Fn.lstm_step, (gi, gh, c))


def test_gradcheck_whole_lstm_float64_noise_off():
    torch.manual_seed(3)
    lstm = models.AnalogLSTM(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64, config=IDEAL)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: lstm(a, (b, c))[0], (x, h0, c0))


@pytest.mark.parametrize("cls,twin", [(models.AnalogLSTM, torch.nn.LSTM), (models.AnalogGRU, torch.nn.GRU),
                                      (models.AnalogRNN, torch.nn.RNN)])
def test_parameter_gradients_equal_torch_noise_off(cls, twin):
    torch.manual_seed(4)
    t = twin(4, 6, num_layers=2, bidirectional=True, dtype=torch.float64)
    a = cls.from_torch(t, IDEAL)
    x = torch.randn(7, 3, 4, dtype=torch.float64)
    (t(x)[0] ** 2).sum().backward()
    (a(x)[0] ** 2).sum().backward()
    for (n, p), (_, q) in zip(t.named_parameters(), a.named_parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-10, atol=1e-12, msg=n)


# ----------------------------------------------------------------------- noise levels
N_ROWS, N_OUT = 4000, 16


def _noise_std_bound(sigma: float, n: int) -> float:
    """5-sigma bound on |sample std - sigma| from var(s^2) = 2 sigma^4/(n-1)."""
    return 5 * sigma * math.sqrt(2 / (n - 1)) / 2


@pytest.mark.parametrize("generator", GENERATORS)
@pytest.mark.parametrize("convention,level", [("absolute", 0.3), ("relative", 0.2), ("snr_db", 10.0)])
def test_output_noise_level_per_convention(convention, level, generator):
    torch.manual_seed(5)
    w = torch.randn(N_OUT, 8)
    x = torch.randn(1, N_ROWS, 8)
    cfg = crossbar.preset("paper", out_noise_sigma=level, out_noise_convention=convention, normal_generator=generator)
    y = _reader(w, cfg, batch=N_ROWS)(x)
    clean = x @ w.t()
    ms = float(clean.square().mean())
    want = {"absolute": level, "relative": level * math.sqrt(ms), "snr_db": math.sqrt(ms / 10 ** (level / 10))}[
        convention]
    noise = (y - clean).flatten()
    n = noise.numel()
    assert abs(float(noise.mean())) < 5 * want / math.sqrt(n), "mean within 5 sigma/sqrt(N)"
    assert abs(float(noise.std()) - want) < _noise_std_bound(want, n)


@pytest.mark.parametrize("generator", GENERATORS)
def test_relative_scale_is_per_time_step(generator):
    """Batching T steps into one read keeps each step's own RMS as the scale."""
    torch.manual_seed(6)
    w = torch.randn(N_OUT, 8)
    x = torch.randn(2, N_ROWS, 8)
    x[1] *= 10.0  # step 1 has 10x the RMS of step 0
    cfg = crossbar.preset("paper", out_noise_sigma=0.1, normal_generator=generator)
    y = _reader(w, cfg, steps=2, batch=N_ROWS)(x)
    clean = x @ w.t()
    for t in range(2):
        want = 0.1 * float(clean[t].square().mean().sqrt())
        got = float((y[t] - clean[t]).std())
        assert abs(got - want) < _noise_std_bound(want, N_ROWS * N_OUT), (t, got, want)


@pytest.mark.parametrize("fast", [False, True], ids=["step_path", "sequence_path"])
def test_lstm_gate_noise_level_each_gate(monkeypatch, fast):
    """Each LSTM gate pre-activation gets input + recurrent noise: var = s_ih^2 + s_hh^2.

    step_path: the per-step reference (``analog_mvm`` + ``lstm_step``, spied on);
    sequence_path: the fused recurrence of digital configs (``lstm_sequence``), whose
    pre-activations are recovered from the gate activations it saves (float64).
    """
    torch.manual_seed(7)
    hidden, batch = 8, 6000
    dtype = torch.float64 if fast else torch.float32
    t = torch.nn.LSTM(5, hidden, dtype=dtype)
    sigma = 0.25
    a = models.AnalogLSTM.from_torch(t, crossbar.preset("paper", out_noise_sigma=sigma), seed=3)
    x = torch.randn(1, batch, 5, dtype=dtype)
    h0, c0 = torch.randn(1, batch, hidden, dtype=dtype), torch.randn(1, batch, hidden, dtype=dtype)
    monkeypatch.setattr("models.rnn.FAST_RECURRENCE", fast)
    seen = []
    if fast:
        out, _ = a(x, (h0, c0))
        acts = out.grad_fn.saved_tensors[3][0].detach()  # sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        i, f, g, o = acts.split(hidden, dim=-1)
        seen.append(torch.cat([torch.logit(i), torch.logit(f), torch.atanh(g), torch.logit(o)], dim=-1))
    else:
        real = Fn.lstm_step

        def spy(gi, gh, c):
            seen.append((gi + gh).detach().clone())
            return real(gi, gh, c)

        monkeypatch.setattr("models.rnn.lstm_step", spy)
        with torch.no_grad():
            a(x, (h0, c0))
    yi = x[0] @ t.weight_ih_l0.detach().t()
    yh = h0[0] @ t.weight_hh_l0.detach().t()
    clean = yi + yh + t.bias_ih_l0.detach() + t.bias_hh_l0.detach()
    want = math.sqrt(sigma**2 * float(yi.square().mean()) + sigma**2 * float(yh.square().mean()))
    noise = seen[0] - clean
    n = batch * hidden
    for k, gate in enumerate("ifgo"):
        got = float(noise[:, k * hidden:(k + 1) * hidden].std())
        assert abs(got - want) < _noise_std_bound(want, n), (gate, got, want)
        assert abs(float(noise[:, k * hidden:(k + 1) * hidden].mean())) < 5 * want / math.sqrt(n), gate


def test_gru_keeps_two_draws_and_level(monkeypatch):
    """AnalogGRU: gi and gh each carry their own output noise (the n gate uses r * gh_n, so
    they cannot be merged): std sigma * rms of each read, uncorrelated with each other."""
    torch.manual_seed(8)
    hidden, batch, sigma = 6, 4000, 0.3
    t = torch.nn.GRU(4, hidden)
    a = models.AnalogGRU.from_torch(t, crossbar.preset("paper", out_noise_sigma=sigma), seed=2)
    x, h0 = torch.randn(1, batch, 4), torch.randn(1, batch, hidden)
    seen = []
    real = Fn.gru_step

    def spy(gi, gh, h):
        seen.append((gi.detach().clone(), gh.detach().clone()))
        return real(gi, gh, h)

    monkeypatch.setattr("models.rnn.gru_step", spy)
    monkeypatch.setattr("models.rnn.FAST_RECURRENCE", False)   # the step path, spied on
    with torch.no_grad():
        a(x, h0)
    assert len(seen) == 1
    yi = x[0] @ t.weight_ih_l0.detach().t()
    yh = h0[0] @ t.weight_hh_l0.detach().t()
    e_i = (seen[0][0] - yi - t.bias_ih_l0.detach()).flatten()
    e_h = (seen[0][1] - yh - t.bias_hh_l0.detach()).flatten()
    n = e_i.numel()
    for e, y, what in ((e_i, yi, "input read"), (e_h, yh, "recurrent read")):
        want = sigma * float(y.square().mean().sqrt())
        assert abs(float(e.std()) - want) < _noise_std_bound(want, n), (what, float(e.std()), want)
    corr = float(torch.corrcoef(torch.stack([e_i, e_h]))[0, 1])
    assert abs(corr) < 5 / math.sqrt(n), f"the two reads' noises are correlated: {corr:.3g}"


def test_per_time_read_noise_is_long_term_and_allows_shared_draws():
    """read_noise_draw="per_time" makes programming random (a fresh draw per training forward)
    and lifts the "mvm only" restriction of fresh read noise."""
    per_read = crossbar.preset("pcm", adc_bits=None)
    per_time = per_read.replace(read_noise_draw="per_time")
    only_read = crossbar.preset("ideal", read_sigma=crossbar.Law("poly", (0.1,)))
    assert Fn.has_fresh_read_noise(per_read) and not Fn.has_fresh_read_noise(per_time)
    assert not Fn.has_long_term_noise(only_read)
    assert Fn.has_long_term_noise(only_read.replace(read_noise_draw="per_time"))
    with pytest.raises(ValueError, match="read_noise_draw='per_read'"):
        models.AnalogLSTM(3, 4, config=per_read, noise_draw="step", seed=0)(torch.randn(2, 1, 3))
    out, _ = models.AnalogLSTM(3, 4, config=per_time, noise_draw="step", seed=0)(torch.randn(2, 1, 3))
    assert out.shape == (2, 1, 4)


# ----------------------------------------------------------------------- noise draws
def _noise(noise_draw, steps=3, batch=4):
    w = torch.randn(5, 3)
    cfg = crossbar.preset("paper", out_noise_sigma=1.0, out_noise_convention="absolute")
    r = _reader(w, cfg, noise_draw, steps=steps, batch=batch)
    x = torch.randn(steps, batch, 3)
    y = torch.cat([r(x[t:t + 1], t) for t in range(steps)])  # one read per step, like the recurrence
    return y - x @ w.t()


def test_noise_draw_mvm_all_fresh():
    e = _noise("mvm")
    flat = e.reshape(-1)
    assert len(torch.unique(flat)) == flat.numel()


def test_noise_draw_step_shared_by_batch_fresh_per_step():
    e = _noise("step")
    torch.testing.assert_close(e, e[:, :1].expand_as(e))
    assert not torch.allclose(e[0], e[1])


def test_noise_draw_sequence_shared_over_steps_fresh_per_sequence():
    e = _noise("sequence")
    torch.testing.assert_close(e, e[:1].expand_as(e))
    assert not torch.allclose(e[0, 0], e[0, 1])


def test_noise_draw_batch_one_draw():
    e = _noise("batch")
    torch.testing.assert_close(e, e[:1, :1].expand_as(e))


def test_noise_draw_in_layer_sequence_shares_over_steps():
    """AnalogRNN relu with identity weights shows the shared input noise directly."""
    torch.manual_seed(9)
    cfg = crossbar.preset("paper", out_noise_sigma=0.5, out_noise_convention="absolute")
    rnn = models.AnalogRNN(2, 2, nonlinearity="relu", bias=False, config=cfg, noise_draw="batch", seed=0)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.eye(2))
        rnn.weight_hh_l0.zero_()
    x = torch.full((6, 3, 2), 10.0)
    out, _ = rnn(x)
    e = out - 10.0  # relu stays linear at 10 +- 1.5
    torch.testing.assert_close(e, e[:1, :1].expand_as(e))


def test_invalid_noise_settings_are_named():
    with pytest.raises(ValueError, match="noise_draw must be one of"):
        models.AnalogLSTM(2, 3, config=IDEAL, noise_draw="epoch")
    with pytest.raises(ValueError, match="a cell sees one step"):
        models.AnalogLSTMCell(2, 3, config=IDEAL, noise_draw="sequence")
    pcm = crossbar.preset("pcm")
    lstm = models.AnalogLSTM(2, 3, config=pcm, noise_draw="step")
    with pytest.raises(ValueError, match="noise_draw='step' is not supported"):
        lstm(torch.randn(2, 1, 2))
    with pytest.raises(TypeError, match="config must be a crossbar.ArrayConfig"):
        models.AnalogLinear(2, 3, config={"sigma": 0.1})


def test_same_seed_same_numbers():
    cfg = crossbar.preset("paper", out_noise_sigma=0.3)
    torch.manual_seed(10)
    t = torch.nn.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    outs = [models.AnalogLSTM.from_torch(t, cfg, seed=s)(x)[0] for s in (1, 1, 2)]
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    assert not torch.allclose(outs[0], outs[2])
    # seed None: drawn from torch's global generator, so torch.manual_seed fixes it
    res = []
    for _ in range(2):
        torch.manual_seed(11)
        res.append(models.AnalogLSTM.from_torch(t, cfg)(x)[0])
    torch.testing.assert_close(res[0], res[1], rtol=0, atol=0)


# ----------------------------------------------------------------------- fused LSTM recurrence
def _lstm_pair(cfg, noise_draw, **kw):
    torch.manual_seed(12)
    t = torch.nn.LSTM(3, 5, dtype=torch.float64, **kw)
    return [models.AnalogLSTM.from_torch(t, cfg, noise_draw=noise_draw, seed=4) for _ in range(2)]


@pytest.mark.parametrize("generator", GENERATORS)
@pytest.mark.parametrize("noise_draw", Fn.NOISE_DRAWS)
@pytest.mark.parametrize("convention,level", [("relative", 0.3), ("absolute", 0.2), ("snr_db", 8.0), (None, 0)])
def test_lstm_sequence_path_equals_step_path_same_seed(monkeypatch, noise_draw, convention, level, generator):
    """The fused recurrence of digital configs gives the step-by-step path's numbers and
    straight-through gradients (same seed: same draws), forward and reverse, two layers,
    with either normal generator."""
    cfg = IDEAL if convention is None else crossbar.preset("paper", out_noise_sigma=level,
                                                           out_noise_convention=convention,
                                                           normal_generator=generator)
    fast, ref = _lstm_pair(cfg, noise_draw, num_layers=2, bidirectional=True)
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    h0 = torch.randn(4, 4, 5, dtype=torch.float64)
    c0 = torch.randn(4, 4, 5, dtype=torch.float64)
    res = []
    for layer, on in ((fast, True), (ref, False)):
        monkeypatch.setattr("models.rnn.FAST_RECURRENCE", on)
        xs, hs, cs = (v.clone().requires_grad_() for v in (x, h0, c0))
        out, (hn, cn) = layer(xs, (hs, cs))
        loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum() + hn.square().sum() + cn.sum()
        loss.backward()
        res.append([out, hn, cn, xs.grad, hs.grad, cs.grad] + [p.grad for p in layer.parameters()])
    assert fast.weight_hh_l0.grad is not None
    for k, (a, b) in enumerate(zip(*res)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=f"tensor {k}")


def test_lstm_sequence_gradcheck_with_recorded_noise():
    """With the noise recorded (fixed z, absolute scale), the fused node's backward is the
    exact gradient (float64 gradcheck), including bias, h0, c0, both directions."""
    torch.manual_seed(13)
    steps, b, hs = 4, 3, 2
    cfg = crossbar.preset("paper", out_noise_sigma=0.3, out_noise_convention="absolute")
    w = torch.randn(4 * hs, hs, dtype=torch.float64, requires_grad=True)
    gi = torch.randn(steps, b, 4 * hs, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4 * hs, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(b, hs, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(b, hs, dtype=torch.float64, requires_grad=True)
    z = torch.randn(steps, b, 4 * hs, dtype=torch.float64)
    var_in = [0.01 * (t + 1) for t in range(steps)]
    for reverse in (False, True):
        def f(gi_, w_, b_, h_, c_):
            # the read uses the same weights the straight-through gradient uses
            noise = Fn.RecurrentNoise(z=z, input_var=var_in, per_mean_square=0.0, constant=0.09)
            return _LSTMSequence.apply(gi_, w_, b_, h_, c_, _DigitalRead(w_.detach(), noise, steps), reverse)[:3]
        assert torch.autograd.gradcheck(f, (gi, w, bias, h0, c0))


def test_every_config_takes_the_fused_recurrence_unless_forced(monkeypatch):
    x = torch.randn(4, 2, 3)
    for cls, node in ((models.AnalogLSTM, "_LSTMSequenceBackward"), (models.AnalogGRU, "_GRUSequenceBackward"),
                      (models.AnalogRNN, "_RNNSequenceBackward")):
        for cfg in (crossbar.preset("paper", out_noise_sigma=0.1), crossbar.preset("pcm")):
            layer = cls(3, 5, config=cfg, seed=0)
            assert type(layer(x)[0].grad_fn).__name__ == node
            monkeypatch.setattr("models.rnn.FAST_RECURRENCE", False)
            assert type(layer(x)[0].grad_fn).__name__ != node        # the step path
            monkeypatch.setattr("models.rnn.FAST_RECURRENCE", True)
    with pytest.raises(ValueError, match="programmed array, or weights with a digital config"):
        Fn.MatrixReader(None, crossbar.preset("pcm"), "mvm", 1, 1, torch.Generator(), np.random.default_rng(0),
                        None, 5, weight=torch.zeros(5, 3))


def _paper_or(preset, sigma):
    """The paper preset with relative sigma (``paper_legacy``: the legacy normal generator) or
    another named preset."""
    if preset.startswith("paper"):
        return crossbar.preset("paper", out_noise_sigma=sigma,
                               normal_generator="legacy" if preset == "paper_legacy" else "boxmuller")
    return crossbar.preset(preset)


def _fused_and_step(monkeypatch, cls, cfg, dtype, **kw):
    """Forward + backward of one layer on the fused and on the step path, same seed and weights."""
    torch.manual_seed(21)
    layer = cls(3, 5, num_layers=2, bidirectional=True, dtype=dtype, config=cfg, seed=4, **kw)
    x = torch.randn(6, 4, 3, dtype=dtype)
    h0 = torch.randn(4, 4, 5, dtype=dtype)
    res = []
    for on in (True, False):
        monkeypatch.setattr("models.rnn.FAST_RECURRENCE", on)
        layer.reseed(4)
        layer.zero_grad()
        xs, hs = x.clone().requires_grad_(), h0.clone().requires_grad_()
        out, hn = layer(xs, hs)
        loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=dtype)).sum() + hn.square().sum()
        loss.backward()
        res.append([out, hn, xs.grad, hs.grad] + [p.grad.clone() for p in layer.parameters()])
    return res


@pytest.mark.parametrize("preset", ["paper", "paper_legacy", "pcm", "rram"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_sequence_equals_step_path_bit_for_bit(monkeypatch, preset, nonlinearity):
    """The fused Elman recurrence gives the step path's outputs and gradients exactly (float32)."""
    cfg = _paper_or(preset, 0.1)
    fast, ref = _fused_and_step(monkeypatch, models.AnalogRNN, cfg, torch.float32, nonlinearity=nonlinearity)
    for k, (a, b) in enumerate(zip(fast, ref)):
        assert torch.equal(a, b), f"tensor {k}"


@pytest.mark.parametrize("noise_draw", Fn.NOISE_DRAWS)
@pytest.mark.parametrize("preset", ["ideal", "paper", "paper_legacy", "pcm"])
def test_gru_sequence_equals_step_path_same_seed(monkeypatch, noise_draw, preset):
    """The fused GRU recurrence: the step path's draws, outputs and gradients to rounding (float64)."""
    if preset == "pcm" and noise_draw != "mvm":
        pytest.skip("fresh read noise needs noise_draw='mvm'")
    cfg = _paper_or(preset, 0.2)
    fast, ref = _fused_and_step(monkeypatch, models.AnalogGRU, cfg, torch.float64, noise_draw=noise_draw)
    for k, (a, b) in enumerate(zip(fast, ref)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=f"tensor {k}")


@pytest.mark.parametrize("preset", ["pcm", "rram"])
def test_lstm_sequence_on_devices_equals_step_path(monkeypatch, preset):
    """Device presets (crossbar reads per step) take the fused LSTM too: same draws, same
    numbers to rounding (float64)."""
    torch.manual_seed(22)
    t = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    res = []
    for on in (True, False):
        monkeypatch.setattr("models.rnn.FAST_RECURRENCE", on)
        layer = models.AnalogLSTM.from_torch(t, crossbar.preset(preset), seed=4)
        xs = x.clone().requires_grad_()
        out, (hn, cn) = layer(xs)
        (out.sum() + hn.square().sum() + cn.sum()).backward()
        res.append([out, hn, cn, xs.grad] + [p.grad for p in layer.parameters()])
    for k, (a, b) in enumerate(zip(*res)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=f"tensor {k}")


@pytest.mark.parametrize("cls", [models.AnalogGRU, models.AnalogRNN])
def test_gradcheck_fused_gru_and_rnn_float64_noise_off(cls):
    torch.manual_seed(23)
    layer = cls(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64, config=IDEAL)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: layer(a, b)[0].sum() + layer(a, b)[1].sum(), (x, h0))


def test_deployed_digital_reads_programmed_weights():
    """A programmed (deployed) digital layer reads the programmed weights, not later edits."""
    torch.manual_seed(14)
    t = torch.nn.LSTM(3, 5)
    a = models.AnalogLSTM.from_torch(t, IDEAL, seed=0)
    models.program(a, seed=0)
    with torch.no_grad():
        a.weight_hh_l0.zero_()
        a.weight_ih_l0.zero_()
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(a(x)[0], t(x)[0], rtol=1e-5, atol=1e-6)
