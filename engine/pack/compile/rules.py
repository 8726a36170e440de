"""Rules (``rules:``): triggers, conditions, the message sent and its parameters, campaign
windows, channel choice, follow-ups; and the index the hot path looks rules up by."""

from __future__ import annotations

from dataclasses import dataclass

from engine.dsl.compiler import CompiledExpr, compile_all
from engine.dsl.syntax import suggest
from engine.errors import SourceLocation
from engine.pack import schema as S
from engine.pack.compile.campaigns import compile_window
from engine.pack.compile.catalog import Catalog
from engine.pack.compile.declarations import Declared
from engine.pack.compile.files import RuleFileParts
from engine.pack.compile.issues import Issues
from engine.pack.compile.keys import compile_key
from engine.pack.compile.messages import compile_choice, compile_goal
from engine.pack.compile.scope import Scopes
from engine.pack.compile.values import Values
from engine.pack.locate import as_tuple
from engine.pack.model import CompiledRule, MessageDef, Param
from engine.pack.source import Path_, SourceFile


@dataclass(frozen=True, slots=True)
class RuleCompiler:
    messages: dict[str, MessageDef]  # compiled
    declared_messages: Declared  # for the message's own params, compiled in each rule's scope
    catalog: Catalog
    scopes: Scopes
    values: Values
    issues: Issues

    def compile(self, files: list[RuleFileParts]) -> list[CompiledRule]:
        """The enabled rules in pack order (a disabled rule is still checked)."""
        out: list[CompiledRule] = []
        order = 0
        for part in files:
            for i, r in part.items("rules"):
                built = self.rule(part.src, ("rules", i), r, order)
                order += 1
                if built is not None and r.enabled:
                    out.append(built)
        return out

    def rule(self, src: SourceFile, base: Path_, r: S.Rule, order: int) -> CompiledRule | None:
        values, issues = self.values, self.issues
        triggers = as_tuple(r.on)
        scope = self.scopes.for_triggers(triggers)
        whens = [] if r.when is None else ([r.when] if isinstance(r.when, str) else r.when)
        conds = []
        for j, w in enumerate(whens):
            path = (*base, "when") if isinstance(r.when, str) else (*base, "when", j)
            c = values.expr(src, path, w, scope, True)
            if c is not None:
                conds.append(c)
        send = S.Send(message=r.send) if isinstance(r.send, str) else r.send
        send_path: Path_ = (
            (*base, "send") if isinstance(r.send, str) else (*base, "send", "message")
        )
        msg = self.messages.get(send.message)
        if msg is None:
            issues.error(
                src,
                send_path,
                f"unknown message '{send.message}'"
                + (suggest(send.message, self.messages) or " (define it under messages:)"),
                r.id,
            )
            return None
        channels = tuple(send.channels) if send.channels else msg.channels
        for j, ch in enumerate(channels):
            if ch not in msg.channels:
                issues.error(
                    src,
                    (*base, "send", "channels", j),
                    f"message '{msg.id}' is not available on channel '{ch}'",
                    r.id,
                )
        params: dict[str, Param] = {}
        msrc, mdecl = self.declared_messages[msg.id]
        for k, v in mdecl.params.items():
            p = values.param(msrc, ("messages", msg.id, "params", k), v, scope)
            if p is not None:
                params[k] = p
        for k, v in send.params.items():
            p = values.param(src, (*base, "send", "params", k), v, scope)
            if p is not None:
                params[k] = p
        window = compile_window(src, (*base, "active"), r.active, issues) if r.active else None
        choice = (
            msg.choice if send.choose is None
            else compile_choice(
                src, (*base, "send", "choose"), send.choose, self.catalog.attributes, values
            )
        )
        if r.unless and r.after is None:
            issues.error(
                src, (*base, "unless"), "'unless' only applies to follow-ups: set 'after'", r.id
            )
        for j, u in enumerate(r.unless):
            self.catalog.known_event(issues, src, (*base, "unless", j), u, "unless", r.id)
        key, unless_keys = self._keys(src, base, r, triggers)
        goal = msg.goal
        if r.goal is not None:
            if msg.goal is not None:
                issues.error(src, (*base, "goal"), f"message '{msg.id}' has a goal of its own: "
                             "give the goal on the message (all its rules) or on each rule, "
                             "not both", r.id)
            goal = compile_goal(src, (*base, "goal"), r.goal, self.catalog, values, self.scopes)
        return CompiledRule(
            id=r.id,
            triggers=triggers,
            conditions=tuple(conds),
            check=compile_all(conds, (window.start, window.end) if window else None),
            message=msg,
            channels=channels,
            params=params,
            priority=r.priority,
            order=order,
            relevance=values.duration(src, (*base, "relevance"), r.relevance),
            holdout=(r.holdout.percent, r.holdout.salt) if r.holdout else None,
            delay=values.duration(src, (*base, "after"), r.after),
            unless=frozenset(r.unless),
            location=src.location((*base, "id")),
            description=r.description,
            window=window,
            choice=choice,
            key=key,
            unless_keys=unless_keys,
            goal=goal,
        )

    def _keys(
        self, src: SourceFile, base: Path_, r: S.Rule, triggers: tuple[str, ...]
    ) -> tuple[CompiledExpr | None, dict[str, CompiledExpr]]:
        """A keyed follow-up's key on each trigger (joined: the value the follow-up keeps)
        and on each unless event (which follow-up it cancels), each type-checked."""
        if r.key is None:
            return None, {}
        at: Path_ = (*base, "key")
        if r.after is None:
            self.issues.error(src, at, "'key' only applies to follow-ups: set 'after'", r.id)
            return None, {}
        ok = all([compile_key(src, at, r.key, t, "the trigger", self.scopes, self.issues, r.id)
                  for t in triggers])
        unless = {u: compile_key(src, at, r.key, u, "the unless event", self.scopes,
                                 self.issues, r.id) for u in r.unless}
        key = self.values.expr(src, at, r.key, self.scopes.for_triggers(triggers)) if ok else None
        return key, {u: k for u, k in unless.items() if k is not None}


def index_rules(
    rules: list[CompiledRule],
) -> tuple[
    dict[str, list[CompiledRule]], dict[str, frozenset[str]], dict[str, dict[str, CompiledExpr]]
]:
    """Rules by trigger, highest priority first (pack order breaks ties); the follow-up
    rules each event type cancels; and, of those, the keyed ones with their key there."""
    by_trigger: dict[str, list[CompiledRule]] = {}
    cancels: dict[str, set[str]] = {}
    keyed: dict[str, dict[str, CompiledExpr]] = {}
    for r in rules:
        for t in r.triggers:
            by_trigger.setdefault(t, []).append(r)
        for u in r.unless:
            cancels.setdefault(u, set()).add(r.id)
            if u in r.unless_keys:
                keyed.setdefault(u, {})[r.id] = r.unless_keys[u]
    for lst in by_trigger.values():
        lst.sort(key=lambda r: (-r.priority, r.order))
    return by_trigger, {k: frozenset(v) for k, v in cancels.items()}, keyed


def rule_locations(files: list[RuleFileParts]) -> dict[str, SourceLocation]:
    """Where each rule's id is, for the static findings."""
    out: dict[str, SourceLocation] = {}
    for part in files:
        for i, r in part.items("rules"):
            out[r.id] = part.src.location(("rules", i, "id"))
    return out
