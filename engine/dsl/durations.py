"""Human durations ("30m", "1h30m", "7d") used in rule files and expressions."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")
MAX_DURATION = 36500 * 86400.0  # a century: event time plus any duration stays a valid date


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration. Numbers are taken as seconds. Raises ValueError when malformed."""
    if isinstance(text, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(text, int | float):
        if text < 0 or (isinstance(text, float) and math.isnan(text)):
            raise ValueError("a duration must be a number of seconds, not negative")
        seconds = float(text) if text <= MAX_DURATION else math.inf  # no float() of a huge int
    else:
        compact = text.replace(" ", "")
        if not _WHOLE.match(compact):
            raise ValueError(
                f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d, w), "
                "e.g. '30m'"
            )
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(compact))
    if not seconds <= MAX_DURATION:  # also NaN
        raise ValueError(f"duration {text!r} is longer than a century (36500d)")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration, for messages and explain output."""
    if seconds == 0:
        return "0s"
    out = []
    rest = seconds
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if rest >= size:
            n = int(rest // size)
            out.append(f"{n}{unit}")
            rest -= n * size
    if rest > 1e-9:
        out.append(f"{round(rest * 1000)}ms")
    return "".join(out)
