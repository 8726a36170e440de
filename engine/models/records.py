"""The small records inside a customer's state: sent messages, goal touches, recent
decisions, pending follow-ups, and how keyed instances are named."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from engine.models.packing import pack_wire

_NUM = frozenset((int, float))
_OUTCOMES = frozenset(("sent", "suppressed"))


@dataclass(slots=True)
class SentRecord:
    """One message that went out (or was deferred): the basis of caps and cooldowns.

    ``held``: not sent, held out by its rule's holdout (it was the only reason): a "virtual
    send", so the control group's cooldowns, caps and channel slots see it as the treated
    group's see a send (docs/outcomes.md); the sent-history functions of the DSL skip it.
    """

    message: str
    channel: str
    category: str
    at: float
    held: bool = False


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

    A decision made in this batch is kept as this object, built only for the decisions
    that are kept (``Arbiter.remember``: a pack may make a hundred per event, of which 20
    are kept); it is packed (msgpack bytes) only when the state is encoded, and a decoded
    state holds the bytes: only the view unpacks them.
    """

    id: str
    at: float  # the decision's moment (event time)
    rule: str
    message: str
    channel: str
    outcome: str  # "sent" or "suppressed"
    reasons: list[str]

    def pack(self) -> bytes:
        return pack_wire([self.id, self.at, self.rule, self.message, self.channel,
                          self.outcome, self.reasons])

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

