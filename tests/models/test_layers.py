"""Analog layers vs their torch twins with all noise off; state_dicts both ways; errors."""
from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import crossbar
import models

IDEAL = crossbar.preset("ideal")
F32 = dict(rtol=1e-5, atol=1e-6)  # float32 rounding of a 2-layer, 7-step recurrence


def _flat(out):
    """Every tensor of an RNN output, flattened and concatenated."""
    parts = []
    stack = [out]
    while stack:
        o = stack.pop(0)
        if isinstance(o, tuple):
            stack[:0] = list(o)
        elif isinstance(o, nn.utils.rnn.PackedSequence):
            parts.append(o.data.reshape(-1))
        else:
            parts.append(o.reshape(-1))
    return torch.cat(parts)


LAYERS = [
    (models.AnalogLSTM, nn.LSTM, {}),
    (models.AnalogGRU, nn.GRU, {}),
    (models.AnalogRNN, nn.RNN, {"nonlinearity": "tanh"}),
    (models.AnalogRNN, nn.RNN, {"nonlinearity": "relu"}),
]
OPTIONS = list(itertools.product((1, 2), (False, True), (False, True), (True, False)))


@pytest.mark.parametrize("cls,twin,kw", LAYERS, ids=["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias", OPTIONS)
def test_sequence_layer_equals_torch_and_state_dict_both_ways(cls, twin, kw, num_layers, bidirectional,
                                                              batch_first, bias):
    torch.manual_seed(num_layers * 8 + bidirectional * 4 + batch_first * 2 + bias)
    opts = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias, **kw)
    t = twin(5, 6, **opts)
    a = cls(5, 6, **opts, config=IDEAL)
    assert list(a.state_dict()) == list(t.state_dict())
    a.load_state_dict(t.state_dict())           # torch -> analog
    x = torch.randn(3, 7, 5) if batch_first else torch.randn(7, 3, 5)
    torch.testing.assert_close(_flat(a(x)), _flat(t(x)), **F32)
    # with initial state given
    d = 2 if bidirectional else 1
    h0 = torch.randn(num_layers * d, 3, 6)
    hx = (h0, torch.randn_like(h0)) if twin is nn.LSTM else h0
    torch.testing.assert_close(_flat(a(x, hx)), _flat(t(x, hx)), **F32)
    # analog -> torch
    t2 = twin(5, 6, **opts)
    t2.load_state_dict(a.state_dict())
    torch.testing.assert_close(_flat(t2(x)), _flat(t(x)), rtol=0, atol=0)


