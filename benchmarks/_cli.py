"""Argument checks shared by the benchmark command lines (``xbarsim bench mvm|rnn``).

Failures go through ``parser.error``: argparse's usage line, the message, exit status 2.
"""
from __future__ import annotations

import argparse

__all__ = ["require_at_least"]


def require_at_least(parser: argparse.ArgumentParser, args: argparse.Namespace, low: int, *names: str) -> None:
    """Exit via ``parser.error`` if an option in ``names`` (dest names) is below ``low``; None values pass.

    Example:
        >>> require_at_least(parser, args, 1, "rows", "cols", "batch")
        # --rows 0 -> "error: argument --rows: expected an integer >= 1, got 0", exit status 2
    """
    for name in names:
        value = getattr(args, name)
        if value is not None and value < low:
            parser.error(f"argument --{name.replace('_', '-')}: expected an integer >= {low}, got {value}")
