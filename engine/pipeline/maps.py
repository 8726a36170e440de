"""Declared maps (``maps:``): per customer, name -> key -> [value, the event time it was
last put]. Entries expire one by one (event time); beyond a map's max the oldest goes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from engine.dsl.valuefns import MAX_TEXT
from engine.models.state import CustomerState, instance_key
from engine.pack.model import MapChange, MapSpec

if TYPE_CHECKING:
    from engine.pipeline.state_ops import Env

_INT_LIMIT = 2**53


def fits(value: Any, kind: str) -> bool:
    """Whether ``value`` is one a map of ``kind`` values holds (a float map takes whole
    numbers too; no NaN, no infinity, no unbounded text)."""
    t = type(value)
    if kind == "float":
        return (t is int and abs(value) < _INT_LIMIT) or (t is float and math.isfinite(value))
    if kind == "int":
        return t is int and abs(value) < _INT_LIMIT
    if kind == "str":
        return t is str and len(value) <= MAX_TEXT
    return t is bool


def put(st: CustomerState, m: MapChange, env: Env) -> None:
    """Put the value under the key at the event's time (restarting the entry's ttl). A key
    or value of the wrong kind puts nothing; a late event does not overwrite a newer value."""
    key = instance_key(env.eval(m.key))
    if key is None:
        return
    value: Any = env.eval(m.value) if m.value is not None else None
    spec = m.spec
    if not fits(value, spec.value):
        return
    now = env.now
    entries = st.maps.get(m.name)
    if entries is None:
        entries = st.maps[m.name] = {}
    else:
        if spec.ttl is not None:
            expire(entries, now - spec.ttl)
        old = entries.get(key)
        if old is not None and old[1] > now:
            return
    entries[key] = [float(value) if spec.value == "float" else value, now]
    while len(entries) > spec.max:
        del entries[min(entries, key=lambda k: entries[k][1])]


def unmap(st: CustomerState, m: MapChange, env: Env) -> None:
    """Remove the key's entry, or each listed key's (a list's first ``max``, as a map holds
    no more); a map left empty goes."""
    entries = st.maps.get(m.name)
    if entries:
        given = env.eval(m.key)
        for value in given[:m.spec.max] if isinstance(given, list) else (given,):
            key = instance_key(value)
            if key is not None:
                entries.pop(key, None)
        if not entries:
            del st.maps[m.name]


def expire(entries: dict[str, list[Any]], since: float) -> None:
    for k in [k for k, (_, t) in entries.items() if t <= since]:
        del entries[k]


def prune_maps(specs: dict[str, MapSpec], maps: dict[str, dict[str, list[Any]]],
               now: float) -> None:
    """Expired entries go, and maps left empty. A map the pack no longer declares is kept
    as it is (a pack rolled back may need it again)."""
    for name, entries in list(maps.items()):
        spec = specs.get(name)
        if spec is not None and spec.ttl is not None:
            expire(entries, now - spec.ttl)
        if not entries:
            del maps[name]


def live_maps(st: CustomerState, now: float, specs: dict[str, MapSpec]) -> dict[str, Any]:
    """Each declared map's entries not yet expired at ``now``: key -> value."""
    live: dict[str, Any] = {}
    for name, entries in st.maps.items():
        spec = specs.get(name)
        if spec is not None:
            since = -math.inf if spec.ttl is None else now - spec.ttl
            live[name] = {k: v for k, (v, t) in entries.items() if t > since}
    return live
