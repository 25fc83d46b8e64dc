"""Model factory, seeded training with Deep Noise Injection, and evaluation over noise draws.

The classifier is torch's own ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (batch first) followed by an
``nn.Linear`` head on the hidden state of the last valid time step; :func:`build_model`
turns it analog with ``models.convert(model, config)`` when a crossbar config is given, so
the same weights run digitally or on any device preset.

Noise configs come from :func:`noise_config`: a crossbar preset (``"paper"`` by default:
ideal weights plus the paper's additive Gaussian noise on every MVM output) with the
output-noise level ``sigma`` in one of three conventions ("relative", "absolute",
"snr_db"). ``sigma = 0`` (or ``inf`` dB) means no output noise.

Seeds: :func:`build_model` seeds the weight init; :func:`train_model` seeds the batch order
and (with ``models.reseed`` at every epoch) every training noise draw from ``seed``;
:func:`evaluate_draws` reseeds the analog layers for draw ``d`` from ``(seed, d)``. Same seed, same
numbers, on any executor.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import SequenceData
from .names import ARCHS, CONVENTIONS

__all__ = [
    "ARCHS",
    "CONVENTIONS",
    "ModelSpec",
    "SequenceClassifier",
    "build_model",
    "noise_config",
    "is_noiseless",
    "train_model",
    "heldout_accuracy",
    "evaluate_draws",
    "draw_seed",
    "save_checkpoint",
    "checkpoint_bytes",
    "load_checkpoint",
    "versions",
    "deploy_model",
    "calibrate_ranges",
]

_TORCH_RNN = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a classifier's architecture (weights come separately)."""

    arch: str
    input_size: int
    hidden_size: int
    num_classes: int
    num_layers: int = 1
    nonlinearity: str = "tanh"

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        for name in ("input_size", "hidden_size", "num_classes", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {self.nonlinearity!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class SequenceClassifier(nn.Module):
    """Recurrent layer + linear head on the last valid step.

    Shape:
        x: (batch, T, input_size); lengths: (batch,) ints in [1, T] or None (all T);
        output: (batch, num_classes) logits.
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        kw = {"nonlinearity": spec.nonlinearity} if spec.arch == "rnn" else {}
        self.rnn = _TORCH_RNN[spec.arch](spec.input_size, spec.hidden_size, num_layers=spec.num_layers,
                                         batch_first=True, **kw)
        self.head = nn.Linear(spec.hidden_size, spec.num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        out, _ = self.rnn(x)
        if lengths is None:
            last = out[:, -1]
        else:
            last = out[torch.arange(out.shape[0]), lengths.to(torch.long) - 1]
        return self.head(last)


def versions() -> dict[str, str]:
    """Versions of the packages that shape the numbers, recorded in every result."""
    import platform

    out = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__}
    from xbarsim import version

    out["xbarsim"] = version()
    return out


# --------------------------------------------------------------------------- configs
def is_noiseless(sigma: float | None, convention: str) -> bool:
    """True when this output-noise level adds nothing (None, 0, or +inf dB)."""
    if sigma is None:
        return True
    if convention == "snr_db":
        return math.isinf(sigma) and sigma > 0
    return sigma == 0


def noise_config(sigma: float | None = None, convention: str = "relative", preset: str | os.PathLike = "paper",
                 **overrides: Any):
    """A crossbar ArrayConfig: ``preset`` with the paper's output noise at ``sigma`` (``convention``).

    Args:
        sigma: output-noise level; None keeps the preset's own level; 0 (or +inf for "snr_db")
            switches output noise off.
        convention: "relative" (times the RMS of the noiseless output), "absolute" (output units)
            or "snr_db" (signal-to-noise ratio in dB).
        preset: a crossbar preset name ("ideal", "paper", "pcm", "rram", "sonos") or a device-model
            JSON path, loaded with ``crossbar.preset``.
        **overrides: further flat crossbar keys (``adc_bits=8``, ``drift_compensation=True``, ...).

    Raises:
        ValueError: unknown convention, preset or override.
    """
    import crossbar

    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    if sigma is not None:
        overrides["out_noise_sigma"] = None if is_noiseless(sigma, convention) else float(sigma)
        overrides["out_noise_convention"] = convention
    return crossbar.preset(os.fspath(preset) if isinstance(preset, os.PathLike) else preset, **overrides)


# --------------------------------------------------------------------------- models
def build_model(spec: ModelSpec, config=None, *, noise_draw: str = "mvm", seed: int = 0) -> nn.Module:
    """A :class:`SequenceClassifier` with weights initialised from ``seed``; analog if ``config``.

    Args:
        spec: the architecture.
        config: a crossbar ArrayConfig: the model is converted with ``models.convert``; None
            keeps torch's digital layers.
        noise_draw: which reads share one noise draw (see models.functional); "mvm" = fresh per MVM.
        seed: seed of the weight initialisation.
    """
    torch.manual_seed(seed)
    model = SequenceClassifier(spec)
    if config is not None:
        model = to_analog(model, config, noise_draw=noise_draw)
    return model


def to_analog(model: nn.Module, config, *, noise_draw: str = "mvm") -> nn.Module:
    """``models.convert(model, config, noise_draw=...)``: a converted copy, weights kept."""
    from models import convert

    out = convert(model, config, noise_draw=noise_draw)
    if hasattr(model, "spec") and not hasattr(out, "spec"):
        out.spec = model.spec
    return out


def reseed_noise(model: nn.Module, seed: int) -> None:
    """Restart the short-term noise generators of every analog layer from ``seed`` (no-op if digital)."""
    from models import analog_layers, reseed

    if any(True for _ in analog_layers(model)):
        reseed(model, int(seed))


def set_noise(model: nn.Module, config) -> None:
    """Change the crossbar config of every analog layer of ``model`` in place."""
    from models import set_config

    set_config(model, config)


# --------------------------------------------------------------------------- training
def _lengths_tensor(lengths: np.ndarray | None) -> torch.Tensor | None:
    return None if lengths is None else torch.as_tensor(lengths, dtype=torch.long)


def _batches(n: int, batch_size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


def heldout_accuracy(model: nn.Module, data: SequenceData, batch_size: int = 512) -> float:
    """Test-split accuracy of a :class:`SequenceClassifier`, in eval mode (restored afterwards).

    The count is :func:`models.deploy.accuracy` (the one accuracy function of xbarsim), with
    each batch's valid lengths passed to the model.
    """
    from models.deploy import accuracy

    x = torch.as_tensor(data.x_test, dtype=torch.float32)
    y = torch.as_tensor(data.y_test, dtype=torch.long)
    was_training = model.training
    model.eval()
    try:
        return accuracy(model, x, y, batch_size, lengths=_lengths_tensor(data.lengths_test))
    finally:
        model.train(was_training)


def calibrate_ranges(model: nn.Module, data: SequenceData, *, statistic: str | float = "max",
                     batch_size: int = 512, limit: int | None = 8192) -> dict[str, float]:
    """Set the DAC input range of every analog matrix of ``model`` from the training data
    (:func:`models.calibrate_input_ranges` over ``data.x_train``, or a seeded subset of
    ``limit`` sequences when it holds more); returns them."""
    from models.ranges import calibrate_input_ranges

    return calibrate_input_ranges(model, _training_batches(data, batch_size, limit=limit), statistic=statistic)


def _training_batches(data: SequenceData, batch_size: int, limit: int | None = None, seed: int = 0):
    """(x, lengths) batches of the training set in order, or of a seeded subset of ``limit`` sequences."""
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    lt = _lengths_tensor(data.lengths_train)
    if limit is not None and x.shape[0] > limit:
        keep = torch.as_tensor(np.sort(np.random.default_rng(seed).choice(x.shape[0], limit, replace=False)))
        x = x[keep]
        lt = None if lt is None else lt[keep]
    return [(x[idx], None if lt is None else lt[idx]) for idx in _batches(x.shape[0], batch_size, None)]


def draw_seed(seed: int, draw: int, stream: int = 0) -> int:
    """The torch seed of noise draw ``draw`` of an evaluation seeded with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(stream), int(draw)]).generate_state(1, np.uint32)[0])


