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

from dataclasses import dataclass, field
from typing import Any

from engine.errors import StateDecodeError
from engine.models.records import (
    _NUM,
    KEY_SEP,
    MAX_KEY_LENGTH,
    RECENT_DECISIONS,
    PendingFollowup,
    RecentDecision,
    SentRecord,
    Touch,
    instance_key,
)
from engine.models.wire_checks import (
    _BOOL,
    _KNOWN,
    _LENGTH,
    _LIST,
    OPTIONAL_WIRE_FIELDS,
    REQUIRED_FIELDS,
    WIRE_FIELDS,
    WIRE_VERSION,
    _attributes,
    _bounced,
    _campaigns,
    _consent,
    _contexts,
    _counters,
    _customer,
    _engaged,
    _followups,
    _history,
    _last_event,
    _maps,
    _recent,
    _seen,
    _sets,
    _timestamps,
    _touches,
    _version,
    _windows,
    check_wire_version,
)

__all__ = [
    "KEY_SEP", "MAX_KEY_LENGTH", "OPTIONAL_WIRE_FIELDS", "RECENT_DECISIONS", "REQUIRED_FIELDS",
    "WIRE_FIELDS", "WIRE_VERSION", "CustomerState", "PendingFollowup",
    "RecentDecision", "SentRecord", "StateDecodeError", "Touch", "check_wire_version",
    "instance_key",
]


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
    # declared maps (``maps:``): name -> key -> [value, event time it was last put]
    maps: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    # campaign run id -> event time this customer was decided for it (exactly once per run)
    campaigns: dict[str, float] = field(default_factory=dict)
    # channel -> [times opened, times clicked] (``choose: engaged``; engine/pipeline/engagement)
    engaged: dict[str, list[list[float]]] = field(default_factory=dict)

    def remember(self, decision: RecentDecision) -> None:
        """Keep ``decision`` among the last :data:`RECENT_DECISIONS` (the oldest goes)."""
        recent = self.recent
        recent.append(decision)
        if len(recent) > RECENT_DECISIONS:
            del recent[0]

    def recent_room(self) -> int:
        """How many of the newest decisions :meth:`remember_all` can keep, however many come:
        the last RECENT_DECISIONS, or as many as the state holds if its list is longer."""
        held = len(self.recent)
        return held if held > RECENT_DECISIONS else RECENT_DECISIONS

    def remember_all(self, decisions: list[RecentDecision]) -> None:
        """:meth:`remember` each of ``decisions`` in order, in one step: the same list.

        One at a time, a list already longer than RECENT_DECISIONS (a newer release's)
        keeps its length, and a shorter one grows up to RECENT_DECISIONS.
        """
        recent = self.recent
        held = len(recent)
        recent.extend(decisions)
        if len(recent) > RECENT_DECISIONS:  # (not min/max: they parse keywords, per event)
            del recent[:len(recent) - (held if held > RECENT_DECISIONS else RECENT_DECISIONS)]

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
            # a held entry adds a 5th element (true); a send is written as before the flag
            [[h.message, h.channel, h.category, h.at] if not h.held
             else [h.message, h.channel, h.category, h.at, True] for h in self.history],
            self.seen,
            [[f.rule, f.due, f.event] if f.key is None else [f.rule, f.due, f.event, f.key]
             for f in self.followups],
            self.last_event,
        ]
        # the optional fields, up to the last one that holds something (all of them when a
        # newer release's elements follow): an older state reads the same
        optional: list[Any] = [self.sets, self.touches, self.bounced, self.recent, self.maps,
                               self.campaigns, self.engaged]
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
            maps = _maps(w[_LENGTH + 4]) if n > _LENGTH + 4 else {}
            campaigns = _campaigns(w[_LENGTH + 5]) if n > _LENGTH + 5 else {}
            engaged = _engaged(w[_LENGTH + 6]) if n > _LENGTH + 6 else {}
        except (TypeError, StateDecodeError):
            return cls._checked(w)
        return cls(customer, version, attributes, consent, counters, windows, timestamps,
                   contexts, records, seen, pending, last_event, tuple(w[_KNOWN:]), sets,
                   touches, bounced, recent, maps, campaigns, engaged)

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
            maps=_maps(w[_LENGTH + 4]) if len(w) > _LENGTH + 4 else {},
            campaigns=_campaigns(w[_LENGTH + 5]) if len(w) > _LENGTH + 5 else {},
            engaged=_engaged(w[_LENGTH + 6]) if len(w) > _LENGTH + 6 else {},
        )

