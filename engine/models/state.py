"""Per-customer state: what the engine knows about one customer between events.

The hot path works on plain slotted dataclasses; msgpack carries them between the
engine and the store as compact lists (``to_wire``/``from_wire``). Times are epoch seconds.

Wire compatibility. The list starts with ``WIRE_VERSION``, then the :data:`WIRE_FIELDS` in
order. A newer release may *append* elements without bumping the version: this code keeps
them (``CustomerState.extra``) and writes them back after its own, so a rolling upgrade or
a rollback loses nothing. Any other change (a field removed, retyped or reordered, a record
shape changed) bumps ``WIRE_VERSION``; a list starting with any other version is foreign,
and ``from_wire`` refuses it, as it refuses a list with fields missing or of the wrong type
(:class:`~engine.errors.StateDecodeError`): a value of a wrong type must not reach the
core and crash it later. Attribute values and a follow-up's event data are left as they
are below the top level (expressions already guard the types of event data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import starmap
from typing import Any

import msgpack

from engine.errors import StateDecodeError

WIRE_VERSION = 1


@dataclass(slots=True)
class SentRecord:
    """One message that went out (or was deferred): the basis of caps and cooldowns."""

    message: str
    channel: str
    category: str
    at: float


@dataclass(slots=True)
class Touch:
    """The last touch of a goal-bearing message: the moment it was sent, or would have been
    but for the holdout, kept until its goal window ends (``until``)."""

    decision: str  # the decision id (of the first channel it went on)
    rule: str
    message: str
    at: float
    group: str  # "sent" or "holdout"
    until: float


@dataclass(slots=True)
class RecentDecision:
    """One of a customer's last decisions, kept for the single customer view (reasons only:
    traces exist only in explain mode).

    A decision made in this batch is kept as this object (cheap: a pack may make a hundred
    per event, of which 20 are kept); it is packed (msgpack bytes) only when the state is
    encoded, and a decoded state holds the bytes: only the view unpacks them.
    """

    id: str
    at: float  # the decision's moment (event time)
    rule: str
    message: str
    channel: str
    outcome: str  # "sent" or "suppressed"
    reasons: list[str]

    def pack(self) -> bytes:
        packed: bytes = msgpack.packb([self.id, self.at, self.rule, self.message, self.channel,
                                       self.outcome, self.reasons], use_bin_type=True)
        return packed

    @classmethod
    def unpack(cls, packed: bytes) -> RecentDecision | None:
        """The decision ``packed`` holds; None if it is not one (the view skips it)."""
        try:
            record = msgpack.unpackb(packed, raw=False)
        except Exception:  # msgpack raises several types on garbage
            return None
        if not (type(record) is list and len(record) == 7 and type(record[1]) in _NUM
                and all(type(record[i]) is str for i in (0, 2, 3, 4))
                and record[5] in _OUTCOMES and type(record[6]) is list
                and all(type(why) is str for why in record[6])):
            return None
        return cls(*record)


#: How many decisions ``CustomerState.recent`` keeps: the oldest goes first.
RECENT_DECISIONS = 20


@dataclass(slots=True)
class PendingFollowup:
    """A follow-up waiting for its time, unless a cancelling event comes first."""

    rule: str
    due: float
    event: dict[str, Any]  # the trigger event's expression view, frozen at schedule time
    key: str | None = None  # a keyed rule's instance (the quote id...): one pending per key


#: Between a context's name and its instance key in ``CustomerState.contexts``: a keyed
#: context's instance is the entry ``name + KEY_SEP + key`` (names never hold it).
KEY_SEP = "\x1f"
MAX_KEY_LENGTH = 200


def instance_key(value: Any) -> str | None:
    """The instance key a key expression's value names: text as is, a whole number as its
    digits; None (no instance) for null, other types and text longer than MAX_KEY_LENGTH."""
    if isinstance(value, str):
        return value if len(value) <= MAX_KEY_LENGTH else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return None


@dataclass(slots=True)
class CustomerState:
    customer: str
    version: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, bool] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    windows: dict[str, list[float]] = field(default_factory=dict)
    timestamps: dict[str, float] = field(default_factory=dict)
    contexts: dict[str, float] = field(default_factory=dict)  # name[KEY_SEP key] -> expires
    history: list[SentRecord] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)  # event id -> event time (dedupe)
    followups: list[PendingFollowup] = field(default_factory=list)
    last_event: float = 0.0
    extra: tuple[Any, ...] = ()  # wire elements a newer release appended, written back as is
    # optional wire fields, appended in this order (WIRE.md); an older state has none:
    # declared sets (``sets:``): name -> member -> event time it was last added
    sets: dict[str, dict[str, float]] = field(default_factory=dict)
    touches: list[Touch] = field(default_factory=list)  # per goal-bearing message, the last
    bounced: dict[str, float] = field(default_factory=dict)  # channel -> hard bounce time
    # the last decisions (the single customer view): packed bytes, or this batch's objects
    recent: list[bytes | RecentDecision] = field(default_factory=list)

    def remember(self, decision: RecentDecision) -> None:
        """Keep ``decision`` among the last :data:`RECENT_DECISIONS` (the oldest goes)."""
        recent = self.recent
        recent.append(decision)
        if len(recent) > RECENT_DECISIONS:
            del recent[0]

    def next_due(self) -> float | None:
        return min((f.due for f in self.followups), default=None)

    # -- wire form (msgpack-friendly: lists and dicts of scalars only) --------------
    def to_wire(self) -> list[Any]:
        wire = [
            WIRE_VERSION,
            self.customer,
            self.version,
            self.attributes,
            self.consent,
            self.counters,
            self.windows,
            self.timestamps,
            self.contexts,
            [[h.message, h.channel, h.category, h.at] for h in self.history],
            self.seen,
            [[f.rule, f.due, f.event] if f.key is None else [f.rule, f.due, f.event, f.key]
             for f in self.followups],
            self.last_event,
        ]
        # the optional fields, up to the last one that holds something (all of them when a
        # newer release's elements follow): an older state reads the same
        optional: list[Any] = [self.sets, self.touches, self.bounced, self.recent]
        n = len(optional) if self.extra else next(
            (i + 1 for i in range(len(optional) - 1, -1, -1) if optional[i]), 0)
        if n:
            if n > 1 and self.touches:
                optional[1] = [[t.decision, t.rule, t.message, t.at, t.group, t.until]
                               for t in self.touches]
            elif n > 1:
                optional[1] = []
            if n > 3:
                optional[3] = [r if type(r) is bytes else r.pack()  # type: ignore[union-attr]
                               for r in self.recent]
            wire.extend(optional[:n])
        if self.extra:
            wire.extend(self.extra)
        return wire

    @classmethod
    def from_wire(cls, w: Any) -> CustomerState:
        """The state ``to_wire`` gave, types checked (raises :class:`StateDecodeError`).

        Every state is checked, once per batch: the common case runs the checks inline in
        one ``try``; any failure goes to :meth:`_checked`, which finds and names the field.
        """
        if type(w) is not list or len(w) < _LENGTH or type(w[0]) is not int \
                or w[0] != WIRE_VERSION:
            return cls._checked(w)
        (_, customer, version, attributes, consent, counters, windows, timestamps, contexts,
         history, seen, followups, last_event) = w[:_LENGTH]
        try:
            if not (type(customer) is str and type(version) is int and version >= 0
                    and type(attributes) is dict and type(consent) is dict
                    and type(counters) is dict and type(windows) is dict
                    and type(timestamps) is dict and type(contexts) is dict
                    and type(seen) is dict and type(last_event) in _NUM
                    and _BOOL.issuperset(map(type, consent.values()))
                    and _LIST.issuperset(map(type, windows.values()))):
                raise TypeError
            "".join(attributes), "".join(consent), "".join(counters), "".join(windows)
            "".join(timestamps), "".join(contexts), "".join(seen)
            sum(counters.values(), 0.0), sum(timestamps.values(), 0.0)
            sum(contexts.values(), 0.0), sum(seen.values(), 0.0)
            for times in windows.values():
                sum(times, 0.0)
            records = _history(history)
            pending = _followups(followups) if followups or type(followups) is not list else []
            n = len(w)
            sets = _sets(w[_LENGTH]) if n > _LENGTH else {}
            touches = _touches(w[_LENGTH + 1]) if n > _LENGTH + 1 else []
            bounced = _bounced(w[_LENGTH + 2]) if n > _LENGTH + 2 else {}
            recent = _recent(w[_LENGTH + 3]) if n > _LENGTH + 3 else []
        except (TypeError, StateDecodeError):
            return cls._checked(w)
        return cls(customer, version, attributes, consent, counters, windows, timestamps,
                   contexts, records, seen, pending, last_event, tuple(w[_KNOWN:]), sets,
                   touches, bounced, recent)

    @classmethod
    def _checked(cls, w: Any) -> CustomerState:
        """:meth:`from_wire` field by field: the error names the first bad field."""
        if type(w) is not list:
            raise StateDecodeError(f"expected a list, got {type(w).__name__}")
        check_wire_version(w)
        if len(w) < _LENGTH:
            raise StateDecodeError(f"truncated: {len(w)} of {_LENGTH} elements")
        return cls(
            customer=_customer(w[1]),
            version=_version(w[2]),
            attributes=_attributes(w[3]),
            consent=_consent(w[4]),
            counters=_counters(w[5]),
            windows=_windows(w[6]),
            timestamps=_timestamps(w[7]),
            contexts=_contexts(w[8]),
            history=_history(w[9]),
            seen=_seen(w[10]),
            followups=_followups(w[11]),
            last_event=_last_event(w[12]),
            extra=tuple(w[_KNOWN:]),
            sets=_sets(w[_LENGTH]) if len(w) > _LENGTH else {},
            touches=_touches(w[_LENGTH + 1]) if len(w) > _LENGTH + 1 else [],
            bounced=_bounced(w[_LENGTH + 2]) if len(w) > _LENGTH + 2 else {},
            recent=_recent(w[_LENGTH + 3]) if len(w) > _LENGTH + 3 else [],
        )


# -- type checks of the wire fields: each returns the field's value or raises ---------------
# Per customer per batch, so they lean on C loops: ``"".join`` raises TypeError unless
# every item is a string, ``sum(..., 0.0)`` unless every item is a number (a bool counts,
# as in Python: harmless to the core). Consent stays strictly boolean (fail closed).
_BOOL = frozenset((bool,))
_LIST = frozenset((list,))
_NUM = frozenset((int, float))
_BYTES = frozenset((bytes,))
_OUTCOMES = frozenset(("sent", "suppressed"))


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


def _history(v: Any) -> list[SentRecord]:
    expected = "a list of [message, channel, category, time] records"
    if type(v) is not list:
        raise _bad("history", expected)
    if v:
        if not _LIST.issuperset(map(type, v)):
            raise _bad("history", expected)
        try:  # by columns: rows of another length fail the strict zip or the unpacking
            messages, channels, categories, times = zip(*v, strict=True)
            "".join(messages), "".join(channels), "".join(categories), sum(times, 0.0)
        except (TypeError, ValueError):
            raise _bad("history", expected) from None
    return list(starmap(SentRecord, v))


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


_NO_DATA: dict[str, Any] = {}
_LENGTH = 13  # WIRE_VERSION and the 12 fields every state has
_KNOWN = _LENGTH + 4  # and the optional ones (sets, touches, bounced, recent); then a newer
# release's elements
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
)
