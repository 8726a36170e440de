"""The decision pipeline: (rule pack, customer states, batch of events, clock) -> decisions.

No I/O and no wall clock: the same inputs give the same decisions, which is what makes
replays, backtests and scenario tests trustworthy. Customer states are updated in place
and reported in ``BatchResult.changed`` so a store writes only what moved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from typing import Any, Literal

from engine.dsl.compiler import CompiledExpr
from engine.dsl.functions import EvalContext
from engine.dsl.probes import show
from engine.models.decision import DecisionRecord
from engine.models.event import Envelope
from engine.models.state import CustomerState, PendingFollowup, instance_key
from engine.outcomes.events import METRIC_OF
from engine.pack.model import CompiledRule, RulePack
from engine.pipeline.campaign import CAMPAIGN_EVENT, RUN_DONE, campaign_rules, run_done
from engine.pipeline.goals import Facts, convert, delivery_report, record_touch
from engine.pipeline.guards import RuleFault as RuleFault  # re-exported: its old home
from engine.pipeline.kpis import KpiFacts, record_kpis
from engine.pipeline.policies import Arbiter, ScopeMemo
from engine.pipeline.state_ops import (
    Env,
    apply_contexts,
    apply_update,
    cancel,
    prune,
    schedule,
    take_due,
)
from engine.pipeline.views import active_contexts, customer_view, event_view


@dataclass(slots=True)
class EventOutcome:
    """What became of one event. ``failed``: processing raised (``error`` says what); the
    event decided nothing, and the customer's state in ``states`` may hold part of its
    effects, so a caller that persists state must not save it (the worker reruns the batch
    without that event from the stored state)."""

    event_id: str
    customer: str
    status: Literal["processed", "duplicate", "failed"]
    decisions: list[DecisionRecord] = field(default_factory=list)
    error: BaseException | None = None


def _add_amounts(into: dict[Any, float], more: dict[Any, float]) -> None:
    for key, amount in more.items():
        into[key] = into.get(key, 0.0) + amount


@dataclass(slots=True)
class BatchResult:
    decisions: list[DecisionRecord] = field(default_factory=list)
    outcomes: list[EventOutcome] = field(default_factory=list)
    fired: list[DecisionRecord] = field(default_factory=list)  # follow-ups reached by the clock
    changed: set[str] = field(default_factory=set)
    faults: list[RuleFault] = field(default_factory=list)
    explain: dict[str, list[str]] = field(default_factory=dict)  # event id -> trace lines
    ticked: list[DecisionRecord] = field(default_factory=list)  # fired by a tick, not an event
    facts: Facts = field(default_factory=dict)  # outcome facts for the report (pipeline.goals)
    kpis: KpiFacts = field(default_factory=dict)  # experience KPI answers (pipeline.kpis)

    def add_facts(self, other: BatchResult) -> None:
        _add_amounts(self.facts, other.facts)
        _add_amounts(self.kpis, other.kpis)

    def add(self, other: BatchResult) -> None:
        """Take in the result of a later part of the same batch."""
        self.add_facts(other)
        self.decisions.extend(other.decisions)
        self.outcomes.extend(other.outcomes)
        self.fired.extend(other.fired)
        self.ticked.extend(other.ticked)
        self.changed |= other.changed
        self.faults.extend(other.faults)
        for key, lines in other.explain.items():
            self.explain.setdefault(key, []).extend(lines)

    def add_tick(self, other: BatchResult) -> None:
        """Take in what a :func:`tick` of the same batch fired."""
        self.add_facts(other)
        self.fired.extend(other.fired)
        self.ticked.extend(other.fired)
        self.changed |= other.changed
        self.faults.extend(other.faults)
        for key, lines in other.explain.items():
            self.explain.setdefault(key, []).extend(lines)


def decide(
    pack: RulePack,
    states: dict[str, CustomerState],
    batch: Sequence[Envelope],
    *,
    now: float | None = None,
    trace: bool = False,
) -> BatchResult:
    """Decide for a batch. ``states`` must hold (or will get) every customer in the batch.

    Events are taken in order (Kafka keeps each customer's order). Before an event, the
    customer's follow-ups due by its time fire; with ``now``, every follow-up due by then
    fires for all customers in ``states`` after the batch.
    """
    d = _Decider(pack, trace)
    for env in batch:
        cust = env.event.customer
        st = states.get(cust)
        if st is None:
            st = states[cust] = CustomerState(cust)
        try:
            d.event(st, env)
        except Exception as exc:  # one event's fault is that event's, never the batch's
            d.failed(env, exc)
    if now is not None:
        d.tick(states.values(), now)
    return d.result


def tick(
    pack: RulePack, states: dict[str, CustomerState], now: float, trace: bool = False
) -> BatchResult:
    """Fire every follow-up due by ``now`` for these customers. ``fired`` is in a defined
    order, due time, then customer, then rule, whatever the order of ``states``."""
    d = _Decider(pack, trace)
    d.tick(states.values(), now)
    return d.result


def _customer_id(st: CustomerState) -> str:
    return st.customer


_decided_at = attrgetter("decided_at")


class _Decider:
    def __init__(self, pack: RulePack, trace: bool) -> None:
        self.pack = pack
        self.trace = trace
        self.result = BatchResult()
        self.rules = pack.rules_by_id  # built once per pack
        self.scopes = ScopeMemo(pack)  # cap and policy scopes, worked out once per batch

    def _note(self, key: str, line: str) -> None:
        if self.trace:
            self.result.explain.setdefault(key, []).append(line)

    def _env(self, st: CustomerState, ev: dict[str, Any], now: float) -> Env:
        ctx = EvalContext(st, self.pack.settings.timezone_attribute)
        view = customer_view(st, now, self.pack.windows, self.pack.sets, self.pack.maps)
        return Env(ev, view, active_contexts(st, now), now, ctx)

    def tick(self, states: Iterable[CustomerState], now: float) -> None:
        # A defined order, never the caller's (a set or a store index, hash-seed dependent):
        # customers fire by id, and what they fired is written by (due time, customer, rule),
        # so a simulation or a replayed tick gives the same decisions in the same order.
        due = sorted((st for st in states
                      if st.followups and min(f.due for f in st.followups) <= now),
                     key=_customer_id)
        fired: list[DecisionRecord] = []
        for st in due:
            try:
                fired.extend(self._fire_due(st, now))
            except Exception as exc:  # fail closed: its due follow-ups send nothing
                st.followups = [f for f in st.followups if f.due > now]
                self.result.changed.add(st.customer)
                self.result.faults.append(
                    RuleFault("followup", "", f"{type(exc).__name__}: {exc}"))
        # by customer, then (due, rule) each (take_due): a stable sort by due time gives
        # (due, customer, rule), with no key tuple per decision (a fired follow-up is
        # decided at its due time)
        fired.sort(key=_decided_at)
        self.result.fired.extend(fired)

    def failed(self, env: Envelope, exc: Exception) -> None:
        """Record ``env`` as failed (:meth:`event` adds to the result only once done)."""
        res = self.result
        res.outcomes.append(EventOutcome(env.event.id, env.event.customer, "failed", error=exc))
        res.faults.append(RuleFault("processing", env.event.id, f"{type(exc).__name__}: {exc}"))
        self._note(env.event.id, f"processing error {type(exc).__name__}: {exc}: "
                                 "nothing decided for this event")

    def _fire_due(self, st: CustomerState, upto: float) -> list[DecisionRecord]:
        out: list[DecisionRecord] = []
        for f in take_due(st, upto):
            self.result.changed.add(st.customer)
            rule = self.rules.get(f.rule)
            if rule is None:  # the rule left the pack since it was scheduled
                continue
            out.extend(self._fire(st, f, rule))
        return out

    def _fire(self, st: CustomerState, f: PendingFollowup,
              rule: CompiledRule) -> list[DecisionRecord]:
        env = self._env(st, f.event, f.due)
        key = str(f.event.get("id"))
        self._note(key, f"follow-up {rule.id} due: firing")
        age = float(f.event.get("received", f.due)) - float(f.event.get("at", f.due))
        arb = Arbiter(self.pack, st, env, key, age, self.trace, self.scopes, self.result.faults)
        made = arb.consider(rule)
        arb.remember()
        for dec in made:
            self._note_decision(key, dec)
        if rule.goal is not None:
            self._touch(rule, made, st, f.due, key)
        return made

    def _touch(self, rule: CompiledRule, made: list[DecisionRecord], st: CustomerState, now: float,
               key: str) -> None:
        if record_touch(rule, made, st, now, self.result.facts):
            t = st.touches[-1]
            self._note(key, f"goal {rule.message.id} ({rule.id}): touch ({t.group}) until +"
                            f"{t.until - now:g}s")

    def _note_decision(self, key: str, dec: DecisionRecord) -> None:
        if not self.trace:
            return
        self._note(key, f"  {dec.message} via {dec.channel}:")
        for line in dec.trace:
            self._note(key, f"    {line}")

    def event(self, st: CustomerState, env: Envelope) -> None:
        e = env.event
        res = self.result
        if e.id in st.seen:
            res.outcomes.append(EventOutcome(e.id, e.customer, "duplicate"))
            self._note(e.id, "duplicate event id: already processed, nothing decided")
            return
        etype = e.type
        if etype == CAMPAIGN_EVENT and run_done(st, e.data):  # a run reaches a customer once
            res.outcomes.append(EventOutcome(e.id, e.customer, "duplicate"))
            self._note(e.id, f"{RUN_DONE}: this customer was decided for run "
                             f"{e.data.get('run')} already, nothing decided")
            return
        at = e.at.timestamp()
        fired = self._fire_due(st, at) if st.followups else []
        pack = self.pack
        ev = event_view(env, at)
        res.changed.add(st.customer)
        step_env = self._env(st, ev, at)
        if st.followups and etype in pack.cancels:
            for rid in cancel(pack, etype, st, step_env):
                self._note(e.id, f"follow-up {rid} cancelled by {etype}")
        updates = pack.updates.get(etype)
        if updates or etype in pack.context_starts or etype in pack.context_ends:
            for u in updates or ():
                self._guard(partial(apply_update, u, st, step_env), "update", e.id)
            changes: list[str] = []
            self._guard(
                lambda: changes.extend(apply_contexts(pack, etype, st, step_env)), "context", e.id
            )
            if changes:
                self._note(e.id, "contexts: " + " ".join(changes))
            step_env.refresh(st, pack)  # rules see the state after this event's updates
        if etype in pack.goals:
            touch = convert(pack, etype, st, step_env, e.id, res.facts, res.faults)
            if touch is not None:
                self._note(e.id, f"goal {etype}: converts {touch.message} ({touch.group}, "
                                 f"rule {touch.rule}, decision {touch.decision})")
        if etype in METRIC_OF:
            delivery_report(pack, etype, e.data, st, at, res.facts)
        kpis = pack.kpis.get(etype)
        if kpis:
            for line in record_kpis(kpis, step_env, e.id, res.kpis, res.faults):
                self._note(e.id, line)
        st.seen[e.id] = at
        if at > st.last_event:
            st.last_event = at
        prune(pack, st, at)
        rules = pack.by_trigger.get(etype)
        if etype == CAMPAIGN_EVENT:
            rules = campaign_rules(pack, st, e.data, at, e.id, res.faults)
        decisions: list[DecisionRecord] = []
        if rules:
            arb = Arbiter(pack, st, step_env, e.id, env.received - at, self.trace, self.scopes,
                          res.faults)
            if self.trace:
                for rule in rules:
                    if self._explain_conditions(rule, step_env, e.id):
                        self._qualified(rule, arb, st, step_env, e.id)
            else:  # the hot loop: two thirds of the rules a 1,000-rule pack looks at fail here
                data, customer, contexts, ctx = (step_env.d, step_env.customer, step_env.contexts,
                                                   step_env.ctx)
                for rule in rules:
                    check = rule.check
                    if check is not None:
                        try:
                            if not check(ev, data, customer, contexts, at, ctx):
                                continue
                        except Exception as exc:  # bad data must not stop the batch; counted
                            res.faults.append(
                                RuleFault(rule.id, e.id, f"{type(exc).__name__}: {exc}"))
                            continue
                    self._qualified(rule, arb, st, step_env, e.id)
            arb.remember()
            decisions = arb.decisions
        elif self.trace:
            self._note(e.id, f"no rule listens to {etype}")
        # the result learns of this event only here, once nothing can raise any more
        res.outcomes.append(EventOutcome(e.id, e.customer, "processed", fired + decisions))
        if fired:
            res.fired.extend(fired)
            res.decisions.extend(fired)
        res.decisions.extend(decisions)

    def _qualified(self, rule: CompiledRule, arb: Arbiter, st: CustomerState, env: Env,
                   event_id: str) -> None:
        """``rule``'s conditions hold for this event: schedule its follow-up, or arbitrate."""
        if rule.delay is not None:
            self._schedule(rule, st, env, event_id)
            return
        made = arb.consider(rule)
        for dec in made:
            self._note_decision(event_id, dec)
        if rule.goal is not None:
            self._touch(rule, made, st, env.now, event_id)

    def _schedule(self, rule: CompiledRule, st: CustomerState, env: Env, event_id: str) -> None:
        key = None
        if rule.key is not None:
            why = "no key in the event"
            try:
                key = instance_key(env.eval(rule.key))
            except Exception as exc:  # bad data: like no key (counted), never the batch's
                why = f"key: {type(exc).__name__}: {exc}"
            if key is None:  # no instance to follow up on: nothing is scheduled
                self.result.faults.append(RuleFault(rule.id, event_id, why))
                self._note(event_id, f"rule {rule.id}: no key in this event: nothing scheduled")
                return
        due = schedule(rule, st, env.ev, env.now, key)
        shown = "" if key is None else f" (key {key})"
        self._note(event_id, f"rule {rule.id}: follow-up scheduled for +{due - env.now:g}s"
                             + shown)

    def _explain_conditions(self, rule: CompiledRule, env: Env, event_id: str) -> bool:
        window = rule.window
        if window is not None and not window.holds(env.now):
            self._note(event_id, f"rule {rule.id}: campaign not active at the event's time "
                                 f"({window.describe()}) -> not considered")
            return False
        try:
            ok = True
            for c in rule.conditions:
                for part in c.parts():
                    value = env.eval(part)
                    source = " ".join(x.strip() for x in part.source.strip().splitlines())
                    self._note(event_id, f"rule {rule.id}: {source} -> {value!r}")
                    self._explain_probes(part, env, event_id)
                    ok = ok and bool(value)
            if not rule.conditions:
                self._note(event_id, f"rule {rule.id}: no conditions -> True")
            return ok
        except Exception as exc:
            self.result.faults.append(RuleFault(rule.id, event_id, f"{type(exc).__name__}: {exc}"))
            self._note(event_id, f"rule {rule.id}: error {type(exc).__name__}: {exc}")
            return False

    def _explain_probes(self, expr: CompiledExpr, env: Env, event_id: str) -> None:
        """The value of each sub-expression under a condition's line: why it is what it is."""
        for probe in expr.probes():
            try:
                shown = show(env.eval(probe), probe.type)
            except Exception as exc:  # the condition's own value (above) is what counts
                shown = f"error {type(exc).__name__}: {exc}"
            self._note(event_id, f"    {probe.source} = {shown}")

    def _guard(self, fn: Callable[[], object], what: str, event_id: str) -> None:
        try:
            fn()
        except Exception as exc:
            self.result.faults.append(RuleFault(what, event_id, f"{type(exc).__name__}: {exc}"))
