"""Pack constants: ``constants: {sla: 4h, vip_threshold: 500}``, defined once, used by name.

In expressions a constant is ``const.<name>``, typed and inlined at compile time (no cost
per event); a duration constant reads as its seconds there, as ``duration('4h')`` does.
Wherever a duration is expected (``after``, ``ttl``, ``window``, ``cooldown``, ...), a
duration constant may be named instead: ``after: sla`` (or ``after: const.sla``).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from engine.dsl.compiler import MAX_INT, MAX_STRING
from engine.dsl.durations import parse_duration

Kind = Literal["duration", "int", "float", "str", "bool"]

_DURATION_TEXT = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")
_NAME = re.compile(r"^(?:const\.)?([a-z][a-z0-9_]*)$")


@dataclass(frozen=True, slots=True)
class PackConstant:
    name: str
    kind: Kind
    value: Any  # what an expression sees: seconds for a duration

    @property
    def expr_type(self) -> str:
        return "float" if self.kind == "duration" else self.kind


def compile_constant(name: str, raw: Any) -> PackConstant:
    """A constant from its YAML value. Raises ValueError with the reason when it cannot be one.

    A string spelled as a duration ('4h', '1h30m', '2d 12h') is one; other strings are text.
    """
    if isinstance(raw, bool):
        return PackConstant(name, "bool", raw)
    if isinstance(raw, int):
        if abs(raw) > MAX_INT:
            raise ValueError(f"integer constant larger than 2**53: {raw}")
        return PackConstant(name, "int", raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError("number constant out of range")
        return PackConstant(name, "float", raw)
    if isinstance(raw, str):
        if _DURATION_TEXT.match(raw.replace(" ", "")):
            return PackConstant(name, "duration", parse_duration(raw))
        if len(raw) > MAX_STRING:
            raise ValueError(f"string constant longer than {MAX_STRING} characters")
        return PackConstant(name, "str", raw)
    raise ValueError(
        "a constant is a duration ('4h'), a number, a string or true/false, "
        f"not {type(raw).__name__}"
    )


def expression_scope(constants: dict[str, PackConstant]) -> dict[str, tuple[Any, str]]:
    """What the expression compiler needs of the constants: value and type by name."""
    return {name: (c.value, c.expr_type) for name, c in constants.items()}


def duration_value(value: str | int | float, constants: dict[str, PackConstant]) -> float:
    """Seconds in a duration field: a duration, a number of seconds, or a duration constant's
    name. Raises ValueError with the reason (an unknown name gets a did-you-mean)."""
    named = _NAME.match(value) if isinstance(value, str) else None
    if named is None:
        return parse_duration(value)
    name = named.group(1)
    found = constants.get(name)
    if found is None:
        close = difflib.get_close_matches(name, list(constants), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else " (define it under constants:)"
        raise ValueError(f"unknown constant '{name}' where a duration is expected{hint}")
    if found.kind != "duration":
        what = {"int": "a number", "float": "a number", "str": "text", "bool": "true/false"}
        raise ValueError(
            f"constant '{name}' is {what[found.kind]}, not a duration: "
            "give it a unit, e.g. '30m', '4h', '7d'"
        )
    seconds: float = found.value
    return seconds
