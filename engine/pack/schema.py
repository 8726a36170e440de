"""The shape of rule files, as pydantic models: validation and the editor JSON Schema.

A pack is a directory of YAML files; every file may hold any of the sections below and
the pack is their union. Strings under ``when``, ``params`` and update values are
expressions (see docs in the README); everything else is plain data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Duration = Annotated[
    str | int | float,
    Field(
        description="A duration such as '30m', '12h', '7d' (or seconds as a number), or the "
        "name of a duration constant."
    ),
]
ConsentNeed = Literal["required", "none"]
ConstantValue = Annotated[
    str | int | float | bool,
    Field(description="A duration ('4h'), a number, a string or true/false."),
]
Expr = Annotated[str, Field(description="An expression in Tact's expression language.")]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
# A YAML date (2026-11-27) or timestamp arrives as a date/datetime; anything else as text.
CalendarValue = Annotated[
    datetime | date | str,
    Field(description="A date (2026-11-27) or a date and time (2026-11-27T09:00, with an "
          "optional offset such as +01:00)."),
]
FieldType = Literal["str", "int", "float", "number", "bool", "time", "list", "map", "any"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Settings(_Model):
    """Engine behaviour that belongs to the pack (set at most once across its files)."""

    timezone_attribute: Id = Field("tz", description="Customer attribute holding an IANA zone.")
    dedupe_window: Duration = Field("7d", description="How long event ids are remembered.")
    max_per_event_per_channel: int = Field(
        1, ge=1, le=20, description="Arbitration: messages per event per channel."
    )
    history_retention: Duration = Field(
        "35d",
        description="How long sent messages are kept at least; the pack's longest cooldown, "
        "cap window and sent_count window raise it.",
    )


class EventType(_Model):
    description: str = ""
    data: dict[str, FieldType] | None = Field(
        default_factory=dict,
        description="Fields of event.data and their types; null allows any field.",
    )


class Trigger(_Model):
    on: Id | list[Id] = Field(description="Event type(s).")
    when: Expr | None = None


class Context(_Model):
    description: str = ""
    ttl: Duration | None = Field(None, description="How long the context lasts once started.")
    start: list[Id | Trigger] = Field(description="Events (with conditions) that start it.")
    end: list[Id | Trigger] = Field(default_factory=list, description="Events that end it.")


class Update(_Model):
    """A state update applied when an event arrives, before rules are evaluated."""

    id: Id | None = None
    on: Id | list[Id]
    when: Expr | None = None
    set: dict[Id, Expr | int | float | bool] = Field(
        default_factory=dict, description="Attributes to set from expressions."
    )
    increment: dict[Id, Expr | int | float] = Field(
        default_factory=dict, description="Counters to add to."
    )
    reset: list[Id] = Field(default_factory=list, description="Counters to set to zero.")
    count_in_window: dict[Id, Duration] = Field(
        default_factory=dict, description="Windowed counts: name -> window length."
    )
    timestamp: list[Id] = Field(
        default_factory=list, description="Timestamps to set to the event's time."
    )
    merge_attributes: Expr | None = Field(None, description="A map merged into attributes.")
    merge_consent: Expr | None = Field(None, description="A map of channel -> bool merged.")


class Preferred(_Model):
    preferred: Id = Field(description="A customer attribute naming the channel they prefer.")


Choose = Annotated[
    Literal["all", "first"] | Preferred,
    Field(description="How many channels carry one message: 'all' (default) of them; the "
          "'first' in order that passes every check; or the customer's preferred channel "
          "first, then the others in order ({preferred: attribute})."),
]


class Message(_Model):
    category: Id
    channels: list[Id] = Field(min_length=1)
    choose: Choose = "all"
    template: str | None = None
    description: str = ""
    params: dict[str, Expr | int | float | bool] = Field(default_factory=dict)
    cooldown: Duration | None = Field(None, description="Minimum gap, across channels.")
    consent: ConsentNeed | None = Field(
        None, description="'none': sent without the customer's consent (internal, transactional)."
    )


class ConsentSection(_Model):
    """Which sends need the customer's consent on the channel (default: all of them)."""

    channels: dict[Id, ConsentNeed] = Field(default_factory=dict)
    categories: dict[Id, ConsentNeed] = Field(default_factory=dict)


class Scope(_Model):
    """Which candidate messages a policy applies to; an empty list means all."""

    categories: list[Id] = Field(default_factory=list)
    messages: list[Id] = Field(default_factory=list)
    channels: list[Id] = Field(default_factory=list)


class Policy(_Model):
    """Suppress matching messages while a condition holds; the policy id is the reason."""

    description: str = ""
    when: Expr
    suppress: Scope


class FrequencyCap(Scope):
    id: Id
    max: int = Field(ge=0)
    window: Duration


class QuietHours(Scope):
    id: Id
    start: ClockTime
    end: ClockTime


class Holdout(_Model):
    percent: float = Field(gt=0, le=100)
    salt: str = Field(min_length=1, description="Change it to draw a new group.")


class Send(_Model):
    message: Id
    channels: list[Id] | None = Field(None, description="Default: the message's channels.")
    choose: Choose | None = Field(None, description="Default: the message's choice.")
    params: dict[str, Expr | int | float | bool] = Field(default_factory=dict)


class Active(_Model):
    """A campaign window: the rule fires only for events dated from ``from`` until ``until``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: CalendarValue | None = Field(
        None, alias="from", description="First day (or instant) the rule fires."
    )
    until: CalendarValue | None = Field(
        None, description="Last day the rule fires (a date includes the whole day; a date "
        "and time is the first instant it no longer fires)."
    )
    tz: str = Field("UTC", description="The IANA zone the dates and times are read in.")


class Rule(_Model):
    id: Id
    description: str = ""
    on: Id | list[Id]
    when: Expr | list[Expr] | None = None
    send: Id | Send
    priority: int = Field(0, ge=-1000, le=1000)
    relevance: Duration | None = Field(
        None, description="Longest time from event to receipt before the moment is stale."
    )
    holdout: Holdout | None = None
    after: Duration | None = Field(None, description="Follow-up: send this long after.")
    unless: list[Id] = Field(default_factory=list, description="Follow-up: cancelling events.")
    active: Active | None = Field(None, description="Campaign window (event time).")
    enabled: bool = True


class RuleFile(_Model):
    """One YAML file of a rule pack."""

    pack: str | None = Field(None, description="The pack's name (once per pack).")
    settings: Settings | None = None
    channels: list[Id] = Field(default_factory=list)
    categories: list[Id] = Field(default_factory=list)
    constants: dict[Id, ConstantValue] = Field(
        default_factory=dict, description="Named values: const.<name> in expressions."
    )
    consent: ConsentSection | None = None
    events: dict[Id, EventType] = Field(default_factory=dict)
    attributes: dict[Id, FieldType] = Field(default_factory=dict)
    updates: list[Update] = Field(default_factory=list)
    contexts: dict[Id, Context] = Field(default_factory=dict)
    messages: dict[Id, Message] = Field(default_factory=dict)
    policies: dict[Id, Policy] = Field(default_factory=dict)
    frequency_caps: list[FrequencyCap] = Field(default_factory=list)
    quiet_hours: list[QuietHours] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)


def json_schema() -> dict[str, Any]:
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Tact rule file"
    return schema