@pytest.mark.parametrize("cls,twin,kw", LAYERS, ids=["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_unbatched_input(cls, twin, kw):
    torch.manual_seed(0)
    t = twin(4, 3, num_layers=2, **kw)
    a = cls.from_torch(t, IDEAL)
    x = torch.randn(6, 4)
    torch.testing.assert_close(_flat(a(x)), _flat(t(x)), **F32)
    assert a(x)[0].shape == t(x)[0].shape


@pytest.mark.parametrize("cls,twin,kw", LAYERS, ids=["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_packed_sequence_equals_torch(cls, twin, kw):
    torch.manual_seed(1)
    t = twin(4, 5, bidirectional=True, **kw)
    a = cls.from_torch(t, IDEAL)
    x = torch.randn(6, 3, 4)
    lengths = torch.tensor([4, 6, 2])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out_t, out_a = t(packed), a(packed)
    torch.testing.assert_close(_flat(out_a), _flat(out_t), **F32)
    torch.testing.assert_close(out_a[0].sorted_indices, out_t[0].sorted_indices)
    pa, la = pad_packed_sequence(out_a[0])
    pt, lt = pad_packed_sequence(out_t[0])
    torch.testing.assert_close(pa, pt, **F32)


CELLS = [
    (models.AnalogLSTMCell, nn.LSTMCell, {}),
    (models.AnalogGRUCell, nn.GRUCell, {}),
    (models.AnalogRNNCell, nn.RNNCell, {"nonlinearity": "tanh"}),
    (models.AnalogRNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
]


@pytest.mark.parametrize("cls,twin,kw", CELLS, ids=["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("state", [False, True])
def test_cell_equals_torch_and_state_dict(cls, twin, kw, bias, state):
    torch.manual_seed(2)
    t = twin(4, 5, bias=bias, **kw)
    a = cls(4, 5, bias=bias, **kw, config=IDEAL)
    a.load_state_dict(t.state_dict())
    x = torch.randn(3, 4)
    hx = None
    if state:
        h = torch.randn(3, 5)
        hx = (h, torch.randn(3, 5)) if twin is nn.LSTMCell else h
    torch.testing.assert_close(_flat(a(x, hx)), _flat(t(x, hx)), **F32)
    torch.testing.assert_close(_flat(a(x[0])), _flat(t(x[0])), **F32)  # unbatched
    t2 = twin(4, 5, bias=bias, **kw)
    t2.load_state_dict(a.state_dict())
    torch.testing.assert_close(_flat(t2(x, hx)), _flat(t(x, hx)), rtol=0, atol=0)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_equals_torch(bias):
    torch.manual_seed(3)
    t = nn.Linear(6, 4, bias=bias)
    a = models.AnalogLinear(6, 4, bias=bias, config=IDEAL)
    a.load_state_dict(t.state_dict())
    x = torch.randn(2, 3, 6)
    torch.testing.assert_close(a(x), t(x), **F32)
    with torch.no_grad():
        a.weight.mul_(-2.0)
    back = nn.Linear(6, 4, bias=bias)
    back.load_state_dict(a.state_dict())          # and back: the analog layer's state loads into torch's
    torch.testing.assert_close(back(x), a(x), **F32)
    assert not torch.allclose(back(x), t(x))


def test_float64_layers():
    torch.manual_seed(4)
    t = nn.LSTM(3, 4, dtype=torch.float64)
    a = models.AnalogLSTM.from_torch(t, IDEAL)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(_flat(a(x)), _flat(t(x)), rtol=1e-12, atol=1e-13)


def test_dropout_only_in_training():
    """eval: no dropout (equals the torch twin); train: dropout between layers, the same mask
    as torch's for the same global seed, and outputs that differ from eval."""
    torch.manual_seed(5)
    a = models.AnalogLSTM(3, 4, num_layers=2, dropout=0.5, config=IDEAL, seed=0)
    t = a.to_torch().eval()
    a.eval()
    x = torch.randn(5, 2, 3)
    evaluated = _flat(a(x))
    torch.testing.assert_close(evaluated, _flat(t(x)), **F32)
    a.train()
    t.train()
    torch.manual_seed(6)
    trained = _flat(a(x))
    torch.manual_seed(6)
    torch.testing.assert_close(trained, _flat(t(x)), **F32)
    assert not torch.allclose(trained, evaluated)


# --------------------------------------------------------------------------- convert
class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.ModuleDict({"rnn": nn.LSTM(4, 8, batch_first=True)})
        self.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
        self.gru = nn.GRU(4, 2)

    def forward(self, x):
        out, _ = self.body["rnn"](x)
        return self.head(out[:, -1]) + self.gru(x.transpose(0, 1))[0][-1].sum()


def test_convert_nested_keeps_weights_and_outputs():
    torch.manual_seed(6)
    net = Classifier().eval()
    analog = models.convert(net, IDEAL, seed=0)
    assert isinstance(net.body["rnn"], nn.LSTM) and type(net.head[0]) is nn.Linear  # original untouched
    assert isinstance(analog.body["rnn"], models.AnalogLSTM)
    assert isinstance(analog.head[0], models.AnalogLinear) and isinstance(analog.head[2], models.AnalogLinear)
    assert isinstance(analog.gru, models.AnalogGRU)
    assert not analog.training
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(analog(x), net(x), **F32)
    seeds = [layer.seed for _, layer in models.analog_layers(analog)]
    assert len(set(seeds)) == len(seeds) == 4
    back = models.to_torch(analog)
    assert type(back.body["rnn"]) is nn.LSTM and type(back.head[0]) is nn.Linear
    torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)
    paper = crossbar.preset("paper", out_noise_sigma=0.2)
    models.set_config(analog, paper)
    assert all(layer.config == paper for _, layer in models.analog_layers(analog))


def test_convert_single_layer_and_noise_draw_kw():
    a = models.convert(nn.LSTM(3, 4), IDEAL, noise_draw="batch")
    assert isinstance(a, models.AnalogLSTM) and a.noise_draw == "batch"


# ---------------------------------------------------------------------------- errors
def test_bad_inputs_name_what_was_expected():
    a = models.AnalogLSTM(4, 3, num_layers=2, config=IDEAL)
    with pytest.raises(ValueError, match=r"input.shape\[-1\] must equal 4, got 5"):
        a(torch.randn(6, 2, 5))
    with pytest.raises(ValueError, match="must have 2 or 3 dimensions"):
        a(torch.randn(6, 2, 1, 4))
    with pytest.raises(TypeError, match="input.dtype must be torch.float32"):
        a(torch.randn(6, 2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        a([[1.0] * 4])
    x = torch.randn(6, 2, 4)
    x[3, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        a(x)
    x[3, 1, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        a(x)
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 2, 3\)"):
        a(torch.randn(6, 2, 4), (torch.zeros(1, 2, 3), torch.zeros(2, 2, 3)))
    with pytest.raises(TypeError, match=r"tuple \(h0, c0\)"):
        a(torch.randn(6, 2, 4), torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="proj_size"):
        models.AnalogLSTM(4, 3, proj_size=2, config=IDEAL)
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1"):
        models.AnalogGRU(4, 0, config=IDEAL)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        models.AnalogRNN(4, 3, nonlinearity="sigmoid", config=IDEAL)
    with pytest.raises(ValueError, match=r"h must have shape \(2, 3\)"):
        models.AnalogGRUCell(4, 3, config=IDEAL)(torch.randn(2, 4), torch.randn(3, 3))
    with pytest.raises(ValueError, match=r"input.shape\[-1\] must equal 4"):
        models.AnalogLinear(4, 3, config=IDEAL)(torch.randn(2, 3))
    with pytest.raises(TypeError):
        models.AnalogLSTM(4, 3)  # config is required


def test_repr_names_analog_settings():
    a = models.AnalogLSTM(4, 3, batch_first=True, config=crossbar.preset("paper", out_noise_sigma=0.1), seed=5)
    r = repr(a)
    assert "batch_first=True" in r and "noise_draw='mvm'" in r and "seed=5" in r and "paper" in r


@pytest.mark.parametrize("analog, wrong", [(models.AnalogLSTM, nn.GRU(3, 4)), (models.AnalogRNN, nn.LSTM(3, 4)),
                                           (models.AnalogGRUCell, nn.GRU(3, 4)), (models.AnalogLSTMCell, nn.LSTM(3, 4))])
def test_from_torch_rejects_a_module_that_is_not_the_twin(analog, wrong):
    with pytest.raises(TypeError, match=f"{analog.__name__}.from_torch expects a"):
        analog.from_torch(wrong, crossbar.preset("ideal"))
