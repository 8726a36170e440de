"""Fail closed (issue 9.3): a condition, policy or param that raises gives silence, counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.dsl.functions import FUNCTIONS, FunctionSpec
from engine.observability.counts import BatchCounts
from engine.testing import Harness

ANY = frozenset({"str", "int", "float", "number", "bool", "time", "list", "map", "any", "null"})

PACK = """
settings: {max_per_event_per_channel: 3}
channels: [push]
categories: [promotion, service]
events:
  login: {data: {boom: any, n: any}}
attributes: {tz: str, flag: any}
messages:
  promo: {category: promotion, channels: [push], params: {n: event.data.n}}
  care: {category: service, channels: [push]}
  fragile_param: {category: service, channels: [push], params: {x: explode(event.data.boom)}}
policies:
  fragile: {when: explode(customer.attributes.flag), suppress: {categories: [promotion]}}
rules:
  - {id: promo_on_login, on: login, send: promo, priority: 5}
  - {id: care_on_login, on: login, send: care, priority: 4}
"""


def _explode(x: Any) -> bool:
    if x:
        raise RuntimeError("kaboom")
    return False


@pytest.fixture(autouse=True)
def explode() -> Iterator[None]:
    """A function that raises when its argument is true: what bad data can do to a rule."""
    FUNCTIONS["explode"] = FunctionSpec("explode", _explode, (ANY,), "bool", 1)
    yield
    del FUNCTIONS["explode"]


def _harness(pack: str = PACK, **kw: Any) -> Harness:
    h = Harness.from_text(pack, **kw)
    h.customer("c1", attributes={"tz": "UTC", "flag": True}, consent={"push": True})
    return h


def test_a_policy_that_raises_suppresses_its_categories_with_policy_error() -> None:
    h = _harness(trace=True)
    by_message = {d.message: d for d in h.emit("c1", "login", {"n": 1})}
    promo, care = by_message["promo"], by_message["care"]
    assert (promo.outcome, promo.reasons) == ("suppressed", ["policy_error"])
    assert care.outcome == "sent"  # the policy does not cover services
    assert h.last is not None
    (fault,) = h.last.faults
    assert (fault.rule, fault.error) == ("policy:fragile", "RuntimeError: kaboom")
    note = ("policy fragile: explode(customer.attributes.flag) raised RuntimeError: kaboom "
            "-> policy_error")
    assert note in promo.trace
    assert any(note in line for line in h.last.explain[promo.event_id])
    # counted as the worker counts it, under a bounded label
    assert BatchCounts.of(faults=[f.rule for f in h.last.faults]).faults == {"policy:fragile": 1}
    h.close()


def test_a_policy_that_does_not_raise_still_decides() -> None:
    h = _harness()
    h.customer("c2", attributes={"tz": "UTC", "flag": False}, consent={"push": True})
    sent = {d.message for d in h.emit("c2", "login", {"n": 1}) if d.outcome == "sent"}
    assert sent == {"promo", "care"}
    assert h.last is not None and h.last.faults == []
    h.close()


def test_a_param_that_raises_suppresses_the_decision_with_param_error() -> None:
    pack = PACK.replace("send: care, priority: 4}", "send: fragile_param, priority: 4}")
    h = _harness(pack, trace=True)
    h.customer("c2", attributes={"tz": "UTC", "flag": False}, consent={"push": True})
    (d,) = [d for d in h.emit("c2", "login", {"boom": True}) if d.message == "fragile_param"]
    assert (d.outcome, d.reasons, d.params) == ("suppressed", ["param_error"], {})
    assert "param x raised RuntimeError: kaboom -> param_error" in d.trace
    assert h.last is not None
    assert [(f.rule, f.error) for f in h.last.faults] == [
        ("care_on_login", "param x raised RuntimeError: kaboom")
    ]
    # nothing was recorded as sent: the next good event goes out
    (d,) = [d for d in h.emit("c2", "login", {"boom": False}) if d.message == "fragile_param"]
    assert (d.outcome, d.params) == ("sent", {"x": False})
    h.close()


@pytest.mark.parametrize(
    "n", [2**70, -(2**64), float("nan"), float("inf"), [1, {"k": 2**80}], "\ud800", {"\udfff": 1}]
)
def test_a_param_that_is_not_a_json_value_is_param_error(n: Any) -> None:
    h = _harness()
    h.customer("c2", attributes={"tz": "UTC", "flag": False}, consent={"push": True})
    (d,) = [d for d in h.emit("c2", "login", {"n": n}) if d.message == "promo"]
    assert (d.outcome, d.reasons) == ("suppressed", ["param_error"])
    assert "n" not in d.params
    orjson.loads(d.to_json())  # the decision itself still serialises
    assert h.last is not None and [f.rule for f in h.last.faults] == ["promo_on_login"]
    h.close()


@pytest.mark.parametrize(
    "at", ["9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"]
)
def test_an_event_at_the_edge_of_the_calendar_fails_closed(at: str) -> None:
    pack = PACK + (
        "quiet_hours:\n"
        "  - {id: night, channels: [push], categories: [promotion], start: '21:00', end: '08:00'}\n"
    )
    h = _harness(pack)
    h.customer("c2", attributes={"tz": "Etc/GMT+12", "flag": False}, consent={"push": True})
    h.clock.set(at)
    decisions = h.emit("c2", "login", {"n": 1})
    assert {d.message for d in decisions} == {"promo", "care"}
    for d in decisions:
        assert (d.outcome, d.reasons) == ("suppressed", ["policy_error"])
        orjson.loads(d.to_json())
    assert h.last is not None and [f.rule for f in h.last.faults] == ["event_time"]
    h.close()


def test_a_condition_that_raises_does_not_fire_and_is_counted() -> None:
    pack = PACK.replace("send: care, priority: 4}", "when: explode(event.data.boom), send: care}")
    for trace in (False, True):
        h = _harness(pack, trace=trace)
        h.customer("c2", attributes={"tz": "UTC", "flag": False}, consent={"push": True})
        decisions = h.emit("c2", "login", {"boom": True, "n": 1})
        assert [d.message for d in decisions] == ["promo"]
        assert h.last is not None
        assert [(f.rule, f.error) for f in h.last.faults] == [
            ("care_on_login", "RuntimeError: kaboom")
        ]
        h.close()


def _cli() -> Any:
    from typer.testing import CliRunner

    from engine.cli import _register, app

    _register()
    return CliRunner(), app


def test_simulate_reports_every_kind_of_fault(tmp_path: Path) -> None:
    pack = PACK.replace("send: care, priority: 4}", "when: explode(event.data.boom), send: care}")
    pack += "  - {id: param_rule, on: login, send: fragile_param}\n"
    (tmp_path / "pack.yaml").write_text(pack)
    events = [
        {"id": "e1", "customer": "c1", "type": "login", "at": "2026-06-01T08:00:00+00:00",
         "data": {"boom": True, "n": 1}},
        {"id": "e2", "customer": "c1", "type": "login", "at": "2026-06-01T09:00:00+00:00"},
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events))
    runner, app = _cli()
    result = runner.invoke(app, ["simulate", "--events", str(tmp_path / "events.jsonl"),
                                 "--rules", str(tmp_path / "pack.yaml")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "fault in care_on_login on event e1: RuntimeError: kaboom" in out
    assert "fault in param_rule on event e1: param x raised RuntimeError: kaboom" in out
    assert "2 faults" in out  # nothing raised for e2; c1 has no flag, so the policy is fine
    faults = out.split("faults (each failed closed")[1]
    assert "care_on_login" in faults and "param_rule" in faults
    assert "param_error" in out.split("suppression reasons")[1]


def test_explain_shows_a_policy_fault_and_its_reason(tmp_path: Path) -> None:
    (tmp_path / "pack.yaml").write_text(PACK)
    (tmp_path / "sc.yaml").write_text(
        "scenario: fragile\n"
        "customers:\n"
        "  c1: {attributes: {tz: UTC, flag: true}, consent: {push: true}}\n"
        "steps:\n"
        "  - id: s1\n"
        "    at: '2026-06-01T10:00:00+00:00'\n"
        "    event: {id: e1, customer: c1, type: login, data: {n: 1}}\n"
    )
    runner, app = _cli()
    result = runner.invoke(app, ["explain", str(tmp_path / "sc.yaml"),
                                 "--rules", str(tmp_path / "pack.yaml")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert ("policy fragile: explode(customer.attributes.flag) raised RuntimeError: kaboom "
            "-> policy_error") in out
    assert "=> suppressed promo via push because policy_error" in out
    assert "fault in policy:fragile: RuntimeError: kaboom" in out
    assert "1 fault(s) in policy:fragile" in out
