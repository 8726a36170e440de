"""Synthetic rule packs, customers and events for the rules benchmark.

Everything is generated from a fixed seed, so two runs time the same work. The packs are
plain YAML (as an author would write them) and go through the real loader.
"""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime
from typing import Any

from ruamel.yaml import YAML

from engine.models import CustomerState, Envelope, parse_event

EVENT_TYPES: tuple[str, ...] = tuple(f"ev_{i:02d}" for i in range(20))
SEGMENTS: tuple[str, ...] = (
    "frequent_flyer", "bargain_hunter", "fashion", "vip", "new", "dormant", "family", "business",
)
CATEGORIES: tuple[str, ...] = (
    "shoes", "bags", "travel", "books", "toys", "garden", "beauty", "sport",
)
TIERS: tuple[str, ...] = ("bronze", "silver", "gold", "platinum")
ZONES: tuple[str, ...] = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
N_MESSAGES = 40
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()  # a Monday morning, UTC


def _condition(i: int, rng: random.Random) -> str | list[str]:
    """One of a handful of realistic rule conditions, with varied constants (~5-10% true)."""
    seg, seg2 = rng.sample(SEGMENTS, 2)
    c1, c2 = rng.sample(CATEGORIES, 2)
    kind = i % 6
    if kind == 0:
        return [f'customer.attributes.segment == "{seg}"',
                f"event.data.score <= {rng.randint(3, 8)}"]
    if kind == 1:
        return (f'event.data.category in ["{c1}", "{c2}"] '
                f"and customer.attributes.points_expiring_days <= {rng.randint(3, 10)}")
    if kind == 2:
        return (f"hours_since(customer.timestamps.last_purchase) > {rng.randint(24, 240)} "
                f'and customer.attributes.segment in ["{seg}", "{seg2}"]')
    if kind == 3:
        return (f"event.data.value > {rng.randint(380, 480)} and not context.in_transit "
                f'and customer.attributes.tier != "bronze"')
    if kind == 4:
        return (f'customer.attributes.tier == "{rng.choice(TIERS)}" '
                f"and customer.windows.sessions >= {rng.randint(2, 4)}")
    return (f'(customer.attributes.segment == "{seg}" or event.data.score >= {rng.randint(9, 10)}) '
            f'and event.data.category == "{c1}" and customer.consent.email')


