"""`tact rules check`: every bad pack is rejected whole, with file:line:col, rule id and caret."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.errors import RulePackError
from engine.pack.loader import load_pack, load_pack_text
from tests.conftest import RULES

_register()
runner = CliRunner()

HEADER = """\
messages:
  promo: {category: promotion, channels: [push]}
rules:
  - id: good_rule
    on: app_open
    send: promo
  - id: the_rule
    on: app_open
"""


def check(tmp_path: Path, body: str) -> tuple[int, str]:
    f = tmp_path / "pack.yaml"
    f.write_text(body, encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(tmp_path)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("when", "line", "col", "message"),
    [
        ('    when: "event.__class__ == 1"', 9, 18, "access to '__class__' is not allowed"),
        ("    when: __import__('os')", 9, 11, "name '__import__' is not allowed"),
        ("    when: unknown_fn(event.type)", 9, 11, "unknown function 'unknown_fn'"),
        ("    when: '(lambda: True)()'", 9, 13, "a lambda is not allowed"),
        ("    when: '[e for e in event.data] == []'", 9, 12, "a comprehension is not allowed"),
        (
            "    when: |\n      event.type == 'a' and\n      event.__dict__",
            11,
            13,
            "access to '__dict__' is not allowed",
        ),
    ],
)
def test_expression_errors_point_into_the_file(
    tmp_path: Path, when: str, line: int, col: int, message: str
) -> None:
    code, out = check(tmp_path, HEADER + when + "\n    send: promo\n")
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith(f"{tmp_path / 'pack.yaml'}:{line}:{col}: error [the_rule]: {message}")
    caret_line = out.splitlines()[2]
    assert caret_line.index("^") - 4 == col - 1  # the caret sits under the column
    assert "rule pack rejected" in out


def test_yaml_syntax_error(tmp_path: Path) -> None:
    code, out = check(tmp_path, HEADER + "    send: [promo\n    priority: 3\n")
    assert code == 1
    assert f"{tmp_path / 'pack.yaml'}:10:" in out
    assert "YAML syntax error" in out


def test_schema_errors_name_rule_and_key(tmp_path: Path) -> None:
    code, out = check(tmp_path, HEADER + "    sned: promo\n")
    assert code == 1
    assert "error [the_rule]: missing required key 'send'" in out
    assert ":9:5: error [the_rule]: unknown key 'sned'" in out


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    body = HEADER + "    when: nope()\n    send: promo\n  - id: third\n    on: x\n    send: ghost\n"
    code, out = check(tmp_path, body)
    assert code == 1
    assert "unknown function 'nope'" in out
    assert "unknown message 'ghost'" in out
    assert "2 error(s)" in out


def test_reference_errors() -> None:
    with pytest.raises(RulePackError) as info:
        load_pack_text(
            "channels: [push]\n"
            "messages:\n  m: {category: promotion, channels: [fax]}\n"
            "rules:\n  - {id: r, on: a, send: {message: m, channels: [email]}}\n"
            "  - {id: r, on: a, send: m, unless: [b]}\n"
        )
    text = "\n".join(i.render() for i in info.value.issues)
    assert "unknown channel 'fax'" in text
    assert "not available on channel 'email'" in text
    assert "rule id 'r' is used twice" in text
    assert "'unless' only applies to follow-ups" in text


def test_duplicates_across_files_name_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("messages:\n  m: {category: c, channels: [push]}\n")
    (tmp_path / "b.yaml").write_text("messages:\n  m: {category: c, channels: [push]}\n")
    with pytest.raises(RulePackError) as info:
        load_pack(tmp_path)
    msg = info.value.issues[0].render()
    assert "message 'm' is defined twice (first at" in msg and "a.yaml:2" in msg


def test_example_pack_is_clean() -> None:
    result = runner.invoke(app, ["rules", "check", str(RULES), "--strict"])
    assert result.exit_code == 0, result.output
    assert "0 warning(s)" in result.output


def test_static_findings(tmp_path: Path) -> None:
    body = """\
events:
  app_open: {}
  purchase: {data: {value: number}}
contexts:
  vip: {start: [purchase]}
messages:
  a: {category: promotion, channels: [push]}
  b: {category: promotion, channels: [push]}
  unused: {category: promotion, channels: [push]}
rules:
  - {id: ghost_trigger, on: app_closed, send: a}
  - {id: contradiction, on: purchase, when: event.data.value > 10 and event.data.value < 5,
     send: a}
  - {id: tie_one, on: app_open, send: a, priority: 5}
  - {id: tie_two, on: app_open, send: b, priority: 5}
  - {id: never_false, on: app_open, when: "false", send: b, priority: 1}
  - {id: in_lists, on: purchase, when: ["event.data.value in [1, 2]", "event.data.value == 3"],
     send: b}
"""
    code, out = check(tmp_path, body)
    assert code == 0, out  # findings are warnings
    assert "[ghost_trigger]: can never fire: event type(s) app_closed are not declared" in out
    assert "[contradiction]: can never fire: its conditions contradict" in out
    assert "[never_false]: can never fire" in out
    assert "[in_lists]: can never fire" in out
    assert "message 'unused' is not sent by any rule" in out
    assert "priority tie: rules tie_one, tie_two" in out
    assert "context 'vip' is declared but no rule or policy reads it" in out
    strict = runner.invoke(app, ["rules", "check", str(tmp_path), "--strict"])
    assert strict.exit_code == 1


def test_type_checks_happen_at_load(tmp_path: Path) -> None:
    body = (
        "events:\n  view: {data: {sku: str}}\n"
        "messages:\n  m: {category: c, channels: [push], params: {n: event.data.price}}\n"
        "rules:\n  - {id: r, on: view, when: event.data.sku > 3, send: m}\n"
    )
    code, out = check(tmp_path, body)
    assert code == 1
    assert "cannot order str against int" in out
    assert "unknown field event.data.price for the trigger (known: sku)" in out
