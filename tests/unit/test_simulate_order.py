"""Follow-ups that come due at one clock tick fire in a defined order, whatever the hash seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from engine.models.event import Envelope, parse_event
from engine.models.state import CustomerState
from engine.pack.loader import load_pack_text
from engine.pipeline import decide, tick
from tests.conftest import REPO

PACK = """
channels: [push, email]
events:
  cart_updated: {data: {items: int}}
  purchase: {}
messages:
  reminder: {category: promotion, channels: [push]}
  nudge: {category: service, channels: [email]}
rules:
  - {id: remind, on: cart_updated, after: 30m, unless: [purchase], send: reminder}
  - {id: nudge, on: cart_updated, after: 30m, send: nudge}
  - {id: late, on: cart_updated, after: 40m, send: nudge}
"""
CUSTOMERS = [f"c{n:02d}" for n in range(24)]


def _write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "pack.yaml").write_text(PACK)
    lines = [
        {"id": f"e-{c}", "customer": c, "type": "cart_updated",
         "at": "2026-06-01T10:00:00+00:00", "data": {"items": 1}}
        for c in reversed(CUSTOMERS)
    ]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    return rules, events


def _simulate(rules: Path, events: Path, seed: str) -> list[bytes]:
    run = subprocess.run(
        [sys.executable, "-c", "from engine.cli import main; main()", "simulate",
         "--events", str(events), "--rules", str(rules), "--until", "2026-06-01T12:00:00+00:00"],
        capture_output=True, cwd=REPO, check=True,
        env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)},
    )
    return [line for line in run.stdout.splitlines() if line.startswith(b"{")]


def test_simulate_writes_the_same_decisions_in_the_same_order_under_any_hash_seed(
    tmp_path: Path,
) -> None:
    rules, events = _write_inputs(tmp_path)
    runs = [_simulate(rules, events, seed) for seed in ("1", "2", "3")]
    fired = [orjson.loads(line) for line in runs[0]]
    assert len(fired) == 3 * len(CUSTOMERS)  # every follow-up came due at the one tick
    assert runs[1] == runs[0]
    assert runs[2] == runs[0]
    # the defined order: due time, then customer, then rule
    order = [(d["decided_at"], d["customer"], d["rule"]) for d in fired]
    assert order == sorted(order)


def _scheduled(customers: list[str]) -> dict[str, CustomerState]:
    """Each customer with the pack's three follow-ups pending, in the order given."""
    pack = load_pack_text(PACK)
    states = {c: CustomerState(c) for c in customers}
    batch = [
        Envelope.at_event_time(parse_event({
            "id": f"e-{c}", "customer": c, "type": "cart_updated",
            "at": "2026-06-01T10:00:00+00:00", "data": {"items": 1}}))
        for c in customers
    ]
    decide(pack, states, batch)
    return states


def test_tick_fires_in_due_customer_rule_order_whatever_the_order_of_the_states() -> None:
    pack = load_pack_text(PACK)
    noon = 1780315200.0  # 2026-06-01T12:00:00Z, after every follow-up
    forward = tick(pack, _scheduled(CUSTOMERS), noon).fired
    backward = tick(pack, _scheduled(CUSTOMERS[::-1]), noon).fired
    assert [d.id for d in backward] == [d.id for d in forward]
    order = [(d.decided_at, d.customer, d.rule) for d in forward]
    assert len(order) == 3 * len(CUSTOMERS)
    assert order == sorted(order)
