"""The fault and scale tests' one check: the decisions a worker (or several) wrote are
exactly embedded mode's for the same events, each id once, and every invalid event has
exactly one dead letter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from engine.embedded import Engine
from engine.models.event import Envelope, parse_event
from engine.models.state import CustomerState
from engine.pack.loader import load_pack
from engine.state.memory import MemoryStateStore

REPO = Path(__file__).resolve().parents[2]


async def assert_decided_once_as_embedded(
    customers: Mapping[str, CustomerState],
    events: Sequence[tuple[Any, bytes, str]],
    sent: Sequence[Any],
    decisions: Sequence[Any],
    dead: Sequence[Any],
) -> MemoryStateStore:
    """``events``: (key, value, received at) as produced, ``sent`` their record metadata;
    ``decisions`` and ``dead``: the output and dead-letter records read back. Returns the
    embedded store, holding the customers' states embedded mode ends with."""
    # what embedded mode decides for the same events, in the same per-customer order
    mem = MemoryStateStore()
    for st in customers.values():
        mem.seed(st)
    engine = Engine(load_pack(REPO / "rules"), mem)
    batch: list[Envelope] = []
    invalid: set[tuple[int, int]] = set()
    for (_, value, received), meta in zip(events, sent, strict=True):
        try:
            ev = parse_event(value)
        except Exception:
            invalid.add((meta.partition, meta.offset))
            continue
        batch.append(Envelope(ev, datetime.fromisoformat(received).timestamp()))
    expected = {d.id: orjson.loads(d.to_json()) for d in (await engine.process(batch)).decisions}

    ids = Counter(orjson.loads(r.value)["id"] for r in decisions)
    twice = {i: c for i, c in ids.items() if c > 1}
    assert not twice, f"{len(twice)} decision ids appear more than once"
    got = {orjson.loads(r.value)["id"]: orjson.loads(r.value) for r in decisions}
    assert set(got) == set(expected), (
        f"missing {len(set(expected) - set(got))}, unexpected {len(set(got) - set(expected))}")
    assert got == expected
    dl = Counter((orjson.loads(r.value)["source"]["partition"],
                  orjson.loads(r.value)["source"]["offset"]) for r in dead)
    assert set(dl) == invalid and all(c == 1 for c in dl.values())
    return mem
