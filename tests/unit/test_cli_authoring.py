"""`tact explain | simulate | replay | rules schema` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.cli.rules import render_schema
from tests.conftest import REPO, RULES, SCENARIOS

_register()
runner = CliRunner()


def _events(tmp_path: Path) -> Path:
    lines = [
        {
            "id": "e1",
            "customer": "c1",
            "type": "profile_updated",
            "at": "2026-06-01T08:00:00+00:00",
            "data": {
                "attributes": {"segment": "frequent_flyer", "tz": "UTC"},
                "consent": {"push": True, "email": True},
            },
        },
        {"id": "e2", "customer": "c1", "type": "app_open", "at": "2026-06-01T09:00:00+00:00"},
        {
            "id": "e3",
            "customer": "c1",
            "type": "boarding_pass_scanned",
            "at": "2026-06-01T10:00:00+00:00",
            "data": {"flight": "AZ1", "destination": "Oslo"},
        },
        {
            "event": {
                "id": "e4",
                "customer": "c2",
                "type": "boarding_pass_scanned",
                "at": "2026-06-01T10:00:00+00:00",
                "data": {"flight": "AZ2", "destination": "Rome"},
            },
            "received": "2026-06-01T15:00:00+00:00",
        },
        {
            "id": "e5",
            "customer": "c1",
            "type": "cart_updated",
            "at": "2026-06-01T11:00:00+00:00",
            "data": {"items": 1, "value": 3.5},
        },
        {"id": "e2", "customer": "c1", "type": "app_open", "at": "2026-06-01T09:00:00+00:00"},
    ]
    text = "\n".join(orjson.dumps(x).decode() for x in lines)
    text += '\n{"id": "bad", "customer": "c1"}\nnot json\n'
    p = tmp_path / "events.jsonl"
    p.write_text(text)
    return p


def test_simulate_prints_decisions_and_a_summary(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "simulate",
            "--events",
            str(_events(tmp_path)),
            "--rules",
            str(RULES),
            "--until",
            "2026-06-01T12:00:00+00:00",
        ],
    )
    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    got = {(d["event_id"], d["message"], d["channel"], d["outcome"]) for d in decisions}
    assert ("e2", "next_trip_discount", "push", "sent") in got
    assert ("e3", "travel_tips", "push", "sent") in got
    # The follow-up fired (thanks to --until) but the traveller is in transit.
    reminder = next(d for d in decisions if d["message"] == "cart_reminder")
    assert reminder["reasons"] == ["in_transit"]
    assert reminder["decided_at"].startswith("2026-06-01T11:30:00")
    stale = next(d for d in decisions if d["event_id"] == "e4")
    assert "stale" in stale["reasons"] and "no_consent" in stale["reasons"]
    assert "events.jsonl:7: dead letter: type: Field required" in result.output
    assert "events.jsonl:8: dead letter: invalid JSON" in result.output
    assert "1 duplicates" in result.output


def test_replay_shows_what_a_change_would_do(tmp_path: Path) -> None:
    other = tmp_path / "rules-v2"
    other.mkdir()
    for f in RULES.glob("*.yaml"):
        text = f.read_text().replace("relevance: 2h", "relevance: 8h")
        (other / f.name).write_text(text)
    result = runner.invoke(
        app,
        [
            "replay",
            "--events",
            str(_events(tmp_path)),
            "--rules",
            str(RULES),
            "--compare",
            str(other),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "changed  e4 c2 travel_tips_at_gate travel_tips/push: reasons ['stale', "
        "'no_consent'] -> ['no_consent']" in result.output
    )
    assert "1 differences" in result.output
    assert "stale" in result.output.split("reasons gained or lost")[1]


def test_explain_shows_conditions_policies_and_why() -> None:
    result = runner.invoke(
        app,
        [
            "explain",
            str(SCENARIOS / "complaint-holds-promotions.yaml"),
            "--rules",
            str(RULES),
            "--step",
            "browses-shoes",
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "browses-shoes at 2026-02-11T21:15:00+01:00: product_viewed (bruno-2) for bruno" in out
    assert "policy open_complaint: context.open_complaint is True -> open_complaint" in out
    assert "=> suppressed browse_offer via email because open_complaint" in out
    assert "meets expectations" in out
    missing = runner.invoke(
        app, ["explain", str(SCENARIOS / "channel-consent.yaml"), "--step", "zz"]
    )
    assert missing.exit_code == 1


def test_schema_file_is_current_and_valid() -> None:
    current = (REPO / "rules" / "tact-rules.schema.json").read_text()
    assert current == render_schema(), "run: tact rules schema --write rules/tact-rules.schema.json"
    import jsonschema
    from ruamel.yaml import YAML

    schema = json.loads(current)
    jsonschema.Draft202012Validator.check_schema(schema)
    for f in RULES.glob("*.yaml"):
        jsonschema.validate(YAML(typ="safe").load(f.read_text()), schema)
    result = runner.invoke(
        app, ["rules", "schema", "--check", str(REPO / "rules" / "tact-rules.schema.json")]
    )
    assert result.exit_code == 0


def test_schema_catches_mistakes_in_editors() -> None:
    import jsonschema

    schema = json.loads(render_schema())
    bad = {"rules": [{"id": "r", "on": "x", "send": "m", "priorty": 1}]}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(bad))
    assert errors and "priorty" in str(errors[0].message)
