"""The ``xbarsim`` console script: one entry point, one subcommand per package.

    xbarsim train|sweep|deploy ...   -> study.cli       (also ``python -m study``)
    xbarsim calibrate ...            -> calibration.cli (also ``python -m calibration``)
    xbarsim bench mvm|rnn ...        -> benchmarks      (also ``python -m benchmarks``)

Each subcommand's module is imported only when it is asked for, so ``xbarsim --help``
is instant and ``xbarsim calibrate`` never loads torch. Thread pools are set here, before
a command runs (:func:`xbarsim.threads.init_from_env`), not by importing a package; the
``python -m <package>`` mains do the same through :func:`run`.
"""
from __future__ import annotations

import importlib
import sys

from collections.abc import Callable

from . import __version__

#: subcommand -> (module, function, one-line help)
_COMMANDS = {
    "train": ("study.cli", "train_main", "train an analog RNN with Deep Noise Injection"),
    "sweep": ("study.cli", "sweep_main", "train over sigma_train, evaluate over sigma_val; heatmaps and summary.csv"),
    "deploy": ("study.cli", "deploy_main", "program a trained model onto a device and evaluate over time"),
    "calibrate": ("calibration.cli", "main", "fit a device noise model from measured data"),
    "bench": ("benchmarks.__main__", "main", "kernel, RNN and energy benchmarks (bench mvm | rnn | energy)"),
}


def _usage() -> str:
    lines = [f"usage: xbarsim <command> [options]    (xbarsim {__version__})", "", "commands:"]
    for name, (_, _, text) in _COMMANDS.items():
        lines.append(f"  {name:<10} {text}")
    lines += ["", "Run 'xbarsim <command> --help' for the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``xbarsim <command> ...`` to the command's ``main(argv) -> int``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    name = argv[0]
    if name not in _COMMANDS:
        print(f"xbarsim: unknown command {name!r}; expected one of {', '.join(_COMMANDS)}", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    module, func, _ = _COMMANDS[name]
    return run(lambda args: getattr(importlib.import_module(module), func)(args), argv[1:], prog=f"xbarsim {name}")


def run(entry: Callable[[list[str]], int | None], argv: list[str] | None = None, *, prog: str = "xbarsim") -> int:
    """Run one command's ``entry(argv) -> int`` after the entry-point thread setup.

    The setup (:func:`xbarsim.threads.init_from_env`) gives numpy's BLAS
    ``XBARSIM_BLAS_THREADS`` threads (default 1); a bad value is a one-line error, exit 2.
    A Ctrl-C the command does not handle itself ends in one line and exit status 130.

    Args:
        entry: the command's main function.
        argv: its arguments (default ``sys.argv[1:]``).
        prog: the name used in the error message.
    """
    from .threads import init_from_env

    try:
        init_from_env()
    except ValueError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(entry(list(sys.argv[1:] if argv is None else argv)) or 0)
    except KeyboardInterrupt:  # a command that does not handle Ctrl-C itself: one line, not a traceback
        print(f"{prog}: interrupted (Ctrl-C); nothing more was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
