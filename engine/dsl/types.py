"""Static types of the expression language, and the scope an expression is checked in.

Types are checked when a rule is compiled, not when it runs: a rule that compares a
destination with a number, or reads a field no trigger event declares, is rejected at load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Type = Literal["str", "int", "float", "number", "bool", "time", "list", "map", "any", "null"]

DECLARABLE: tuple[Type, ...] = (
    "str",
    "int",
    "float",
    "number",
    "bool",
    "time",
    "list",
    "map",
    "any",
)
NUMERIC: frozenset[str] = frozenset({"int", "float", "number"})


def is_numeric(t: str) -> bool:
    return t in NUMERIC


def join(a: str, b: str) -> str:
    """The narrowest type that covers both (used for if/else, coalesce, multi-trigger fields)."""
    if a == b:
        return a
    if a == "null":
        return b
    if b == "null":
        return a
    if a in NUMERIC and b in NUMERIC:
        return "number"
    return "any"


def comparable(a: str, b: str) -> bool:
    """Whether ordering (<, <=, >, >=) between these types makes sense."""
    if "any" in (a, b) or "null" in (a, b):
        return True
    if a in NUMERIC and b in NUMERIC:
        return True
    return a == b and a in ("str", "time")


def equatable(a: str, b: str) -> bool:
    if "any" in (a, b) or "null" in (a, b) or a == b:
        return True
    return bool(a in NUMERIC and b in NUMERIC)


@dataclass(frozen=True, slots=True)
class Scope:
    """What an expression may name, with the types of every known field.

    ``event_data`` maps field -> type for the data of the trigger event types
    (None when at least one trigger type declares no schema: then any field is allowed).
    """

    event_data: dict[str, str] | None = field(default_factory=dict)
    attributes: dict[str, str] | None = field(default_factory=dict)
    counters: frozenset[str] = frozenset()
    windows: frozenset[str] = frozenset()
    timestamps: frozenset[str] = frozenset()
    contexts: frozenset[str] = frozenset()
    keyed_contexts: frozenset[str] = frozenset()  # those with a key: (context_active)
    sets: frozenset[str] = frozenset()  # declared sets: customer.sets.<name>
    maps: Mapping[str, str] = field(default_factory=dict)  # declared map -> its value type
    keyed_counters: frozenset[str] = frozenset()  # kept per key too: counter(name, key)
    keyed_timestamps: frozenset[str] = frozenset()  # timestamp(name, key)
    channels: frozenset[str] = frozenset()
    messages: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    # pack constants (``const.name``): name -> (the value inlined, its type)
    constants: Mapping[str, tuple[Any, str]] = field(default_factory=dict)
    has_event: bool = True  # False for expressions evaluated with no event (none today)
