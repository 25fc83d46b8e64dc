"""Model factory, seeded training, evaluation over draws, checkpoints and deployment."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from study.data import load_dataset
from study.experiment import (ModelSpec, SequenceClassifier, build_model, deploy_model, evaluate_draws, heldout_accuracy,
                               is_noiseless, load_checkpoint, noise_config, save_checkpoint, train_model)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_train=300, n_test=150, seed=0)


def _spec(arch="lstm", hidden=12):
    return ModelSpec(arch=arch, input_size=8, hidden_size=hidden, num_classes=10)


def test_model_spec_validates():
    with pytest.raises(ValueError, match="arch must be one of rnn, lstm, gru, got 'cnn'"):
        ModelSpec("cnn", 8, 4, 10)
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1, got 0"):
        ModelSpec("rnn", 8, 0, 10)


def test_noise_config_conventions():
    cfg = noise_config(0.2, "absolute")
    assert cfg.name == "paper" and cfg.output_noise.sigma == 0.2 and cfg.output_noise.convention == "absolute"
    assert not noise_config(0.0, "relative").output_noise.active
    assert not noise_config(math.inf, "snr_db").output_noise.active
    assert noise_config(0.0, "snr_db").output_noise.active  # 0 dB is loud noise, not none
    assert is_noiseless(math.inf, "snr_db") and not is_noiseless(20.0, "snr_db")
    assert noise_config(0.1, "relative", "pcm").name == "pcm"
    with pytest.raises(ValueError, match="convention must be one of relative, absolute, snr_db"):
        noise_config(0.1, "db")


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_noise_free_analog_model_equals_torch(digits, arch):
    digital = build_model(_spec(arch), None, seed=3)
    analog = build_model(_spec(arch), noise_config(0.0), seed=3)
    assert isinstance(digital.rnn, (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU))
    assert type(analog.rnn).__name__.startswith("Analog") and type(analog.head).__name__ == "AnalogLinear"
    x = torch.as_tensor(digits.x_test[:20])
    with torch.no_grad():
        torch.testing.assert_close(analog(x), digital(x), rtol=1e-4, atol=1e-5)


def test_lengths_pick_the_last_valid_step():
    torch.manual_seed(0)
    model = SequenceClassifier(_spec("gru"))
    x = torch.randn(3, 8, 8)
    lengths = torch.tensor([8, 5, 2])
    with torch.no_grad():
        out = model(x, lengths)
        for i, n in enumerate(lengths.tolist()):
            torch.testing.assert_close(out[i], model(x[i:i + 1, :n])[0])


def test_training_is_seeded_and_learns(digits):
    def run(seed):
        model = build_model(_spec("lstm"), noise_config(0.1), seed=seed)
        hist = train_model(model, digits, epochs=4, batch_size=32, seed=seed, lr=2e-2)
        return model, hist

    m1, h1 = run(0)
    m2, h2 = run(0)
    assert h1 == h2
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    _, h3 = run(1)
    assert h3["train_loss"] != h1["train_loss"]
    assert h1["train_loss"][-1] < h1["train_loss"][0]
    assert h1["test_accuracy"][-1] > 0.3  # 10 classes: chance is 0.1; 4 short epochs reach about 0.5
    assert set(h1) == {"epoch", "train_loss", "train_accuracy", "test_accuracy"} and h1["epoch"] == [1, 2, 3, 4]


def test_train_rejects_bad_settings(digits):
    model = build_model(_spec(), None)
    with pytest.raises(ValueError, match="optimizer must be 'adam' or 'sgd', got 'rmsprop'"):
        train_model(model, digits, epochs=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="lr must be > 0"):
        train_model(model, digits, epochs=1, lr=0)


def test_evaluate_draws_noise_is_seeded(digits):
    model = build_model(_spec("rnn"), noise_config(0.5), seed=0)
    train_model(model, digits, epochs=1, seed=0)
    a = evaluate_draws(model, digits, 4, seed=7)
    b = evaluate_draws(model, digits, 4, seed=7)
    c = evaluate_draws(model, digits, 4, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(set(a.tolist())) > 1  # draws differ from one another
    from study.experiment import set_noise

    set_noise(model, noise_config(0.0))
    clean = evaluate_draws(model, digits, 3, seed=7)
    assert len(set(clean.tolist())) == 1
    with pytest.raises(ValueError, match="draws must be >= 1"):
        evaluate_draws(model, digits, 0)


def test_checkpoint_round_trip(tmp_path, digits):
    spec = _spec("gru")
    cfg = noise_config(0.1)
    model = build_model(spec, cfg, seed=0)
    train_model(model, digits, epochs=1, seed=0)
    save_checkpoint(tmp_path / "m.pt", model, spec, cfg, meta={"note": "x"})
    loaded, info = load_checkpoint(tmp_path / "m.pt")
    assert info["spec"] == spec and info["config"] == cfg and info["meta"] == {"note": "x"}
    digital, _ = load_checkpoint(tmp_path / "m.pt", digital=True)
    assert isinstance(digital.rnn, torch.nn.GRU)
    from study.experiment import set_noise

    set_noise(model, noise_config(0.0))
    assert heldout_accuracy(digital, digits) == heldout_accuracy(model, digits)
    torch.load(tmp_path / "m.pt", weights_only=True)  # a plain weights-only checkpoint
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"bad\.pt: checkpoint is damaged or truncated"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt: not an xbarsim checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_deploy_model_over_time(tmp_path, digits):
    spec = _spec("rnn")
    model = build_model(spec, noise_config(0.0), seed=0)
    train_model(model, digits, epochs=2, seed=0)
    save_checkpoint(tmp_path / "m.pt", model, spec, noise_config(0.0))
    ideal, digital = deploy_model(tmp_path / "m.pt", digits, noise_config(None, preset="ideal"), times_s=[1, 3600],
                                  compensation=[False], instances=2, draws=2, seed=0)
    assert ideal.shape == (1, 2, 2, 2) and np.all(ideal == digital)  # an ideal device reproduces the weights
    pcm = noise_config(None, preset="pcm")
    a, _ = deploy_model(tmp_path / "m.pt", digits, pcm, times_s=[1, 3.15e7], compensation=[False, True],
                        instances=2, draws=2, seed=5)
    b, _ = deploy_model(tmp_path / "m.pt", digits, pcm, times_s=[1, 3.15e7], compensation=[False, True],
                        instances=2, draws=2, seed=5)
    assert a.shape == (2, 2, 2, 2) and np.array_equal(a, b)
    assert not np.array_equal(a[0, 0], a[0, 1])  # drift changes what the device reads over a year


def test_variable_length_user_data(tmp_path, rng):
    n, t, f = 120, 10, 3
    lengths = rng.integers(3, t + 1, n)
    x = np.zeros((n, t, f), np.float32)
    y = rng.integers(0, 2, n)
    for i in range(n):  # the class is the sign of the last valid step; padding is noise
        x[i, : lengths[i]] = rng.normal(size=(lengths[i], f))
        x[i, lengths[i] - 1, 0] = 2.0 if y[i] else -2.0
        x[i, lengths[i]:] = rng.normal(size=(t - lengths[i], f)) * 5
    np.savez(tmp_path / "var.npz", X=x, y=y, lengths=lengths)
    data = load_dataset(str(tmp_path / "var.npz"))
    model = build_model(ModelSpec("gru", f, 8, 2), noise_config(0.05), seed=0)
    train_model(model, data, epochs=15, lr=3e-2, seed=0)
    assert heldout_accuracy(model, data) > 0.9
