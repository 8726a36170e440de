"""A customer's starting state as people write it (scenario files, ``--state`` files).

Times are ISO 8601 with an offset, or a signed duration from the start (the first step of a
scenario, the first event of a simulation): ``-2h`` is two hours before it, ``3d`` three
days after it. A context's time is when it stops being active.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from engine.dsl.durations import parse_duration
from engine.errors import TactError
from engine.models.state import KEY_SEP, MAX_KEY_LENGTH, CustomerState, SentRecord, instance_key

SeedPath = tuple[str | int, ...]
V = TypeVar("V")


class SeedError(TactError):
    """A starting state cannot be built: a relative time with no start to count from, or a
    history entry whose message has no known category. ``path`` is where, in the seed."""

    def __init__(self, path: SeedPath, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class When:
    """An instant (epoch seconds), or ``offset`` seconds from a start given later."""

    absolute: float | None = None
    offset: float = 0.0

    def resolve(self, start: float | None, path: SeedPath) -> float:
        if self.absolute is not None:
            return self.absolute
        if start is None:
            raise SeedError(path, "a relative time needs a start to count from: give an "
                                  "ISO 8601 time with an offset instead")
        return start + self.offset


def parse_when(value: Any) -> When:
    """An aware datetime, an ISO 8601 string with an offset, or a signed duration."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a time needs an offset, e.g. 2026-06-01T10:00:00+02:00")
        return When(absolute=value.timestamp())
    if isinstance(value, When):
        return value
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 time with an offset, or a duration from the "
                         "start such as -2h or 3d")
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    try:
        return When(offset=sign * parse_duration(text.lstrip("+-")))
    except ValueError:
        pass
    try:
        return parse_when(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO 8601 time with an offset nor a duration from the "
            "start such as -2h or 3d"
        ) from None


SeedTime = Annotated[When, BeforeValidator(parse_when)]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


Count = Annotated[float, BeforeValidator(_number)]


def _key(value: Any) -> str:
    key = instance_key(value)
    if key is None:
        if isinstance(value, str):
            raise ValueError(f"a key is at most {MAX_KEY_LENGTH} characters, this one has "
                             f"{len(value)}")
        raise ValueError(f"a key is text or a whole number, not {value!r}")
    return key


#: An instance key of a keyed context, counter or timestamp (42 and "42" are one key).
SeedKey = Annotated[str, BeforeValidator(_key)]


def _form(value: Any) -> str:
    return "instances" if isinstance(value, dict) else "one"


# One value, or a keyed name's instances (key -> value): the form written picks the
# check, so an error names the instance, not "expected a number" for a whole mapping.
_Counts = Annotated[
    Annotated[float, BeforeValidator(_number), Tag("one")]
    | Annotated[dict[SeedKey, Count], Tag("instances")],
    Discriminator(_form),
]
_Times = Annotated[
    Annotated[When, BeforeValidator(parse_when), Tag("one")]
    | Annotated[dict[SeedKey, SeedTime], Tag("instances")],
    Discriminator(_form),
]


def _member(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"a set's member is text, not {value!r}")
    if len(value) > MAX_KEY_LENGTH:
        raise ValueError(f"a member is at most {MAX_KEY_LENGTH} characters, this one has "
                         f"{len(value)}")
    return value


#: A member of a declared set (text, as add: keeps it).
SeedMember = Annotated[str, BeforeValidator(_member)]


def _scalar(value: Any) -> str | int | float | bool:
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"a map's value is text, a number or true/false, not {value!r}")
    return value


class _Seed(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class SentSeed(_Seed):
    """A message the customer already got: it counts for caps and cooldowns."""

    message: str
    channel: str
    at: SeedTime
    category: str | None = None  # default: the message's category in the pack


class MapEntrySeed(_Seed):
    """A map's entry: its value and when it was put (its ttl counts from then)."""

    value: Annotated[str | int | float | bool, BeforeValidator(_scalar)]
    at: SeedTime


class CustomerSeed(_Seed):
    """What is known of a customer up front (scenario files, profile imports, ``--state``)."""

    attributes: dict[str, Any] = Field(default_factory=dict)
    consent: dict[str, bool] = Field(default_factory=dict)
    # a keyed counter, timestamp or context gives its instances instead: key -> value
    counters: dict[str, _Counts] = Field(default_factory=dict)
    timestamps: dict[str, _Times] = Field(default_factory=dict)
    windows: dict[str, list[SeedTime]] = Field(default_factory=dict)  # event times counted
    # name -> active until
    contexts: dict[str, _Times] = Field(default_factory=dict)
    history: list[SentSeed] = Field(default_factory=list)
    # declared sets: name -> member -> when it was added; maps: name -> key -> entry
    sets: dict[str, dict[SeedMember, SeedTime]] = Field(default_factory=dict)
    maps: dict[str, dict[SeedKey, MapEntrySeed]] = Field(default_factory=dict)

    def to_state(
        self,
        customer: str,
        *,
        start: float | None = None,
        categories: Mapping[str, str] | None = None,
    ) -> CustomerState:
        """The state the engine starts from. ``start`` anchors relative times; ``categories``
        (message -> category, the pack's) fills history entries that give none. Raises
        :class:`SeedError`."""
        history = []
        for i, h in enumerate(self.history):
            category = h.category or (categories or {}).get(h.message)
            if category is None:
                raise SeedError(("history", i, "message"),
                                f"history: message {h.message!r} is not in the pack (give "
                                "its category: to use it anyway)")
            history.append(SentRecord(h.message, h.channel, category,
                                      h.at.resolve(start, ("history", i, "at"))))
        history.sort(key=lambda rec: rec.at)  # the engine keeps history oldest first
        return CustomerState(
            customer=customer,
            attributes=dict(self.attributes),
            consent=dict(self.consent),
            counters=_entries(self.counters, lambda n, path: n),
            timestamps=_entries(self.timestamps, lambda t, path: t.resolve(start, path),
                                "timestamps"),
            windows={k: sorted(t.resolve(start, ("windows", k, i)) for i, t in enumerate(ts))
                     for k, ts in self.windows.items()},
            contexts=_entries(self.contexts, lambda t, path: t.resolve(start, path), "contexts"),
            history=history,
            sets={name: {m: t.resolve(start, ("sets", name, m)) for m, t in members.items()}
                  for name, members in self.sets.items() if members},
            maps={name: {k: [e.value, e.at.resolve(start, ("maps", name, k, "at"))]
                         for k, e in entries.items()}
                  for name, entries in self.maps.items() if entries},
        )


def _entries(
    given: Mapping[str, V | dict[str, V]],
    value: Callable[[V, SeedPath], float],
    section: str = "counters",
) -> dict[str, float]:
    """A state table from seed entries: a keyed one's instances as ``name + KEY_SEP + key``
    (the engine's form), each value made by ``value`` (given its place, for errors)."""
    out: dict[str, float] = {}
    for name, v in given.items():
        if isinstance(v, dict):
            for key, each in v.items():
                out[name + KEY_SEP + key] = value(each, (section, name, key))
        else:
            out[name] = value(v, (section, name))
    return out
