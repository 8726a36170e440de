"""Messages (``messages:``): category, channels, cooldown, consent and channel choice."""

from __future__ import annotations

from engine.dsl.durations import format_duration
from engine.dsl.syntax import suggest
from engine.pack import schema as S
from engine.pack.compile.catalog import Catalog
from engine.pack.compile.declarations import Declared
from engine.pack.compile.issues import Issues
from engine.pack.compile.values import Values
from engine.pack.model import ChannelChoice, MessageDef
from engine.pack.retention import Need
from engine.pack.source import Path_, SourceFile


def compile_messages(
    declared: Declared, catalog: Catalog, values: Values, issues: Issues
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
                src, ("messages", mid, "choose"), m.choose, catalog.attributes, issues
            ),
        )
    return out


def compile_choice(
    src: SourceFile, path: Path_, choose: S.Choose, attributes: dict[str, str], issues: Issues
) -> ChannelChoice | None:
    """``choose:`` compiled; None for 'all', which costs nothing on the hot path."""
    if choose == "all":
        return None
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