def pack_dict(n_rules: int, *, same_trigger: bool = False, no_match: bool = False,
              seed: int = 7) -> dict[str, Any]:
    """A complete pack: declarations, state updates, contexts, policies, caps and N rules.

    ``no_match`` appends a last condition that never holds (scores are 0-10): rules run
    the same conditions, but none qualifies, which isolates matching from building
    decisions.
    """
    rng = random.Random(seed)
    data = {"score": "int", "category": "str", "value": "number", "sku": "str"}
    cats = ("promotion", "promotion", "loyalty", "service")
    messages: dict[str, Any] = {}
    for m in range(N_MESSAGES):
        msg: dict[str, Any] = {
            "category": cats[m % len(cats)],
            "channels": ["push", "email"] if m % 3 else ["email"],
        }
        if m % 2:
            msg["params"] = {"sku": "event.data.sku", "value": "event.data.value"}
        if m % 5 == 0:
            msg["cooldown"] = "1d"
        messages[f"msg_{m:02d}"] = msg
    rules: list[dict[str, Any]] = []
    priorities = rng.sample(range(-1000, 1001), n_rules)  # distinct: no priority-tie warnings
    for i in range(n_rules):
        when = _condition(i, rng)
        if no_match:
            when = [*([when] if isinstance(when, str) else when), "event.data.score > 10"]
        rule: dict[str, Any] = {
            "id": f"rule_{i:04d}",
            "on": EVENT_TYPES[0] if same_trigger else EVENT_TYPES[i % len(EVENT_TYPES)],
            "when": when,
            "send": f"msg_{rng.randrange(N_MESSAGES):02d}",
            "priority": priorities[i],
        }
        if i % 10 == 3:
            rule["holdout"] = {"percent": 10, "salt": f"h{i}"}
        if i % 7 == 2:
            rule["relevance"] = "1h"
        rules.append(rule)
    return {
        "pack": f"bench-{n_rules}",
        "settings": {"timezone_attribute": "tz"},
        "channels": ["push", "email"],
        "categories": ["promotion", "loyalty", "service"],
        "events": {t: {"data": dict(data)} for t in EVENT_TYPES},
        "attributes": {"segment": "str", "tier": "str", "tz": "str",
                       "points_expiring_days": "int"},
        "updates": [
            {"on": EVENT_TYPES[1], "timestamp": ["last_purchase"]},
            {"on": list(EVENT_TYPES[:10]), "count_in_window": {"sessions": "1h"}},
        ],
        "contexts": {"in_transit": {"ttl": "12h", "start": [EVENT_TYPES[2]],
                                    "end": [EVENT_TYPES[3]]}},
        "messages": messages,
        "policies": {
            "in_transit": {"when": "context.in_transit", "suppress": {"categories": ["promotion"]}},
            "dormant": {"when": 'customer.attributes.segment == "dormant"',
                        "suppress": {"categories": ["loyalty"]}},
        },
        "frequency_caps": [
            {"id": "promo_push_daily", "channels": ["push"], "categories": ["promotion"],
             "max": 2, "window": "24h"},
            {"id": "promo_email_weekly", "channels": ["email"], "categories": ["promotion"],
             "max": 5, "window": "7d"},
        ],
        "quiet_hours": [{"id": "night", "channels": ["push"], "categories": ["promotion"],
                         "start": "21:00", "end": "08:00"}],
        "rules": rules,
    }


def pack_yaml(n_rules: int, *, same_trigger: bool = False, no_match: bool = False) -> str:
    """The pack as YAML text, for ``engine.pack.loader.load_pack_text``."""
    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump(pack_dict(n_rules, same_trigger=same_trigger, no_match=no_match), buf)
    return buf.getvalue()


def customer_seeds(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """Plain data for N customers; ``make_states`` turns them into fresh states per run."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for c in range(n):
        out.append({
            "id": f"cust_{c:05d}",
            "attributes": {"segment": rng.choice(SEGMENTS), "tier": rng.choice(TIERS),
                           "tz": rng.choice(ZONES), "points_expiring_days": rng.randint(0, 60)},
            "consent": {"push": rng.random() < 0.8, "email": rng.random() < 0.9},
            "timestamps": {"last_purchase": START - rng.uniform(3600, 30 * 86400)},
        })
    return out


def make_states(seeds: list[dict[str, Any]]) -> dict[str, CustomerState]:
    return {
        s["id"]: CustomerState(s["id"], attributes=dict(s["attributes"]),
                               consent=dict(s["consent"]), timestamps=dict(s["timestamps"]))
        for s in seeds
    }


def make_batch(n_events: int, customers: list[dict[str, Any]], *, event_type: str | None = None,
               seed: int = 13) -> list[Envelope]:
    """Validated events spread over customers and types, in time order, 3 s apart."""
    rng = random.Random(seed)
    out: list[Envelope] = []
    for k in range(n_events):
        at = START + 3.0 * k
        raw = {
            "id": f"e{k:07d}",
            "customer": rng.choice(customers)["id"],
            "type": event_type or rng.choice(EVENT_TYPES),
            "at": datetime.fromtimestamp(at, UTC).isoformat(),
            "data": {"score": rng.randint(0, 10), "category": rng.choice(CATEGORIES),
                     "value": round(rng.uniform(0, 500), 2), "sku": f"sku{rng.randrange(9999)}"},
        }
        out.append(Envelope(parse_event(raw), at + rng.uniform(0.05, 2.0)))
    return out
