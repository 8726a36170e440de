"""Messages (``messages:``): category, channels, cooldown, consent and channel choice."""

from __future__ import annotations

from engine.dsl.durations import format_duration
from engine.dsl.syntax import suggest
from engine.pack import schema as S
from engine.pack.compile.catalog import Catalog
from engine.pack.compile.declarations import Declared
from engine.pack.compile.issues import Issues
from engine.pack.compile.scope import Scopes
from engine.pack.compile.values import Values
from engine.pack.model import ENGAGED_WITHIN, ChannelChoice, GoalDef, MessageDef
from engine.pack.retention import Need
from engine.pack.source import Path_, SourceFile


def compile_messages(
    declared: Declared, catalog: Catalog, values: Values, issues: Issues, scopes: Scopes
) -> dict[str, MessageDef]:
    """Every message by id; a cooldown is a history retention need."""
    out: dict[str, MessageDef] = {}
    categories, channels = catalog.categories, catalog.channels
    for mid, (src, m) in declared.items():
        if categories and m.category not in categories:
            issues.error(
                src,
                ("messages", mid, "category"),
                f"unknown category '{m.category}'"
                + (suggest(m.category, categories) or " (declare it under categories:)"),
            )
        for j, ch in enumerate(m.channels):
            if ch not in channels:
                hint = suggest(ch, channels)
                path: Path_ = ("messages", mid, "channels", j)
                issues.error(src, path, f"unknown channel '{ch}'{hint}")
        cooldown = values.duration(src, ("messages", mid, "cooldown"), m.cooldown)
        if cooldown is not None:
            values.needs.append(Need(
                cooldown,
                f"message '{mid}' has a {format_duration(cooldown)} cooldown",
                src.location(("messages", mid, "cooldown")),
            ))
        out[mid] = MessageDef(
            mid,
            m.category,
            tuple(m.channels),
            m.template or mid,
            cooldown,
            src.location(("messages", mid, "__key__")),
            catalog.consent.exempt_channels(m.category, tuple(m.channels), m.consent),
            choice=compile_choice(
                src, ("messages", mid, "choose"), m.choose, catalog.attributes, values
            ),
            goal=compile_goal(src, ("messages", mid, "goal"), m.goal, catalog, values, scopes),
        )
    return out


def compile_goal(src: SourceFile, path: Path_, goal: S.Goal | None, catalog: Catalog,
                 values: Values, scopes: Scopes) -> GoalDef | None:
    """``goal:`` compiled: its event must be declared (when the pack declares events), its
    window positive, its value an expression on the goal event."""
    if goal is None:
        return None
    catalog.known_event(values.issues, src, (*path, "event"), goal.event, "goal")
    within = values.duration(src, (*path, "within"), goal.within)
    if within is not None and within <= 0:
        values.issues.error(src, (*path, "within"), "a goal's window must be positive")
    value = None
    if goal.value is not None:
        value = values.expr(src, (*path, "value"), goal.value, scopes.for_triggers((goal.event,)))
    return GoalDef(goal.event, within or 0.0, value)


def compile_choice(
    src: SourceFile, path: Path_, choose: S.Choose, attributes: dict[str, str], values: Values
) -> ChannelChoice | None:
    """``choose:`` compiled; None for 'all', which costs nothing on the hot path."""
    issues = values.issues
    if choose == "all":
        return None
    if choose == "engaged":
        return ChannelChoice(engaged=ENGAGED_WITHIN)
    if isinstance(choose, S.Engaged):
        at: Path_ = (*path, "engaged", "within")
        within = values.duration(src, at, choose.engaged.within)
        if within is not None and within <= 0:
            issues.error(src, at, "the engagement window must be positive")
        return ChannelChoice(engaged=within if within and within > 0 else ENGAGED_WITHIN)
    if isinstance(choose, S.Preferred):
        attr = choose.preferred
        if attr not in attributes:
            issues.error(src, (*path, "preferred"),
                         f"unknown attribute '{attr}' (declare it under attributes:)")
        elif (typ := attributes[attr]) not in ("str", "any"):
            issues.error(src, (*path, "preferred"),
                         f"attribute '{attr}' is declared {typ}; a channel name is a str")
        return ChannelChoice(attr)
    return ChannelChoice()
