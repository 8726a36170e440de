"""Scenario files: errors at file:line:col, customers' starting states, and the `--state`
files of `tact simulate` and `tact replay`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.errors import ScenarioError
from engine.models.seed import CustomerSeed, SeedError
from engine.models.state import SentRecord
from engine.pack.model import RulePack
from engine.scenarios import load_scenario, load_state_file
from tests.conftest import RULES

_register()
runner = CliRunner()
T0 = "2026-06-01T10:00:00+02:00"
START = datetime.fromisoformat(T0).timestamp()
HEAD = f'scenario: x\nsteps:\n  - id: s1\n    at: "{T0}"\n'


def _write(tmp_path: Path, text: str, name: str = "sc.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, where, message", [
    (HEAD + "    colour: red\n", "5:5", "unknown key 'colour' in steps.0"),
    ('scenario: x\nsteps:\n  - at: "2026-06-01T10:00:00"\n', "3:5", "missing required key 'id'"),
    ('scenario: x\nsteps:\n  - id: s1\n    at: "2026-06-01T10:00:00"\n', "4:9",
     "steps.0.at: Input should have timezone info"),
    (HEAD + "    event: {id: e1, customer: c1, type: App-Open}\n", "5:41",
     "step s1: event type: String should match pattern"),
    (HEAD + "expect:\n  s2: {sent: []}\n", "6:3", "expect names an unknown step 's2'"),
    (HEAD + "  - id: s1\n    at: \"2026-06-02T10:00:00+02:00\"\n", "5:9",
     "step id 's1' is used twice"),
    ("scenario: x\ncustomers:\n  c1: {contexts: {in_transit: tomorrow}}\n" + HEAD[12:], "3:31",
     "customers.c1.contexts.in_transit: 'tomorrow' is neither an ISO 8601 time"),
    ("scenario: x\ncustomers:\n  c1: {counters: {purchases: many}}\n" + HEAD[12:], "3:30",
     "customers.c1.counters.purchases: expected a number, got 'many'"),
    ("scenario: x\ncustomers:\n  c1: &a {consent: {push: true}}\n" + HEAD[12:], "3:7",
     "YAML anchors and aliases (&name, *name, <<: *name) are not allowed in scenario files"),
    ("scenario: !!python/name:os.system x\n" + HEAD[12:], "1:11",
     "YAML tags are not allowed in scenario files"),
    ("scenario: x\nsteps: [{id: s1}\nexpect: {}\n", "3:1", "YAML syntax error"),
])
def test_errors_in_scenario_files_say_file_line_col(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    head, line, caret = str(info.value).splitlines()
    assert head.startswith(f"{path}:{where}: error: {message}"), head
    col = int(where.split(":")[1])
    assert caret == "    " + " " * (col - 1) + "^"
    assert line == "    " + text.splitlines()[int(where.split(":")[0]) - 1]


def test_starting_state_from_a_scenario(pack: RulePack, tmp_path: Path) -> None:
    path = _write(tmp_path, f"""scenario: x
customers:
  c1:
    consent: {{push: true}}
    counters: {{purchases: 4}}
    timestamps: {{last_purchase: "2026-05-20T09:00:00+02:00"}}
    windows: {{payment_failures: ["-5m", "-1m"]}}
    contexts: {{open_complaint: 2d, in_transit: "{T0}"}}
    history:
      - {{message: travel_tips, channel: push, at: "-1h"}}
      - {{message: flash_sale, channel: push, at: "-3h"}}
steps:
  - id: s1
    at: "{T0}"
