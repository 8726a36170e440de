"""Synthetic customer events: a realistic mix over N customers, deterministic with a seed.

Importable (the load tests and benchmarks use it; the demo has its own customers in
``load_tests.demo_model``)::

    from load_tests.generator import generate_events
    for event in generate_events(1000, customers=500, seed=1, start_time=time.time()):
        ...

or from the shell, to a JSON Lines file (for ``tact publish``) or straight to Kafka::

    python -m load_tests.generator --events 10000 --customers 2000 --out events.jsonl
    python -m load_tests.generator --events 100000 --customers 100000 --rate 5000 --kafka

The mix follows ``rules/catalog.yaml``: mostly ``app_open``, ``product_viewed`` and
``cart_updated``; some purchases, shipments, boarding passes, price drops, NPS answers,
support tickets, newsletters, failed payments and profile updates (attributes with ``tz``
and ``segment``, and consent). Data fields have the catalog's types; orders, tickets and
flights are reused by the events that follow them (shipped after purchased, closed after
opened). Event times strictly increase by ``step`` seconds. With ``invalid_ratio`` a share
of the events is malformed in one of a few ways (no UTC offset, a bad type name, an extra
field, no customer, data that is not a map): the worker must dead-letter those.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from engine.config import TactSettings

# Event types and their share of the traffic, in percent.
MIX: dict[str, float] = {
    "app_open": 27.0,
    "product_viewed": 27.0,
    "cart_updated": 15.0,
    "purchase": 4.0,
    "order_shipped": 3.0,
    "price_dropped": 5.0,
    "newsletter_opened": 5.0,
    "profile_updated": 4.0,
    "boarding_pass_scanned": 2.5,
    "trip_completed": 2.0,
    "nps_submitted": 2.0,
    "payment_failed": 1.5,
    "support_ticket_opened": 1.0,
    "support_ticket_closed": 1.0,
}
SEGMENTS = ("frequent_flyer", "bargain_hunter", "fashion", "family", "business", "new",
            "dormant", "vip")
ZONES = ("Europe/Paris", "Europe/London", "America/New_York", "America/Los_Angeles",
         "Asia/Tokyo", "Australia/Sydney", "UTC")
LOCALES = ("fr-FR", "en-GB", "en-US", "de-DE", "ja-JP", "es-ES")
CATEGORIES = ("shoes", "bags", "travel", "books", "toys", "garden", "beauty", "sport")
DESTINATIONS = ("Lisbon", "Rome", "New York", "Tokyo", "Berlin", "Madrid", "Oslo", "Nice")
CARRIERS = ("dhl", "ups", "colissimo", "fedex", "laposte")
PAY_ERRORS = ("card_declined", "insufficient_funds", "expired_card", "3ds_failed")
TOPICS = ("delivery", "refund", "damaged_item", "account", "billing")
INVALID_KINDS = ("naive_time", "bad_type", "extra_field", "no_customer", "data_not_map")
DEFAULT_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


def customer_id(k: int) -> str:
    return f"c{k:06d}"


@dataclass(slots=True)
class _Memory:
    """What a customer did before, so later events refer to real orders and tickets."""

    order: str | None = None
    ticket: str | None = None
    flight: str | None = None
    cart: int = 0


class _Generator:
    def __init__(self, customers: int, seed: int, id_prefix: str, skew: float) -> None:
        if customers < 1:
            raise ValueError("customers must be >= 1")
        self.rng = random.Random(seed)
        self.customers = customers
        self.prefix = id_prefix
        self.skew = skew
        self.types = list(MIX)
        self.cum: list[float] = []
        total = 0.0
        for t in self.types:
            total += MIX[t]
            self.cum.append(total)
        self.memory: dict[int, _Memory] = {}
        self.serial = 0

    def customer(self) -> int:
        # A few customers are much more active than most: a gentle power-law skew.
        return min(int(self.customers * self.rng.random() ** self.skew), self.customers - 1)

    def data(self, etype: str, k: int) -> dict[str, Any]:
        rng = self.rng
        mem = self.memory.get(k)
        if mem is None:
            mem = self.memory[k] = _Memory()
        self.serial += 1
        if etype == "app_open":
            return {}
        if etype == "product_viewed":
            return {"category": rng.choice(CATEGORIES), "sku": f"sku-{rng.randrange(5000):04d}"}
        if etype == "cart_updated":
            mem.cart = max(0, mem.cart + rng.choice((1, 1, 1, 2, -1)))
            return {"items": mem.cart, "value": round(mem.cart * rng.uniform(8.0, 120.0), 2)}
        if etype == "purchase":
            mem.order, mem.cart = f"o-{self.serial}", 0
            return {"order": mem.order, "value": round(rng.uniform(10.0, 600.0), 2)}
        if etype == "order_shipped":
            return {"order": mem.order or f"o-{self.serial}", "carrier": rng.choice(CARRIERS)}
        if etype == "payment_failed":
            return {"order": mem.order or f"o-{self.serial}", "reason": rng.choice(PAY_ERRORS)}
        if etype == "price_dropped":
            return {"sku": f"sku-{rng.randrange(5000):04d}",
                    "new_price": round(rng.uniform(5.0, 300.0), 2)}
        if etype == "newsletter_opened":
            return {"issue": rng.randrange(1, 120)}
        if etype == "boarding_pass_scanned":
            mem.flight = f"TA{rng.randrange(100, 9999)}"
            return {"flight": mem.flight, "destination": rng.choice(DESTINATIONS)}
        if etype == "trip_completed":
            return {"flight": mem.flight or f"TA{rng.randrange(100, 9999)}"}
        if etype == "support_ticket_opened":
            mem.ticket = f"t-{self.serial}"
            return {"ticket": mem.ticket, "topic": rng.choice(TOPICS)}
        if etype == "support_ticket_closed":
            return {"ticket": mem.ticket or f"t-{self.serial}"}
        if etype == "nps_submitted":
            return {"score": rng.choice((0, 2, 4, 5, 6, 7, 7, 8, 8, 9, 9, 10, 10))}
        if etype == "profile_updated":
            attrs: dict[str, Any] = {"segment": rng.choice(SEGMENTS), "tz": rng.choice(ZONES)}
            if rng.random() < 0.6:
                attrs["locale"] = rng.choice(LOCALES)
            if rng.random() < 0.5:
                attrs["points_expiring_days"] = rng.randrange(0, 90)
            consent = {"push": rng.random() < 0.8, "email": rng.random() < 0.9,
                       "sms": rng.random() < 0.3}
            return {"attributes": attrs, "consent": consent}
        raise ValueError(f"no data generator for {etype}")

    def event(self, i: int, at: float) -> dict[str, Any]:
        rng = self.rng
        etype = self.types[self._pick(rng.random() * self.cum[-1])]
        k = self.customer()
        return {
            "id": f"{self.prefix}{i:09d}",
            "customer": customer_id(k),
            "type": etype,
            "at": datetime.fromtimestamp(at, UTC).isoformat(),
            "data": self.data(etype, k),
        }

    def _pick(self, x: float) -> int:
        for j, c in enumerate(self.cum):
            if x < c:
                return j
        return len(self.cum) - 1

    def spoil(self, ev: dict[str, Any]) -> dict[str, Any]:
        """Make a valid event invalid (it keeps its id, so a dead letter can be joined)."""
        kind = self.rng.choice(INVALID_KINDS)
        if kind == "naive_time":
            ev["at"] = ev["at"].replace("+00:00", "")
        elif kind == "bad_type":
            ev["type"] = ev["type"].upper().replace("_", "-")
        elif kind == "extra_field":
            ev["source"] = "legacy-app"
        elif kind == "no_customer":
            del ev["customer"]
        else:
            ev["data"] = [ev["data"]]
        return ev


def generate_events(
    n: int,
    customers: int,
    seed: int = 42,
    start_time: float = DEFAULT_START,
    *,
    step: float = 0.01,
    invalid_ratio: float = 0.0,
    id_prefix: str = "ev-",
    skew: float = 1.3,
) -> Iterator[dict[str, Any]]:
    """``n`` wire events (dicts) over customers ``c000000``..; same seed, same events.

    Event ``i`` happens at ``start_time + i * step`` (strictly increasing). Ids are
    ``<id_prefix><i, 9 digits>``. ``skew`` > 1 makes low-numbered customers more active.
    """
    if not 0.0 <= invalid_ratio <= 1.0:
        raise ValueError("invalid_ratio must be between 0 and 1")
    gen = _Generator(customers, seed, id_prefix, skew)
    for i in range(n):
        ev = gen.event(i, start_time + i * step)
        if invalid_ratio and gen.rng.random() < invalid_ratio:
            ev = gen.spoil(ev)
        yield ev


def kafka_key(ev: dict[str, Any]) -> bytes:
    """The record key: the customer id (an invalid event without one keeps its own id)."""
    cust = ev.get("customer")
    return str(cust if isinstance(cust, str) else ev.get("id", "none")).encode()


@dataclass(slots=True)
class Produced:
    events: int
    seconds: float
    first_send: float
    last_send: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def produce(
    events: Iterable[dict[str, Any]],
    topic: str,
    target: str | TactSettings,
    *,
    rate: float | None = None,
    live_time: bool = False,
    max_seconds: float = 600.0,
    progress: Callable[[int], None] | None = None,
) -> Produced:
    """Send events keyed by customer; at ``rate`` per second (paced), or as fast as possible.

    ``target``: the settings (brokers and SASL/SSL) or the address of an unsecured broker.

    ``live_time`` restamps each event's ``at`` with the wall clock at send, as a live
    producer would. Stops after ``max_seconds`` whatever is left. The record timestamp is
    the producer's CreateTime, taken at send.
    """
    from connectors.kafka import clients

    settings = clients.plaintext(target) if isinstance(target, str) else target
    producer = clients.aio_producer(
        settings, acks=1, linger_ms=1 if rate else 10,
        max_batch_size=512 * 1024, max_request_size=8 * 1024 * 1024,
        client_id="tact-loadtest-generator",
    )
    await producer.start()
    sent = 0
    pending: list[asyncio.Future[Any]] = []
    t0 = time.monotonic()
    first = last = 0.0
    try:
        it = iter(events)
        done = False
        while not done and time.monotonic() - t0 < max_seconds:
            if rate:
                due = int((time.monotonic() - t0) * rate) + 1 - sent
                if due <= 0:
                    await asyncio.sleep(0.001)
                    continue
            else:
                due = 1000
            for _ in range(due):
                ev = next(it, None)
                if ev is None:
                    done = True
                    break
                if live_time:
                    ev["at"] = datetime.now(UTC).isoformat()
                pending.append(await producer.send(topic, orjson.dumps(ev), key=kafka_key(ev)))
                sent += 1
            last = time.time()
            if not first:
                first = last
            if len(pending) >= 20_000 or (rate and len(pending) >= 2_000):
                await asyncio.gather(*pending)
                pending.clear()
            if progress is not None:
                progress(sent)
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return Produced(sent, time.monotonic() - t0, first, last)


def write_jsonl(events: Iterable[dict[str, Any]], path: Path) -> int:
    n = 0
    with path.open("wb") as out:
        for ev in events:
            out.write(orjson.dumps(ev) + b"\n")
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.generator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1000, help="how many events")
    p.add_argument("--customers", type=int, default=10_000, help="customer ids to draw from")
    p.add_argument("--rate", type=float, default=None,
                   help="events per second (Kafka only; default: as fast as possible)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--start", default=None,
                   help="ISO time of the first event (default: now for --kafka, else "
                        "2026-03-02T09:00Z)")
    p.add_argument("--step", type=float, default=None,
                   help="seconds between events (default: 1/rate, or 0.01)")
    p.add_argument("--invalid-ratio", type=float, default=0.0,
                   help="share of malformed events, e.g. 0.005")
    p.add_argument("--id-prefix", default=None, help="event id prefix (default: unique per run)")
    dest = p.add_mutually_exclusive_group(required=True)
    dest.add_argument("--write-pack", type=Path, metavar="DIR",
                      help="write the load-test pack's rules.yaml into DIR and exit")
    dest.add_argument("--out", type=Path, help="write JSON Lines here ('-' for stdout)")
    dest.add_argument("--kafka", action="store_true", help="produce to Kafka (TACT_* settings)")
    p.add_argument("--topic", default=None, help="with --kafka: topic (env TACT_EVENTS_TOPIC)")
    p.add_argument("--brokers", default=None, help="with --kafka: bootstrap servers")
    p.add_argument("--live-time", action="store_true",
                   help="with --kafka: stamp each event with the wall clock at send")
    a = p.parse_args(argv)
    if a.write_pack is not None:
        from load_tests.baselines import write_pack

        print(f"wrote {write_pack(a.write_pack)}", file=sys.stderr)
        return 0

    if a.start is not None:
        start = datetime.fromisoformat(a.start).timestamp()
    else:
        start = time.time() if a.kafka else DEFAULT_START
    step = a.step if a.step is not None else (1.0 / a.rate if a.rate else 0.01)
    prefix = a.id_prefix if a.id_prefix is not None else f"g{int(time.time() * 1000):x}-"
    events = generate_events(a.events, a.customers, a.seed, start, step=step,
                             invalid_ratio=a.invalid_ratio, id_prefix=prefix)
    if not a.kafka:
        if str(a.out) == "-":
            for ev in events:
                sys.stdout.buffer.write(orjson.dumps(ev) + b"\n")
            return 0
        n = write_jsonl(events, a.out)
        print(f"wrote {n} events to {a.out}", file=sys.stderr)
        return 0

    from connectors.kafka.admin import TopicSpec, ensure_topics

    settings = TactSettings()
    if a.brokers:
        settings = settings.model_copy(update={"kafka_brokers": a.brokers})
    topic = a.topic or settings.events_topic
    ensure_topics(settings, {topic: TopicSpec(settings.events_partitions)})
    res = asyncio.run(produce(events, topic, settings, rate=a.rate, live_time=a.live_time,
                              max_seconds=3600.0))
    print(f"sent {res.events} events to {topic} in {res.seconds:.1f} s "
          f"({res.rate:,.0f}/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
