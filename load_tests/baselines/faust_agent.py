"""Baseline (b): a plain Faust agent, as a user of faust-streaming and redis-py writes it.

Per event: parse the JSON, GET the customer's state blob from Redis, a few if-statements
(the example pack's moments, simplified), SET the blob back, and ``await topic.send`` of one
decision. Invalid events go to a dead-letter topic. Faust's defaults otherwise (offsets
committed by Faust every ``broker_commit_interval``), except that values are raw bytes
parsed with orjson, which is faster than a ``faust.Record`` model::

    python -m load_tests.baselines.faust_agent --input lt.events --output lt.b.out \\
        --dead-letter lt.b.dlq --group lt-b-1 [--redis redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from typing import Any

import orjson

STATE_TTL = 90 * 86400
KNOWN_TYPES = frozenset({
    "app_open", "product_viewed", "cart_updated", "purchase", "order_shipped", "price_dropped",
    "newsletter_opened", "profile_updated", "boarding_pass_scanned", "trip_completed",
    "nps_submitted", "payment_failed", "support_ticket_opened", "support_ticket_closed",
})
PROMOTIONS = frozenset({"next_trip_discount", "flash_sale", "browse_offer", "price_drop",
                        "referral_invite"})


def valid(ev: Any) -> bool:
    if not isinstance(ev, dict):
        return False
    for name in ("id", "customer", "type", "at"):
        if not isinstance(ev.get(name), str):
            return False
    if ev["type"] not in KNOWN_TYPES or not isinstance(ev.get("data", {}), dict):
        return False
    try:
        return datetime.fromisoformat(ev["at"]).tzinfo is not None
    except ValueError:
        return False


def decide(ev: dict[str, Any], st: dict[str, Any]) -> tuple[str, str, str]:
    """Update the state blob; return (rule, message, channel)."""
    t, data = ev["type"], ev.get("data") or {}
    attrs = st.setdefault("attributes", {})
    st["events"] = st.get("events", 0) + 1
    if t == "profile_updated":
        attrs.update(data.get("attributes") or {})
        st.setdefault("consent", {}).update(data.get("consent") or {})
        return "profile_seen", "event_seen", "push"
    if t == "boarding_pass_scanned":
        st["in_transit"] = True
        return "travel_tips_at_gate", "travel_tips", "push"
    if t == "trip_completed":
        st["in_transit"] = False
    elif t == "app_open":
        if attrs.get("points_expiring_days", 99) <= 7:
            return "points_expiring_on_open", "points_expiring", "push"
        if attrs.get("segment") == "frequent_flyer":
            return "next_trip_discount_on_open", "next_trip_discount", "push"
    elif t == "product_viewed":
        return "browse_offer_on_view", "browse_offer", "email"
    elif t == "price_dropped":
        return "price_drop_alert", "price_drop", "push"
    elif t == "order_shipped":
        return "shipping_update", "shipping_update", "push"
    elif t == "purchase":
        st["purchases"] = st.get("purchases", 0) + 1
    elif t == "payment_failed":
        st["payment_failures"] = st.get("payment_failures", 0) + 1
        if st["payment_failures"] >= 3:
            return "payment_trouble", "payment_help", "email"
    elif t == "support_ticket_opened":
        return "ticket_acknowledgement", "ticket_ack", "email"
    elif t == "nps_submitted":
        score = data.get("score", 10)
        if isinstance(score, int) and score <= 6:
            return "detractor_care", "care_outreach", "email"
        if isinstance(score, int) and score >= 9:
            return "promoter_referral", "referral_invite", "email"
    return f"{t}_seen", "event_seen", "push"


def build_app(brokers: str, source: str, output: str, dead_letter: str, group: str,
              redis_url: str) -> Any:
    import faust
    from redis.asyncio import Redis

    app = faust.App(group, broker=f"kafka://{brokers}", value_serializer="raw",
                    key_serializer="raw", web_enabled=False, store="memory://",
                    consumer_auto_offset_reset="earliest",
                    datadir=tempfile.mkdtemp(prefix="tact-lt-faust-"))
    events = app.topic(source, value_type=bytes, key_type=bytes)
    decisions = app.topic(output, value_type=bytes, key_type=bytes)
    dead = app.topic(dead_letter, value_type=bytes, key_type=bytes)
    clients: dict[str, Redis] = {}

    @app.agent(events)
    async def engage(stream: Any) -> None:
        redis = clients.setdefault("r", Redis.from_url(redis_url))
        async for key, value in stream.items():
            try:
                ev = orjson.loads(value)
            except orjson.JSONDecodeError:
                ev = None
            if not valid(ev):
                await dead.send(key=key, value=value)
                continue
            skey = f"lt:faust:{ev['customer']}"
            blob = await redis.get(skey)
            st = orjson.loads(blob) if blob else {}
            rule, message, channel = decide(ev, st)
            reasons = []
            if message in PROMOTIONS and st.get("in_transit"):
                reasons.append("in_transit")
            if not st.get("consent", {}).get(channel):
                reasons.append("no_consent")
            await redis.set(skey, orjson.dumps(st), ex=STATE_TTL)
            decision = {
                "id": f"{ev['id']}:{rule}:{channel}", "event_id": ev["id"],
                "customer": ev["customer"], "rule": rule, "message": message,
                "channel": channel, "outcome": "suppressed" if reasons else "sent",
                "reasons": reasons, "decided_at": time.time(),
            }
            await decisions.send(key=key, value=orjson.dumps(decision))

    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.baselines.faust_agent")
    p.add_argument("--brokers", default="127.0.0.1:9092")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--dead-letter", required=True)
    p.add_argument("--group", required=True, help="the Faust app id (= consumer group)")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    a = p.parse_args(argv)
    import faust

    app = build_app(a.brokers, a.input, a.output, a.dead_letter, a.group, a.redis)
    print(f"faust agent: {a.input} -> {a.output} (app {a.group}, pid {os.getpid()})",
          file=sys.stderr, flush=True)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()  # returns only at shutdown (SIGTERM)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
