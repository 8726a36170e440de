"""The pack's vocabulary: event types and their data, customer attributes, channels,
categories and the consent each needs."""

from __future__ import annotations

from dataclasses import dataclass

from engine.campaigns.schedule import CAMPAIGN_DATA, CAMPAIGN_EVENT
from engine.dsl.syntax import suggest
from engine.outcomes.events import OUTCOME_EVENTS
from engine.pack.compile.declarations import Declarations
from engine.pack.compile.files import RuleFileParts
from engine.pack.compile.issues import Issues
from engine.pack.consent import ConsentRules
from engine.pack.source import Path_, SourceFile


@dataclass(frozen=True, slots=True)
class Catalog:
    events: dict[str, dict[str, str] | None]  # event type -> its data's field types (None: any)
    attributes: dict[str, str]  # name -> type
    channels: frozenset[str]
    categories: frozenset[str]
    consent: ConsentRules

    def known_event(
        self,
        issues: Issues,
        src: SourceFile,
        path: Path_,
        etype: str,
        where: str,
        rule_id: str | None = None,
    ) -> None:
        """Reject an undeclared event type where a typo would fail silently: an 'unless'
        that never cancels, an 'end' that never ends (packs that declare no events skip)."""
        if self.events and etype not in self.events:
            hint = suggest(etype, self.events) or " (declare it under events:)"
            issues.error(
                src, path, f"'{where}' names an undeclared event type '{etype}'{hint}", rule_id
            )


def compile_catalog(files: list[RuleFileParts], decl: Declarations, issues: Issues) -> Catalog:
    """Channels are those declared, or else those the messages use."""
    declared_channels = {c for part in files for c in part.parts.channels}
    channels = frozenset(declared_channels) or frozenset(
        c for _, (_, m) in decl.messages.items() for c in m.channels
    )
    categories = frozenset(c for part in files for c in part.parts.categories)
    consent = ConsentRules()
    for part in files:
        if part.parts.consent is not None:
            consent.add(part.src, part.parts.consent, channels, categories, issues.error)
    events: dict[str, dict[str, str] | None] = {
        k: (None if v.data is None else dict(v.data)) for k, (_, v) in decl.events.items()
    }
    for etype, (src, _) in decl.events.items():
        if etype in OUTCOME_EVENTS:
            issues.error(src, ("events", etype, "__key__"),
                         f"'{etype}' is a built-in outcome event type: do not declare it")
        elif etype == CAMPAIGN_EVENT:
            issues.error(src, ("events", etype, "__key__"),
                         f"'{etype}' is the built-in event of campaign runs: do not declare it")
    if events:  # a pack that declares no events checks none (built-ins need no declaring)
        events.update((k, dict(v)) for k, v in OUTCOME_EVENTS.items())
        events[CAMPAIGN_EVENT] = dict(CAMPAIGN_DATA)
    return Catalog(
        events=events,
        attributes={k: v for k, (_, v) in decl.attributes.items()},
        channels=channels,
        categories=categories,
        consent=consent,
    )
