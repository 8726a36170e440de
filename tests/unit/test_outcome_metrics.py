"""The outcome counters (tact_outcome_total, tact_goal_value_total): per committed batch, the
same figures as the report's Redis totals, so Grafana computes the same rates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.observability.counts import BatchCounts
from engine.outcomes.aggregate import batch_totals, report_rows
from engine.pipeline.policies import in_holdout
from engine.testing import Harness
from engine.worker.process import Processed
from engine.worker.stats import WorkerStats
from engine.worker.telemetry import Telemetry
from tests.unit.test_outcomes import PACK

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

CUSTOMERS = [f"c{i}" for i in range(40)]
HELD = [c for c in CUSTOMERS if in_holdout(c, 50, "s")]
TREATED = [c for c in CUSTOMERS if not in_holdout(c, 50, "s")]


def _samples(t: Telemetry) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(t.render_metrics().decode()):
        for s in fam.samples:
            if s.name in ("tact_outcome_total", "tact_goal_value_total"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _outcome(rule: str, message: str, group: str, stage: str) -> tuple[str, tuple[
        tuple[str, str], ...]]:
    return ("tact_outcome_total", (("group", group), ("message", message), ("rule", rule),
                                   ("stage", stage)))


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    for c in CUSTOMERS:
        harness.customer(c, consent={"push": True, "email": True})
    yield harness
    harness.close()


def _commit(t: Telemetry, h: Harness, totals: dict[str, float] | None = None) -> None:
    """The harness's last batch, committed: into the counters (and the report's totals)."""
    result = h.last
    assert result is not None
    counts = BatchCounts.of(decisions=result.decisions + result.ticked)
    t.batch_committed(Processed([], counts=counts, result=result), size=1, seconds=0.001,
                      produced_ms=[])
    for fields in batch_totals(result).values():
        for name, amount in fields.items():
            if totals is not None:
                totals[name] = totals.get(name, 0.0) + amount


def test_a_batch_counts_sends_touches_outcomes_and_conversions_by_group(h: Harness) -> None:
    t = Telemetry(WorkerStats())
    assert HELD and TREATED
    (sent,) = h.emit(TREATED[0], "login")
    _commit(t, h)
    h.emit(HELD[0], "login")
    _commit(t, h)
    h.emit(TREATED[0], "message_opened", {"decision_id": sent.id, "channel": "push",
                                          "rule": "promo_on_login", "message": "promo"})
    _commit(t, h)
    h.clock.advance("1d")
    for c, amount in ((TREATED[0], 30), (HELD[0], -5)):  # a refund cannot go in a counter
        h.emit(c, "purchase", {"amount": amount})
        _commit(t, h)

    rule, msg = "promo_on_login", "promo"
    assert _samples(t) == {
        _outcome(rule, msg, "treated", "sent"): 1.0,
        _outcome(rule, msg, "treated", "touched"): 1.0,
        _outcome(rule, msg, "holdout", "touched"): 1.0,
        _outcome(rule, msg, "treated", "opened"): 1.0,
        _outcome(rule, msg, "treated", "converted"): 1.0,
        _outcome(rule, msg, "holdout", "converted"): 1.0,
        ("tact_goal_value_total", (("group", "treated"), ("message", msg), ("rule", rule))): 30.0,
    }


def test_the_counters_add_up_to_the_report_rows(h: Harness) -> None:
    t = Telemetry(WorkerStats())
    totals: dict[str, float] = {}
    for i, c in enumerate(CUSTOMERS):
        for etype in ("login", "browse", "purchase")[: 3 if i % 3 else 2]:
            h.emit(c, etype, {"amount": 10 + i} if etype == "purchase" else None)
            _commit(t, h, totals)
            h.clock.advance("10m")
    samples = _samples(t)
    rows = report_rows(totals)
    assert {r.rule for r in rows} == {"promo_on_login", "nudge_on_browse", "plain_on_browse"}
    assert sum(r.counts["converted"] + r.counts["holdout_converted"] for r in rows) > 0
    for row in rows:
        for stage in ("sent", "touched", "converted"):
            assert samples.get(_outcome(row.rule, row.message, "treated", stage), 0.0) == \
                row.counts[stage], (row.rule, stage)
        for stage in ("touched", "converted"):
            assert samples.get(_outcome(row.rule, row.message, "holdout", stage), 0.0) == \
                row.counts[f"holdout_{stage}"], (row.rule, stage)
        value = samples.get(("tact_goal_value_total", (("group", "treated"),
                                                        ("message", row.message),
                                                        ("rule", row.rule))), 0.0)
        assert value == row.counts["value"]


def test_the_counters_are_declared_before_any_outcome() -> None:
    text = Telemetry(WorkerStats()).render_metrics().decode()
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["tact_outcome"] == "counter"
    assert families["tact_goal_value"] == "counter"
