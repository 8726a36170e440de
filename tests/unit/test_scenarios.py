"""The project's scenarios (rules/scenarios) in embedded mode against the example pack; the
shared acceptance scenarios too, where they are beside the repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.errors import RulePackError
from engine.pack.loader import load_pack, load_pack_text
from engine.pack.model import RulePack
from engine.scenarios import Scenario, load_scenario, load_scenarios, run_scenario
from tests.conftest import NO_SHARED, RULES, SCENARIOS, SHARED_SCENARIOS, scenario_files

_register()
FILES = scenario_files(SCENARIOS)
SHARED = scenario_files(SHARED_SCENARIOS)
SHARED_PARAMS = (
    [pytest.param(f, id=f.stem) for f in SHARED]
    or [pytest.param(None, id="shared", marks=pytest.mark.skip(reason=NO_SHARED))]
)
RULE_FILES = ("catalog.yaml", "state.yaml", "policies.yaml", "moments.yaml")


def test_the_project_scenarios_are_there() -> None:
    assert len(FILES) >= 12, f"expected the project's scenarios in {SCENARIOS}"
    assert len({load_scenario(f).scenario for f in FILES}) == len(FILES), "ids must be unique"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
async def test_scenario(pack: RulePack, path: Path) -> None:
    sc = load_scenario(path)
    assert sc.expect, f"{path.name}: a story with nothing expected checks nothing"
    result = await run_scenario(pack, sc)
    assert result.passed, "\n".join(result.problems)


@pytest.mark.parametrize("path", SHARED_PARAMS)
async def test_shared_scenario(pack: RulePack, path: Path) -> None:
    result = await run_scenario(pack, load_scenario(path))
    assert result.passed, "\n".join(result.problems)


def _pack_with(old: str, new: str) -> RulePack:
    text = "".join((RULES / f).read_text() for f in RULE_FILES)
    text = text.replace("pack: tact-examples", "")
    assert old in text
    return load_pack_text(text.replace(old, new), "merged.yaml")


async def test_checker_fails_when_a_policy_never_holds() -> None:
    # With the open_complaint policy disabled the promotion goes out: the scenario must fail.
    pack = _pack_with("when: context.open_complaint", 'when: "false"')
    result = await run_scenario(pack, load_scenario(SCENARIOS / "complaint-holds-promotions.yaml"))
    assert "browses-shoes: unexpected sent: bruno/browse_offer/email" in result.problems


async def test_checker_fails_without_quiet_hours() -> None:
    line = (
        "quiet_hours:\n  - {id: promo_push_night, channels: [push], categories: [promotion], "
        'start: "21:00", end: "08:00"}\n'
    )
    pack = _pack_with(line, "quiet_hours: []\n")
    result = await run_scenario(pack, load_scenario(SCENARIOS / "quiet-hours-defer.yaml"))
    assert any("late-drop: price_drop/push: deliver_after none" in p for p in result.problems)


def _without_starting_state(sc: Scenario) -> Scenario:
    bare = {cid: c.model_copy(update={"history": [], "contexts": {}, "windows": {}})
            for cid, c in sc.customers.items()}
    return sc.model_copy(update={"customers": bare})


@pytest.mark.parametrize("name, problem", [
    ("already-capped-from-history", "price-drop: unexpected sent: giulia/price_drop/push"),
    ("cooldown-across-channels", "newsletter: unexpected sent: hana/spring_collection/email"),
    ("open-complaint-from-state", "browses-during: unexpected sent: chiara/browse_offer/email"),
    ("transit-context-expires", "open-in-transit: unexpected sent: marco/next_trip_discount/push"),
    ("payment-failures-from-state", "rita-declined: missing sent: rita/payment_help/email"),
])
async def test_the_starting_state_is_what_makes_the_story(
    pack: RulePack, name: str, problem: str
) -> None:
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    assert (await run_scenario(pack, sc)).passed
    result = await run_scenario(pack, _without_starting_state(sc))
    assert any(p.startswith(problem) for p in result.problems), result.problems


def test_cli_runs_the_packs_own_scenarios_by_convention() -> None:
    result = CliRunner().invoke(app, ["rules", "test", str(RULES)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 0, result.output
    assert lines[-1] == f"{len(FILES)} passed, 0 failed"
    assert {line.removeprefix("PASS ") for line in lines if line.startswith("PASS ")} == {
        load_scenario(f).scenario for f in FILES
    }


def test_cli_says_where_it_looked_when_a_pack_has_no_scenarios(tmp_path: Path) -> None:
    for f in RULE_FILES:
        shutil.copy(RULES / f, tmp_path / f)
    result = CliRunner().invoke(app, ["rules", "test", str(tmp_path)])
    assert result.exit_code == 1
    assert f"no scenarios/ directory in the pack (looked for: {tmp_path / 'scenarios'})" in (
        result.output.replace("\n", "")
    )


def test_cli_still_takes_scenarios_from_elsewhere(tmp_path: Path) -> None:
    shutil.copy(SCENARIOS / "redelivered-event.yaml", tmp_path / "one.yaml")
    result = CliRunner().invoke(app, ["rules", "test", "--scenarios", str(tmp_path), str(RULES)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines() == ["PASS redelivered-event", "1 passed, 0 failed"]


def test_cli_exits_1_and_shows_the_diff_on_failure(tmp_path: Path) -> None:
    sc = (SCENARIOS / "channel-consent.yaml").read_text().replace(
        "message: shipping_update, channel: email, params: {order: O-1}",
        "message: shipping_update, channel: sms, params: {order: O-1}",
    )
    (tmp_path / "consent.yaml").write_text(sc)
    result = CliRunner().invoke(app, ["rules", "test", "--scenarios", str(tmp_path), str(RULES)])
    assert result.exit_code == 1
    assert "FAIL channel-consent" in result.output
    assert "first-parcel: missing sent: dario/shipping_update/sms" in result.output
    assert "first-parcel: unexpected sent: dario/shipping_update/email" in result.output
    assert result.output.strip().splitlines()[-1] == "0 passed, 1 failed"


def test_cli_shows_a_scenario_error_at_its_place(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "scenario: bad\nsteps:\n  - id: s1\n    at: \"2026-01-01T10:00:00+01:00\"\n"
        "expect:\n  s9: {sent: []}\n"
    )
    result = CliRunner().invoke(app, ["rules", "test", "--scenarios", str(tmp_path), str(RULES)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'bad.yaml'}:6:3: error: expect names an unknown step 's9'" in (
        result.output.replace("\n", "")
    )


def test_load_scenarios_reads_a_directory() -> None:
    names = {s.scenario for s in load_scenarios(SCENARIOS)}
    assert {"channel-consent", "quiet-hours-defer"} <= names


def test_the_pack_loader_skips_a_scenarios_directory(tmp_path: Path) -> None:
    # A scenario file is not a rule file: read as one, it would reject the whole pack.
    for f in RULE_FILES:
        shutil.copy(RULES / f, tmp_path / f)
    (tmp_path / "scenarios").mkdir()
    shutil.copy(SCENARIOS / "cart-follow-up.yaml", tmp_path / "scenarios" / "cart.yaml")
    (tmp_path / "scenarios" / "draft.yaml").write_text("this: [is not, closed\n")
    pack = load_pack(tmp_path)
    assert sorted(Path(f).name for f in pack.files) == sorted(RULE_FILES)
    assert all("scenarios" not in Path(f).parts for f in load_pack(RULES).files)
    # rule files in other subdirectories are still read
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "x.yaml").write_text("this: [is not, closed\n")
    with pytest.raises(RulePackError, match=r"x\.yaml"):
        load_pack(tmp_path)
