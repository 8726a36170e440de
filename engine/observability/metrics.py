"""Prometheus metrics of the worker. Every name starts with ``tact_``.

Label values are bounded: event types outside the pack's declared types are counted as
``other``, rule/message/channel come from the pack, dead-letter reasons are kinds (not
messages), and no customer or event id is ever a label.

Under ``tact run --processes N`` each worker process writes its values to
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, chosen by that variable
when the library is imported) and the supervisor serves their sum: counters and histograms
add up, also across a child's restart (a dead process's files stay); each gauge says how it
combines (``multiprocess_mode``; ignored in a single process). A multiprocess value outlives
``clear()``, so a gauge's vanished label sets are set to 0 first (:func:`_zero_clear`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.models.decision import DecisionLike
from engine.observability.counts import BatchCounts, DecisionKey
from engine.observability.outcome_metrics import OutcomeMetrics
from engine.outcomes.kpis import SUM

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
OTHER = "other"


class Metrics:
    """The worker's metrics in their own registry (tests can create as many as they like)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.known_types: frozenset[str] = frozenset()
        self.events_in = Counter("tact_events_in", "Events consumed, by type.", ["type"],
                                 registry=r)
        self.decisions = Counter("tact_decisions", "Decisions, by outcome, rule, message and "
                                 "channel.", ["outcome", "rule", "message", "channel"], registry=r)
        self.suppressions = Counter("tact_suppressions", "Suppression reasons (a decision may "
                                    "count under several).", ["reason"], registry=r)
        self.dead_letters = Counter("tact_dead_letters", "Events sent to the dead-letter topic, "
                                    "by reason.", ["reason"], registry=r)
        self.duplicates = Counter("tact_duplicate_events", "Events recognised as already "
                                  "processed.", registry=r)
        self.batch_size = Histogram("tact_batch_size", "Events per batch.", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.processing = Histogram("tact_processing_seconds", "Batch processing time, fetch to "
                                    "offsets committed.", buckets=LATENCY_BUCKETS, registry=r)
        self.end_to_end = Histogram("tact_end_to_end_seconds", "From the event's producer "
                                    "timestamp to its decisions committed.",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.redis = Histogram("tact_redis_call_seconds", "Redis round trips, by operation.",
                               ["op"], buckets=LATENCY_BUCKETS, registry=r)
        # partitions are disjoint between processes: their sum is the host's lag
        self.lag = Gauge("tact_consumer_lag", "Records behind the end of each assigned events "
                         "partition.", ["partition"], registry=r, multiprocess_mode="livesum")
        self.rules_info = Gauge("tact_rules_info", "The rule pack being served (value 1).",
                                ["version", "pack"], registry=r, multiprocess_mode="livemax")
        self.reloads = Counter("tact_rule_reloads", "Rule pack reloads, by result.", ["result"],
                               registry=r)
        self.pending_followups = Gauge("tact_pending_followups", "Follow-ups waiting for their "
                                       "time, on this worker's partitions.", registry=r,
                                       multiprocess_mode="livesum")
        self.rule_faults = Counter("tact_rule_faults", "Rule evaluations that raised (the rule "
                                   "did not fire).", ["rule"], registry=r)
        self.kpi_responses = Counter("tact_kpi_responses", "Experience KPI answers, by KPI "
                                     "(nps, csat, ces) and band (nps: promoter, passive, "
                                     "detractor; csat: satisfied, unsatisfied; ces: all).",
                                     ["kpi", "band"], registry=r)
        self.kpi_score_sum = Counter("tact_kpi_score_sum", "The sum of the experience KPI "
                                     "answers' scores, by KPI (CES = sum / answers).", ["kpi"],
                                     registry=r)
        self.outcomes = OutcomeMetrics(r)  # tact_outcome_total, tact_goal_value_total
        # per campaign of the pack (bounded like rules), its latest run as checkpointed
        self.campaign_customers = Gauge(
            "tact_campaign_customers", "The latest run of each campaign: customers scanned and "
            "events emitted by its fan-out so far.", ["campaign", "stage"], registry=r,
            multiprocess_mode="livemax")  # every process reads the same checkpoints
        self.campaign_running = Gauge(
            "tact_campaign_running", "1 while the latest run of the campaign is under way, 0 "
            "once done.", ["campaign"], registry=r, multiprocess_mode="livemax")
        # label sets come from the pack, so this stays as bounded as the metric itself
        self._decision_children: dict[DecisionKey, Any] = {}
        for result in ("ok", "rejected"):
            self.reloads.labels(result)

    def set_pack(self, name: str, version: str, event_types: Iterable[str]) -> None:
        _zero_clear(self.rules_info)
        self.rules_info.labels(version=version, pack=name).set(1)
        self.known_types = frozenset(event_types)

    def event_type(self, t: str) -> str:
        return t if t in self.known_types else OTHER

    def count(self, batch: BatchCounts) -> None:
        """Count one committed batch: one ``inc`` per distinct label set."""
        events: dict[str, int] = {}
        for t, n in batch.events.items():
            key = self.event_type(t)
            events[key] = events.get(key, 0) + n
        for key, n in events.items():
            self.events_in.labels(key).inc(n)
        children = self._decision_children
        for labels, n in batch.decisions.items():
            child = children.get(labels)
            if child is None:  # labels() validates on every call: look each set up once
                child = children[labels] = self.decisions.labels(*labels)
            child.inc(n)
        for reason, n in batch.reasons.items():
            self.suppressions.labels(reason).inc(n)
        for kind, n in batch.dead.items():
            self.dead_letters.labels(kind).inc(n)
        for rule, n in batch.faults.items():
            self.rule_faults.labels(rule).inc(n)
        if batch.duplicates:
            self.duplicates.inc(batch.duplicates)

    def count_kpis(self, facts: Mapping[tuple[int, str, str], float]) -> None:
        """Count a committed batch's KPI answers ((day, kpi, band or "sum") -> amount)."""
        for (_day, kpi, stat), amount in facts.items():
            if stat == SUM:
                self.kpi_score_sum.labels(kpi).inc(amount)
            else:
                self.kpi_responses.labels(kpi, stat).inc(amount)

    def count_events(self, types: Iterable[str]) -> None:
        self.count(BatchCounts.of(event_types=types))

    def count_decisions(self, decisions: Iterable[DecisionLike]) -> None:
        self.count(BatchCounts.of(decisions=decisions))

    def set_lag(self, lags: dict[int, int]) -> None:
        _zero_clear(self.lag)
        for partition, n in lags.items():
            self.lag.labels(str(partition)).set(n)

    def set_campaign_runs(self, latest: Iterable[tuple[str, int, int, bool]]) -> None:
        """(campaign, scanned, emitted, running) of each campaign's latest run."""
        _zero_clear(self.campaign_customers)
        _zero_clear(self.campaign_running)
        for campaign, scanned, emitted, running in latest:
            self.campaign_customers.labels(campaign, "scanned").set(scanned)
            self.campaign_customers.labels(campaign, "emitted").set(emitted)
            self.campaign_running.labels(campaign).set(1 if running else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _zero_clear(gauge: Gauge) -> None:
    """``gauge.clear()``, with each label set set to 0 first: in multiprocess mode the
    process's file keeps the last value of a cleared label set, and the host's sum (or max)
    would go on counting a partition this process no longer owns."""
    for family in gauge.collect():
        for sample in family.samples:
            gauge.labels(**sample.labels).set(0)
    gauge.clear()
