"""Load a rule pack: read YAML, validate its shape, compile every expression, index it.

A pack with any error is rejected whole (:class:`RulePackError`); warnings (static
findings) are kept on the compiled pack for ``tact rules check`` to report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from engine.errors import RuleIssue, RulePackError, SourceLocation
from engine.pack.compile.audience import compile_campaigns
from engine.pack.compile.catalog import compile_catalog
from engine.pack.compile.contexts import compile_contexts
from engine.pack.compile.declarations import declare
from engine.pack.compile.files import validate_files
from engine.pack.compile.issues import Issues
from engine.pack.compile.kpis import compile_kpis
from engine.pack.compile.maps import compile_maps
from engine.pack.compile.messages import compile_messages
from engine.pack.compile.policies import Filters, compile_caps_and_quiet, compile_policies
from engine.pack.compile.rules import RuleCompiler, index_rules, rule_locations
from engine.pack.compile.scope import Scopes
from engine.pack.compile.settings import apply_retention, compile_constants, compile_settings
from engine.pack.compile.state import compile_sets, compile_updates, state_names
from engine.pack.compile.values import Values
from engine.pack.findings import static_findings
from engine.pack.model import RulePack
from engine.pack.source import MAX_FILE_BYTES, SourceFile, read_source

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
    return _compile(sources, issues)


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
    return _compile([src] if src else [], [issue] if issue else [])


def _compile(sources: list[SourceFile], found: list[RuleIssue]) -> RulePack:
    """Compile the parsed files, section family by family. Every family runs even after
    errors, so that all of them are reported at once; any error rejects the pack."""
    issues = Issues(found)
    files = validate_files(sources, issues)
    decl = declare(files, issues)
    values = Values(issues, compile_constants(decl.constants, issues))
    settings, retention = compile_settings(decl.settings, values)
    catalog = compile_catalog(files, decl, issues)
    state = state_names(files, values)
    keyed = frozenset(n for n, (_, c) in decl.contexts.items() if c.key is not None)
    sets = compile_sets(decl.sets, values)
    maps = compile_maps(decl.maps, values, decl.sets, issues)
    scopes = Scopes(
        catalog, state, frozenset(decl.contexts), settings.timezone_attribute, values.constants,
        keyed, frozenset(sets), {name: m.value for name, m in maps.items()},
    )
    updates = compile_updates(files, catalog.attributes, scopes, values, issues, sets, maps)
    contexts = compile_contexts(decl.contexts, catalog, scopes, values, issues)
    messages = compile_messages(decl.messages, catalog, values, issues, scopes)
    filters = Filters(catalog, decl.messages, issues)
    policies = compile_policies(decl.policies, filters, scopes, values)
    caps, quiet = compile_caps_and_quiet(files, filters, values)
    rule_compiler = RuleCompiler(messages, decl.messages, catalog, scopes, values, issues)
    rules = rule_compiler.compile(files)
    campaigns = compile_campaigns(files, rule_compiler, {r.id for r in rules}, issues)
    kpis = compile_kpis(files, catalog, scopes, values, issues)
    apply_retention(settings, values, retention, issues)
    by_trigger, cancels, keyed_cancels = index_rules(rules)
    pack = RulePack(
        name=decl.name,
        version=_version(sources),
        settings=settings,
        files=tuple(s.path for s in sources),
        event_types=catalog.events,
        attributes=catalog.attributes,
        channels=catalog.channels,
        categories=catalog.categories,
        messages=messages,
        contexts=contexts.ttls,
        windows=state.windows,
        counters=state.counters,
        timestamps=state.timestamps,
        rules=rules,
        by_trigger=by_trigger,
        cancels=cancels,
        updates=updates,
        context_ends=contexts.ends,
        context_starts=contexts.starts,
        policies=policies,
        caps=caps,
        quiet_hours=quiet,
        constants={k: c.value for k, c in values.constants.items()},
        keyed_cancels=keyed_cancels,
        keyed_contexts=keyed,
        sets=sets,
        kpis=kpis,
        campaigns=campaigns,
        maps=maps,
        keyed_counters=state.keyed_counters,
        keyed_timestamps=state.keyed_timestamps,
    )
    pack.findings.extend(static_findings(pack, rule_locations(files)))
    found.extend(pack.findings)
    if issues.has_errors():
        raise RulePackError(found)
    pack.findings = [i for i in found if i.severity != "error"]
    return pack


def _version(sources: list[SourceFile]) -> str:
    """A hash of the pack's files (names and text), whatever directory they are in."""
    h = hashlib.sha256()
    for src in sorted(sources, key=lambda s: Path(s.path).name):
        h.update(Path(src.path).name.encode() + b"\0" + src.text.encode() + b"\0")
    return h.hexdigest()[:12]