def evaluate_draws(model: nn.Module, data: SequenceData, draws: int, seed: int = 0, *, deterministic: bool = False,
                   batch_size: int = 512, stream: int = 0) -> np.ndarray:
    """Test accuracy over ``draws`` independent noise draws: one full test pass per draw.

    Args:
        deterministic: the config adds no randomness: run one pass and repeat its accuracy.
        stream: separates the draws of different purposes that share a seed.

    Returns:
        float64 array (draws,).
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    out = np.empty(draws)
    for d in range(draws):
        if deterministic and d > 0:
            out[d] = out[0]
            continue
        reseed_noise(model, draw_seed(seed, d, stream))
        out[d] = heldout_accuracy(model, data, batch_size)
    return out


def train_model(model: nn.Module, data: SequenceData, *, epochs: int = 10, batch_size: int = 64, lr: float = 1e-2,
                optimizer: str = "adam", weight_decay: float = 0.0, grad_clip: float | None = 1.0, seed: int = 0,
                progress: bool = False, desc: str = "train",
                 on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                 learn_input_ranges: bool | dict = False) -> dict[str, list[float]]:
    """Train ``model`` with cross-entropy; any analog noise of its config is injected in the forward pass.

    Args:
        epochs, batch_size, lr, weight_decay: the usual.
        optimizer: "adam" or "sgd" (momentum 0.9).
        grad_clip: clip the global gradient norm to this (None: no clipping).
        seed: seeds the batch order and every noise draw during training.
        progress: show a tqdm bar over epochs.
        on_epoch: called after each epoch with (epoch, {"train_loss", "train_accuracy",
            "test_accuracy"}): how a sweep job reports its progress.
        learn_input_ranges: learn every analog matrix's DAC input range during training
            (:class:`models.ranges.LearnedInputRanges`, aihwkit's defaults; a dict gives its
            options), with the same optimizer; the learned ranges are stored in the layers
            (as calibrated ones) when training ends.

    Returns:
        Per-epoch history: ``epoch``, ``train_loss``, ``train_accuracy`` (noisy, running over the
        epoch), ``test_accuracy`` (one seeded pass with the training noise).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    learner = None
    if learn_input_ranges:
        from models.ranges import LearnedInputRanges

        learner = LearnedInputRanges(model, **(learn_input_ranges if isinstance(learn_input_ranges, dict) else {}))
    # the ranges learn with the weights' optimizer and learning rate, without weight decay and
    # outside the gradient-norm clipping (their gradient is a sum over every clipped input)
    groups = [{"params": params}] + ([{"params": learner.parameters(), "weight_decay": 0.0}] if learner else [])
    if optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train, dtype=torch.long)
    lt = _lengths_tensor(data.lengths_train)
    order_gen = torch.Generator().manual_seed(int(draw_seed(seed, 0, stream=7)))
    loss_fn = nn.CrossEntropyLoss()
    history: dict[str, list[float]] = {"epoch": [], "train_loss": [], "train_accuracy": [], "test_accuracy": []}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=desc, unit="epoch", leave=False)
    try:
        _train_epochs(model, data, opt, params, learner, x, y, lt, order_gen, loss_fn, history, bar, epochs=epochs,
                      batch_size=batch_size, grad_clip=grad_clip, seed=seed, on_epoch=on_epoch)
    finally:
        if bar is not None:
            bar.close()
        if learner is not None:
            learner.detach()
    model.eval()
    return history


