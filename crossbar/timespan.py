"""The time span a calibrated device model was measured over, and a warning for times beyond it.

``xbarsim calibrate`` writes ``calibration.time_span_s = [t_first, t_last]`` into the
device-model JSON: the physical times since programming of the first and the last read
(room-temperature-equivalent when the data held bakes). A crossbar time ``t_s`` counts
from the first read (physical time ``t0 + t_s``), so a deployment at ``t_s`` is
extrapolation when ``t0 + t_s > t_last``. Standard library and json only.

    >>> time_span_warning("pcm", [0.0, 3600.0]) is None     # a named preset: nothing to say
    True
"""
from __future__ import annotations

import json
import os

__all__ = ["measured_time_span", "time_span_warning"]


def measured_time_span(preset: str | os.PathLike) -> tuple[float, float] | None:
    """``(t_first_s, t_last_s)`` recorded in a device-model JSON, or None (a named preset, a
    file without a calibration block or without a span, an unreadable file)."""
    path = os.fspath(preset)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        span = doc["calibration"]["time_span_s"]
        lo, hi = float(span[0]), float(span[1])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return (lo, hi) if 0 < lo <= hi else None


def time_span_warning(preset: str | os.PathLike, times_s) -> str | None:
    """A one-line warning when deployment times ``times_s`` (crossbar's t_s, seconds after
    the first read) reach beyond the span the device model was measured over; else None.

    Args:
        preset: a preset name or a device-model JSON path (only a JSON with
            ``calibration.time_span_s`` can warn).
        times_s: deployment times in s (crossbar ``t_s``: physical time minus t0).

    Returns:
        e.g. ``"t_s = 3.15e+07 s is 38x beyond the measured time span (reads up to 8.3e+05 s
        after programming): the drift law is extrapolated"``, or None.
    """
    span = measured_time_span(preset)
    if span is None:
        return None
    t_first, t_last = span
    beyond = [float(t) for t in times_s if t_first + float(t) > t_last * (1 + 1e-9)]
    if not beyond:
        return None
    worst = max(beyond)
    factor = (t_first + worst) / t_last
    which = ", ".join(f"{t:g}" for t in beyond)
    return (f"t_s = {which} s reach beyond the measured time span of {os.fspath(preset)} (reads from {t_first:.3g} "
            f"to {t_last:.3g} s after programming; the latest asked is {factor:.3g}x the last read): the drift law "
            "is extrapolated there")
