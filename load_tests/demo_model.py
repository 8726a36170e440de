"""The demo's customers, as a seeded model: who consents, which journeys they take, and what
they do after a message (delivery reports, opens, clicks, bounces, conversions).

Pure (no I/O, no clock): ``DemoTraffic.next_event(at)`` draws the next customer event and
``Responder.respond(decision)`` answers a decision from the decisions topic with the outcome
and goal events it leads to, each with a delay in seconds. ``load_tests.demo_feed`` puts
both on Kafka for ``tact demo``.

The model is the example pack's (``rules/``). Every customer is onboarded with a
``profile_updated`` before anything else, and most consent on their channels
(``CONSENT_SHARE``): a minority does not, so ``no_consent`` is one reason among others, not
the artefact of customers nobody asked. Then they take journeys (``JOURNEYS``): browsing,
cart to purchase to shipping, a trip through the gate, a complaint, three failed payments, a
quote, a return, an NPS answer.

Goals and holdouts: ``EFFECTS`` says, per rule, how likely a customer is to reach the
message's goal after a moment, when treated (the message was sent) and when held out (the
holdout was the only reason it was not). ``payment_trouble`` helps (treated customers buy
more often); ``csat_after_ticket`` does nothing (the survey e-mail does not bring more NPS
answers). So after a few minutes the uplift report shows one significant result and one
that is not.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.outcomes.events import CLICKED, DELIVERED, FAILED, HARD_BOUNCE, OPENED

#: The share of customers who consent to each channel.
CONSENT_SHARE: dict[str, float] = {"push": 0.82, "email": 0.9, "sms": 0.4}

#: Of the messages sent to a customer: bounced hard, else delivered; of the delivered,
#: opened; of the opened, clicked.
HARD_BOUNCE_SHARE = 0.02
DELIVERED_SHARE = 0.96
OPENED_SHARE = 0.4
CLICKED_SHARE = 0.3

#: Channels that reach the customer (a webhook goes to the support desk: no delivery report).
CUSTOMER_CHANNELS = frozenset({"push", "email", "sms"})


@dataclass(frozen=True, slots=True)
class Effect:
    """The chance that a moment of ``rule`` is followed by the goal event ``goal``, for a
    treated customer and for a held-out one."""

    goal: str
    treated: float
    holdout: float


EFFECTS: dict[str, Effect] = {
    "payment_trouble": Effect("purchase", treated=0.45, holdout=0.15),
    "csat_after_ticket": Effect("nps_submitted", treated=0.3, holdout=0.3),
}

SEGMENTS = ("frequent_flyer", "bargain_hunter", "fashion", "family", "business", "new",
            "dormant", "vip")
ZONES = ("Europe/Paris", "Europe/London", "America/New_York", "America/Los_Angeles",
         "Asia/Tokyo", "UTC")
CATEGORIES = ("shoes", "bags", "travel", "books", "toys", "garden", "beauty", "sport")
DESTINATIONS = ("Lisbon", "Rome", "New York", "Tokyo", "Berlin", "Madrid", "Oslo", "Nice")
CARRIERS = ("dhl", "ups", "colissimo", "fedex")
TOPICS = ("delivery", "refund", "damaged_item", "account", "billing", "outage")
PAY_ERRORS = ("card_declined", "insufficient_funds", "expired_card", "3ds_failed")

Step = tuple[str, dict[str, Any]]  # (event type, data)
Journey = Callable[["DemoTraffic", int], list[Step]]


@dataclass(frozen=True, slots=True)
class Scheduled:
    """An event to send ``delay`` seconds after the decision it answers."""

    delay: float
    event: dict[str, Any]


def _browse(g: DemoTraffic, k: int) -> list[Step]:
    views = [g.view() for _ in range(g.rng.randint(1, 3))]
    return [("app_open", {}), *views]


def _cart(g: DemoTraffic, k: int) -> list[Step]:
    rng = g.rng
    items = rng.randint(1, 4)
    cart = {"items": items, "value": round(items * rng.uniform(9, 90), 2)}
    steps: list[Step] = [g.view(), ("cart_updated", cart)]
    if rng.random() < 0.4:
        order = g.serial("o")
        steps += [("purchase", {"order": order, "value": round(rng.uniform(20, 400), 2)}),
                  ("order_shipped", {"order": order, "carrier": rng.choice(CARRIERS)}),
                  ("out_for_delivery", {"order": order, "carrier": rng.choice(CARRIERS)})]
        if rng.random() < 0.15:
            steps.append(("delivery_attempt_failed", {"order": order}))
    return steps


def _app(g: DemoTraffic, k: int) -> list[Step]:
    return [("app_open", {}) for _ in range(g.rng.randint(1, 2))]


def _trip(g: DemoTraffic, k: int) -> list[Step]:
    flight = f"TA{g.rng.randrange(100, 9999)}"
    return [("boarding_pass_scanned", {"flight": flight,
                                       "destination": g.rng.choice(DESTINATIONS)}),
            ("app_open", {}), ("trip_completed", {"flight": flight})]


def _complaint(g: DemoTraffic, k: int) -> list[Step]:
    ticket = g.serial("t")
    return [("support_ticket_opened", {"ticket": ticket, "topic": g.rng.choice(TOPICS)}),
            ("support_ticket_closed", {"ticket": ticket})]


def _payment(g: DemoTraffic, k: int) -> list[Step]:
    # three failures in a row: the pack's payment_trouble fires on the third
    order = g.serial("o")
    return [("payment_failed", {"order": order, "reason": g.rng.choice(PAY_ERRORS)})
            for _ in range(3)]


def _nps(g: DemoTraffic, k: int) -> list[Step]:
    return [("nps_submitted", {"score": g.nps_score()})]


def _price(g: DemoTraffic, k: int) -> list[Step]:
    return [("price_dropped", {"sku": f"sku-{g.rng.randrange(500):03d}",
                               "new_price": round(g.rng.uniform(5, 300), 2)})]


def _newsletter(g: DemoTraffic, k: int) -> list[Step]:
    return [("newsletter_opened", {"issue": g.rng.randrange(1, 120)})]


def _quote(g: DemoTraffic, k: int) -> list[Step]:
    quote = g.serial("q")
    return [("quote_requested", {"quote_id": quote, "product": g.rng.choice(CATEGORIES)}),
            ("quote_status_checked", {"quote_id": quote}), ("quote_sent", {"quote_id": quote})]


def _return(g: DemoTraffic, k: int) -> list[Step]:
    category = g.rng.choice(CATEGORIES)
    steps: list[Step] = [("item_returned", {"order": g.serial("o"), "category": category})]
    if g.rng.random() < 0.5:  # a sale on the same category, which the pack holds back
        steps.append(("category_sale_started", {"category": category, "sale": g.serial("s")}))
    return steps


#: Journeys and their weights (a customer between journeys starts a new one).
JOURNEYS: dict[str, tuple[float, Journey]] = {
    "browse": (26.0, _browse), "cart": (18.0, _cart), "app": (12.0, _app),
    "trip": (8.0, _trip), "complaint": (8.0, _complaint), "payment": (7.0, _payment),
    "nps": (5.0, _nps), "price": (5.0, _price), "newsletter": (4.0, _newsletter),
    "quote": (3.0, _quote), "return": (4.0, _return),
}
class DemoTraffic:
    """Customer events of ``customers`` customers (``c000000``..), the same for the same
    seed: each customer is onboarded (``profile_updated`` with attributes and consent) before
    their first journey, then walks through journeys one step at a time, interleaved with
    everyone else's."""

    def __init__(self, customers: int, seed: int = 7, id_prefix: str = "demo-") -> None:
        if customers < 1:
            raise ValueError(f"customers must be at least 1, got {customers}")
        self.rng = random.Random(seed)
        self.customers = customers
        self.prefix = id_prefix
        self.pending: dict[int, list[Step]] = {}
        self.onboarded: set[int] = set()
        self.count = 0
        self._names = list(JOURNEYS)
        self._weights = [JOURNEYS[n][0] for n in self._names]

    def serial(self, kind: str) -> str:
        return f"{kind}-{self.prefix}{self.count}"

    def view(self) -> Step:
        return ("product_viewed", {"category": self.rng.choice(CATEGORIES),
                                   "sku": f"sku-{self.rng.randrange(500):03d}"})

    def nps_score(self) -> int:
        return self.rng.choice((2, 5, 6, 7, 8, 8, 9, 9, 10, 10))

    def profile(self) -> Step:
        rng = self.rng
        attributes: dict[str, Any] = {"segment": rng.choice(SEGMENTS), "tz": rng.choice(ZONES),
                                      "points_expiring_days": rng.randrange(0, 60)}
        consent = {ch: rng.random() < share for ch, share in CONSENT_SHARE.items()}
        return ("profile_updated", {"attributes": attributes, "consent": consent})

    def next_step(self, k: int) -> Step:
        """Customer ``k``'s next step: onboarding, the rest of a journey, or a new one."""
        if k not in self.onboarded:
            self.onboarded.add(k)
            return self.profile()
        steps = self.pending.get(k)
        if not steps:
            name = self.rng.choices(self._names, self._weights)[0]
            steps = self.pending[k] = JOURNEYS[name][1](self, k)
        step = steps.pop(0)
        if not steps:
            del self.pending[k]
        return step

    def next_event(self, at: str) -> dict[str, Any]:
        """The next wire event, dated ``at`` (ISO 8601 with its UTC offset)."""
        k = self.rng.randrange(self.customers)
        self.count += 1
        etype, data = self.next_step(k)
        return {"id": f"{self.prefix}{self.count:09d}", "customer": f"c{k:06d}",
                "type": etype, "at": at, "data": data}


