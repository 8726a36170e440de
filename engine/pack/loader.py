"""Load a rule pack: read YAML, validate its shape, compile every expression, index it.

A pack with any error is rejected whole (:class:`RulePackError`); warnings (static
findings) are kept on the compiled pack for ``tact rules check`` to report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.dsl.compiler import CompiledExpr, compile_all, compile_expr
from engine.dsl.syntax import suggest
from engine.dsl.types import Scope, join
from engine.errors import ExpressionError, RuleIssue, RulePackError, SourceLocation
from engine.pack import schema as S
from engine.pack.constants import expression_scope
from engine.pack.findings import static_findings
from engine.pack.locate import as_tuple, data_path, owner, pydantic_message, significant, without
from engine.pack.model import (
    CompiledRule,
    MessageDef,
    PackSettings,
    Param,
    RulePack,
)
from engine.pack.packwide import PackWideCompiler
from engine.pack.source import MAX_FILE_BYTES, Path_, SourceFile, read_source

_UNIQUE_SECTIONS = ("constants", "events", "attributes", "contexts", "messages", "policies")

MAX_PACK_BYTES = 8 * 1024 * 1024  # all of a pack's files together
# A pack directory's scenarios (`tact rules test` finds them there by convention) are not
# rule files: a `scenarios/` directory anywhere below a pack directory is skipped.
SCENARIOS_DIR = "scenarios"


def rule_files(paths: Sequence[str | Path]) -> list[Path]:
    """Every *.yaml / *.yml below the given files and directories, in a stable order, except
    those under a ``scenarios/`` directory below a given directory."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(
                x for x in p.rglob("*")
                if x.suffix in (".yaml", ".yml")
                and SCENARIOS_DIR not in x.relative_to(p).parts[:-1]
            ))
        else:
            out.append(p)
    return out


