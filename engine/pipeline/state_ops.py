"""How an event changes a customer's state: updates, contexts, follow-ups, retention."""

from __future__ import annotations

import math
from typing import Any

from engine.dsl.compiler import CompiledExpr
from engine.dsl.functions import EvalContext
from engine.models.state import (
    KEY_SEP,
    MAX_KEY_LENGTH,
    CustomerState,
    PendingFollowup,
    instance_key,
)
from engine.pack.model import (
    CompiledRule,
    CompiledUpdate,
    ContextChange,
    Param,
    RulePack,
    SetChange,
)
from engine.pipeline.keyed import MAX_INSTANCES
from engine.pipeline.keyed import apply_keyed as _apply_keyed
from engine.pipeline.maps import live_maps, prune_maps, put, unmap
from engine.pipeline.views import active_contexts, live_sets, window_counts

_SCALAR = (str, int, float, bool, type(None))
MAX_HISTORY = 256
MAX_WINDOW_ENTRIES = 1024
MAX_MERGED_KEYS = 128



class Env:
    """The arguments every compiled expression takes, bundled for one evaluation moment."""

    __slots__ = ("contexts", "ctx", "customer", "d", "ev", "now")

    def __init__(
        self,
        ev: dict[str, Any],
        customer: dict[str, Any],
        contexts: frozenset[str],
        now: float,
        ctx: EvalContext,
    ) -> None:
        self.ev = ev
        self.d = ev["data"]
        self.customer = customer
        self.contexts = contexts
        self.now = now
        self.ctx = ctx

    def refresh(self, st: CustomerState, pack: RulePack) -> None:
        """Re-read what an event's updates may have changed: windowed counts, sets, maps,
        contexts."""
        if st.windows:
            self.customer["windows"] = window_counts(st, self.now, pack.windows)
        if st.sets or self.customer["sets"]:
            self.customer["sets"] = live_sets(st, self.now, pack.sets)
        if st.maps or self.customer["maps"]:
            self.customer["maps"] = live_maps(st, self.now, pack.maps)
        self.contexts = active_contexts(st, self.now)

    def eval(self, expr: CompiledExpr) -> Any:
        return expr.fn(self.ev, self.d, self.customer, self.contexts, self.now, self.ctx)

    def value(self, p: Param) -> Any:
        return self.eval(p) if isinstance(p, CompiledExpr) else p


def apply_update(u: CompiledUpdate, st: CustomerState, env: Env) -> None:
    if u.condition is not None and not env.eval(u.condition):
        return
    if u.key is not None:
        _apply_keyed(u, u.key, st, env)
        return
    now = env.now
    for k, p in u.set.items():
        v = env.value(p)
        if isinstance(v, _SCALAR):
            st.attributes[k] = v
    for k, p in u.increment.items():
        v = env.value(p)
        if type(v) in (int, float) and math.isfinite(v):
            st.counters[k] = st.counters.get(k, 0) + v
    for k in u.reset:
        st.counters[k] = 0
    for k, w in u.windows.items():
        times = [t for t in st.windows.get(k, ()) if t > now - w]
        times.append(now)
        st.windows[k] = times[-MAX_WINDOW_ENTRIES:]
    for k in u.timestamps:
        st.timestamps[k] = now
    if u.merge_attributes is not None:
        _merge(st.attributes, env.eval(u.merge_attributes), _SCALAR)
    if u.merge_consent is not None:
        given = env.eval(u.merge_consent)
        _merge(st.consent, given, bool)
        if st.bounced and isinstance(given, dict):  # consent given again lifts a bounce
            for channel, value in given.items():
                if value is True:
                    st.bounced.pop(channel, None)
    for c in u.add:
        _add(st, c, env)
    for c in u.remove:
        members = st.sets.get(c.name)
        if members:
            for m in _members(env.eval(c.value), c.spec.max):
                members.pop(m, None)
            if not members:
                del st.sets[c.name]
    for entry in u.put:
        put(st, entry, env)
    for entry in u.unmap:
        unmap(st, entry, env)


def _members(value: Any, most: int) -> list[str]:
    """The members an add: or remove: gives: text (at most MAX_KEY_LENGTH characters), alone
    or in a list (its first ``most``); anything else is no member."""
    items = value[:most] if isinstance(value, list) else (value,)
    return [m for m in items if isinstance(m, str) and len(m) <= MAX_KEY_LENGTH]


def _add(st: CustomerState, c: SetChange, env: Env) -> None:
    """Add (or refresh) members at the event's time; beyond the set's max the oldest go."""
    new = _members(env.eval(c.value), c.spec.max)
    if not new:
        return
    now = env.now
    members = st.sets.get(c.name)
    if members is None:
        members = st.sets[c.name] = {}
    elif c.spec.ttl is not None:
        _expire(members, now - c.spec.ttl)
    for m in new:
        # a late event does not make a member younger than it is
        members[m] = max(members.pop(m, now), now)
    while len(members) > c.spec.max:
        del members[min(members, key=members.__getitem__)]


def _expire(members: dict[str, float], since: float) -> None:
    for m in [m for m, t in members.items() if t <= since]:
        del members[m]


def _merge(target: dict[str, Any], source: Any, kinds: type | tuple[type, ...]) -> None:
    """Merge a map from event data, keeping only string keys and values of the given kinds."""
    if isinstance(source, dict):
        for k, v in list(source.items())[:MAX_MERGED_KEYS]:
            if isinstance(k, str) and isinstance(v, kinds):
                target[k] = v