class Responder:
    """What customers do after a decision: delivery reports for what was sent to them, and
    the goal event of ``EFFECTS`` with the treated or the held-out chance (one per moment:
    a message sent on two channels is one moment)."""

    def __init__(self, seed: int = 11, effects: Mapping[str, Effect] | None = None,
                 memory: int = 100_000) -> None:
        self.rng = random.Random(seed)
        self.effects = dict(EFFECTS if effects is None else effects)
        self._moments: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._memory = memory

    def respond(self, decision: Mapping[str, Any]) -> list[Scheduled]:
        """The events ``decision`` (a decision as published, decoded) leads to."""
        out: list[Scheduled] = []
        sent = decision.get("outcome") == "sent"
        if sent and decision.get("channel") in CUSTOMER_CHANNELS:
            out += self._deliveries(decision)
        held = decision.get("outcome") == "suppressed" and decision.get("reasons") == ["holdout"]
        effect = self.effects.get(str(decision.get("rule")))
        if effect is not None and (sent or held) and self._first_of_moment(decision):
            chance = effect.treated if sent else effect.holdout
            if self.rng.random() < chance:
                out.append(Scheduled(self.rng.uniform(5.0, 30.0),
                                     self._event(decision, "goal", effect.goal,
                                                 self._goal_data(effect.goal))))
        return out

    def _first_of_moment(self, decision: Mapping[str, Any]) -> bool:
        moment = (str(decision.get("event_id")), str(decision.get("rule")))
        if moment in self._moments:
            return False
        self._moments[moment] = None
        if len(self._moments) > self._memory:  # bounded: the oldest moments are long done
            self._moments.popitem(last=False)
        return True

    def _deliveries(self, decision: Mapping[str, Any]) -> list[Scheduled]:
        rng = self.rng
        echo = {"decision_id": str(decision["id"]), "channel": str(decision["channel"]),
                "rule": str(decision["rule"]), "message": str(decision["message"])}
        if rng.random() < HARD_BOUNCE_SHARE:
            return [Scheduled(rng.uniform(0.5, 3.0), self._event(
                decision, "fail", FAILED, {**echo, "reason": HARD_BOUNCE}))]
        if rng.random() >= DELIVERED_SHARE:
            return []  # no report at all: the provider never said
        at = rng.uniform(0.5, 3.0)
        out = [Scheduled(at, self._event(decision, "dlv", DELIVERED, echo))]
        if rng.random() < OPENED_SHARE:
            at += rng.uniform(2.0, 20.0)
            out.append(Scheduled(at, self._event(decision, "opn", OPENED, echo)))
            if rng.random() < CLICKED_SHARE:
                out.append(Scheduled(at + rng.uniform(1.0, 10.0),
                                     self._event(decision, "clk", CLICKED, echo)))
        return out

    def _goal_data(self, goal: str) -> dict[str, Any]:
        if goal == "purchase":
            return {"order": f"o-goal-{self.rng.randrange(10**9)}",
                    "value": round(self.rng.uniform(20.0, 300.0), 2)}
        if goal == "nps_submitted":
            return {"score": self.rng.choice((5, 7, 8, 9, 9, 10))}
        raise ValueError(f"the demo has no data for goal event {goal!r}")

    @staticmethod
    def _event(decision: Mapping[str, Any], tag: str, etype: str, data: dict[str, Any]
               ) -> dict[str, Any]:
        # an id derived from the decision: a report sent twice is deduplicated (docs/outcomes.md)
        return {"id": f"{tag}-{decision['id']}", "customer": str(decision["customer"]),
                "type": etype, "at": "", "data": data}
