"""Keyed counters and timestamps: an update with a ``key:`` changes one instance per key
(``name + KEY_SEP + key`` in the customer's counters or timestamps), read with
``counter(name, key)`` / ``timestamp(name, key)``; the unkeyed entry ``name`` is apart."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from engine.dsl.compiler import CompiledExpr
from engine.models.state import KEY_SEP, CustomerState, instance_key
from engine.pack.model import CompiledUpdate

if TYPE_CHECKING:
    from engine.pipeline.state_ops import Env

#: keyed follow-ups per rule, context instances per context, counter and timestamp
#: instances per name: beyond it the oldest goes
MAX_INSTANCES = 64


def apply_keyed(u: CompiledUpdate, key_expr: CompiledExpr, st: CustomerState, env: Env) -> None:
    """The update's increments, resets and timestamps, on the instance its key (``key_expr``,
    the update's) names; an event that gives no usable key changes nothing."""
    key = instance_key(env.eval(key_expr))
    if key is None:
        return
    tail = KEY_SEP + key
    counters = st.counters
    for name, p in u.increment.items():
        v = env.value(p)
        if type(v) in (int, float) and math.isfinite(v):
            entry = name + tail
            _write(counters, entry, name + KEY_SEP, counters.get(entry, 0) + v)
    for name in u.reset:  # a reset instance reads 0, as one never counted: it goes
        counters.pop(name + tail, None)
    for name in u.timestamps:
        _write(st.timestamps, name + tail, name + KEY_SEP, env.now)


def _write(table: dict[str, float], entry: str, prefix: str, value: float) -> None:
    """Write ``entry`` last: the table's order is then the order its instances last changed
    in (kept by the wire form), so beyond MAX_INSTANCES of a name the one changed longest
    ago goes."""
    if entry in table:
        del table[entry]
    else:
        mine = [n for n in table if n.startswith(prefix)]
        if len(mine) >= MAX_INSTANCES:
            del table[mine[0]]
    table[entry] = value
