"""The shape of rule files, as pydantic models: validation and the editor JSON Schema.

A pack is a directory of YAML files; every file may hold any of the sections below and
the pack is their union. Strings under ``when``, ``params`` and update values are
expressions (see docs in the README); everything else is plain data.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

# Re-exported (``X as X``): the pack compiler and the reference read them as schema.X.
from engine.pack.schema_state import Context as Context
from engine.pack.schema_state import MapDecl as MapDecl
from engine.pack.schema_state import MapPut as MapPut
from engine.pack.schema_state import SetDecl as SetDecl
from engine.pack.schema_state import Trigger as Trigger
from engine.pack.schema_state import Update as Update
from engine.pack.schema_types import CalendarValue as CalendarValue
from engine.pack.schema_types import ClockTime as ClockTime
from engine.pack.schema_types import ConsentNeed as ConsentNeed
from engine.pack.schema_types import ConstantValue as ConstantValue
from engine.pack.schema_types import Duration as Duration
from engine.pack.schema_types import Expr as Expr
from engine.pack.schema_types import FieldType as FieldType
from engine.pack.schema_types import Id as Id
from engine.pack.schema_types import MapValue as MapValue
from engine.pack.schema_types import StrictModel


class Settings(StrictModel):
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


class EventType(StrictModel):
    """An event type the pack listens to, and the fields of its data."""

    description: str = Field("", description="What the event means, for people.")
    data: dict[str, FieldType] | None = Field(
        default_factory=dict,
        description="Fields of event.data and their types; null allows any field.",
    )


class Preferred(StrictModel):
    preferred: Id = Field(description="A customer attribute naming the channel they prefer.")


class Engagement(StrictModel):
    """Which opens and clicks count (message_opened, message_clicked)."""

    within: Duration = Field("90d", description="How far back opens and clicks count.")


class Engaged(StrictModel):
    """The channel the customer engages with most first, then the others in order; ties
    and no history keep the order."""

    engaged: Engagement = Field(
        description="The channel this customer opened and clicked most within the window."
    )


Choose = Annotated[
    Literal["all", "first", "engaged"] | Preferred | Engaged,
    Field(description="How many channels carry one message: 'all' (default) of them; the "
          "'first' in order that passes every check; the customer's preferred channel "
          "first, then the others in order ({preferred: attribute}); or the channel they "
          "engaged with most (opens and clicks, 90 days), then the others in order "
          "('engaged', or {engaged: {within: 30d}})."),
]


class Goal(StrictModel):
    """What a message is for: a goal event after it, within a window, converts it."""

    event: Id = Field(description="The goal event type, e.g. purchase.")
    within: Duration = Field(description="How long after the send (or holdout) it counts.")
    value: Expr | None = Field(
        None, description="The conversion's value, e.g. event.data.amount (default: none)."
    )


class NpsKpi(StrictModel):
    """Net Promoter Score: the event carrying the answer (a whole number, 0 to 10)."""

    event: Id = Field(description="The survey's event type, e.g. nps_submitted.")
    score: Expr = Field(description="The answer on that event, e.g. event.data.score.")


class ScaledKpi(StrictModel):
    """CSAT or CES: the event carrying the answer (a whole number, 1 to its scale)."""

    event: Id = Field(description="The survey's event type, e.g. csat_submitted.")
    score: Expr = Field(description="The answer on that event, e.g. event.data.score.")
    scale: int | None = Field(
        None, ge=3, le=10, description="The highest answer (default: 5 for CSAT, 7 for CES).",
    )


class Kpis(StrictModel):
    """Experience KPIs read from survey events, for tact report and the dashboard."""

    nps: NpsKpi | None = Field(None, description="% promoters (9-10) - % detractors (0-6).")
    csat: ScaledKpi | None = Field(None, description="% of answers in the top two (4-5 of 5).")
    ces: ScaledKpi | None = Field(None, description="The mean answer.")


class Message(StrictModel):
    """A message in the catalog: what may be sent, on which channels, with which params."""

    category: Id = Field(description="Its category (caps, policies and consent use it).")
    channels: list[Id] = Field(min_length=1, description="Channels, in the order tried.")
    choose: Choose = "all"
    template: str | None = Field(None, description="Template id for the sender (default: "
                                 "the message id).")
    description: str = Field("", description="What the message is, for people.")
    params: dict[str, Expr | int | float | bool] = Field(
        default_factory=dict, description="Values for the template, from expressions."
    )
    cooldown: Duration | None = Field(None, description="Minimum gap, across channels.")
    consent: ConsentNeed | None = Field(
        None, description="'none': sent without the customer's consent (internal, transactional)."
    )
    goal: Goal | None = Field(
        None, description="A goal event to attribute to it (last touch), for tact report."
    )


class ConsentSection(StrictModel):
    """Which sends need the customer's consent on the channel (default: all of them)."""

    channels: dict[Id, ConsentNeed] = Field(
        default_factory=dict, description="Channel -> 'required' or 'none'."
    )
    categories: dict[Id, ConsentNeed] = Field(
        default_factory=dict, description="Category -> 'required' or 'none'."
    )


