"""study.results helpers: the real PNG writer, level formatting, result JSON."""
from __future__ import annotations

import json
import math
import struct

import numpy as np

from study.results import level_text, write_json


def test_save_png_writes_a_tight_120_dpi_png_atomically(real_save_png, tmp_path):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    real_save_png(fig, tmp_path / "f.png")
    plt.close(fig)
    data = (tmp_path / "f.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    # 4 x 3 inches at 120 dpi is 480 x 360 px; the tight box trims the margins but keeps the axes
    assert 0.7 * 480 < width < 480 and 0.7 * 360 < height < 360, (width, height)
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]  # no temp file left


def test_level_text():
    assert [level_text(v) for v in (0.0, 0.1, 20.0, math.inf, -math.inf)] == ["0", "0.1", "20", "inf", "-inf"]
    assert level_text(0.1 + 1e-12, exact=True) == repr(0.1 + 1e-12) and level_text(0.1) == "0.1"


def test_write_json_accepts_numpy_and_infinity(tmp_path):
    write_json(tmp_path / "r.json", {"a": np.arange(2), "b": np.float32(0.5), "c": math.inf})
    text = (tmp_path / "r.json").read_text()
    assert text.endswith("\n") and '"c": Infinity' in text
    assert json.loads(text) == {"a": [0, 1], "b": 0.5, "c": math.inf}