def _train_epochs(model, data, opt, params, learner, x, y, lt, order_gen, loss_fn, history, bar, *, epochs,
                  batch_size, grad_clip, seed, on_epoch=None) -> None:
    """The epochs of :func:`train_model` (appends to ``history``)."""
    for epoch in range(1, epochs + 1):
        model.train()
        reseed_noise(model, draw_seed(seed, epoch, stream=8))  # fixes every training noise draw
        total_loss, correct, seen = 0.0, 0, 0
        for idx in _batches(x.shape[0], batch_size, order_gen):
            opt.zero_grad(set_to_none=True)
            logits = model(x[idx], None if lt is None else lt[idx])
            loss = loss_fn(logits, y[idx])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training diverged at epoch {epoch}: loss {float(loss)}; lower --lr")
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            if learner is not None:
                learner.sync()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            seen += len(idx)
        reseed_noise(model, draw_seed(seed, epoch, stream=9))
        test_acc = heldout_accuracy(model, data)
        history["epoch"].append(epoch)
        history["train_loss"].append(total_loss / seen)
        history["train_accuracy"].append(correct / seen)
        history["test_accuracy"].append(test_acc)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", test=f"{test_acc:.3f}")
        if on_epoch is not None:
            on_epoch(epoch, {k: history[k][-1] for k in ("train_loss", "train_accuracy", "test_accuracy")})


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | os.PathLike, model: nn.Module, spec: ModelSpec, config=None, *,
                    noise_draw: str = "mvm", meta: dict | None = None) -> None:
    """Write a self-describing checkpoint atomically (loadable with ``torch.load(weights_only=True)``).

    Holds the state_dict (torch's parameter names, so it also loads into the digital model),
    the ModelSpec, the crossbar config it was trained with (as a dict), ``meta``, and
    ``sha256`` over all of these (:func:`models.checkpoint.state_digest`), which
    :func:`load_checkpoint` verifies.
    """
    from xbarsim.files import atomic_write_bytes

    atomic_write_bytes(path, checkpoint_bytes(model, spec, config, noise_draw=noise_draw, meta=meta))


