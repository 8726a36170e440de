"""The retail example pack (examples/retail): clean under `tact rules check --strict`, its
scenarios pass with `tact rules test`, every message has a story that sends it, and editors
find the schema."""

from __future__ import annotations

from typer.testing import CliRunner

from engine.cli import _register, app
from engine.pack.loader import load_pack, rule_files
from engine.scenarios import load_scenario
from tests.conftest import RETAIL, RULES, scenario_files

_register()
runner = CliRunner()
SCENARIO_FILES = scenario_files(RETAIL / "scenarios")
SCHEMA = RULES / "tact-rules.schema.json"


def test_check_strict_is_clean() -> None:
    result = runner.invoke(app, ["rules", "check", str(RETAIL), "--strict"])
    assert result.exit_code == 0, result.output
    assert "ok pack retail-journeys@" in result.output
    assert "0 warning(s)" in result.output


def test_rules_test_finds_and_passes_its_scenarios() -> None:
    assert len(SCENARIO_FILES) >= 8
    result = runner.invoke(app, ["rules", "test", str(RETAIL)])
    assert result.exit_code == 0, result.output
    assert f"{len(SCENARIO_FILES)} passed, 0 failed" in result.output


def test_every_message_has_a_story_that_sends_it() -> None:
    pack = load_pack(RETAIL)
    sent = {
        entry.message
        for path in SCENARIO_FILES
        for expect in load_scenario(path).expect.values()
        for entry in expect.sent
    }
    assert sent == set(pack.messages), f"never sent in a scenario: {set(pack.messages) - sent}"


def test_rule_files_point_editors_at_the_schema() -> None:
    files = rule_files([RETAIL])
    assert {f.name for f in files} == {"catalog.yaml", "journeys.yaml", "policies.yaml",
                                       "state.yaml"}
    for f in files:
        first = f.read_text().splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), f"{f.name}: {first}"
        assert (f.parent / first.removeprefix(prefix)).resolve() == SCHEMA.resolve()

