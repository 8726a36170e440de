"""Outcomes in the core: touches of goal-bearing messages, conversions, delivery reports.

A goal is given on a message (it applies to every rule that sends it) or on a rule (to
every message it sends), never on both: ``CompiledRule.goal`` is the one that applies.
Attribution is last touch. Each moment a rule with a goal sends its message (on any
channel), or would have but for its holdout (the holdout was its only reason), the
customer's touch of that message is replaced by this one, in group ``sent`` or
``holdout``. A goal event dated within a touch's window (``at <= t <= at + within``)
converts the most recent of the customer's live touches whose rule has that goal, once:
the touch is spent. So the two groups are counted alike, from the moment of the send or
of the holdout.

The facts for the report are returned in ``BatchResult.facts``: (epoch day of the event,
rule, message, group, metric) -> amount, metrics ``touched``, ``converted``, ``value`` and
the delivery reports ``delivered``, ``opened``, ``clicked``, ``failed``.
"""

from __future__ import annotations

from typing import Any

from engine.models.decision import DecisionRecord
from engine.models.state import CustomerState, Touch
from engine.outcomes.events import FAILED, HARD_BOUNCE, METRIC_OF
from engine.pack.model import CompiledRule, RulePack
from engine.pipeline.engagement import record_engagement
from engine.pipeline.guards import RuleFault, describe
from engine.pipeline.state_ops import Env

FactKey = tuple[int, str, str, str, str]  # (epoch day, rule, message, group, metric)
Facts = dict[FactKey, float]

DAY = 86400.0


def _add(facts: Facts, key: FactKey, amount: float = 1.0) -> None:
    facts[key] = facts.get(key, 0.0) + amount


def record_touch(rule: CompiledRule, made: list[DecisionRecord], st: CustomerState, now: float,
                 facts: Facts) -> bool:
    """After ``rule`` (it or its message has a goal) made ``made``: its touch, if it was sent
    or held out. Returns whether a touch was recorded."""
    goal = rule.goal
    if goal is None:
        return False
    group = first = ""
    for d in made:
        if d.outcome == "sent":
            group, first = "sent", d.id
            break
        if d.reasons == ["holdout"] and not group:  # held out, and nothing else held it
            group, first = "holdout", d.id
    if not group:
        return False
    msg = rule.message.id
    st.touches = [t for t in st.touches if t.message != msg and t.until >= now]
    st.touches.append(Touch(first, rule.id, msg, now, group, now + goal.within))
    _add(facts, (int(now // DAY), rule.id, msg, group, "touched"))
    return True


def convert(pack: RulePack, etype: str, st: CustomerState, env: Env, event_id: str,
            facts: Facts, faults: list[RuleFault]) -> Touch | None:
    """A goal event: the last live touch it converts (spent), or None."""
    rules = pack.goals.get(etype)
    if not rules or not st.touches:
        return None
    now = env.now
    best: Touch | None = None
    for t in st.touches:
        if t.rule in rules and t.at <= now <= t.until and (best is None or t.at > best.at):
            best = t
    if best is None:
        return None
    st.touches.remove(best)
    goal = pack.rules_by_id[best.rule].goal
    value = 0.0
    if goal is not None and goal.value is not None:
        try:
            got: Any = env.eval(goal.value)
        except Exception as exc:  # bad data: the conversion counts, its value does not
            faults.append(RuleFault(f"goal:{best.message}", event_id, describe(exc)))
        else:
            if isinstance(got, int | float) and not isinstance(got, bool) and got == got:
                value = float(got)
    day = int(now // DAY)
    _add(facts, (day, best.rule, best.message, best.group, "converted"))
    if value:
        _add(facts, (day, best.rule, best.message, best.group, "value"), value)
    return best


def delivery_report(pack: RulePack, etype: str, data: dict[str, Any], st: CustomerState,
                    now: float, facts: Facts) -> str | None:
    """An outcome event (delivered, opened, clicked, failed): counted for its rule and
    message when the pack has them (nothing else reaches the report's keys); a hard bounce
    marks its channel bounced; an open or click is kept for ``choose: engaged``. Returns
    the metric, or None."""
    metric = METRIC_OF.get(etype)
    if metric is None:
        return None
    rule, message, channel = data.get("rule"), data.get("message"), data.get("channel")
    if pack.engaged_within:
        record_engagement(st, etype, channel, now, pack.channels, pack.engaged_within)
    if etype == FAILED and data.get("reason") == HARD_BOUNCE and isinstance(channel, str):
        st.bounced[channel] = now
    if (isinstance(rule, str) and isinstance(message, str) and rule in pack.rules_by_id
            and message in pack.messages):
        _add(facts, (int(now // DAY), rule, message, "sent", metric))
    return metric
