"""xbarsim: the console script and the helpers every package shares.

Standard library only, and no work at import: ``crossbar``, ``calibration``, ``models``,
``study`` and ``benchmarks`` may all import from here; this package imports none of them
except lazily, inside :func:`xbarsim.cli.main`, to dispatch a subcommand.

- :mod:`xbarsim.cli`: the ``xbarsim`` console script (subcommand dispatcher).
- :mod:`xbarsim.files`: atomic writes (temp file in the same folder, fsync, ``os.replace``).
- :mod:`xbarsim.cliargs`: argparse types with expected-vs-got messages.
- :mod:`xbarsim.threads`: thread-pool setup for entry points and library users (nothing runs at import).
- :func:`version`: the installed distribution's version.
"""
from __future__ import annotations

__all__ = ["__version__", "version", "main"]

#: the version of this source tree (pyproject.toml's [project] version)
__version__ = "0.1.0"


def version() -> str:
    """The xbarsim version string (same as :data:`__version__`)."""
    return __version__


def main(argv: list[str] | None = None) -> int:
    """The ``xbarsim`` console script; see :mod:`xbarsim.cli`."""
    from .cli import main as _main

    return _main(argv)
