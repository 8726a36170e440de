"""`tact explain` shows the value of each sub-expression, not only the condition's."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app

_register()
runner = CliRunner()

PACK = """\
channels: [push]
events:
  purchase: {data: {value: number}}
  app_open: {}
attributes: {segment: str, tz: str}
updates:
  - {on: purchase, timestamp: [last_purchase]}
messages:
  comeback: {category: promotion, channels: [push]}
rules:
  - id: comeback_on_open
    on: app_open
    when:
      - hours_since(customer.timestamps.last_purchase) > 24 and len(customer.attributes.segment) > 3
      - |
        customer.attributes.segment in ['vip', 'gold'] or
        hours_since(customer.timestamps.last_purchase) > 200
    send: comeback
"""

SCENARIO = """\
scenario: a customer back after four days
customers:
  c1: {attributes: {segment: regular, tz: UTC}, consent: {push: true}}
steps:
  - id: s1
    at: "2026-06-01T00:00:00+00:00"
    event: {id: e1, customer: c1, type: purchase, data: {value: 5}}
  - {id: s2, at: "2026-06-05T01:12:00+00:00", event: {id: e2, customer: c1, type: app_open}}
"""


def test_explain_shows_each_sub_expression_value(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "pack.yaml").write_text(PACK)
    (tmp_path / "sc.yaml").write_text(SCENARIO)
    args = ["explain", str(tmp_path / "sc.yaml"), "--rules", str(tmp_path / "rules")]
    result = runner.invoke(app, [*args, "--step", "s2"])
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    head = "rule comeback_on_open: hours_since(customer.timestamps.last_purchase) > 24 -> True"
    at = lines.index(head)
    assert lines[at + 1 : at + 3] == [
        "hours_since(customer.timestamps.last_purchase) = 97.2",
        "customer.timestamps.last_purchase = 2026-06-01T00:00:00+00:00",
    ]
    at = lines.index("rule comeback_on_open: len(customer.attributes.segment) > 3 -> True")
    assert lines[at + 1 : at + 3] == [
        "len(customer.attributes.segment) = 7",
        "customer.attributes.segment = 'regular'",
    ]
    # A condition that is one 'or': its sides, and what they read, each once.
    at = next(i for i, line in enumerate(lines) if line.endswith("> 200 -> False"))
    assert lines[at + 1 : at + 5] == [
        "customer.attributes.segment in ['vip', 'gold'] = False",
        "customer.attributes.segment = 'regular'",
        "hours_since(customer.timestamps.last_purchase) > 200 = False",
        "hours_since(customer.timestamps.last_purchase) = 97.2",
    ]


def test_explain_finds_the_pack_of_a_scenario_by_convention(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tact explain examples/retail/scenarios/x.yaml` uses examples/retail, not rules/."""
    repo = Path(__file__).resolve().parents[2]
    scenario = next((repo / "examples" / "retail" / "scenarios").glob("*.yaml"))
    monkeypatch.chdir(tmp_path)  # no rules/ here: only the convention can find the pack
    result = CliRunner().invoke(app, ["explain", str(scenario)])
    assert result.exit_code == 0, result.output
    assert "retail" in result.output
