"""The per-customer state a pack keeps and the updates that change it on each event."""

from __future__ import annotations

from engine.dsl.compiler import CompiledExpr
from engine.dsl.syntax import suggest
from engine.dsl.types import Scope
from engine.pack import schema as S
from engine.pack.compile.declarations import Declared
from engine.pack.compile.files import RuleFileParts
from engine.pack.compile.issues import Issues
from engine.pack.compile.keys import key_on_triggers
from engine.pack.compile.maps import MapUpdates
from engine.pack.compile.scope import Scopes, StateNames
from engine.pack.compile.values import Values
from engine.pack.locate import as_tuple
from engine.pack.model import CompiledUpdate, MapSpec, Param, SetChange, SetSpec
from engine.pack.source import Path_, SourceFile

#: What an update with a key: may not hold (the key applies to counters and timestamps).
_NOT_KEYED = ("set", "count_in_window", "merge_attributes", "merge_consent", "add", "remove",
              "put")

#: What an add: or remove: may give: one member (text) or a list of them.
_MEMBER_TYPES = frozenset({"str", "list", "any", "null"})


def compile_sets(declared: Declared, values: Values) -> dict[str, SetSpec]:
    """The declared sets (``sets:``): each one's member ttl and size bound."""
    return {
        name: SetSpec(values.duration(src, ("sets", name, "ttl"), d.ttl), d.max)
        for name, (src, d) in declared.items()
    }


def state_names(files: list[RuleFileParts], values: Values) -> StateNames:
    """The counters, counted-in-window names and timestamps the updates name; those an
    update with a key: keeps per key apart (a name may be kept both ways)."""
    counters: set[str] = set()
    windows: dict[str, float] = {}
    stamps: set[str] = set()
    keyed_counters: set[str] = set()
    keyed_stamps: set[str] = set()
    for part in files:
        for i, u in part.items("updates"):
            (counters if u.key is None else keyed_counters).update(u.increment, u.reset)
            (stamps if u.key is None else keyed_stamps).update(u.timestamp)
            for name, w in u.count_in_window.items():
                secs = values.duration(part.src, ("updates", i, "count_in_window", name), w)
                if secs is not None:
                    windows[name] = max(windows.get(name, 0.0), secs)
    return StateNames(frozenset(counters), windows, frozenset(stamps),
                      frozenset(keyed_counters), frozenset(keyed_stamps))


def compile_updates(
    files: list[RuleFileParts],
    attributes: dict[str, str],
    scopes: Scopes,
    values: Values,
    issues: Issues,
    set_specs: dict[str, SetSpec] | None = None,
    map_specs: dict[str, MapSpec] | None = None,
) -> dict[str, list[CompiledUpdate]]:
    """Every ``updates:`` item, by the event type it runs on."""
    out: dict[str, list[CompiledUpdate]] = {}
    windows = scopes.state.windows
    specs = set_specs or {}
    maps = map_specs or {}
    map_updates = MapUpdates(maps, scopes, values, issues)
    for part in files:
        src = part.src
        for i, u in part.items("updates"):
            base: Path_ = ("updates", i)
            triggers = as_tuple(u.on)
            scope = scopes.for_triggers(triggers)
            cond = values.expr(src, (*base, "when"), u.when, scope, True) if u.when else None
            sets: dict[str, Param] = {}
            for k, v in u.set.items():
                if k not in attributes:
                    issues.error(
                        src,
                        (*base, "set", k, "__key__"),
                        f"unknown attribute '{k}'"
                        + (suggest(k, attributes) or " (declare it under attributes:)"),
                    )
                p = values.param(src, (*base, "set", k), v, scope)
                if p is not None:
                    sets[k] = p
            incs = {
                k: p
                for k, v in u.increment.items()
                if (p := values.param(src, (*base, "increment", k), v, scope)) is not None
            }
            merge_a = (
                values.expr(src, (*base, "merge_attributes"), u.merge_attributes, scope)
                if u.merge_attributes
                else None
            )
            merge_c = (
                values.expr(src, (*base, "merge_consent"), u.merge_consent, scope)
                if u.merge_consent
                else None
            )
            update = CompiledUpdate(
                triggers,
                cond,
                sets,
                incs,
                tuple(u.reset),
                {k: windows[k] for k in u.count_in_window if k in windows},
                tuple(u.timestamp),
                merge_a,
                merge_c,
                _set_changes(src, (*base, "add"), u.add, scope, specs, values, issues),
                _set_changes(src, (*base, "remove"),
                             {k: v for k, v in u.remove.items() if k not in maps},
                             scope, specs, values, issues),
                _update_key(src, base, u, triggers, scopes, values, issues),
                map_updates.puts(src, (*base, "put"), u.put, triggers),
                map_updates.removes(src, (*base, "remove"),
                                    [(k, v) for k, v in u.remove.items() if k in maps], triggers),
            )
            for t in triggers:
                out.setdefault(t, []).append(update)
    return out


def _update_key(
    src: SourceFile,
    base: Path_,
    u: S.Update,
    triggers: tuple[str, ...],
    scopes: Scopes,
    values: Values,
    issues: Issues,
) -> CompiledExpr | None:
    """An update's key: (keyed counters and timestamps), type-checked on every trigger."""
    if u.key is None:
        return None
    at: Path_ = (*base, "key")
    others = [name for name in _NOT_KEYED if getattr(u, name)]
    if others:
        issues.error(src, at, "key: applies to increment, reset and timestamp only; move "
                     f"{', '.join(others)} to an update of its own")
        return None
    if not (u.increment or u.reset or u.timestamp):
        issues.error(src, at, "key: needs increment, reset or timestamp to apply to")
        return None
    return key_on_triggers(src, at, u.key, triggers, scopes, values, issues)


def _set_changes(
    src: SourceFile,
    at: Path_,
    given: dict[str, str],
    scope: Scope,
    sets: dict[str, SetSpec],
    values: Values,
    issues: Issues,
) -> tuple[SetChange, ...]:
    """An update's add: or remove: items, each naming a declared set and giving text."""
    out: list[SetChange] = []
    for name, text in given.items():
        spec = sets.get(name)
        if spec is None:
            issues.error(src, (*at, name, "__key__"), f"unknown set '{name}'"
                         + (suggest(name, sets) or " (declare it under sets: or maps:)"))
        expr = values.expr(src, (*at, name), text, scope)
        if expr is None or spec is None:
            continue
        if expr.type not in _MEMBER_TYPES:
            issues.error(src, (*at, name), f"a set holds text, not {expr.type}: give a text "
                         "value (str(...) turns a number into text) or a list of them")
            continue
        out.append(SetChange(name, expr, spec))
    return tuple(out)