def load_pack(
    paths: Sequence[str | Path] | str | Path,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_pack_bytes: int = MAX_PACK_BYTES,
) -> RulePack:
    """Load and compile a pack from files or directories. Raises RulePackError.

    A file over ``max_file_bytes``, or files over ``max_pack_bytes`` together, reject the pack
    before anything is parsed.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files = rule_files(paths)
    if not files:
        where = ", ".join(map(str, paths))
        raise RulePackError([RuleIssue(f"no rule files (*.yaml) found in {where}")])
    _check_pack_size(files, max_pack_bytes)
    sources: list[SourceFile] = []
    issues: list[RuleIssue] = []
    for f in files:
        src, issue = read_source(f, max_bytes=max_file_bytes)
        if issue:
            issues.append(issue)
        elif src:
            sources.append(src)
    return _Builder(sources, issues).build()


def _check_pack_size(files: Sequence[Path], max_pack_bytes: int) -> None:
    total = 0
    for f in files:
        try:
            total += f.stat().st_size
        except OSError:
            continue  # read_source reports the unreadable file with its name
        if total > max_pack_bytes:
            raise RulePackError([RuleIssue(
                f"rule pack over the {max_pack_bytes}-byte limit (reached at this file)",
                SourceLocation(str(f), 1, 1),
                code="size",
            )])


def load_pack_text(text: str, name: str = "<rules>") -> RulePack:
    """Compile a pack from one YAML text (tests, the embedded API)."""
    from engine.pack.source import parse_source

    src, issue = parse_source(text, name)
    return _Builder([src] if src else [], [issue] if issue else []).build()


class _Builder(PackWideCompiler):
    def __init__(self, sources: list[SourceFile], issues: list[RuleIssue]) -> None:
        self.sources = sources
        self.issues = issues
        self.constants = {}
        self.needs = []
        self.retention_setting = None
        self.files: list[tuple[SourceFile, S.RuleFile]] = []
        self.kept: dict[str, dict[str, list[int]]] = {}

    def items(self, src: SourceFile, f: S.RuleFile, section: str) -> list[tuple[int, Any]]:
        """A list section's items with their index in the source file."""
        values = getattr(f, section)
        kept = self.kept.get(src.path, {}).get(section)
        return [(kept[i] if kept else i, v) for i, v in enumerate(values)]

    # -- issue helpers ------------------------------------------------------------
    def error(
        self,
        src: SourceFile,
        path: Path_,
        msg: str,
        rule_id: str | None = None,
        inner: tuple[int, int] | None = None,
        severity: str = "error",
        code: str = "invalid",
    ) -> None:
        self.issues.append(
            RuleIssue(
                msg, src.location(path, inner), rule_id or owner(src.data, path), severity, code
            )
        )

    def compile_checked(
        self, src: SourceFile, path: Path_, text: str, scope: Scope, boolean: bool
    ) -> CompiledExpr | None:
        try:
            return compile_expr(text, scope, boolean=boolean)
        except ExpressionError as exc:
            self.error(src, path, exc.message, inner=(exc.line, exc.column), code="expression")
            return None

    def param(self, src: SourceFile, path: Path_, value: Any, scope: Scope) -> Param | None:
        if isinstance(value, str):
            return self.expr(src, path, value, scope)
        if isinstance(value, bool | int | float):
            return value  # a YAML number or boolean is its own constant
        self.error(src, path, f"expected an expression, a number or a boolean, got {value!r}")
        return None

    # -- build --------------------------------------------------------------------
    def build(self) -> RulePack:
        for src in self.sources:
            try:
                self.files.append((src, S.RuleFile.model_validate(src.data)))
            except ValidationError as exc:
                bad: set[Path_] = set()
                for err in significant(exc.errors(include_url=False), src.data):
                    path = data_path(src.data, err["loc"])
                    bad.add(path[:2])
                    if err["type"] == "extra_forbidden":
                        path = (*path, "__key__")
                    self.error(src, path, pydantic_message(err, path, S.RuleFile), code="schema")
                # Keep checking the items that are well-formed, so one bad rule does not
                # hide the errors of the others (the pack is rejected either way).
                salvaged, kept = without(src.data, bad)
                try:
                    self.files.append((src, S.RuleFile.model_validate(salvaged)))
                    self.kept[src.path] = kept
                except ValidationError:
                    pass
        self._declarations()
        pack = self._compile()  # even after errors, so that all of them are reported at once
        pack.findings.extend(static_findings(pack, self._rule_locations()))
        self.issues.extend(pack.findings)
        if self.has_errors():
            raise RulePackError(self.issues)
        pack.findings = [i for i in self.issues if i.severity != "error"]
        return pack

    def has_errors(self) -> bool:
        return any(i.severity == "error" for i in self.issues)

    def _rule_locations(self) -> dict[str, SourceLocation]:
        out: dict[str, SourceLocation] = {}
        for src, f in self.files:
            for i, r in self.items(src, f, "rules"):
                out[r.id] = src.location(("rules", i, "id"))
        return out

    def _declarations(self) -> None:
        """Merge sections across files, rejecting duplicates with both places named."""
        self.decl: dict[str, dict[str, tuple[SourceFile, Any]]] = {s: {} for s in _UNIQUE_SECTIONS}
        self.settings: PackSettings = PackSettings()
        self.name = "rules"
        seen_rules: dict[str, SourceLocation] = {}
        seen_settings: SourceLocation | None = None
        given_settings: list[tuple[SourceFile, S.Settings]] = []
        for src, f in self.files:
            for section in _UNIQUE_SECTIONS:
                for key, value in getattr(f, section).items():
                    prev = self.decl[section].get(key)
                    if prev is not None:
                        where = prev[0].location((section, key))
                        self.error(
                            src,
                            (section, key, "__key__"),
                            f"{section[:-1]} '{key}' is defined twice (first at {where})",
                        )
                    self.decl[section][key] = (src, value)
            for i, r in self.items(src, f, "rules"):
                if r.id in seen_rules:
                    self.error(
                        src,
                        ("rules", i, "id"),
                        f"rule id '{r.id}' is used twice (first at {seen_rules[r.id]})",
                    )
                seen_rules[r.id] = src.location(("rules", i, "id"))
            if f.pack:
                self.name = f.pack
            if f.settings is not None:
                if seen_settings is not None:
                    self.error(
                        src, ("settings",), f"settings given twice (first at {seen_settings})"
                    )
                seen_settings = src.location(("settings",))
                given_settings.append((src, f.settings))
        self._constants()  # before anything that may name a constant, settings included
        for src, s in given_settings:
            self._settings(src, s)

    def _scope(self, triggers: Iterable[str] | None) -> Scope:
        events: dict[str, dict[str, str] | None] = {
            k: (None if v.data is None else dict(v.data))
            for k, (_, v) in self.decl["events"].items()
        }
        data: dict[str, str] | None
        if triggers is None or not events:
            data = None
        else:
            schemas = [events.get(t) for t in triggers]
            if any(s is None for s in schemas):
                data = None
            else:
                fields = [s for s in schemas if s is not None]
                data = dict(fields[0]) if fields else {}
                for other in fields[1:]:
                    data = {k: join(t, other[k]) for k, t in data.items() if k in other}
        attrs = {k: v for k, (_, v) in self.decl["attributes"].items()}
        attrs.setdefault(self.settings.timezone_attribute, "str")
        return Scope(
            event_data=data,
            attributes=attrs,
            counters=self.counters,
            windows=frozenset(self.windows),
            timestamps=self.timestamps,
            contexts=frozenset(self.decl["contexts"]),
            channels=self.channels,
            constants=expression_scope(self.constants),
        )

    def _compile(self) -> RulePack:
        declared_channels = {c for _, f in self.files for c in f.channels}
        self.channels = frozenset(declared_channels) or frozenset(
            c for _, (_, m) in self.decl["messages"].items() for c in m.channels
        )
        self.categories = frozenset(c for _, f in self.files for c in f.categories)
        self._consent()
        self.counters, self.windows, self.timestamps = self._state_names()
        updates = self._updates()
        starts, ends, ttls = self._contexts()
        messages = self._messages()
        policies = self._policies()
        caps, quiet = self._caps_and_quiet()
        rules = self._rules(messages)
        self._retention()
        by_trigger: dict[str, list[CompiledRule]] = {}
        cancels: dict[str, set[str]] = {}
        for r in rules:
            for t in r.triggers:
                by_trigger.setdefault(t, []).append(r)
            for u in r.unless:
                cancels.setdefault(u, set()).add(r.id)
        for lst in by_trigger.values():
            lst.sort(key=lambda r: (-r.priority, r.order))
        events = {
            k: (None if v.data is None else dict(v.data))
            for k, (_, v) in self.decl["events"].items()
        }
        return RulePack(
            name=self.name,
            version=self._version(),
            settings=self.settings,
            files=tuple(s.path for s in self.sources),
            event_types=events,
            attributes={k: v for k, (_, v) in self.decl["attributes"].items()},
            channels=self.channels,
            categories=self.categories,
            messages=messages,
            contexts=ttls,
            windows=self.windows,
            counters=self.counters,
            timestamps=self.timestamps,
            rules=rules,
            by_trigger=by_trigger,
            cancels={k: frozenset(v) for k, v in cancels.items()},
            updates=updates,
            context_ends=ends,
            context_starts=starts,
            policies=policies,
            caps=caps,
            quiet_hours=quiet,
            constants={k: c.value for k, c in self.constants.items()},
        )

    def _version(self) -> str:
        h = hashlib.sha256()
        for src in sorted(self.sources, key=lambda s: Path(s.path).name):
            h.update(Path(src.path).name.encode() + b"\0" + src.text.encode() + b"\0")
        return h.hexdigest()[:12]

    def _rules(self, messages: dict[str, MessageDef]) -> list[CompiledRule]:
        out: list[CompiledRule] = []
        order = 0
        for src, f in self.files:
            for i, r in self.items(src, f, "rules"):
                built = self._rule(src, ("rules", i), r, messages, order)
                order += 1
                if built is not None and r.enabled:
                    out.append(built)
        return out

    def _rule(
        self, src: SourceFile, base: Path_, r: S.Rule, messages: dict[str, MessageDef], order: int
    ) -> CompiledRule | None:
        triggers = as_tuple(r.on)
        scope = self._scope(triggers)
        whens = [] if r.when is None else ([r.when] if isinstance(r.when, str) else r.when)
        conds = []
        for j, w in enumerate(whens):
            path = (*base, "when") if isinstance(r.when, str) else (*base, "when", j)
            c = self.expr(src, path, w, scope, True)
            if c is not None:
                conds.append(c)
        send = S.Send(message=r.send) if isinstance(r.send, str) else r.send
        send_path: Path_ = (
            (*base, "send") if isinstance(r.send, str) else (*base, "send", "message")
        )
        msg = messages.get(send.message)
        if msg is None:
            self.error(
                src,
                send_path,
                f"unknown message '{send.message}'"
                + (suggest(send.message, messages) or " (define it under messages:)"),
                r.id,
            )
            return None
        channels = tuple(send.channels) if send.channels else msg.channels
        for j, ch in enumerate(channels):
            if ch not in msg.channels:
                self.error(
                    src,
                    (*base, "send", "channels", j),
                    f"message '{msg.id}' is not available on channel '{ch}'",
                    r.id,
                )
        params: dict[str, Param] = {}
        msrc, mdecl = self.decl["messages"][msg.id]
        for k, v in mdecl.params.items():
            p = self.param(msrc, ("messages", msg.id, "params", k), v, scope)
            if p is not None:
                params[k] = p
        for k, v in send.params.items():
            p = self.param(src, (*base, "send", "params", k), v, scope)
            if p is not None:
                params[k] = p
        window = self.window(src, (*base, "active"), r.active) if r.active else None
        choice = (
            msg.choice if send.choose is None
            else self.choice(src, (*base, "send", "choose"), send.choose)
        )
        if r.unless and r.after is None:
            self.error(
                src, (*base, "unless"), "'unless' only applies to follow-ups: set 'after'", r.id
            )
        for j, u in enumerate(r.unless):
            self.known_event(src, (*base, "unless", j), u, "unless", r.id)
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
            relevance=self.duration(src, (*base, "relevance"), r.relevance),
            holdout=(r.holdout.percent, r.holdout.salt) if r.holdout else None,
            delay=self.duration(src, (*base, "after"), r.after),
            unless=frozenset(r.unless),
            location=src.location((*base, "id")),
            description=r.description,
            window=window,
            choice=choice,
        )

