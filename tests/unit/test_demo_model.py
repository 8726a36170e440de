"""The demo's customers (load_tests.demo_model): consent, journeys, outcomes, goal effects;
and the closed loop through the engine on the example pack, in event time."""

from __future__ import annotations

import asyncio
import heapq
from collections import Counter, defaultdict
from datetime import UTC, datetime
from math import sqrt
from pathlib import Path
from typing import Any

import pytest

from engine.embedded import Engine
from engine.models import Envelope, parse_event
from engine.outcomes.events import CLICKED, DELIVERED, FAILED, HARD_BOUNCE, OPENED
from engine.outcomes.stats import uplift
from engine.pack.loader import load_pack
from engine.state.memory import MemoryStateStore
from load_tests.demo_model import (
    CLICKED_SHARE,
    CONSENT_SHARE,
    DELIVERED_SHARE,
    EFFECTS,
    HARD_BOUNCE_SHARE,
    OPENED_SHARE,
    DemoTraffic,
    Effect,
    Responder,
)

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 4, 12, 0, tzinfo=UTC).timestamp()
TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "str": str, "number": (int, float),
                                             "map": dict}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _close(observed: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """Within ``sigmas`` binomial standard deviations of ``n * p``."""
    return abs(observed - n * p) <= sigmas * sqrt(n * p * (1 - p)) + 1


def _events(n: int, customers: int, seed: int = 7) -> list[dict[str, Any]]:
    traffic = DemoTraffic(customers, seed)
    return [traffic.next_event(_iso(START + i)) for i in range(n)]


def test_same_seed_same_events_and_ids_unique() -> None:
    a, b, c = _events(3000, 200), _events(3000, 200), _events(3000, 200, seed=8)
    assert a == b
    assert a != c
    assert len({e["id"] for e in a}) == len(a)


def test_every_event_fits_the_example_pack() -> None:
    pack = load_pack(ROOT / "rules")
    for ev in _events(20_000, 500):
        parse_event(ev)  # the wire format
        declared = pack.event_types[ev["type"]]
        assert declared is not None and set(ev["data"]) == set(declared), ev
        for name, kind in declared.items():
            assert isinstance(ev["data"][name], TYPES[kind]), (ev, name)


def test_customers_are_onboarded_with_consent_before_anything_else() -> None:
    first: dict[str, dict[str, Any]] = {}
    for ev in _events(30_000, 3000):
        first.setdefault(ev["customer"], ev)
    assert {ev["type"] for ev in first.values()} == {"profile_updated"}
    consents = [ev["data"]["consent"] for ev in first.values()]
    for channel, share in CONSENT_SHARE.items():
        assert _close(sum(c[channel] for c in consents), len(consents), share), channel
    # most customers can be reached: a consenting majority, a realistic minority not
    reachable = sum(any(c.values()) for c in consents) / len(consents)
    assert reachable > 0.9


def test_journeys_follow_their_order_per_customer() -> None:
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in _events(40_000, 800):
        by_customer[ev["customer"]].append(ev)
    closed = shipped = payments = 0
    for evs in by_customer.values():
        opened_tickets: set[str] = set()
        orders: set[str] = set()
        for i, ev in enumerate(evs):
            data = ev["data"]
            if ev["type"] == "support_ticket_opened":
                opened_tickets.add(data["ticket"])
            elif ev["type"] == "support_ticket_closed":
                assert data["ticket"] in opened_tickets
                closed += 1
            elif ev["type"] == "purchase":
                orders.add(data["order"])
            elif ev["type"] == "order_shipped":
                assert data["order"] in orders
                shipped += 1
            elif ev["type"] == "payment_failed" and (i < 1 or evs[i - 1]["type"] !=
                                                      "payment_failed"):
                # a payment journey: three failures of one order in a row (rule: >= 3 in 10m)
                run = evs[i:i + 3]  # shorter only where the stream stops mid-journey
                assert [e["data"].get("order") for e in run] == [data["order"]] * len(run)
                assert len(run) == 3 or i + len(run) == len(evs)
                payments += 1
    assert closed and shipped and payments


def _decision(n: int, *, rule: str = "shipping_update", outcome: str = "sent",
              channel: str = "email", reasons: list[str] | None = None,
              event_id: str | None = None) -> dict[str, Any]:
    return {"id": f"d-{n}", "event_id": event_id or f"e-{n}", "customer": f"c{n % 97:06d}",
            "rule": rule, "message": f"{rule}_msg", "channel": channel, "outcome": outcome,
            "reasons": reasons or []}


def test_outcome_shares_and_echoes() -> None:
    responder = Responder(seed=3, effects={})
    n = 20_000
    got: Counter[str] = Counter()
    for i in range(n):
        d = _decision(i)
        for s in responder.respond(d):
            ev, data = s.event, s.event["data"]
            got[ev["type"]] += 1
            assert s.delay > 0
            assert ev["customer"] == d["customer"] and ev["id"].endswith(d["id"])
            assert {k: data[k] for k in ("decision_id", "channel", "rule", "message")} == {
                "decision_id": d["id"], "channel": "email", "rule": d["rule"],
                "message": d["message"]}
            if ev["type"] == FAILED:
                assert data["reason"] == HARD_BOUNCE
    assert _close(got[FAILED], n, HARD_BOUNCE_SHARE)
    delivered_share = (1 - HARD_BOUNCE_SHARE) * DELIVERED_SHARE
    assert _close(got[DELIVERED], n, delivered_share)
    assert _close(got[OPENED], got[DELIVERED], OPENED_SHARE)
    assert _close(got[CLICKED], got[OPENED], CLICKED_SHARE)


def test_no_reports_for_the_desk_or_what_was_not_sent() -> None:
    responder = Responder(seed=3, effects={})
    assert responder.respond(_decision(1, channel="webhook")) == []
    assert responder.respond(_decision(2, outcome="suppressed", reasons=["cooldown"])) == []


@pytest.mark.parametrize("rule", sorted(EFFECTS))
def test_goal_chance_per_group_once_per_moment(rule: str) -> None:
    effect = EFFECTS[rule]
    responder = Responder(seed=5)
    n = 6000
    goals = {"sent": 0, "holdout": 0}
    for i in range(n):
        for group, d in (("sent", _decision(2 * i, rule=rule)),
                         ("holdout", _decision(2 * i + 1, rule=rule, outcome="suppressed",
                                               reasons=["holdout"]))):
            # the same moment on a second channel gets no second chance
            twin = {**d, "id": d["id"] + "-b", "channel": "push"}
            for answers in (responder.respond(d), responder.respond(twin)):
                goals[group] += sum(s.event["type"] == effect.goal for s in answers)
    assert _close(goals["sent"], n, effect.treated)
    assert _close(goals["holdout"], n, effect.holdout)
    # held out for another reason as well: not a holdout moment, no goal
    other = _decision(10**6, rule=rule, outcome="suppressed", reasons=["holdout", "no_consent"])
    assert Responder(seed=5, effects={rule: Effect(effect.goal, 1.0, 1.0)}).respond(other) == []


def test_the_demo_rules_have_one_real_effect_and_one_null() -> None:
    assert EFFECTS["payment_trouble"].treated > EFFECTS["payment_trouble"].holdout
    assert EFFECTS["csat_after_ticket"].treated == EFFECTS["csat_after_ticket"].holdout
    pack = load_pack(ROOT / "rules")
    for rule_id, effect in EFFECTS.items():
        rule = next(r for r in pack.rules if r.id == rule_id)
        assert rule.holdout, rule_id  # a control group to compare with
        assert rule.message.goal is not None and rule.message.goal.event == effect.goal


async def _closed_loop(events: int, customers: int) -> tuple[Counter[str], Counter[str],
                                                               dict[tuple[str, str, str], float]]:
    """The demo in event time: traffic and the answers to its decisions through the engine."""
    engine = Engine(load_pack(ROOT / "rules"), MemoryStateStore())
    traffic, responder = DemoTraffic(customers, 7), Responder(8)
    due: list[tuple[float, int, dict[str, Any]]] = []
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    facts: dict[tuple[str, str, str], float] = defaultdict(float)
    step, per_batch = 0.05, 200
    clock = START
    for _ in range(events // per_batch):
        batch: list[dict[str, Any]] = []
        end = clock + step * per_batch
        while clock < end:
            while due and due[0][0] <= clock:
                at, _n, ev = heapq.heappop(due)
                batch.append({**ev, "at": _iso(at)})
            batch.append(traffic.next_event(_iso(clock)))
            clock += step
        result = await engine.process([Envelope.at_event_time(parse_event(e)) for e in batch])
        for d in result.decisions:
            outcomes[d.outcome] += 1
            reasons.update(d.reasons)
            for s in responder.respond(d.public().model_dump(mode="json")):
                heapq.heappush(due, (d.decided_at.timestamp() + s.delay, len(due), s.event))
        for (_day, rule, _msg, group, metric), amount in result.facts.items():
            facts[(rule, group, metric)] += amount
    return outcomes, reasons, facts


def test_closed_loop_on_the_example_pack() -> None:
    outcomes, reasons, facts = asyncio.run(_closed_loop(20_000, 1000))
    assert outcomes["sent"] > 0.3 * (outcomes["sent"] + outcomes["suppressed"])
    top, _ = reasons.most_common(1)[0]
    assert top != "no_consent"
    assert reasons["no_consent"] > 0  # the minority without consent is still there
    assert facts[("payment_trouble", "sent", "delivered")] > 0

    def result(rule: str) -> Any:
        return uplift(facts[(rule, "sent", "converted")], facts[(rule, "sent", "touched")],
                      facts[(rule, "holdout", "converted")], facts[(rule, "holdout", "touched")])

    for rule in EFFECTS:  # the groups are counted alike: the holdout's share of the touches
        held, sent = facts[(rule, "holdout", "touched")], facts[(rule, "sent", "touched")]
        assert _close(int(held), int(held + sent), 0.3, sigmas=3), (rule, held, sent)
    helped, null = result("payment_trouble"), result("csat_after_ticket")
    assert helped.significant and helped.absolute is not None and helped.absolute > 0
    assert not null.significant
