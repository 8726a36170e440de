"""Declared maps (``maps:``) and the updates that write them (``put:``, ``remove:``): every
key type-checked on each trigger event, every value against the map's declared type."""

from __future__ import annotations

from collections.abc import Iterable

from engine.dsl.compiler import CompiledExpr
from engine.dsl.syntax import suggest
from engine.pack import schema as S
from engine.pack.compile.declarations import Declared
from engine.pack.compile.issues import Issues
from engine.pack.compile.keys import key_on_triggers
from engine.pack.compile.scope import Scopes
from engine.pack.compile.values import Values
from engine.pack.model import MapChange, MapSpec
from engine.pack.source import Path_, SourceFile

#: The expression types a value of each declared type may come from (null and any are
#: checked when the update runs: a value of another type is not put).
_VALUE_TYPES: dict[str, frozenset[str]] = {
    "str": frozenset({"str", "any", "null"}),
    "int": frozenset({"int", "any", "null"}),
    "float": frozenset({"int", "float", "number", "any", "null"}),
    "bool": frozenset({"bool", "any", "null"}),
}


def compile_maps(
    declared: Declared, values: Values, sets: Declared, issues: Issues
) -> dict[str, MapSpec]:
    """The declared maps: each one's value type, entry ttl and size bound. A name may not
    be a set's too (remove: names either)."""
    for name, (src, _) in declared.items():
        if name in sets:
            issues.error(src, ("maps", name, "__key__"), f"'{name}' is a set's name too (first "
                         f"at {sets[name][0].location(('sets', name))}): name the map apart")
    return {
        name: MapSpec(d.value, values.duration(src, ("maps", name, "ttl"), d.ttl), d.max)
        for name, (src, d) in declared.items()
    }


class MapUpdates:
    """Compiles one update's map writes, for the event types it runs on."""

    def __init__(self, maps: dict[str, MapSpec], scopes: Scopes, values: Values,
                 issues: Issues) -> None:
        self.maps = maps
        self.scopes = scopes
        self.values = values
        self.issues = issues

    def puts(self, src: SourceFile, at: Path_, given: S.MapPut | list[S.MapPut],
             triggers: tuple[str, ...]) -> tuple[MapChange, ...]:
        """``put:``: one item or a list of them."""
        if isinstance(given, S.MapPut):
            return tuple(c for c in [self._put(src, at, given, triggers)] if c is not None)
        return tuple(c for i, p in enumerate(given)
                     if (c := self._put(src, (*at, i), p, triggers)) is not None)

    def removes(self, src: SourceFile, at: Path_, given: Iterable[tuple[str, str]],
                triggers: tuple[str, ...]) -> tuple[MapChange, ...]:
        """The ``remove:`` items that name a map (the others name sets): map -> the key, or
        a list of keys."""
        out: list[MapChange] = []
        for name, text in given:
            spec = self.maps[name]
            key = self._key(src, (*at, name), text, triggers, many=True)
            if key is not None:
                out.append(MapChange(name, key, None, spec))
        return tuple(out)

    def _put(self, src: SourceFile, at: Path_, p: S.MapPut,
             triggers: tuple[str, ...]) -> MapChange | None:
        spec = self.maps.get(p.map)
        if spec is None:
            self.issues.error(src, (*at, "map"), f"unknown map '{p.map}'"
                              + (suggest(p.map, self.maps) or " (declare it under maps:)"))
            return None
        key = self._key(src, (*at, "key"), p.key, triggers)
        scope = self.scopes.for_triggers(triggers)
        value = self.values.expr(src, (*at, "value"), p.value, scope)
        if value is None or key is None:
            return None
        if value.type not in _VALUE_TYPES[spec.value]:
            self.issues.error(src, (*at, "value"), f"map '{p.map}' holds {spec.value} "
                              f"values, not {value.type}")
            return None
        return MapChange(p.map, key, value, spec)

    def _key(self, src: SourceFile, at: Path_, text: str, triggers: tuple[str, ...], *,
             many: bool = False) -> CompiledExpr | None:
        return key_on_triggers(src, at, text, triggers, self.scopes, self.values, self.issues,
                               many=many)
