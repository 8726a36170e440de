"""Type checks of a customer state's wire fields, each returning the field's value or
raising :class:`~engine.errors.StateDecodeError` naming the field; and the field tables
(:data:`WIRE_FIELDS`, :data:`OPTIONAL_WIRE_FIELDS`) that salvage uses."""

from __future__ import annotations

from collections.abc import Callable
from itertools import starmap
from typing import Any

from engine.errors import StateDecodeError
from engine.models.records import (
    _NUM,
    PendingFollowup,
    RecentDecision,
    SentRecord,
    Touch,
)

WIRE_VERSION = 1


# -- type checks of the wire fields: each returns the field's value or raises ---------------
# Per customer per batch, so they lean on C loops: ``"".join`` raises TypeError unless
# every item is a string, ``sum(..., 0.0)`` unless every item is a number (a bool counts,
# as in Python: harmless to the core). Consent stays strictly boolean (fail closed).
_BOOL = frozenset((bool,))
_LIST = frozenset((list,))
_BYTES = frozenset((bytes,))


def _bad(name: str, expected: str) -> StateDecodeError:
    return StateDecodeError(f"malformed field {name}: expected {expected}")


def check_wire_version(w: list[Any]) -> None:
    """Raise unless ``w`` starts with the wire version this code reads."""
    if not w:
        raise StateDecodeError("empty list")
    v = w[0]
    if type(v) is not int:
        raise StateDecodeError(f"not a customer state (wire version is a {type(v).__name__})")
    if v != WIRE_VERSION:
        newer = " (written by a newer release)" if v > WIRE_VERSION else ""
        raise StateDecodeError(f"unsupported wire version {v}{newer}")


def _string_keys(v: Any, name: str, expected: str) -> dict[str, Any]:
    if type(v) is not dict:
        raise _bad(name, expected)
    try:
        "".join(v)
    except TypeError:
        raise _bad(name, expected) from None
    return v


def _numbers(v: Any, name: str) -> dict[str, float]:
    expected = "a map of numbers"
    _string_keys(v, name, expected)
    try:
        sum(v.values(), 0.0)
    except TypeError:
        raise _bad(name, expected) from None
    return v  # type: ignore[no-any-return]


def _customer(v: Any) -> str:
    if type(v) is not str:
        raise _bad("customer", "a string")
    return v


def _version(v: Any) -> int:
    if type(v) is not int or v < 0:
        raise _bad("version", "a non-negative integer")
    return v


def _last_event(v: Any) -> float:
    if type(v) not in _NUM:
        raise _bad("last_event", "a number")
    return v  # type: ignore[no-any-return]


def _attributes(v: Any) -> dict[str, Any]:
    return _string_keys(v, "attributes", "a map with string keys")


def _consent(v: Any) -> dict[str, bool]:
    expected = "a map of booleans"
    _string_keys(v, "consent", expected)
    if not _BOOL.issuperset(map(type, v.values())):
        raise _bad("consent", expected)
    return v  # type: ignore[no-any-return]


def _counters(v: Any) -> dict[str, float]:
    return _numbers(v, "counters")


def _timestamps(v: Any) -> dict[str, float]:
    return _numbers(v, "timestamps")


def _contexts(v: Any) -> dict[str, float]:
    return _numbers(v, "contexts")


def _seen(v: Any) -> dict[str, float]:
    return _numbers(v, "seen")


def _windows(v: Any) -> dict[str, list[float]]:
    expected = "a map of lists of numbers"
    _string_keys(v, "windows", expected)
    try:
        for times in v.values():
            if type(times) is not list:
                raise TypeError
            sum(times, 0.0)
    except TypeError:
        raise _bad("windows", expected) from None
    return v  # type: ignore[no-any-return]


def _sets(v: Any) -> dict[str, dict[str, float]]:
    expected = "a map of sets (maps of member -> time)"
    _string_keys(v, "sets", expected)
    for members in v.values():
        _numbers(members, "sets")
    return v  # type: ignore[no-any-return]


_SCALARS = frozenset((str, int, float, bool))


def _maps(v: Any) -> dict[str, dict[str, list[Any]]]:
    expected = "a map of maps (key -> [value, time])"
    _string_keys(v, "maps", expected)
    for entries in v.values():
        _string_keys(entries, "maps", expected)
        for entry in entries.values():
            if not (type(entry) is list and len(entry) == 2 and type(entry[0]) in _SCALARS
                    and type(entry[1]) in _NUM):
                raise _bad("maps", expected)
    return v  # type: ignore[no-any-return]


_HISTORY = "a list of [message, channel, category, time] or [..., time, true] (held) records"