class Scope(StrictModel):
    """Which candidate messages a policy applies to; an empty list means all."""

    categories: list[Id] = Field(default_factory=list, description="Only these categories.")
    messages: list[Id] = Field(default_factory=list, description="Only these messages.")
    channels: list[Id] = Field(default_factory=list, description="Only these channels.")


class Policy(StrictModel):
    """Suppress matching messages while a condition holds; the policy id is the reason."""

    description: str = Field("", description="Why the policy exists, for people.")
    when: Expr = Field(description="While this holds, matching messages are suppressed.")
    suppress: Scope = Field(description="Which messages it holds back.")


class FrequencyCap(Scope):
    """At most ``max`` matching messages per customer within a sliding window."""

    id: Id = Field(description="The cap's name: the suppression reason is frequency_cap.")
    max: int = Field(ge=0, description="Messages allowed in the window.")
    window: Duration = Field(description="How far back sends are counted.")


class QuietHours(Scope):
    """Hours of the customer's local day when matching messages wait (deliver_after)."""

    id: Id = Field(description="The quiet hours' name.")
    start: ClockTime = Field(description="'HH:MM' local time the quiet starts.")
    end: ClockTime = Field(description="'HH:MM' local time it ends; before start: next day.")


class Holdout(StrictModel):
    """A control group: this percent of customers never gets the rule's message."""

    percent: float = Field(gt=0, le=100, description="Share of customers held out.")
    salt: str = Field(min_length=1, description="Change it to draw a new group.")


class Send(StrictModel):
    """Which message a rule sends, with overrides."""

    message: Id = Field(description="A message of the catalog.")
    channels: list[Id] | None = Field(None, description="Default: the message's channels.")
    choose: Choose | None = Field(None, description="Default: the message's choice.")
    params: dict[str, Expr | int | float | bool] = Field(
        default_factory=dict, description="Params added to (or replacing) the message's."
    )


class Active(StrictModel):
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


class Rule(StrictModel):
    """When an event comes in and the conditions hold, send a message (now or later)."""

    id: Id = Field(description="The rule's name, in decisions and explain.")
    description: str = Field("", description="What the rule is for, for people.")
    on: Id | list[Id] = Field(description="Event type(s) that trigger it.")
    when: Expr | list[Expr] | None = Field(
        None, description="Condition(s); all must hold. Default: always."
    )
    send: Id | Send = Field(description="A message id, or {message, channels, choose, params}.")
    priority: int = Field(
        0, ge=-1000, le=1000, description="Highest wins a channel when one event fires several."
    )
    relevance: Duration | None = Field(
        None, description="Longest time from event to receipt before the moment is stale."
    )
    holdout: Holdout | None = Field(None, description="A control group that gets nothing.")
    goal: Goal | None = Field(
        None, description="A goal event to attribute to every message it sends (last touch), "
        "for tact report; not allowed when its message has a goal of its own.",
    )
    after: Duration | None = Field(None, description="Follow-up: send this long after.")
    unless: list[Id] = Field(default_factory=list, description="Follow-up: cancelling events.")
    key: Expr | None = Field(
        None, description="Follow-up: one pending per value of this expression (e.g. "
        "event.data.quote_id), read on the trigger and on each unless event: an unless "
        "event cancels only the follow-up with its key.",
    )
    active: Active | None = Field(None, description="Campaign window (event time).")
    enabled: bool = Field(True, description="false: the rule is kept but never fires.")


