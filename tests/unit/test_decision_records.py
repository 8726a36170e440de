"""The core's light decision records write exactly what the public ``Decision`` writes, and
decision ids are what they always were (issue 13)."""

from __future__ import annotations

import copy
import hashlib
import time
import uuid
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.models.decision import (
    FIELDS,
    Decision,
    DecisionRecord,
    decision_id,
)
from engine.models.event import Envelope, parse_event
from engine.models.state import CustomerState
from engine.pack.loader import load_pack
from engine.pipeline import decide
from load_tests.generator import generate_events

REPO = Path(__file__).resolve().parents[2]

json_leaf = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
             | st.floats(allow_nan=False) | st.text())
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(), inner, max_size=4), max_leaves=12)
moments = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]))


@st.composite
def decision_values(draw: st.DrawFn) -> dict[str, Any]:
    text = st.text()
    return {
        "id": draw(text), "event_id": draw(text), "customer": draw(text), "rule": draw(text),
        "message": draw(text), "template": draw(text), "category": draw(text),
        "channel": draw(text),
        "params": draw(st.dictionaries(st.text(), json_value, max_size=5)),
        "outcome": draw(st.sampled_from(["sent", "suppressed"])),
        "reasons": draw(st.lists(text, max_size=4)),
        "deliver_after": draw(st.none() | moments),
        "decided_at": draw(moments),
        "priority": draw(st.integers(-(2**63), 2**63 - 1)),
        "rules_version": draw(text),
        "trace": draw(st.lists(text, max_size=4)),
    }


@settings(max_examples=300, deadline=None)
@given(decision_values())
def test_a_record_writes_the_bytes_the_public_model_writes(values: dict[str, Any]) -> None:
    record = DecisionRecord(*(values[name] for name in FIELDS))  # positional, as the core does
    validated = Decision.model_validate(copy.deepcopy(values))
    assert record.to_json() == validated.to_json()
    assert record.to_json() == Decision.trusted(dict(values)).to_json()
    assert record.public() == validated
    assert record.public().to_json() == record.to_json()


def _id_before_issue_13(event_id: str, rule: str, channel: str) -> str:
    """``decision_id`` as it was written before issue 13: ids must never change."""
    h = hashlib.blake2b(f"{event_id}\x1f{rule}\x1f{channel}".encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@settings(max_examples=500, deadline=None)
@given(st.text(), st.text(), st.text())
def test_decision_ids_are_unchanged(event_id: str, rule: str, channel: str) -> None:
    did = decision_id(event_id, rule, channel)
    assert did == _id_before_issue_13(event_id, rule, channel)
    assert did == str(uuid.UUID(hex=did.replace("-", "")))  # the UUID layout, lower case


def test_the_pipelines_records_are_whole_decisions() -> None:
    """Every field of the core's records in its place: the JSON is a valid ``Decision`` with
    the fields in order, equal to the record's public model, and ids are ``decision_id``'s."""
    pack = load_pack(REPO / "load_tests/packs/loadtest")
    start = time.time() - 86400
    envs = [Envelope(ev, ev.at.timestamp())
            for ev in (parse_event(e) for e in generate_events(1500, 60, 5, start, step=30.0))]
    states = {f"c{i:06d}": CustomerState(f"c{i:06d}", consent={"push": True, "email": True})
              for i in range(60)}
    customer_of = {env.event.id: env.event.customer for env in envs}
    records = decide(pack, states, envs).decisions
    assert len(records) > 500
    assert {r.outcome for r in records} == {"sent", "suppressed"}
    for record in records:
        raw = record.to_json()
        assert tuple(orjson.loads(raw)) == FIELDS
        assert Decision.model_validate_json(raw) == record.public()
        assert record.id == decision_id(record.event_id, record.rule, record.channel)
        msg, rule = pack.messages[record.message], pack.rules_by_id[record.rule]
        assert (record.template, record.category, record.priority) == (
            msg.template, msg.category, rule.priority)
        assert record.channel in msg.channels and record.rules_version == pack.version
        assert record.customer == customer_of[record.event_id]
        assert (record.deliver_after is None) or record.outcome == "sent"
        assert bool(record.reasons) == (record.outcome == "suppressed")
