"""Calendar time: date()/datetime() literals, weekday names and campaign windows (active:)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.dsl.compiler import compile_expr
from engine.dsl.functions import EvalContext
from engine.dsl.types import Scope
from engine.errors import ExpressionError, RulePackError
from engine.models import CustomerState
from engine.models.event import Envelope, Event
from engine.pack.loader import load_pack_text
from engine.pipeline import decide
from engine.testing import Harness

_register()
runner = CliRunner()
SCOPE = Scope(event_data=None, attributes={"tz": "str"})


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def run(text: str, at: float, tz: str = "UTC") -> object:
    fn = compile_expr(text, SCOPE).fn
    ctx = EvalContext(CustomerState("c", attributes={"tz": tz}))
    return fn({"at": at}, {}, {}, frozenset(), at, ctx)


# -- date() and datetime() ------------------------------------------------------------


def test_a_date_is_midnight_utc_unless_a_zone_is_named() -> None:
    assert compile_expr('date("2026-11-27")', SCOPE).type == "time"
    assert run('date("2026-11-27")', 0) == ts("2026-11-27T00:00:00+00:00")
    assert run('date("2026-11-27", "Europe/Rome")', 0) == ts("2026-11-27T00:00:00+01:00")
    assert run('datetime("2026-11-27T09:30+01:00")', 0) == ts("2026-11-27T08:30:00+00:00")
    assert run('datetime("2026-07-01T09:00", "Europe/Rome")', 0) == ts("2026-07-01T09:00+02:00")


@pytest.mark.parametrize(
    ("text", "at", "want"),
    [
        ('event.at >= date("2026-11-27")', "2026-11-27T00:00:00+00:00", True),
        ('event.at >= date("2026-11-27")', "2026-11-26T23:59:59+00:00", False),
        ('event.at >= date("2026-11-27", "Europe/Rome")', "2026-11-26T23:30:00+00:00", True),
        ('now < datetime("2026-11-27T09:00Z")', "2026-11-27T08:59:00+00:00", True),
        ('now < datetime("2026-11-27T09:00Z")', "2026-11-27T09:00:00+00:00", False),
        ('hours_since(date("2026-11-27")) == 12', "2026-11-27T12:00:00+00:00", True),
    ],
)
def test_dates_compare_with_event_time_and_now(text: str, at: str, want: bool) -> None:
    assert run(text, ts(at)) is want


def test_the_call_is_folded_into_a_constant_at_load() -> None:
    compiled = compile_expr('event.at >= date("2026-11-27")', SCOPE)
    assert "F_date" not in compiled.fn.__globals__  # nothing parses a date per event


@pytest.mark.parametrize(
    ("text", "col", "message"),
    [
        ('event.at >= date("2026-02-30")', 17, "date(): invalid date '2026-02-30'"),
        ('event.at >= date("27/11/2026")', 17, "expected a date written YYYY-MM-DD"),
        (
            'event.at >= date("2026-11-27", "Europe/Roma")',
            31,
            "unknown time zone 'Europe/Roma'; did you mean 'Europe/Rome'?",
        ),
        ('event.at >= datetime("2026-11-27T09:00")', 12, "has no UTC offset"),
        ("event.at >= date(event.type)", 17, "argument 1 of date() must be a constant"),
        ('event.at >= "2026-11-27"', 0, "write a time as date('2026-11-27')"),
    ],
)
def test_bad_dates_are_caught_at_load_with_a_position(text: str, col: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expr(text, SCOPE)
    assert message in info.value.message
    assert info.value.column == col


# -- weekday names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "tz", "want"),
    [
        ("2026-11-28T10:00:00+00:00", "UTC", True),  # a Saturday
        ("2026-11-27T10:00:00+00:00", "UTC", False),  # a Friday
        ("2026-11-27T23:30:00+00:00", "Europe/Rome", True),  # already Saturday in Rome
    ],
)
def test_weekday_names_are_the_numbers_local_weekday_gives(at: str, tz: str, want: bool) -> None:
    assert run("local_weekday() == saturday", ts(at), tz) is want
    assert run("local_weekday() in [saturday, sunday]", ts(at), tz) is want
    assert run("monday == 0 and sunday == 6", 0) is True


@pytest.mark.parametrize(
    "text", ['local_weekday() == "saturday"', 'local_weekday() in ["Saturday", "sunday"]']
)
def test_a_weekday_written_as_text_says_what_to_write(text: str) -> None:
    with pytest.raises(ExpressionError, match="weekdays are numbers, write saturday"):
        compile_expr(text, SCOPE)


# -- campaign windows ------------------------------------------------------------------

PACK = """
channels: [push]
events: {app_open: {}}
attributes: {tz: str}
messages:
  black_friday: {category: promotion, channels: [push]}
