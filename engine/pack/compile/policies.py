"""What holds messages back: policies, frequency caps and quiet hours, each scoped to
categories, messages and channels."""

from __future__ import annotations

from dataclasses import dataclass

from engine.dsl.durations import format_duration
from engine.dsl.functions import clock_minutes
from engine.dsl.syntax import suggest
from engine.pack import schema as S
from engine.pack.compile.catalog import Catalog
from engine.pack.compile.declarations import Declared
from engine.pack.compile.files import RuleFileParts
from engine.pack.compile.issues import Issues
from engine.pack.compile.scope import Scopes
from engine.pack.compile.values import Values
from engine.pack.model import Cap, CompiledPolicy, Quiet, ScopeFilter
from engine.pack.retention import Need
from engine.pack.source import Path_, SourceFile

_SINGULAR = {"categories": "category", "messages": "message", "channels": "channel"}


@dataclass(frozen=True, slots=True)
class Filters:
    """Compiles the categories/messages/channels a policy, cap or quiet hours apply to."""

    catalog: Catalog
    messages: Declared
    issues: Issues

    def compile(self, src: SourceFile, path: Path_, s: S.Scope) -> ScopeFilter:
        for field, known in (
            ("categories", self.catalog.categories),
            ("messages", self.messages),
            ("channels", self.catalog.channels),
        ):
            for j, v in enumerate(getattr(s, field)):
                if known and v not in known:
                    hint = suggest(v, known)
                    self.issues.error(
                        src, (*path, field, j), f"unknown {_SINGULAR[field]} '{v}'{hint}"
                    )
        return ScopeFilter(frozenset(s.categories), frozenset(s.messages), frozenset(s.channels))


def compile_policies(
    declared: Declared, filters: Filters, scopes: Scopes, values: Values
) -> list[CompiledPolicy]:
    out = []
    for pid, (src, p) in declared.items():
        cond = values.expr(src, ("policies", pid, "when"), p.when, scopes.for_triggers(None), True)
        flt = filters.compile(src, ("policies", pid, "suppress"), p.suppress)
        if cond is not None:
            out.append(CompiledPolicy(pid, cond, flt))
    return out


def compile_caps_and_quiet(
    files: list[RuleFileParts], filters: Filters, values: Values
) -> tuple[list[Cap], list[Quiet]]:
    """Frequency caps (a cap's window is a history retention need) and quiet hours."""
    caps: list[Cap] = []
    quiet: list[Quiet] = []
    for part in files:
        src = part.src
        for i, c in part.items("frequency_caps"):
            w = values.duration(src, ("frequency_caps", i, "window"), c.window)
            flt = filters.compile(src, ("frequency_caps", i), c)
            if w is not None:
                caps.append(Cap(c.id, flt, c.max, w))
                values.needs.append(Need(
                    w,
                    f"frequency cap '{c.id}' counts over {format_duration(w)}",
                    src.location(("frequency_caps", i, "window")),
                ))
        for i, q in part.items("quiet_hours"):
            flt = filters.compile(src, ("quiet_hours", i), q)
            quiet.append(Quiet(q.id, flt, clock_minutes(q.start), clock_minutes(q.end)))
    return caps, quiet
