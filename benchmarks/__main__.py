"""``python -m benchmarks mvm|rnn|energy|normals|... [options]`` (same as ``xbarsim bench ...``)."""
from __future__ import annotations

import importlib
import sys

_BENCHES = {
    "mvm": ("benchmarks.mvm", "noisy MVM kernel vs clean BLAS matmul, per-cell path, plain torch, aihwkit"),
    "rnn": ("benchmarks.rnn", "analog LSTM, GRU, RNN training step and inference vs their torch twins and aihwkit"),
    "energy": ("benchmarks.energy", "chip presets' predicted TOPS/W vs their published figures (crossbar.energy)"),
    "normals": ("benchmarks.normals", "ns per standard normal: crossbar's Box-Muller and ziggurat, numpy, torch"),
    "irdrop": ("benchmarks.irdrop", "IR drop: MNIST LSTM accuracy vs wire resistance, fast read-noise error"),
    "reproduce": ("benchmarks.reproduce", "the paper on row-by-row MNIST and past it (docs/REPRODUCTION.md)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: xbarsim bench {{{','.join(_BENCHES)}}} [options]\n")
        for name, (_, text) in _BENCHES.items():
            print(f"  {name:<9} {text}")
        print("\nRun 'xbarsim bench mvm --help' for the options of one benchmark.")
        return 0
    if argv[0] not in _BENCHES:
        print(f"xbarsim bench: unknown benchmark {argv[0]!r}; expected one of {', '.join(_BENCHES)}", file=sys.stderr)
        return 2
    return int(importlib.import_module(_BENCHES[argv[0]][0]).main(argv[1:]) or 0)


if __name__ == "__main__":
    from xbarsim.cli import run

    sys.exit(run(main, prog="python -m benchmarks"))