class Schedule(StrictModel):
    """When a campaign runs: once (``at``) or on a cron (``cron``), read in ``tz``."""

    at: CalendarValue | None = Field(
        None, description="The one run: a date and time (2026-11-27T10:00)."
    )
    cron: str | None = Field(
        None, description="A five-field cron, e.g. '0 10 * * FRI' (10:00 every Friday)."
    )
    tz: str = Field("UTC", description="The IANA zone 'at' and 'cron' are read in.")


class Campaign(StrictModel):
    """A scheduled audience send: at each run, every known customer whose state meets
    ``audience`` is decided for ``send`` through the usual policies, caps and quiet hours."""

    id: Id = Field(description="The campaign's name, in decisions (as the rule) and metrics.")
    description: str = Field("", description="What the campaign is for, for people.")
    schedule: Schedule = Field(description="{at | cron, tz}: when it runs.")
    audience: Expr | list[Expr] | None = Field(
        None, description="Condition(s) on the customer's state; all must hold. "
        "Default: every known customer."
    )
    send: Id | Send = Field(description="A message id, or {message, channels, choose, params}.")
    rate: str | int = Field(
        "500/s", description="Customers reached per second by the fan-out, e.g. '500/s', "
        "'20000/m', or a number (per second)."
    )
    priority: int = Field(0, ge=-1000, le=1000, description="As a rule's.")
    holdout: Holdout | None = Field(None, description="A control group that gets nothing.")
    enabled: bool = Field(True, description="false: checked, never run.")


class RuleFile(StrictModel):
    """One YAML file of a rule pack."""

    pack: str | None = Field(None, description="The pack's name (once per pack).")
    settings: Settings | None = Field(None, description="Engine behaviour (once per pack).")
    channels: list[Id] = Field(default_factory=list, description="The channels messages use.")
    categories: list[Id] = Field(default_factory=list, description="Message categories.")
    constants: dict[Id, ConstantValue] = Field(
        default_factory=dict, description="Named values: const.<name> in expressions."
    )
    consent: ConsentSection | None = Field(None, description="Which sends need consent.")
    events: dict[Id, EventType] = Field(default_factory=dict, description="Event types.")
    attributes: dict[Id, FieldType] = Field(
        default_factory=dict, description="Customer attributes and their types."
    )
    updates: list[Update] = Field(default_factory=list, description="State changes per event.")
    contexts: dict[Id, Context] = Field(default_factory=dict, description="Named situations.")
    sets: dict[Id, SetDecl] = Field(
        default_factory=dict, description="Sets of members, each expiring on its own."
    )
    maps: dict[Id, MapDecl] = Field(
        default_factory=dict, description="Maps of key -> value, each entry expiring on its own."
    )
    messages: dict[Id, Message] = Field(default_factory=dict, description="The catalog.")
    policies: dict[Id, Policy] = Field(default_factory=dict, description="Suppressions.")
    frequency_caps: list[FrequencyCap] = Field(
        default_factory=list, description="Limits on messages per window."
    )
    quiet_hours: list[QuietHours] = Field(
        default_factory=list, description="Local hours when messages wait."
    )
    rules: list[Rule] = Field(default_factory=list, description="When to send what.")
    kpis: Kpis | None = Field(
        None, description="Experience KPIs (NPS, CSAT, CES): which events carry them."
    )
    campaigns: list[Campaign] = Field(
        default_factory=list, description="Scheduled sends to an audience."
    )


def json_schema() -> dict[str, Any]:
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Tact rule file"
    return schema