def apply_contexts(pack: RulePack, event_type: str, st: CustomerState, env: Env) -> list[str]:
    """End, then start, the contexts this event touches. Returns what changed, for traces."""
    changed: list[str] = []
    for c in pack.context_ends.get(event_type, ()):
        entry = c.context if c.key is None else _instance(c, env)
        if entry in st.contexts and (c.condition is None or env.eval(c.condition)):
            del st.contexts[entry]
            changed.append(f"-{_shown(entry)}")
    for c in pack.context_starts.get(event_type, ()):
        if c.condition is None or env.eval(c.condition):
            entry = c.context if c.key is None else _instance(c, env)
            if entry is None:  # no key in this event: no instance to start
                continue
            if c.key is not None and entry not in st.contexts:
                _make_room(st, c.context + KEY_SEP)
            st.contexts[entry] = env.now + c.ttl if c.ttl is not None else math.inf
            changed.append(f"+{_shown(entry)}")
    return changed


def _instance(c: ContextChange, env: Env) -> str | None:
    """A keyed context's entry for this event, or None when the event gives no key."""
    key = instance_key(env.eval(c.key)) if c.key is not None else None
    return None if key is None else c.context + KEY_SEP + key


def _shown(entry: str) -> str:
    name, _, key = entry.partition(KEY_SEP)
    return f"{name}[{key}]" if key else name


def _make_room(st: CustomerState, prefix: str) -> None:
    """Keep a context's instances under MAX_INSTANCES: the one expiring first goes."""
    mine = [(until, n) for n, until in st.contexts.items() if n.startswith(prefix)]
    if len(mine) >= MAX_INSTANCES:
        del st.contexts[min(mine)[1]]


def schedule(
    rule: CompiledRule, st: CustomerState, ev: dict[str, Any], at: float, key: str | None = None
) -> float:
    """Schedule (or re-arm) a follow-up: one pending per rule and customer, or, for a keyed
    rule, per rule, customer and key (the oldest goes beyond MAX_INSTANCES)."""
    due = at + (rule.delay or 0.0)
    rid = rule.id
    if key is None:
        st.followups = [f for f in st.followups if f.rule != rid]
    else:
        st.followups = [f for f in st.followups if f.rule != rid or f.key != key]
        mine = [f for f in st.followups if f.rule == rid]
        if len(mine) >= MAX_INSTANCES:
            st.followups.remove(min(mine, key=lambda f: f.due))
    st.followups.append(PendingFollowup(rid, due, dict(ev), key))
    return due


def cancel(pack: RulePack, event_type: str, st: CustomerState, env: Env) -> list[str]:
    """Cancel the follow-ups this event stops: every pending one of an unkeyed rule; of a
    keyed rule, the one whose key this event names (all of them when it names none: when
    in doubt, silence)."""
    rules = pack.cancels.get(event_type)
    if not rules or not st.followups:
        return []
    keyed = pack.keyed_cancels.get(event_type)
    if keyed is None:
        gone = [f.rule for f in st.followups if f.rule in rules]
        if gone:
            st.followups = [f for f in st.followups if f.rule not in rules]
        return gone
    keys: dict[str, str | None] = {}
    for rid, expr in keyed.items():
        try:
            keys[rid] = instance_key(env.eval(expr))
        except Exception:  # a key that cannot be read cancels every instance (fail closed)
            keys[rid] = None
    out: list[str] = []
    kept: list[PendingFollowup] = []
    for f in st.followups:
        if f.rule in rules and (f.rule not in keys or keys[f.rule] in (None, f.key)
                                or f.key is None):
            out.append(f.rule if f.key is None else f"{f.rule}[{f.key}]")
        else:
            kept.append(f)
    st.followups = kept
    return out


def take_due(st: CustomerState, upto: float) -> list[PendingFollowup]:
    if not st.followups:
        return []
    due = [f for f in st.followups if f.due <= upto]
    if due:
        st.followups = [f for f in st.followups if f.due > upto]
        due.sort(key=lambda f: (f.due, f.rule))
    return due


def prune(pack: RulePack, st: CustomerState, now: float) -> None:
    """Forget what no policy can need any more, so state stays small."""
    if st.contexts:
        for name in [n for n, until in st.contexts.items() if until <= now]:
            del st.contexts[name]
    if len(st.seen) > 16:
        horizon = now - pack.settings.dedupe_window
        st.seen = {k: t for k, t in st.seen.items() if t >= horizon}
    if st.sets:
        _prune_sets(pack, st, now)
    if st.maps:
        prune_maps(pack.maps, st.maps, now)
    if st.history:
        horizon = now - pack.settings.history_retention
        if st.history[0].at < horizon or len(st.history) > MAX_HISTORY:
            st.history = [h for h in st.history if h.at >= horizon][-MAX_HISTORY:]


def _prune_sets(pack: RulePack, st: CustomerState, now: float) -> None:
    """Expired members go, and sets left empty. A set the pack no longer declares is kept
    as it is (a pack rolled back may need it again)."""
    for name, members in list(st.sets.items()):
        spec = pack.sets.get(name)
        if spec is not None and spec.ttl is not None:
            _expire(members, now - spec.ttl)
        if not members:
            del st.sets[name]
