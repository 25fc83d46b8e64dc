"""Damaged, truncated, empty and foreign checkpoint files: one clear error naming the file (issue 15)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import crossbar
import models
from study.experiment import ModelSpec, build_model, load_checkpoint, save_checkpoint

SPEC = ModelSpec(arch="lstm", input_size=8, hidden_size=6, num_classes=10)


def _flip(path, tensor: torch.Tensor, n: int = 64) -> None:
    """Overwrite the first ``n`` bytes of ``tensor``'s stored data in ``path`` (as a bit-rot would)."""
    raw = path.read_bytes()
    needle = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()[:n]
    at = raw.find(needle)
    assert at > 0, "tensor bytes not found in the file"
    damaged = raw[:at] + bytes([0x7f] * n) + raw[at + n:]   # float32 0x7f7f7f7f ~ 3.4e38: finite, wrong
    path.write_bytes(damaged)


@pytest.fixture
def ckpt(tmp_path):
    model = build_model(SPEC, crossbar.preset("paper", out_noise_sigma=0.1), seed=0)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, SPEC, crossbar.preset("paper", out_noise_sigma=0.1), meta={"x": 1})
    return path, model


def test_checkpoint_with_flipped_weight_bytes_is_refused(ckpt):
    path, model = ckpt
    load_checkpoint(path)  # intact: loads
    _flip(path, model.state_dict()["rnn.weight_hh_l0"])
    with pytest.raises(ValueError, match=r"model\.pt: checksum mismatch .*changed or damaged"):
        load_checkpoint(path)


def test_checkpoint_non_finite_weights_refused_even_without_checksum(tmp_path):
    model = build_model(SPEC, None, seed=0)
    with torch.no_grad():
        model.head.weight[0, 0] = float("nan")
    path = tmp_path / "nan.pt"
    save_checkpoint(path, model, SPEC)
    with pytest.raises(ValueError, match=r"nan\.pt: weight 'head\.weight' has 1 non-finite value"):
        load_checkpoint(path)


@pytest.mark.parametrize("cut", ["empty", "half", "garbage", "folder", "missing"])
def test_unreadable_checkpoints_name_the_file(ckpt, cut):
    path, _ = ckpt
    raw = path.read_bytes()
    expect = {"empty": r"checkpoint is empty \(0 bytes\)", "half": r"checkpoint is damaged or truncated",
              "garbage": "checkpoint is damaged or truncated", "folder": "is a folder",
              "missing": "cannot read checkpoint: No such file"}[cut]
    if cut == "empty":
        path.write_bytes(b"")
    elif cut == "half":
        path.write_bytes(raw[: len(raw) // 2])
    elif cut == "garbage":
        path.write_bytes(b"hello world" * 10)
    elif cut == "folder":
        path.unlink()
        path.mkdir()
    else:
        path.unlink()
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {expect}") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_checkpoint_with_foreign_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "xbarsim.models.experiment/1", "obj": np.dtype("float64").__class__}, path)
    with pytest.raises(ValueError, match=r"evil\.pt: checkpoint refused: it holds objects other than tensors"):
        load_checkpoint(path)


def test_models_save_load_verifies_checksum(tmp_path):
    layer = models.AnalogLinear(5, 3, config=crossbar.preset("ideal"), seed=0)
    pt, js = models.save(layer, tmp_path / "lin.pt")
    assert len(json.loads(js.read_text())["sha256"]) == 64
    again = models.load(pt)
    torch.testing.assert_close(again.weight, layer.weight)
    _flip(pt, layer.weight, n=16)
    with pytest.raises(ValueError, match=r"lin\.pt: checksum mismatch"):
        models.load(pt)
    pt.write_bytes(b"")
    with pytest.raises(ValueError, match=r"lin\.pt: model weights is empty"):
        models.load(pt)
