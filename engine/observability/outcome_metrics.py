"""Prometheus counters of outcomes: the figures of ``tact report``, computable in Grafana.

``tact_outcome_total{rule, message, group, stage}`` counts, per committed batch, the same
facts the report's Redis totals add up (:mod:`engine.outcomes.aggregate`):

- ``stage="sent"``: decisions sent (group ``treated``);
- ``delivered``, ``opened``, ``clicked``, ``failed``: outcome events (group ``treated``);
- ``touched``: moments a goal-bearing message was sent (``treated``) or held out
  (``holdout``), the denominator of the conversion rate;
- ``converted``: goal events attributed to a touch, in the touch's group.

``tact_goal_value_total{rule, message, group}`` sums the converted goals' values; a
negative value (a refund) cannot go into a counter and is left to ``tact report``.

Labels stay bounded: rule and message ids come from the pack (outcome events naming
anything else are not counted, see ``engine.pipeline.goals.delivery_report``), group has two
values and stage seven. A counter restarts with its worker; Grafana's ``increase`` sums
across restarts and workers, so the report (from Redis) is the record, these the live view.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter

from engine.observability.counts import DecisionKey

if TYPE_CHECKING:
    from engine.pipeline.goals import Facts

#: the core's group of a fact -> the metric's label (``sent`` reads as a stage elsewhere)
GROUPS = {"sent": "treated", "holdout": "holdout"}
STAGES = ("sent", "delivered", "opened", "clicked", "failed", "touched", "converted")
_STAGE_SET = frozenset(STAGES)

OutcomeKey = tuple[str, str, str, str]  # rule, message, group, stage


class OutcomeMetrics:
    """The two outcome counters, registered in the worker's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Counter(
            "tact_outcome", "Outcomes per rule and message: sent, delivered, opened, clicked, "
            "failed, touched (sent or held out with a goal) and converted, by group "
            "(treated or holdout).", ["rule", "message", "group", "stage"], registry=registry)
        self.goal_value = Counter(
            "tact_goal_value", "Value of converted goals per rule, message and group.",
            ["rule", "message", "group"], registry=registry)
        # labels() validates on every call: each label set is looked up once
        self._children: dict[OutcomeKey, Any] = {}
        self._value_children: dict[tuple[str, str, str], Any] = {}

    def count(self, decisions: Tally[DecisionKey], facts: Facts) -> None:
        """One committed batch: its decisions by (outcome, rule, message, channel), as
        :class:`~engine.observability.counts.BatchCounts` has them, and the core's facts."""
        per: dict[OutcomeKey, float] = {}
        for (outcome, rule, message, _channel), n in decisions.items():
            if outcome == "sent":
                key = (rule, message, "treated", "sent")
                per[key] = per.get(key, 0.0) + n
        values: dict[tuple[str, str, str], float] = {}
        for (_day, rule, message, group, metric), amount in facts.items():
            label = GROUPS.get(group)
            if label is None:
                continue
            if metric == "value":
                values[(rule, message, label)] = values.get((rule, message, label), 0.0) + amount
            elif metric in _STAGE_SET:
                key = (rule, message, label, metric)
                per[key] = per.get(key, 0.0) + amount
        children = self._children
        for key, amount in per.items():
            child = children.get(key)
            if child is None:
                child = children[key] = self.outcomes.labels(*key)
            child.inc(amount)
        value_children = self._value_children
        for key3, amount in values.items():
            if amount > 0:  # a counter only goes up
                child = value_children.get(key3)
                if child is None:
                    child = value_children[key3] = self.goal_value.labels(*key3)
                child.inc(amount)
