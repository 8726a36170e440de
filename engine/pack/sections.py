"""Compiling the declarative sections of a pack: state updates, contexts, messages,
policies, caps and quiet hours. Mixed into the loader's builder."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from engine.dsl.calendar import bound, zone
from engine.dsl.compiler import CompiledExpr
from engine.dsl.functions import clock_minutes
from engine.dsl.syntax import suggest
from engine.dsl.timefns import MAX_TS, MIN_TS
from engine.dsl.types import Scope
from engine.errors import SourceLocation
from engine.pack import schema as S
from engine.pack.consent import ConsentRules
from engine.pack.locate import as_tuple
from engine.pack.model import (
    Cap,
    ChannelChoice,
    CompiledPolicy,
    CompiledUpdate,
    ContextChange,
    MessageDef,
    Param,
    Quiet,
    ScopeFilter,
    Window,
)
from engine.pack.source import Path_, SourceFile


def _written(value: object) -> str:
    """A window bound as the author wrote it (YAML made a date of an unquoted one)."""
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


_SINGULAR = {"categories": "category", "messages": "message", "channels": "channel"}


class SectionCompiler:
    """What the builder provides to the section compilers below."""

    files: list[tuple[SourceFile, S.RuleFile]]
    decl: dict[str, dict[str, tuple[SourceFile, Any]]]
    channels: frozenset[str]
    categories: frozenset[str]
    counters: frozenset[str]
    windows: dict[str, float]
    timestamps: frozenset[str]
    consent: ConsentRules

    def items(self, src: SourceFile, f: S.RuleFile, section: str) -> list[tuple[int, Any]]:
        raise NotImplementedError

    def error(
        self,
        src: SourceFile,
        path: Path_,
        msg: str,
        rule_id: str | None = None,
        inner: tuple[int, int] | None = None,
    ) -> None:
        raise NotImplementedError

    def expr(
        self, src: SourceFile, path: Path_, text: str, scope: Scope, boolean: bool = False
    ) -> CompiledExpr | None:
        raise NotImplementedError

    def param(self, src: SourceFile, path: Path_, value: Any, scope: Scope) -> Param | None:
        raise NotImplementedError

    def known_event(
        self, src: SourceFile, path: Path_, etype: str, where: str, rule_id: str | None = None
    ) -> None:
        """Reject an undeclared event type where a typo would fail silently: an 'unless'
        that never cancels, an 'end' that never ends (packs that declare no events skip)."""
        declared = self.decl["events"]
        if declared and etype not in declared:
            hint = suggest(etype, declared) or " (declare it under events:)"
            self.error(
                src, path, f"'{where}' names an undeclared event type '{etype}'{hint}", rule_id
            )

    def duration(self, src: SourceFile, path: Path_, value: Any) -> float | None:
        raise NotImplementedError

    def _scope(self, triggers: Any) -> Scope:
        raise NotImplementedError

    def cooldown_need(self, mid: str, seconds: float, where: SourceLocation) -> None:
        raise NotImplementedError

    def window_need(self, cap: str, seconds: float, where: SourceLocation) -> None:
        raise NotImplementedError

    def _state_names(self) -> tuple[frozenset[str], dict[str, float], frozenset[str]]:
        counters: set[str] = set()
        windows: dict[str, float] = {}
        stamps: set[str] = set()
        for src, f in self.files:
            for i, u in self.items(src, f, "updates"):
                counters.update(u.increment, u.reset)
                stamps.update(u.timestamp)
                for name, w in u.count_in_window.items():
                    secs = self.duration(src, ("updates", i, "count_in_window", name), w)
                    if secs is not None:
                        windows[name] = max(windows.get(name, 0.0), secs)
        return frozenset(counters), windows, frozenset(stamps)

    def _updates(self) -> dict[str, list[CompiledUpdate]]:
        out: dict[str, list[CompiledUpdate]] = {}
        attrs = self.decl["attributes"]
        for src, f in self.files:
            for i, u in self.items(src, f, "updates"):
                base: Path_ = ("updates", i)
                triggers = as_tuple(u.on)
                scope = self._scope(triggers)
                cond = self.expr(src, (*base, "when"), u.when, scope, True) if u.when else None
                sets: dict[str, Param] = {}
                for k, v in u.set.items():
                    if k not in attrs:
                        self.error(
                            src,
                            (*base, "set", k, "__key__"),
                            f"unknown attribute '{k}'"
                            + (suggest(k, attrs) or " (declare it under attributes:)"),
                        )
                    p = self.param(src, (*base, "set", k), v, scope)
                    if p is not None:
                        sets[k] = p
                incs = {
                    k: p
                    for k, v in u.increment.items()
                    if (p := self.param(src, (*base, "increment", k), v, scope)) is not None
                }
                merge_a = (
                    self.expr(src, (*base, "merge_attributes"), u.merge_attributes, scope)
                    if u.merge_attributes
                    else None
                )
                merge_c = (
                    self.expr(src, (*base, "merge_consent"), u.merge_consent, scope)
                    if u.merge_consent
                    else None
                )
                cu = CompiledUpdate(
                    triggers,
                    cond,
                    sets,
                    incs,
                    tuple(u.reset),
                    {k: self.windows[k] for k in u.count_in_window if k in self.windows},
                    tuple(u.timestamp),
                    merge_a,
                    merge_c,
                )
                for t in triggers:
                    out.setdefault(t, []).append(cu)
        return out

    def _contexts(
        self,
    ) -> tuple[
        dict[str, list[ContextChange]], dict[str, list[ContextChange]], dict[str, float | None]
    ]:
        starts: dict[str, list[ContextChange]] = {}
        ends: dict[str, list[ContextChange]] = {}
        ttls: dict[str, float | None] = {}
        for name, (src, c) in self.decl["contexts"].items():
            base: Path_ = ("contexts", name)
            ttl = self.duration(src, (*base, "ttl"), c.ttl)
            ttls[name] = ttl
            for kind, triggers, target in (("start", c.start, starts), ("end", c.end, ends)):
                for j, trig in enumerate(triggers):
                    on = as_tuple(trig if isinstance(trig, str) else trig.on)
                    if kind == "end":
                        for k, t in enumerate(on):
                            at: Path_ = (*base, kind, j)
                            if not isinstance(trig, str):
                                at = (*at, "on") if isinstance(trig.on, str) else (*at, "on", k)
                            self.known_event(src, at, t, "end")
                    cond = None
                    if isinstance(trig, S.Trigger) and trig.when:
                        cond = self.expr(
                            src, (*base, kind, j, "when"), trig.when, self._scope(on), True
                        )
                    for t in on:
                        target.setdefault(t, []).append(ContextChange(name, cond, ttl))
        return starts, ends, ttls

    def _messages(self) -> dict[str, MessageDef]:
        out: dict[str, MessageDef] = {}
        for mid, (src, m) in self.decl["messages"].items():
            if self.categories and m.category not in self.categories:
                self.error(
                    src,
                    ("messages", mid, "category"),
                    f"unknown category '{m.category}'"
                    + (suggest(m.category, self.categories) or " (declare it under categories:)"),
                )
            for j, ch in enumerate(m.channels):
                if ch not in self.channels:
                    hint = suggest(ch, self.channels)
                    path: Path_ = ("messages", mid, "channels", j)
                    self.error(src, path, f"unknown channel '{ch}'{hint}")
            cooldown = self.duration(src, ("messages", mid, "cooldown"), m.cooldown)
            if cooldown is not None:
                self.cooldown_need(mid, cooldown, src.location(("messages", mid, "cooldown")))
            out[mid] = MessageDef(
                mid,
                m.category,
                tuple(m.channels),
                m.template or mid,
                cooldown,
                src.location(("messages", mid, "__key__")),
                self.consent.exempt_channels(m.category, tuple(m.channels), m.consent),
                choice=self.choice(src, ("messages", mid, "choose"), m.choose),
            )
        return out

    def choice(self, src: SourceFile, path: Path_, choose: S.Choose) -> ChannelChoice | None:
        """``choose:`` compiled; None for 'all', which costs nothing on the hot path."""
        if choose == "all":
            return None
        if isinstance(choose, S.Preferred):
            attr = choose.preferred
            declared = self.decl["attributes"]
            if attr not in declared:
                self.error(src, (*path, "preferred"),
                           f"unknown attribute '{attr}' (declare it under attributes:)")
            elif (typ := declared[attr][1]) not in ("str", "any"):
                self.error(src, (*path, "preferred"),
                           f"attribute '{attr}' is declared {typ}; a channel name is a str")
            return ChannelChoice(attr)
        return ChannelChoice()

    def window(self, src: SourceFile, path: Path_, active: S.Active) -> Window | None:
        """A rule's ``active:`` campaign window as two instants, or None after an error."""
        try:
            tz = zone(active.tz)
        except ValueError as exc:
            self.error(src, (*path, "tz"), str(exc))
            return None
        if active.from_ is None and active.until is None:
            self.error(src, path, "a campaign window needs 'from', 'until' or both")
            return None
        ends: list[float] = []
        for key, value, end in (("from", active.from_, False), ("until", active.until, True)):
            if value is None:
                ends.append(MAX_TS if end else MIN_TS)
                continue
            try:
                ends.append(bound(value, tz, end=end))
            except ValueError as exc:
                self.error(src, (*path, key), str(exc))
                return None
        start, end_ = ends
        if end_ <= start:
            self.error(src, (*path, "until"),
                       f"'until' ({_written(active.until)}) is before 'from' "
                       f"({_written(active.from_)}): the campaign would never run")
            return None
        return Window(start, end_, active.tz)

    def _filter(self, src: SourceFile, path: Path_, s: S.Scope) -> ScopeFilter:
        for field, known in (
            ("categories", self.categories),
            ("messages", self.decl["messages"]),
            ("channels", self.channels),
        ):
            for j, v in enumerate(getattr(s, field)):
                if known and v not in known:
                    hint = suggest(v, known)
                    self.error(src, (*path, field, j), f"unknown {_SINGULAR[field]} '{v}'{hint}")
        return ScopeFilter(frozenset(s.categories), frozenset(s.messages), frozenset(s.channels))

    def _policies(self) -> list[CompiledPolicy]:
        out = []
        for pid, (src, p) in self.decl["policies"].items():
            cond = self.expr(src, ("policies", pid, "when"), p.when, self._scope(None), True)
            flt = self._filter(src, ("policies", pid, "suppress"), p.suppress)
            if cond is not None:
                out.append(CompiledPolicy(pid, cond, flt))
        return out

    def _caps_and_quiet(self) -> tuple[list[Cap], list[Quiet]]:
        caps: list[Cap] = []
        quiet: list[Quiet] = []
        for src, f in self.files:
            for i, c in self.items(src, f, "frequency_caps"):
                w = self.duration(src, ("frequency_caps", i, "window"), c.window)
                flt = self._filter(src, ("frequency_caps", i), c)
                if w is not None:
                    caps.append(Cap(c.id, flt, c.max, w))
                    self.window_need(c.id, w, src.location(("frequency_caps", i, "window")))
            for i, q in self.items(src, f, "quiet_hours"):
                flt = self._filter(src, ("quiet_hours", i), q)
                quiet.append(Quiet(q.id, flt, clock_minutes(q.start), clock_minutes(q.end)))
        return caps, quiet
