"""The shared acceptance scenarios, in embedded mode, against the example pack."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.pack.loader import load_pack_text
from engine.pack.model import RulePack
from engine.scenarios import load_scenario, load_scenarios, run_scenario
from tests.conftest import RULES, SCENARIOS

_register()
FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_the_shared_scenarios_are_there() -> None:
    assert len(FILES) >= 11, f"expected the shared scenarios in {SCENARIOS}"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
async def test_scenario(pack: RulePack, path: Path) -> None:
    result = await run_scenario(pack, load_scenario(path))
    assert result.passed, "\n".join(result.problems)


def _pack_with(old: str, new: str) -> RulePack:
    text = "".join(
        (RULES / f).read_text()
        for f in ("catalog.yaml", "state.yaml", "policies.yaml", "moments.yaml")
    )
    text = text.replace("pack: tact-examples", "")
    assert old in text
    return load_pack_text(text.replace(old, new), "merged.yaml")


async def test_checker_fails_when_a_policy_never_holds() -> None:
    # With the open_complaint policy disabled the promotion goes out: the scenario must fail.
    pack = _pack_with("when: context.open_complaint", 'when: "false"')
    result = await run_scenario(pack, load_scenario(SCENARIOS / "complaint-pauses-promotions.yaml"))
    assert "s3: unexpected sent: c-200/browse_offer/email" in result.problems


async def test_checker_fails_without_quiet_hours() -> None:
    line = (
        "quiet_hours:\n  - {id: promo_push_night, channels: [push], categories: [promotion], "
        'start: "21:00", end: "08:00"}\n'
    )
    pack = _pack_with(line, "quiet_hours: []\n")
    result = await run_scenario(pack, load_scenario(SCENARIOS / "quiet-hours.yaml"))
    assert any("deliver_after none" in p for p in result.problems)


def test_cli_prints_one_line_per_scenario_and_a_total() -> None:
    result = CliRunner().invoke(app, ["rules", "test", "--scenarios", str(SCENARIOS), str(RULES)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 0, result.output
    assert lines[-1] == f"{len(FILES)} passed, 0 failed"
    assert sum(1 for line in lines if line.startswith("PASS ")) == len(FILES)


def test_cli_exits_1_and_shows_the_diff_on_failure(tmp_path: Path) -> None:
    sc = (
        (SCENARIOS / "consent.yaml")
        .read_text()
        .replace("channel: push, params", "channel: sms, params")
    )
    (tmp_path / "consent.yaml").write_text(sc)
    result = CliRunner().invoke(app, ["rules", "test", "--scenarios", str(tmp_path), str(RULES)])
    assert result.exit_code == 1
    assert "FAIL consent" in result.output
    assert "missing sent: c-500/shipping_update/sms" in result.output
    assert "unexpected sent: c-500/shipping_update/push" in result.output
    assert result.output.strip().splitlines()[-1] == "0 passed, 1 failed"


def test_load_scenarios_reads_a_directory() -> None:
    assert {s.scenario for s in load_scenarios(SCENARIOS)} >= {"consent", "quiet-hours"}
