"""Contexts (``contexts:``): the events that start and end each, and how long it lasts."""

from __future__ import annotations

from dataclasses import dataclass

from engine.pack import schema as S
from engine.pack.compile.catalog import Catalog
from engine.pack.compile.declarations import Declared
from engine.pack.compile.issues import Issues
from engine.pack.compile.keys import compile_key
from engine.pack.compile.scope import Scopes
from engine.pack.compile.values import Values
from engine.pack.locate import as_tuple
from engine.pack.model import ContextChange
from engine.pack.source import Path_


@dataclass(frozen=True, slots=True)
class CompiledContexts:
    starts: dict[str, list[ContextChange]]  # event type -> the contexts it starts
    ends: dict[str, list[ContextChange]]  # event type -> the contexts it ends
    ttls: dict[str, float | None]  # name -> how long it lasts (None: until ended)


def compile_contexts(
    declared: Declared, catalog: Catalog, scopes: Scopes, values: Values, issues: Issues
) -> CompiledContexts:
    starts: dict[str, list[ContextChange]] = {}
    ends: dict[str, list[ContextChange]] = {}
    ttls: dict[str, float | None] = {}
    for name, (src, c) in declared.items():
        base: Path_ = ("contexts", name)
        ttl = values.duration(src, (*base, "ttl"), c.ttl)
        ttls[name] = ttl
        for kind, triggers, target in (("start", c.start, starts), ("end", c.end, ends)):
            for j, trig in enumerate(triggers):
                on = as_tuple(trig if isinstance(trig, str) else trig.on)
                if kind == "end":
                    for k, t in enumerate(on):
                        at: Path_ = (*base, kind, j)
                        if not isinstance(trig, str):
                            at = (*at, "on") if isinstance(trig.on, str) else (*at, "on", k)
                        catalog.known_event(issues, src, at, t, "end")
                cond = None
                if isinstance(trig, S.Trigger) and trig.when:
                    cond = values.expr(
                        src, (*base, kind, j, "when"), trig.when, scopes.for_triggers(on), True
                    )
                for t in on:
                    key = None
                    if c.key is not None:
                        key = compile_key(src, (*base, "key"), c.key, t, f"the {kind} event",
                                          scopes, issues)
                    target.setdefault(t, []).append(ContextChange(name, cond, ttl, key))
    return CompiledContexts(starts, ends, ttls)
