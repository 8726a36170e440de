"""Keys are checked at load: on every event they are read on, with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app

_register()
runner = CliRunner()

HEAD = """\
channels: [webhook]
events:
  quote_requested: {data: {quote_id: str, total: number}}
  quote_sent: {data: {quote_id: str}}
  quote_withdrawn: {data: {ref: str}}
messages:
  escalation: {category: internal, channels: [webhook]}
"""


def check(tmp_path: Path, body: str) -> tuple[int, str]:
    f = tmp_path / "pack.yaml"
    f.write_text(HEAD + body, encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(tmp_path)])
    return result.exit_code, result.output


def _rule(key: str, unless: str = "[quote_sent, quote_withdrawn]", after: str = "2h") -> str:
    return (
        "rules:\n"
        "  - id: escalate\n"
        "    on: quote_requested\n"
        f"    after: {after}\n"
        f"    key: {key}\n"
        f"    unless: {unless}\n"
        "    send: escalation\n"
    )


def _first(out: str) -> str:
    return out.splitlines()[0]


def test_a_key_an_unless_event_lacks_is_an_error_at_the_field(tmp_path: Path) -> None:
    code, out = check(tmp_path, _rule("event.data.quote_id"))
    assert code == 1
    assert _first(out) == (
        f"{tmp_path / 'pack.yaml'}:12:21: error [escalate]: the key is read on the unless "
        "event 'quote_withdrawn' too: unknown field event.data.quote_id for the trigger "
        "(known: ref)"
    )
    assert out.splitlines()[2].index("^") == 24  # the caret under quote_id
    assert "rule pack rejected" in out


def test_a_key_every_event_has_loads(tmp_path: Path) -> None:
    code, out = check(tmp_path, _rule("event.data.quote_id", unless="[quote_sent]"))
    assert code == 0, out


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("'[event.data.quote_id]'", "a key must be text or a whole number, but on the "
                                    "trigger 'quote_requested' it is a list"),
        ("event.data.quote_id == 'x'", "a key must be text or a whole number, but on the "
                                       "trigger 'quote_requested' it is a bool"),
    ],
)
def test_a_key_of_the_wrong_type_is_an_error(tmp_path: Path, key: str, message: str) -> None:
    code, out = check(tmp_path, _rule(key, unless="[quote_sent]"))
    assert code == 1
    assert message in out


def test_a_key_on_a_rule_that_is_not_a_follow_up(tmp_path: Path) -> None:
    body = ("rules:\n  - {id: now, on: quote_requested, key: event.data.quote_id, "
            "send: escalation}\n")
    code, out = check(tmp_path, body)
    assert code == 1
    assert "'key' only applies to follow-ups: set 'after'" in _first(out)


def test_a_context_key_is_checked_on_its_end_events(tmp_path: Path) -> None:
    body = ("contexts:\n  pending_quote:\n    key: event.data.quote_id\n"
            "    start: [quote_requested]\n    end: [quote_sent, quote_withdrawn]\n")
    code, out = check(tmp_path, body)
    assert code == 1
    assert _first(out).endswith(
        ":10:21: error [contexts.pending_quote]: the key is read on the end event "
        "'quote_withdrawn' too: unknown field event.data.quote_id for the trigger (known: ref)"
    )


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ("pending_quot", "context_active(): unknown context 'pending_quot'; did you mean "
                         "'pending_quote'?"),
        ("open", "context_active(): context 'open' has no key: (use context.open)"),
    ],
)
def test_context_active_needs_a_declared_keyed_context(
    tmp_path: Path, context: str, message: str
) -> None:
    body = (
        "contexts:\n"
        "  pending_quote: {key: event.data.quote_id, start: [quote_requested]}\n"
        "  open: {start: [quote_requested]}\n"
        "rules:\n"
        "  - id: r\n"
        "    on: quote_sent\n"
        f"    when: context_active('{context}', event.data.quote_id)\n"
        "    send: escalation\n"
    )
    code, out = check(tmp_path, body)
    assert code == 1
    assert _first(out).endswith(f":14:26: error [r]: {message}")
