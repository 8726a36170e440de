"""Faults: what raised while deciding, and the reasons that make such a decision fail closed.

A rule condition that raises means the rule does not fire; a policy whose condition raises
holds (``policy_error``); a message param that raises, or is not a JSON value, suppresses
the decision (``param_error``). Each is a :class:`RuleFault`: counted by the worker in
``tact_rule_faults_total{rule}``, logged, and shown by ``tact simulate`` and ``tact explain``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

POLICY_ERROR = "policy_error"
PARAM_ERROR = "param_error"

_MAX_ERROR = 200  # characters of an exception's text kept: it may quote event data
_MAX_NESTING = 32
_INT_LIMIT = 2**63  # orjson writes 64-bit integers only


@dataclass(slots=True)
class RuleFault:
    """Something in the pack raised at run time: counted, and the customer got silence.

    ``rule`` is the metric label: a rule id, ``policy:<id>``, ``quiet_hours``,
    ``event_time``, ``update`` or ``context`` (all bounded by the pack).
    """

    rule: str
    event_id: str
    error: str


def describe(exc: BaseException) -> str:
    """An exception as one short line for a fault: its type and the start of its text."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def json_value(v: Any, depth: int = 0) -> bool:
    """Whether ``v`` can go out in a decision unchanged: JSON with finite numbers, 64-bit ints
    and valid UTF-8 text.

    NaN and infinity would be written as null; a larger int, or a string with a lone
    surrogate (the fuzz tests found one), would fail to serialise.
    """
    t = type(v)
    if t is str:
        return v.isascii() or _utf8(v)
    if t is bool or v is None:
        return True
    if t is int:
        return bool(-_INT_LIMIT <= v < _INT_LIMIT)
    if t is float:
        return math.isfinite(v)
    if depth >= _MAX_NESTING:
        return False
    if isinstance(v, list | tuple):
        return all(json_value(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(type(k) is str and json_value(k) and json_value(x, depth + 1)
                   for k, x in v.items())
    return False


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
