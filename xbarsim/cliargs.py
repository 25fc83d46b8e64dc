"""argparse types shared by every xbarsim command, each with an expected-vs-got message.

    >>> import argparse
    >>> from xbarsim.cliargs import int_at_least
    >>> p = argparse.ArgumentParser(); _ = p.add_argument("--workers", type=int_at_least(1))
    >>> p.parse_args(["--workers", "2"]).workers
    2
"""
from __future__ import annotations

import argparse
import math
from typing import Callable

__all__ = ["int_at_least", "positive_int", "nonneg_int", "positive_float", "nonneg_float", "float_list"]


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {v}")
        return v

    parse.__name__ = f"integer >= {low}"
    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def _float(text: str, what: str, ok: Callable[[float], bool]) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(v) or not ok(v):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return v


def positive_float(text: str) -> float:
    """An argparse type: a finite float > 0."""
    return _float(text, "a finite number > 0", lambda v: v > 0)


def nonneg_float(text: str) -> float:
    """An argparse type: a finite float >= 0."""
    return _float(text, "a finite number >= 0", lambda v: v >= 0)


def float_list(text: str) -> list[float]:
    """An argparse type: a comma-separated list of finite floats (``inf`` allowed), at least one."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    out = []
    for t in items:
        try:
            v = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma list of numbers, got {text!r}") from None
        if math.isnan(v):
            raise argparse.ArgumentTypeError(f"expected a comma list of numbers, got {text!r} (NaN)")
        out.append(v)
    if not out:
        raise argparse.ArgumentTypeError(f"expected a comma list of numbers, got {text!r}")
    return out
