"""Learned DAC input ranges (issue 11): the clip-with-range gradient, the aihwkit-style
learning signal, and the learner's bookkeeping (stored like calibrated ranges)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import crossbar
import models
from models.ranges import LearnedInputRanges, clip_to_range


def _away_from_edges(x: torch.Tensor, r: float, gap: float = 1e-2) -> torch.Tensor:
    """Move inputs off |x| = r (the clamp has a kink there; finite differences would straddle it)."""
    near = (x.abs() - r).abs() < gap
    return torch.where(near, x.sign() * (r + 2 * gap), x)


def test_clip_with_learned_range_passes_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    x = _away_from_edges(torch.randn(6, 5, generator=g, dtype=torch.float64) * 1.5, 1.2).requires_grad_()
    r = torch.tensor(1.2, dtype=torch.float64, requires_grad=True)
    assert ((x.abs() > 1.2).any() and (x.abs() < 1.2).any())  # both sides of the clip are exercised
    assert torch.autograd.gradcheck(lambda a, b: clip_to_range(a, b), (x, r), eps=1e-6, atol=1e-8)


def test_gradcheck_would_catch_a_wrong_range_gradient():
    x = _away_from_edges(torch.linspace(-3, 3, 13, dtype=torch.float64), 1.0).requires_grad_()
    r = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    # the one-sided (aihwkit) signal is not the gradient of the forward: gradcheck must fail on it
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        torch.autograd.gradcheck(lambda a, b: clip_to_range(a, b, one_sided=True), (x, r), eps=1e-6, atol=1e-8)


def test_aihwkit_range_signal_by_hand():
    x = torch.tensor([-3.0, -0.5, 0.2, 2.0, 4.0], dtype=torch.float64, requires_grad=True)
    r = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.3, 1.0, -2.0, -0.7, 0.4], dtype=torch.float64)
    y = clip_to_range(x, r, one_sided=True, relative=True, gradient_scale=2.0, decay=0.1, input_min_percentage=0.95)
    assert torch.equal(y.detach(), torch.tensor([-1.5, -0.5, 0.2, 1.5, 1.5], dtype=torch.float64))
    y.backward(g)
    # x: gradient only where not clipped
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, -2.0, 0.0, 0.0], dtype=torch.float64))
    # r: upper clipped {2, 4}: min(g, 0) = -0.7 + 0; lower clipped {-3}: max(g, 0) = 0.3
    # -> (-0.7 - 0.3) * r * scale = -1.0 * 1.5 * 2; only 2/5 inside (< 0.95): no decay
    assert float(r.grad) == pytest.approx(-3.0, abs=1e-12)


def test_decay_shrinks_range_only_while_few_inputs_clip():
    r = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    x = torch.linspace(-1, 1, 100, dtype=torch.float64)  # all inside
    clip_to_range(x, r, one_sided=True, relative=True, decay=0.01).sum().backward()
    assert float(r.grad) == pytest.approx(0.01 * 2.0, abs=1e-15)  # only the decay, toward the data
    r.grad = None
    x = torch.cat([x, torch.full((10,), 5.0, dtype=torch.float64)])  # 10/110 clip: 91% inside < 95%
    clip_to_range(x, r, one_sided=True, relative=True, decay=0.01).sum().backward()
    assert float(r.grad) == 0.0  # g = +1 on the upper clipped ones: one-sided keeps only g < 0




class _Head(nn.Module):
    def __init__(self, config):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = models.AnalogLSTM(3, 8, config=config, seed=1)
        self.head = models.AnalogLinear(8, 2, config=config, seed=2)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


@pytest.mark.parametrize("preset", ["ideal", "pcm"])
def test_learner_clips_learns_and_stores_like_calibrated(preset):
    cfg = crossbar.preset(preset)
    net = _Head(cfg)
    x = torch.randn(4, 5, 3) * 3  # inputs far outside the start range below
    learner = LearnedInputRanges(net, init_value=0.5, init_batches=0)
    assert sorted(learner.ranges) == ["head.weight", "rnn.weight_hh_l0", "rnn.weight_ih_l0"]
    opt = torch.optim.SGD(learner.parameters(), lr=0.5)
    net.train()
    y = net(x)
    loss = -y[:, 0].sum()
    loss.backward()
    assert all(p.grad is not None for p in learner.parameters())
    opt.step()
    values = learner.sync()
    assert models.input_ranges(net) == pytest.approx(values)
    stored = learner.detach()
    assert net.rnn._range_learner is None and models.input_ranges(net) == pytest.approx(stored)
    clone = copy.deepcopy(net)  # stored exactly as calibrated ranges: plain floats, deep-copied
    assert models.input_ranges(clone) == pytest.approx(stored)
    # the input matrix clipped (|x| up to ~9 against 0.5) and the loss wants more: it widened
    assert stored["rnn.weight_ih_l0"] > 0.5


def test_learner_initialises_from_data_as_aihwkit():
    net = _Head(crossbar.preset("ideal"))
    learner = LearnedInputRanges(net, init_batches=100, init_std_alpha=3.0)
    net.train()
    x = torch.randn(64, 1, 3, generator=torch.Generator().manual_seed(3)) * 2
    net(x)
    # one read of the input matrix so far (one time step): r = 3 std(x)
    assert float(learner.ranges["rnn.weight_ih_l0"].param.detach()) == pytest.approx(3 * float(x.double().std()), rel=1e-6)
    learner.detach()


def test_clipped_forward_equals_reading_clipped_inputs():
    cfg = crossbar.preset("ideal")
    net = _Head(cfg)
    ref = copy.deepcopy(net)
    x = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(1)) * 3
    learner = LearnedInputRanges(net, init_value=1.0, init_batches=0)
    for lr in learner.ranges.values():
        with torch.no_grad():
            lr.param.fill_(100.0)
    with torch.no_grad():
        learner.ranges["rnn.weight_ih_l0"].param.fill_(0.7)
    net.eval()
    ref.eval()
    with torch.no_grad():
        assert torch.allclose(net(x), ref(x.clamp(-0.7, 0.7)), atol=1e-6)
    learner.detach()


def test_learner_rejects_bad_options_and_models():
    with pytest.raises(ValueError, match="no analog layers"):
        LearnedInputRanges(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="decay"):
        LearnedInputRanges(_Head(crossbar.preset("ideal")), decay=-1.0)


@pytest.mark.parametrize("mode", ["RNN", "GRU"])
def test_wide_learned_ranges_change_nothing_with_output_noise(mode, monkeypatch):
    """Ranges far outside the data clip nothing: the noisy forward (paper preset, merged
    input/recurrent noise draws) equals the plain step-by-step one for the same seed."""
    import models.rnn

    monkeypatch.setattr(models.rnn, "FAST_RECURRENCE", False)  # learned ranges run the step path
    cls = {"RNN": models.AnalogRNN, "GRU": models.AnalogGRU}[mode]
    cfg = crossbar.preset("paper", out_noise_sigma=0.2)
    torch.manual_seed(0)
    plain = cls(3, 6, config=cfg, seed=5)
    learned = copy.deepcopy(plain)
    learner = LearnedInputRanges(learned, init_value=1e3, init_batches=0)
    x = torch.randn(7, 4, 3, generator=torch.Generator().manual_seed(2))
    plain.train()
    learned.train()
    y0 = plain(x)[0]
    y1 = learned(x)[0]
    assert torch.equal(y0, y1)
    learner.detach()
