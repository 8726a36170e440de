"""The steady load of the fault suite and the soak: customers, phases of events, probes.

The run is cut in *phases*, each ``events_per_phase`` events of the example pack's mix over
``customers`` customers (seeded through the state changelog, ~70% consenting per channel),
about 1% not JSON (dead letters) and 1% sent twice (a producer retry). Event times rise by
a fixed step, a phase spanning 40 minutes of event time, in daytime (no quiet hours). Each
phase has faults at set points and ends with a tick record whose clock is the phase's last
event time, so the cart reminders of that phase's early carts come due.

Three *probe* customers per phase show the issue's checks in the worker's own output:

* ``p<k>-consent`` starts with no consent; a ``profile_updated`` grants push and email
  before the fault; right after it an ``order_shipped`` must be *sent* on both channels;
* ``p<k>-cap`` gets two ``price_dropped`` (two promotional pushes: ``promo_push_daily``'s
  max) before the fault; the third, right after it, must be *suppressed* by
  ``frequency_cap``;
* ``p<k>-fu`` leaves a cart before the fault; the phase's tick, after it, fires its reminder.

A probe's set-up records come first in the phase, and each fault waits until they are
committed: the state they made is what the fault must not lose. The triggers are the first
records produced after the phase's last fault, so they are decided on whatever the fault
left (a flushed Redis not yet repaired would show here, not only in the final states).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from engine.models.state import CustomerState

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()  # 09:00 in Rome
PHASE_SPAN_S = 40 * 60  # event time per phase: more than the cart reminder's 30 minutes
TYPES = ["app_open", "app_open", "product_viewed", "order_shipped", "support_ticket_opened",
         "support_ticket_closed", "nps_submitted", "price_dropped", "cart_updated",
         "cart_updated", "purchase", "boarding_pass_scanned", "newsletter_opened",
         "payment_failed", "profile_updated"]
DATA: dict[str, Any] = {
    "product_viewed": {"category": "shoes", "sku": "s-1"},
    "order_shipped": {"order": "O-1", "carrier": "UPS"},
    "support_ticket_opened": {"ticket": "T-1", "topic": "late"},
    "support_ticket_closed": {"ticket": "T-1"},
    "price_dropped": {"sku": "s-1", "new_price": 10},
    "cart_updated": {"items": 2, "value": 50},
    "purchase": {"order": "O-2", "value": 50},
    "boarding_pass_scanned": {"flight": "AZ1", "destination": "Rome"},
    "payment_failed": {"order": "O-3", "reason": "declined"},
    "newsletter_opened": {"issue": 7},
}
SEGMENTS = ["frequent_flyer", "fashion", "bargain_hunter", "regular"]
FAULTS = ("worker_kill", "kafka_restart", "redis_kill", "flushall")


class Rec(NamedTuple):
    """One record to produce: key, value, and the ``tact-received`` time (ISO)."""

    key: bytes
    value: bytes
    received: str


@dataclass(frozen=True)
class Plan:
    """``faults[k]``: the faults of phase ``k``, in order (names from :data:`FAULTS`)."""

    faults: Sequence[Sequence[str]]
    events_per_phase: int
    customers: int
    rate: float  # events per second, produced steadily
    seed: int = 7

    def __post_init__(self) -> None:
        unknown = {f for fs in self.faults for f in fs} - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        if self.events_per_phase < 40:
            raise ValueError("a phase needs at least 40 events (probes, faults, triggers)")


@dataclass
class Phase:
    index: int
    faults: list[tuple[int, str]]  # (record index the fault comes before, fault)
    records: list[Rec]
    setup_end: int  # records before this are the probes' set-up
    tick_now: float  # the tick record's clock at the phase's end


def probe_names(k: int) -> tuple[str, str, str]:
    return f"p{k}-consent", f"p{k}-cap", f"p{k}-fu"


def customers(plan: Plan) -> dict[str, CustomerState]:
    """Every customer's starting state (random ones, then each phase's probes)."""
    rng = random.Random(plan.seed)
    out: dict[str, CustomerState] = {}
    for i in range(plan.customers):
        cid = f"c-{i}"
        out[cid] = CustomerState(
            cid, attributes={"segment": rng.choice(SEGMENTS), "tz": "Europe/Rome",
                             "points_expiring_days": rng.randint(1, 30)},
            consent={"push": rng.random() < 0.7, "email": rng.random() < 0.7})
    attrs = {"segment": "regular", "tz": "Europe/Rome", "points_expiring_days": 30}
    for k in range(len(plan.faults)):
        consent, cap, fu = probe_names(k)
        out[consent] = CustomerState(consent, attributes=dict(attrs), consent={})
        for cid in (cap, fu):
            out[cid] = CustomerState(cid, attributes=dict(attrs),
                                     consent={"push": True, "email": True})
    return out


def _event(eid: str, customer: str, type_: str, at: float, data: dict[str, Any]) -> Rec:
    iso = datetime.fromtimestamp(at, UTC).isoformat()
    ev = {"id": eid, "customer": customer, "type": type_, "at": iso, "data": data}
    return Rec(customer.encode(), orjson.dumps(ev), iso)


def _random_event(rng: random.Random, plan: Plan, eid: str, at: float,
                  earlier: list[Rec]) -> Rec:
    cid = f"c-{rng.randrange(plan.customers)}"
    type_ = rng.choice(TYPES)
    data = dict(DATA.get(type_, {}))
    if type_ == "nps_submitted":
        data = {"score": rng.randint(0, 10)}
    elif type_ == "profile_updated":
        data = {"attributes": {}, "consent": {rng.choice(["push", "email"]): rng.random() < 0.8}}
    roll = rng.random()
    if roll < 0.01 and earlier:
        return earlier[rng.randrange(len(earlier))]  # a producer retry: the same record again
    if roll < 0.02:
        iso = datetime.fromtimestamp(at, UTC).isoformat()
        return Rec(cid.encode(), b'{"id": "broken", ' + eid.encode(), iso)  # not JSON
    return _event(eid, cid, type_, at, data)


def phases(plan: Plan) -> list[Phase]:
    """The whole run, deterministic for the plan's seed."""
    rng = random.Random(plan.seed + 1)
    n = plan.events_per_phase
    step = PHASE_SPAN_S / n
    out: list[Phase] = []
    earlier: list[Rec] = []
    for k, phase_faults in enumerate(plan.faults):
        consent, cap, fu = probe_names(k)

        def at(j: int, k: int = k) -> float:
            return START + (k * n + j) * step

        setup = [
            _event(f"p{k}-consent-grant", consent, "profile_updated", at(0),
                   {"attributes": {}, "consent": {"push": True, "email": True}}),
            _event(f"p{k}-price-1", cap, "price_dropped", at(1), DATA["price_dropped"]),
            _event(f"p{k}-price-2", cap, "price_dropped", at(2), DATA["price_dropped"]),
            _event(f"p{k}-cart", fu, "cart_updated", at(3), DATA["cart_updated"]),
        ]
        m = len(phase_faults)  # spread between 30% and 70% of the phase
        fault_at = [n * 3 // 10 + (n * 4 // 10) * i // max(1, m - 1) if m > 1 else n // 2
                    for i in range(m)]
        # the first records after the (last) fault: decided on what the fault left
        trigger_at = fault_at[-1] if fault_at else n // 2
        trigger = {
            trigger_at: _event(f"p{k}-ship", consent, "order_shipped", at(trigger_at),
                               DATA["order_shipped"]),
            trigger_at + 1: _event(f"p{k}-price-3", cap, "price_dropped", at(trigger_at + 1),
                                   DATA["price_dropped"]),
        }
        records = list(setup)
        for j in range(len(setup), n):
            rec = trigger.get(j)
            if rec is None:  # probes get no retries: their records are exactly these
                rec = _random_event(rng, plan, f"ev-{k}-{j}", at(j), earlier)
                earlier.append(rec)
            records.append(rec)
        out.append(Phase(k, list(zip(fault_at, phase_faults, strict=True)), records,
                         len(setup), at(n - 1)))
    return out