rules:
  - id: black_friday
    on: app_open
    send: black_friday
    active: ACTIVE
"""


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(
        PACK.replace("ACTIVE", "{from: 2026-11-27, until: 2026-11-29, tz: Europe/Rome}")
    )
    harness.customer("c1", consent={"push": True})
    yield harness
    harness.close()


@pytest.mark.parametrize(
    ("at", "fires"),
    [
        ("2026-11-26T22:59:59+00:00", False),  # 23:59:59 in Rome, the day before
        ("2026-11-26T23:00:00+00:00", True),  # midnight in Rome: the campaign starts
        ("2026-11-29T22:59:59+00:00", True),  # the last second of the 29th in Rome
        ("2026-11-29T23:00:00+00:00", False),  # 'until' a date includes that whole day
    ],
)
def test_a_rule_fires_only_inside_its_window(h: Harness, at: str, fires: bool) -> None:
    h.clock.set(at)
    decisions = h.emit("c1", "app_open")
    # outside the window there is no decision at all, not a suppression
    assert [(d.message, d.outcome) for d in decisions] == ([("black_friday", "sent")] * fires)


def test_the_window_is_checked_in_the_rules_compiled_check() -> None:
    pack = load_pack_text(PACK.replace("ACTIVE", '{until: "2026-11-30T12:00+01:00"}'))
    (rule,) = pack.rules
    assert rule.window is not None and rule.check is not None
    assert rule.window.start < ts("2000-01-01T00:00:00+00:00")  # open start
    before, after = ts("2026-11-30T10:59:59+00:00"), ts("2026-11-30T11:00:00+00:00")
    assert rule.check({}, {}, {}, frozenset(), before, None) is True
    assert rule.check({}, {}, {}, frozenset(), after, None) is False


def test_explain_says_the_campaign_was_not_active() -> None:
    pack = load_pack_text(PACK.replace("ACTIVE", "{from: 2026-11-27, tz: Europe/Rome}"))
    event = Event(id="e1", customer="c1", type="app_open",
                  at=datetime.fromisoformat("2026-11-01T10:00:00+00:00"), data={})
    states = {"c1": CustomerState("c1", consent={"push": True})}
    result = decide(pack, states, [Envelope.at_event_time(event)], trace=True)
    assert result.decisions == []
    assert result.explain["e1"] == [
        "rule black_friday: campaign not active at the event's time "
        "(from 2026-11-27T00:00+01:00) -> not considered"
    ]


@pytest.mark.parametrize(
    ("active", "col", "message"),
    [
        (
            "{from: 2026-11-27, until: 2026-11-26}",
            39,
            "'until' (2026-11-26) is before 'from' (2026-11-27): the campaign would never run",
        ),
        (
            "{from: 2026-11-27, tz: Europe/Roma}",
            36,
            "unknown time zone 'Europe/Roma'; did you mean 'Europe/Rome'?",
        ),
        (
            "{from: 2026-11-27, tz: Mars/Olympus}",
            36,
            "unknown time zone 'Mars/Olympus' (use an IANA name)",
        ),
        (
            '{from: "2026-11-27T09:00 +01:00"}',
            20,
            "expected a date and time such as '2026-11-27T09:00+01:00', "
            "got '2026-11-27T09:00 +01:00'",
        ),
        ("{}", 13, "a campaign window needs 'from', 'until' or both"),
    ],
)
def test_window_errors_point_into_the_file(
    tmp_path: Path, active: str, col: int, message: str
) -> None:
    (tmp_path / "pack.yaml").write_text(PACK.replace("ACTIVE", active), encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first == f"{tmp_path / 'pack.yaml'}:11:{col}: error [black_friday]: {message}"
    assert result.output.splitlines()[2].index("^") == col - 1 + 4  # under the value


def test_a_window_given_as_text_or_yaml_timestamp_means_the_same() -> None:
    texts = [
        '{from: "2026-11-27", until: "2026-11-30T23:59", tz: Europe/Rome}',
        "{from: 2026-11-27, until: 2026-11-30T23:59, tz: Europe/Rome}",
        "{from: 2026-11-27 00:00:00, until: 2026-11-30T22:59:00Z, tz: Europe/Rome}",
    ]
    windows = {load_pack_text(PACK.replace("ACTIVE", t)).rules[0].window for t in texts}
    assert len(windows) == 1
    (window,) = windows
    assert window is not None
    assert window.start == ts("2026-11-27T00:00+01:00")
    assert window.end == ts("2026-11-30T23:59+01:00")


def test_a_bad_window_rejects_the_pack() -> None:
    with pytest.raises(RulePackError, match="before 'from'"):
        load_pack_text(PACK.replace("ACTIVE", "{from: 2026-11-27, until: 2026-11-27T00:00Z}"))