def _history(v: Any) -> list[SentRecord]:
    if type(v) is not list:
        raise _bad("history", _HISTORY)
    if v:
        if not _LIST.issuperset(map(type, v)):
            raise _bad("history", _HISTORY)
        try:  # by columns: rows of another length fail the strict zip or the unpacking
            messages, channels, categories, times = zip(*v, strict=True)
            "".join(messages), "".join(channels), "".join(categories), sum(times, 0.0)
        except (TypeError, ValueError):
            return _history_rows(v)  # some held entries (or a bad record): row by row
    return list(starmap(SentRecord, v))


def _history_rows(v: list[Any]) -> list[SentRecord]:
    """:func:`_history` one record at a time: a 5th element must be ``True`` (held)."""
    out: list[SentRecord] = []
    for h in v:
        if not ((len(h) == 4 or (len(h) == 5 and h[4] is True))
                and type(h[0]) is str and type(h[1]) is str and type(h[2]) is str
                and type(h[3]) in _NUM):
            raise _bad("history", _HISTORY)
        out.append(SentRecord(*h))
    return out


def _followups(v: Any) -> list[PendingFollowup]:
    expected = "a list of [rule, due time, event] or [rule, due time, event, key] records"
    if type(v) is not list:
        raise _bad("followups", expected)
    out: list[PendingFollowup] = []
    for f in v:
        if not (type(f) is list and (len(f) == 3 or (len(f) == 4 and type(f[3]) is str))
                and type(f[0]) is str and type(f[1]) in _NUM and type(f[2]) is dict):
            raise _bad("followups", expected)
        ev = f[2]
        _string_keys(ev, "followups", "events with string keys")
        # what the core reads of the event when the follow-up fires (Env, event age)
        if not (type(ev.get("data", _NO_DATA)) is dict
                and type(ev.get("at", 0)) in _NUM and type(ev.get("received", 0)) in _NUM):
            raise _bad("followups", "events with a data map and numeric times")
        out.append(PendingFollowup(*f))
    return out


def _touches(v: Any) -> list[Touch]:
    expected = "a list of [decision, rule, message, time, group, until] records"
    if type(v) is not list:
        raise _bad("touches", expected)
    out: list[Touch] = []
    for t in v:
        if not (type(t) is list and len(t) == 6 and type(t[0]) is str and type(t[1]) is str
                and type(t[2]) is str and type(t[3]) in _NUM and t[4] in _GROUPS
                and type(t[5]) in _NUM):
            raise _bad("touches", expected)
        out.append(Touch(*t))
    return out


def _bounced(v: Any) -> dict[str, float]:
    return _numbers(v, "bounced")


_GROUPS = ("sent", "holdout")
def _recent(v: Any) -> list[bytes | RecentDecision]:
    # packed records, left packed: a bad one is skipped by the view, it decides nothing
    if type(v) is not list or not _BYTES.issuperset(map(type, v)):
        raise _bad("recent", "a list of packed decisions (bytes)")
    return v


def _campaigns(v: Any) -> dict[str, float]:
    return _numbers(v, "campaigns")


def _engaged(v: Any) -> dict[str, list[list[float]]]:
    expected = "a map of channel -> [times opened, times clicked]"
    _string_keys(v, "engaged", expected)
    try:
        for kinds in v.values():
            if type(kinds) is not list or len(kinds) != 2 or not _LIST.issuperset(
                    map(type, kinds)):
                raise TypeError
            sum(kinds[0], 0.0), sum(kinds[1], 0.0)
    except TypeError:
        raise _bad("engaged", expected) from None
    return v  # type: ignore[no-any-return]


_NO_DATA: dict[str, Any] = {}
_LENGTH = 13  # WIRE_VERSION and the 12 fields every state has
_KNOWN = _LENGTH + 7  # and the optional ones (sets, touches, bounced, recent, maps,
# campaigns, engaged); then a newer release's elements
#: how many of WIRE_FIELDS every state has (the optional ones follow them)
REQUIRED_FIELDS = _LENGTH - 1

#: The fields after the wire version, in order, with their checks (used to salvage).
WIRE_FIELDS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("customer", _customer),
    ("version", _version),
    ("attributes", _attributes),
    ("consent", _consent),
    ("counters", _counters),
    ("windows", _windows),
    ("timestamps", _timestamps),
    ("contexts", _contexts),
    ("history", _history),
    ("seen", _seen),
    ("followups", _followups),
    ("last_event", _last_event),
)

#: Fields appended after :data:`WIRE_FIELDS` (WIRE.md): a state may end before any of them.
OPTIONAL_WIRE_FIELDS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("sets", _sets),
    ("touches", _touches),
    ("bounced", _bounced),
    ("recent", _recent),
    ("maps", _maps),
    ("campaigns", _campaigns),
    ("engaged", _engaged),
)

