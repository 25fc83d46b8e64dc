"""The cases of the legacy bit-identity test (tests/models/test_normal_generator.py).

Each case runs layers of the paper preset with ``normal_generator="legacy"`` and returns
the sha256 of the float bytes it produced (outputs, gradients and parameters after SGD
steps; direct reads). tests/models/data/legacy_hashes.json holds the hashes of these cases
recorded at main db17582 (before models knew about ``normal_generator``), with
``python -m tests.models.legacy_cases OUT.json``.
"""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import torch

import crossbar
import models
from models import functional as Fn


def _cfg(**kw):
    return crossbar.preset("paper", normal_generator="legacy", **kw)


def _hash(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(np.ascontiguousarray(t.detach().numpy()).tobytes())
    return h.hexdigest()


def canary() -> str:
    """Hash of plain torch ops of the cases' shapes (no noise): if it differs from the
    recorded one, this machine's BLAS/vector math rounds differently and the bit-identity
    cases cannot be compared."""
    g = torch.Generator().manual_seed(0)
    out = []
    for dt in (torch.float32, torch.float64):
        a = torch.rand(24, 5, generator=g, dtype=dt)
        w = torch.rand(20, 5, generator=g, dtype=dt)
        y = a @ w.t()
        out += [y, y.sigmoid(), y.tanh(), torch.dot(y.reshape(-1), y.reshape(-1)).reshape(1),
                torch.rand(6, 4, 5, generator=g, dtype=dt).reshape(-1, 5).t().mm(torch.rand(24, 20, generator=g, dtype=dt))]
    return _hash(out)


def _train(cls, noise_draw: str, dtype, conv: str, level: float, **kw) -> str:
    torch.manual_seed(31)
    layer = cls(3, 5, num_layers=2, bidirectional=True, dtype=dtype,
                config=_cfg(out_noise_sigma=level, out_noise_convention=conv), noise_draw=noise_draw, seed=7, **kw)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    x = torch.randn(6, 4, 3, dtype=dtype)
    seen = []
    for _ in range(2):
        opt.zero_grad()
        out, hn = layer(x)
        hn = hn[0] if isinstance(hn, tuple) else hn
        (out.square().sum() + hn.sum()).backward()
        seen += [out, hn]
        opt.step()
    return _hash(seen + [p for p in layer.parameters()])


def _reads(noise_draw: str, conv: str) -> str:
    torch.manual_seed(32)
    w = torch.randn(7, 4)
    cfg = _cfg(out_noise_sigma=0.4 if conv != "snr_db" else 6.0, out_noise_convention=conv)
    prog = crossbar.program(w.numpy(), Fn.read_config(cfg), seed=0)
    r = Fn.MatrixReader(prog, cfg, noise_draw, 3, 5, torch.Generator().manual_seed(3), np.random.default_rng(0),
                        None, 7)
    x = torch.randn(3, 5, 4)
    ys = [r(x[t:t + 1], t) for t in range(3)]
    r2 = Fn.MatrixReader(prog, cfg, noise_draw, 3, 5, torch.Generator().manual_seed(4), np.random.default_rng(0),
                         None, 7)
    ys.append(r2(x, 0))  # a multi-step read
    return _hash(ys)


def _cells_and_linear() -> str:
    torch.manual_seed(33)
    cfg = _cfg(out_noise_sigma=0.2)
    out = []
    x = torch.randn(4, 3)
    for cls in (models.AnalogLSTMCell, models.AnalogGRUCell, models.AnalogRNNCell):
        cell = cls(3, 5, config=cfg, seed=1)
        y = cell(x)
        out += list(y) if isinstance(y, tuple) else [y]
    lin = models.AnalogLinear(3, 6, config=cfg, seed=2)
    out.append(lin(torch.randn(2, 4, 3)))
    return _hash(out)


def _bench_size(cls) -> str:
    """One SGD step at the size of ``xbarsim bench rnn`` (28 -> 128, T 28, B 64, float32)."""
    torch.manual_seed(34)
    layer = cls(28, 128, config=_cfg(out_noise_sigma=0.1), seed=5)
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    x = torch.randn(28, 64, 28)
    out, _ = layer(x)
    out[-1].square().sum().backward()
    opt.step()
    return _hash([out] + [p for p in layer.parameters()])


def cases() -> dict[str, str]:
    """name -> sha256 of every legacy case."""
    res = {"canary": canary()}
    for cls in (models.AnalogLSTM, models.AnalogGRU, models.AnalogRNN):
        for nd in Fn.NOISE_DRAWS:
            res[f"{cls.__name__}/{nd}/relative/f32"] = _train(cls, nd, torch.float32, "relative", 0.1)
        res[f"{cls.__name__}/mvm/absolute/f64"] = _train(cls, "mvm", torch.float64, "absolute", 0.2)
        res[f"{cls.__name__}/mvm/snr_db/f32"] = _train(cls, "mvm", torch.float32, "snr_db", 10.0)
    for nd in Fn.NOISE_DRAWS:
        for conv in ("relative", "absolute", "snr_db"):
            res[f"reads/{nd}/{conv}"] = _reads(nd, conv)
    res["cells_and_linear"] = _cells_and_linear()
    for cls in (models.AnalogLSTM, models.AnalogGRU, models.AnalogRNN):
        res[f"{cls.__name__}/bench_size"] = _bench_size(cls)
    return res


if __name__ == "__main__":
    torch.set_num_threads(1)
    with open(sys.argv[1], "w") as f:
        json.dump(cases(), f, indent=1, sort_keys=True)
        f.write("\n")
