"""A compiled rule pack: everything indexed for the hot path, nothing parsed at run time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.campaigns.schedule import Schedule
from engine.dsl.calendar import describe as when
from engine.dsl.calendar import zone
from engine.dsl.compiler import CompiledExpr, Evaluator
from engine.dsl.durations import format_duration
from engine.dsl.timefns import MAX_TS, MIN_TS
from engine.errors import RuleIssue, SourceLocation

Param = CompiledExpr | int | float | bool

ENGAGED_WITHIN = 90 * 86400.0  # ``choose: engaged``: opens and clicks of the last 90 days


@dataclass(frozen=True, slots=True)
class ChannelChoice:
    """One channel per moment: the first of the rule's channels, in order, that passes every
    check; with ``preferred``, the channel that customer attribute names goes first; with
    ``engaged`` (a window in seconds), the channels by the customer's opens and clicks in
    that window, most first (engine/pipeline/engagement)."""

    preferred: str | None = None
    engaged: float | None = None

    def describe(self) -> str:
        if self.engaged is not None:
            return f"most engaged (opens and clicks in {format_duration(self.engaged)}), " \
                "then in order"
        return f"preferred ({self.preferred}), then in order" if self.preferred else "first"


@dataclass(frozen=True, slots=True)
class Window:
    """A campaign window: the rule fires for events dated in [start, end) (epoch seconds)."""

    start: float
    end: float
    tz: str  # the zone the author wrote it in, for explain

    def holds(self, at: float) -> bool:
        return self.start <= at < self.end

    def describe(self) -> str:
        """The window in its own zone, for explain; an open end is not shown."""
        tz = zone(self.tz)
        ends = [f"from {when(self.start, tz)}"] * (self.start > MIN_TS)
        ends += [f"until {when(self.end, tz)}"] * (self.end < MAX_TS)
        return " ".join(ends)


@dataclass(frozen=True, slots=True)
class GoalDef:
    """A message's goal: a ``event`` within ``within`` seconds of a touch converts it."""

    event: str
    within: float
    value: CompiledExpr | None = None


@dataclass(frozen=True, slots=True)
class KpiDef:
    """An experience KPI (``nps``, ``csat``, ``ces``): its ``event`` carries a whole-number
    ``score`` from ``low`` to ``high`` (engine/outcomes/kpis)."""

    name: str
    event: str
    score: CompiledExpr
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class MessageDef:
    id: str
    category: str
    channels: tuple[str, ...]
    template: str
    cooldown: float | None
    location: SourceLocation | None = None
    consent_free: frozenset[str] = frozenset()  # channels it is sent on without consent
    choice: ChannelChoice | None = None  # None: every channel ('all')
    goal: GoalDef | None = None


@dataclass(frozen=True, slots=True)
class MapSpec:
    """A declared map (``maps:``): values of one type under text keys; each entry lasts
    ``ttl`` seconds from when it was last put (None: until removed); beyond ``max`` entries
    the oldest goes."""

    value: str  # "str", "int", "float" or "bool"
    ttl: float | None
    max: int


@dataclass(frozen=True, slots=True)
class MapChange:
    """An update's ``put:`` into one map (key and value) or ``remove:`` from it (key)."""

    name: str
    key: CompiledExpr
    value: CompiledExpr | None
    spec: MapSpec


@dataclass(slots=True)
class CompiledRule:
    id: str
    triggers: tuple[str, ...]
    conditions: tuple[CompiledExpr, ...]
    message: MessageDef
    channels: tuple[str, ...]
    params: dict[str, Param]
    priority: int
    order: int  # position in the pack: the deterministic tie-break
    relevance: float | None = None
    holdout: tuple[float, str] | None = None
    delay: float | None = None  # a follow-up when set
    unless: frozenset[str] = frozenset()
    location: SourceLocation | None = None
    description: str = ""
    check: Evaluator | None = None  # all conditions as one function (None: always true)
    window: Window | None = None  # also in ``check``; kept for explain
    choice: ChannelChoice | None = None  # None: every channel ('all')
    key: CompiledExpr | None = None  # a keyed follow-up: one pending per value (trigger event)
    unless_keys: dict[str, CompiledExpr] = field(default_factory=dict)  # unless event -> key
    goal: GoalDef | None = None  # the rule's goal, or else its message's (never both)


@dataclass(slots=True)
class CampaignDef:
    """A scheduled audience send. ``rule`` decides one customer of a run: its conditions
    are the audience, its id the campaign's (decision records name it as the rule)."""

    id: str
    schedule: Schedule
    rate: float  # customers per second, for the fan-out
    rule: CompiledRule
    enabled: bool = True
    description: str = ""


@dataclass(slots=True)
class CompiledUpdate:
    triggers: tuple[str, ...]
    condition: CompiledExpr | None
    set: dict[str, Param]
    increment: dict[str, Param]
    reset: tuple[str, ...]
    windows: dict[str, float]
    timestamps: tuple[str, ...]
    merge_attributes: CompiledExpr | None
    merge_consent: CompiledExpr | None
    add: tuple[SetChange, ...] = ()
    remove: tuple[SetChange, ...] = ()
    # keyed counters and timestamps: increment, reset and timestamp apply to this key's
    # instance (``name + KEY_SEP + key``); None: to the name itself
    key: CompiledExpr | None = None
    put: tuple[MapChange, ...] = ()
    unmap: tuple[MapChange, ...] = ()  # remove: of a map (value is None)