def checkpoint_bytes(model: nn.Module, spec: ModelSpec, config=None, *, noise_draw: str = "mvm",
                     meta: dict | None = None) -> bytes:
    """The bytes :func:`save_checkpoint` writes (workers return these; the sweep writes them)."""
    import io
    import json

    from models.checkpoint import state_digest
    from models.ranges import input_ranges

    from .results import json_default

    ranges = input_ranges(model)  # {} for a torch model
    payload = {
        "format": "xbarsim.models.experiment/1",
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "spec": spec.to_dict(),
        "config": None if config is None else json.dumps(config.to_dict()),
        "noise_draw": noise_draw,
        "meta": json.dumps(meta or {}, default=json_default),
        "input_ranges": json.dumps(ranges),
    }
    payload["sha256"] = state_digest(payload["state_dict"], _covered(payload))
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def load_checkpoint(path: str | os.PathLike, config=None, *, digital: bool = False) -> tuple[nn.Module, dict]:
    """Rebuild a model from :func:`save_checkpoint`.

    Args:
        config: run it on this crossbar config instead of the one it was trained with.
        digital: return torch's digital model (ignores the configs).

    Returns:
        (model in eval mode, info dict with "spec", "config" (ArrayConfig or None), "noise_draw", "meta",
        "input_ranges" (the stored DAC input ranges per matrix, {} when none; given to the
        analog model's layers)).

    Raises:
        ValueError: naming the file: missing, empty, truncated or not a torch file; not such
            a checkpoint; its sha256 (over the tensors, spec, config and meta) differs from
            the one recorded when it was written (changed or damaged); non-finite weights.
    """
    from models.checkpoint import check_state, read_torch_file

    payload = read_torch_file(path, "checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != "xbarsim.models.experiment/1":
        raise ValueError(f"{path}: not an xbarsim checkpoint (written by `xbarsim train` or `xbarsim sweep`)")
    missing = [k for k in ("state_dict", "spec", "config", "noise_draw", "meta") if k not in payload]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {', '.join(missing)}")
    check_state(payload["state_dict"], path, payload.get("sha256"), _covered(payload))
    try:
        return _rebuild(payload, config, digital)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # spec, config or shapes do not fit
        raise ValueError(f"{path}: checkpoint content is inconsistent: {type(exc).__name__}: {exc}") from exc


def _covered(payload: dict) -> dict:
    """What a checkpoint's sha256 covers besides the tensors."""
    return {k: payload.get(k) for k in ("format", "spec", "config", "noise_draw", "meta", "input_ranges")}


def _rebuild(payload: dict, config, digital: bool) -> tuple[nn.Module, dict]:
    import json

    spec = ModelSpec(**payload["spec"])
    trained_config = None
    if payload["config"] is not None:
        import crossbar

        trained_config = crossbar.ArrayConfig.from_dict(json.loads(payload["config"]))
    use = None if digital else (config if config is not None else trained_config)
    model = SequenceClassifier(spec)
    model.load_state_dict(payload["state_dict"])
    ranges = json.loads(payload.get("input_ranges") or "{}")
    if use is not None:
        from models.ranges import set_input_ranges

        model = to_analog(model, use, noise_draw=payload["noise_draw"])
        try:
            set_input_ranges(model, ranges)
        except ValueError as exc:
            raise ValueError(f"input_ranges: {exc}") from exc
    model.eval()
    info = {"spec": spec, "config": trained_config, "noise_draw": payload["noise_draw"],
            "meta": json.loads(payload["meta"]), "input_ranges": ranges}
    return model, info


# --------------------------------------------------------------------------- deployment
def deploy_model(checkpoint: str | os.PathLike, data: SequenceData, config, *, times_s: list[float],
                 compensation: list[bool] = (False, True), instances: int = 5, draws: int = 3, seed: int = 0,
                 progress: bool = False, ranges: str = "stored", statistic: str | float = "max",
                 details: bool = False):
    """Program a checkpoint onto ``config`` and read it at several times after programming.

    For each drift-compensation setting and programmed instance ``i`` (long-term noise seeded
    by ``(seed, i)``, so both settings see the same instances): ``models.program`` once, then
    for each time ``models.set_time`` and ``draws`` test passes with the short-term noise
    restarted from ``(seed, i, d)`` (``models.reseed``).

    Args:
        ranges: DAC input ranges of the analog matrices: "stored" (the checkpoint's; a
            checkpoint without any is calibrated on ``data``'s training set, and
            ``details["ranges_source"]`` says so), "calibrate" (calibrate on the training
            set anyway) or "preset" (none: the config's ``dac_input_range`` everywhere).
        statistic: statistic of |x| when calibrating ("max" or a percentile); also of the
            partial sums when ``config.adc.range_mode`` is "calibrated": then every
            programmed instance gets per-tile ADC ranges from the partial sums of 512
            training sequences (seeded subset), set right after programming.
        details: also return a dict with "input_ranges" (used, per matrix), "ranges_source"
            ("checkpoint", "calibrated on the training data", "preset"), "matrices" (names)
            and "clips": (len(compensation), len(times_s), len(matrices), 2) fractions of DAC
            and ADC conversions that saturated, over all instances and draws.

    Returns:
        (accuracies of shape (len(compensation), len(times_s), instances, draws),
        accuracy of the digital model without any noise), plus the details dict when asked.
    """
    from models import program, set_time

    from models.deploy import add_counts
    from models.ranges import (calibrate_adc_ranges, clip_counts, fractions, record_inputs, reset_clip_counts,
                               set_input_ranges)

    if ranges not in ("stored", "calibrate", "preset"):
        raise ValueError(f"ranges must be 'stored', 'calibrate' or 'preset', got {ranges!r}")
    digital_model, info = load_checkpoint(checkpoint, digital=True)
    digital = heldout_accuracy(digital_model, data)
    used = dict(info["input_ranges"])
    source = "checkpoint"
    if ranges == "preset":
        used, source = {}, "preset"
    elif ranges == "calibrate" or not used:
        model, _ = load_checkpoint(checkpoint, config=config)
        used = calibrate_ranges(model, data, statistic=statistic)
        source = "calibrated on the training data"
    adc_inputs = None
    if config.adc.active and config.adc.range_mode == "calibrated":
        model, _ = load_checkpoint(checkpoint, digital=False, config=config)
        adc_inputs = record_inputs(model, _training_batches(data, 512, limit=512, seed=seed), seed=seed)
    acc = np.empty((len(compensation), len(times_s), instances, draws))
    totals: list[list[dict]] = [[{} for _ in times_s] for _ in compensation]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(compensation) * instances, leave=False, unit="program",
                   desc=f"deploy ({len(compensation)} compensation x {instances} instances)")
    for c, comp in enumerate(compensation):
        model, _ = load_checkpoint(checkpoint, config=config.replace(drift_compensation=bool(comp)))
        set_input_ranges(model, used or None)
        for i in range(instances):
            program(model, seed=int(np.random.SeedSequence([int(seed), 3, i]).generate_state(1, np.uint32)[0]))
            if adc_inputs is not None:  # ADC ranges per tile, set right after programming
                calibrate_adc_ranges(model, adc_inputs, statistic=statistic, t_s=0.0)
            for k, t in enumerate(times_s):
                set_time(model, float(t))
                reset_clip_counts(model)
                for d in range(draws):
                    reseed_noise(model, int(np.random.SeedSequence([int(seed), 4, i, d]).generate_state(1,
                                                                                                     np.uint32)[0]))
                    acc[c, k, i, d] = heldout_accuracy(model, data)
                add_counts(totals[c][k], clip_counts(model))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    if not details:
        return acc, digital
    names = sorted({m for row in totals for tot in row for m in tot})
    clips = np.zeros((len(compensation), len(times_s), len(names), 2))
    for c, row in enumerate(totals):
        for k, tot in enumerate(row):
            for j, m in enumerate(names):
                if m in tot:
                    clips[c, k, j] = fractions(tot[m])
    return acc, digital, {"input_ranges": used, "ranges_source": source, "matrices": names, "clips": clips}
