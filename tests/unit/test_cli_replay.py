"""`tact replay` as a CI gate: --fail-on-diff, and --format json for machines."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from engine.cli import _register, app
from tests.conftest import RULES
from tests.unit.test_cli_authoring import _events

_register()
runner = CliRunner()

DISABLE_DISCOUNT = (
    "    send: {message: next_trip_discount, channels: [push]}\n",
    "    send: {message: next_trip_discount, channels: [push]}\n    enabled: false\n",
)


def _variant(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """A copy of the example pack with text replacements, each of which must apply."""
    other = tmp_path / "rules-v2"
    other.mkdir()
    for f in RULES.glob("*.yaml"):
        text = f.read_text()
        for old, new in edits:
            text = text.replace(old, new)
        (other / f.name).write_text(text)
    joined = "".join(p.read_text() for p in other.glob("*.yaml"))
    assert all(new in joined for _, new in edits)
    return other


def _replay(tmp_path: Path, other: Path, *extra: str) -> tuple[int, str, str]:
    args = ["replay", "--events", str(_events(tmp_path)), "--rules", str(RULES)]
    result = runner.invoke(app, [*args, "--compare", str(other), *extra])
    return result.exit_code, result.stdout, result.stderr


def test_fail_on_diff_passes_when_nothing_changes(tmp_path: Path) -> None:
    same = _variant(tmp_path, ("# The moments", "# The moments, reworded"))
    code, stdout, _ = _replay(tmp_path, same, "--fail-on-diff")
    assert code == 0, stdout
    assert "0 differences" in stdout


def test_fail_on_diff_fails_on_a_changed_decision(tmp_path: Path) -> None:
    changed = _variant(tmp_path, ("relevance: 2h", "relevance: 8h"))
    code, stdout, stderr = _replay(tmp_path, changed, "--fail-on-diff")
    assert code == 1
    assert "changed  e4 c2 travel_tips_at_gate travel_tips/push" in stdout
    assert "1 decision(s) differ" in stderr
    plain, _, _ = _replay(tmp_path, changed)
    assert plain == 0  # without the flag a replay only reports


def test_json_lists_every_change_with_its_fields(tmp_path: Path) -> None:
    other = _variant(tmp_path, ("relevance: 2h", "relevance: 8h"), DISABLE_DISCOUNT)
    code, stdout, _ = _replay(tmp_path, other, "--format", "json", "--fail-on-diff")
    assert code == 1
    report = json.loads(stdout)
    assert report["format"] == "tact-replay/1"
    assert report["events"] == 6
    assert report["before"]["pack"] == report["after"]["pack"] == "tact-examples"
    assert report["before"]["version"] != report["after"]["version"]
    assert report["counts"] == {"changed": 1, "added": 0, "removed": 1}
    by_kind = {c["kind"]: c for c in report["changes"]}
    changed = by_kind["changed"]
    assert (changed["event_id"], changed["customer"], changed["rule"], changed["channel"]) == (
        "e4",
        "c2",
        "travel_tips_at_gate",
        "push",
    )
    assert changed["fields"] == {
        "reasons": {"before": ["stale", "no_consent"], "after": ["no_consent"]}
    }
    assert changed["id"] == changed["before"]["id"] == changed["after"]["id"]
    assert changed["after"]["outcome"] == "suppressed" and "trace" not in changed["after"]
    removed = by_kind["removed"]
    assert (removed["rule"], removed["event_id"], removed["after"]) == (
        "next_trip_discount_on_open",
        "e2",
        None,
    )
    assert removed["before"]["outcome"] == "sent" and removed["fields"] == {}


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    code, _, stderr = _replay(tmp_path, RULES, "--format", "yaml")
    assert code == 2 and "--format must be text or json" in stderr