@dataclass(frozen=True, slots=True)
class SetSpec:
    """A declared set (``sets:``): each member lasts ``ttl`` seconds from when it was last
    added (None: until removed); beyond ``max`` members the oldest goes."""

    ttl: float | None
    max: int


@dataclass(frozen=True, slots=True)
class SetChange:
    """An update's ``add:`` or ``remove:`` of one set: the member(s) an expression gives."""

    name: str
    value: CompiledExpr
    spec: SetSpec


@dataclass(slots=True)
class ContextChange:
    context: str
    condition: CompiledExpr | None
    ttl: float | None  # for starts
    key: CompiledExpr | None = None  # a keyed context: the instance this event starts or ends


@dataclass(frozen=True, slots=True)
class ScopeFilter:
    categories: frozenset[str]
    messages: frozenset[str]
    channels: frozenset[str]

    def matches(self, message: MessageDef, channel: str) -> bool:
        return self.matches_record(message.category, message.id, channel)

    def matches_record(self, category: str, message: str, channel: str) -> bool:
        return (
            (not self.categories or category in self.categories)
            and (not self.messages or message in self.messages)
            and (not self.channels or channel in self.channels)
        )


@dataclass(slots=True)
class CompiledPolicy:
    id: str
    condition: CompiledExpr
    scope: ScopeFilter


@dataclass(slots=True)
class Cap:
    id: str
    scope: ScopeFilter
    max: int
    window: float


@dataclass(slots=True)
class Quiet:
    id: str
    scope: ScopeFilter
    start: int  # minutes after local midnight
    end: int


@dataclass(slots=True)
class PackSettings:
    timezone_attribute: str = "tz"
    dedupe_window: float = 7 * 86400.0
    max_per_event_per_channel: int = 1
    history_retention: float = 35 * 86400.0


@dataclass(slots=True)
class RulePack:
    name: str
    version: str
    settings: PackSettings
    files: tuple[str, ...]
    event_types: dict[str, dict[str, str] | None]
    attributes: dict[str, str]
    channels: frozenset[str]
    categories: frozenset[str]
    messages: dict[str, MessageDef]
    contexts: dict[str, float | None]  # name -> ttl
    windows: dict[str, float]
    counters: frozenset[str]
    timestamps: frozenset[str]
    rules: list[CompiledRule]
    by_trigger: dict[str, list[CompiledRule]]  # sorted by priority, highest first
    cancels: dict[str, frozenset[str]]  # event type -> follow-up rule ids it cancels
    updates: dict[str, list[CompiledUpdate]]
    context_ends: dict[str, list[ContextChange]]
    context_starts: dict[str, list[ContextChange]]
    policies: list[CompiledPolicy]
    caps: list[Cap]
    quiet_hours: list[Quiet]
    findings: list[RuleIssue] = field(default_factory=list)
    constants: dict[str, Any] = field(default_factory=dict)  # name -> value (seconds: durations)
    rules_by_id: dict[str, CompiledRule] = field(default_factory=dict, repr=False)
    # event type -> keyed follow-up rule id -> its key, evaluated on that (unless) event
    keyed_cancels: dict[str, dict[str, CompiledExpr]] = field(default_factory=dict)
    keyed_contexts: frozenset[str] = frozenset()
    sets: dict[str, SetSpec] = field(default_factory=dict)
    maps: dict[str, MapSpec] = field(default_factory=dict)
    # counters and timestamps some update keeps per key (counter(name, key), timestamp(...))
    keyed_counters: frozenset[str] = frozenset()
    keyed_timestamps: frozenset[str] = frozenset()
    # goal event type -> the rules whose touches it converts (engine/pipeline/goals)
    goals: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    # event type -> the experience KPIs it carries (engine/pipeline/kpis)
    kpis: dict[str, tuple[KpiDef, ...]] = field(default_factory=dict, repr=False)
    campaigns: dict[str, CampaignDef] = field(default_factory=dict)  # id -> scheduled send
    # the longest ``choose: engaged`` window: how long opens and clicks are kept (0: not kept)
    engaged_within: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.rules_by_id = {r.id: r for r in self.rules}
        self.engaged_within = max(
            (c.engaged for c in (*(r.choice for r in self.rules),
                                 *(m.choice for m in self.messages.values()))
             if c is not None and c.engaged is not None), default=0.0)
        goals: dict[str, set[str]] = {}
        for r in self.rules:
            if r.goal is not None:
                goals.setdefault(r.goal.event, set()).add(r.id)
        self.goals = {k: frozenset(v) for k, v in goals.items()}

    def summary(self) -> str:
        return (
            f"pack {self.name}@{self.version}: {len(self.rules)} rules, "
            f"{len(self.messages)} messages, {len(self.contexts)} contexts, "
            f"{len(self.policies)} policies, {len(self.event_types)} event types"
        )