""")
    [state] = load_scenario(path).states(pack)
    assert state.customer == "c1"
    assert state.consent == {"push": True}
    assert state.counters == {"purchases": 4.0}
    assert state.timestamps == {
        "last_purchase": datetime.fromisoformat("2026-05-20T09:00:00+02:00").timestamp()
    }
    assert state.windows == {"payment_failures": [START - 300, START - 60]}
    assert state.contexts == {"open_complaint": START + 2 * 86400, "in_transit": START}
    assert state.history == [  # oldest first, categories from the pack
        SentRecord("flash_sale", "push", "promotion", START - 3 * 3600),
        SentRecord("travel_tips", "push", "service", START - 3600),
    ]


@pytest.mark.parametrize("customer, where, message", [
    ("{contexts: {in_transt: 2h}}", "3:19", "customer c1: contexts: no context 'in_transt'"),
    ("{windows: {failures: []}}", "3:18", "customer c1: windows: no window 'failures'"),
    ("{counters: {visits: 1}}", "3:19", "customer c1: counters: no counter 'visits'"),
    ("{timestamps: {born: -1d}}", "3:21", "customer c1: timestamps: no timestamp 'born'"),
    ("{history: [{message: nope, channel: push, at: -1h}]}", "3:28",
     "customer c1: history: message 'nope' is not in the pack"),
    ("{history: [{message: travel_tips, channel: fax, at: -1h}]}", "3:50",
     "customer c1: history: channel 'fax' is not in the pack"),
])
def test_starting_state_names_the_pack_does_not_know_are_errors(
    pack: RulePack, tmp_path: Path, customer: str, where: str, message: str
) -> None:
    path = _write(tmp_path, f"scenario: x\ncustomers:\n  c1: {customer}\n" + HEAD[12:])
    with pytest.raises(ScenarioError) as info:
        load_scenario(path).states(pack)
    assert str(info.value).startswith(f"{path}:{where}: error: {message}"), str(info.value)


def test_a_relative_time_needs_a_start() -> None:
    seed = CustomerSeed.model_validate({"contexts": {"in_transit": "2h"}})
    with pytest.raises(SeedError, match="needs a start"):
        seed.to_state("c1")
    assert seed.to_state("c1", start=100.0).contexts == {"in_transit": 7300.0}
    history = CustomerSeed.model_validate(
        {"history": [{"message": "m", "channel": "push", "at": T0, "category": "promotion"}]}
    )
    assert history.to_state("c1").history == [SentRecord("m", "push", "promotion", START)]


# -- tact simulate / replay --state ----------------------------------------------------------
def _events(tmp_path: Path) -> Path:
    events = [
        {"id": "e1", "customer": "giulia", "type": "price_dropped", "at": T0,
         "data": {"sku": "B1", "new_price": 5}},
        {"id": "e2", "customer": "giulia", "type": "order_shipped",
         "at": "2026-06-01T10:05:00+02:00", "data": {"order": "O-1", "carrier": "UPS"}},
    ]
    p = tmp_path / "events.jsonl"
    p.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    return p


CAPPED = """giulia:
  attributes: {segment: regular, tz: Europe/Rome}
  consent: {push: true}
  history:
    - {message: flash_sale, channel: push, at: "-3h"}
    - {message: price_drop, channel: push, at: "2026-06-01T09:00:00+02:00"}
"""


def _decisions(output: str) -> list[tuple[str, str, str, list[str]]]:
    rows = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [(d["event_id"], d["message"], d["outcome"], d["reasons"]) for d in rows]


def test_simulate_starts_from_the_state_file(tmp_path: Path) -> None:
    events = _events(tmp_path)
    bare = runner.invoke(app, ["simulate", "--events", str(events), "--rules", str(RULES)])
    assert bare.exit_code == 0, bare.output
    assert _decisions(bare.stdout) == [  # nobody consented to anything
        ("e1", "price_drop", "suppressed", ["no_consent"]),
        ("e2", "shipping_update", "suppressed", ["no_consent"]),
        ("e2", "shipping_update", "suppressed", ["no_consent"]),
    ]
    state = _write(tmp_path, CAPPED, "state.yaml")
    seeded = runner.invoke(app, ["simulate", "--events", str(events), "--rules", str(RULES),
                                 "--state", str(state)])
    assert seeded.exit_code == 0, seeded.output
    assert _decisions(seeded.stdout) == [  # already two promotional pushes today
        ("e1", "price_drop", "suppressed", ["frequency_cap"]),
        ("e2", "shipping_update", "sent", []),
        ("e2", "shipping_update", "suppressed", ["no_consent"]),
    ]


def test_state_file_in_json(pack: RulePack, tmp_path: Path) -> None:
    path = _write(tmp_path, orjson.dumps(
        {"c1": {"consent": {"email": True}, "contexts": {"detractor": "30d"}}}).decode(),
        "state.json")
    [state] = load_state_file(path).states(pack, START)
    assert state.consent == {"email": True}
    assert state.contexts == {"detractor": START + 30 * 86400}


def test_replay_with_a_state_file_shows_the_cap_change(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for f in RULES.glob("*.yaml"):
        text = f.read_text().replace("[promotion], max: 2", "[promotion], max: 3")
        (other / f.name).write_text(text)
    state = _write(tmp_path, CAPPED, "state.yaml")
    args = ["replay", "--events", str(_events(tmp_path)), "--rules", str(RULES),
            "--compare", str(other)]
    without = runner.invoke(app, args)
    assert without.exit_code == 0, without.output
    assert "0 differences" in without.output
    result = runner.invoke(app, [*args, "--state", str(state)])
    assert result.exit_code == 0, result.output
    assert "changed  e1 giulia price_drop_alert price_drop/push: outcome suppressed -> sent" in (
        result.output
    )


@pytest.mark.parametrize("command", ["simulate", "replay"])
def test_a_bad_state_file_is_refused_with_its_place(tmp_path: Path, command: str) -> None:
    events = _events(tmp_path)

    def run(state: Path) -> str:
        args = [command, "--events", str(events), "--rules", str(RULES), "--state", str(state)]
        if command == "replay":
            args += ["--compare", str(RULES)]
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        return result.output.replace("\n", "")

    unknown = _write(tmp_path, "giulia:\n  consent: {push: true}\n  contexts: {on_holiday: 2d}\n",
                     "state.yaml")
    assert f"{unknown}:3:14: error: customer giulia: contexts: no context 'on_holiday'" in (
        run(unknown)
    )
    broken = _write(tmp_path, "giulia:\n  consent: {push: maybe}\n", "broken.yaml")
    assert f"{broken}:2:19: error: giulia.consent.push: Input should be a valid boolean" in (
        run(broken)
    )
