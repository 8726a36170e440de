"""Errors an author can act on: "did you mean", typos in follow-ups, and how to fix types."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.pack.loader import load_pack
from tests.conftest import REPO, RULES

_register()
runner = CliRunner()

BASE = """\
channels: [push]
categories: [service]
events:
  app_open: {}
  purchase: {data: {order: str, value: number}}
  trip_completed: {}
attributes: {segment: str, points: int}
contexts:
  in_transit: {ttl: 12h, start: [app_open], end: [trip_completed]}
messages:
  travel_tips: {category: service, channels: [push]}
rules:
"""


def first_error(tmp_path: Path, rules: str, base: str = BASE) -> str:
    """The first line of `tact rules check` for a pack of BASE plus ``rules``."""
    (tmp_path / "pack.yaml").write_text(base + rules, encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 1, result.output
    return result.output.splitlines()[0]


def where(tmp_path: Path, line: int, col: int) -> str:
    return f"{tmp_path / 'pack.yaml'}:{line}:{col}: error"


@pytest.mark.parametrize(
    ("rule", "col", "message"),
    [
        (
            "  - {id: r, on: app_open, when: customer.attributes.segmnt == 'x', send: travel_tips}",
            53,
            "unknown attribute 'segmnt'; did you mean 'segment'?",
        ),
        (
            "  - {id: r, on: app_open, when: context.in_transt, send: travel_tips}",
            41,
            "unknown context 'in_transt'; did you mean 'in_transit'?",
        ),
        (
            "  - {id: r, on: purchase, when: event.data.vaule > 3, send: travel_tips}",
            44,
            "unknown field event.data.vaule for the trigger; did you mean 'value'? "
            "(known: order, value)",
        ),
        (
            "  - {id: r, on: app_open, send: travel_tip}",
            33,
            "unknown message 'travel_tip'; did you mean 'travel_tips'?",
        ),
    ],
)
def test_unknown_names_suggest_the_declared_one(
    tmp_path: Path, rule: str, col: int, message: str
) -> None:
    line = first_error(tmp_path, rule + "\n")
    assert line == f"{where(tmp_path, 13, col)} [r]: {message}"


def test_a_name_with_nothing_close_still_says_where_to_declare_it(tmp_path: Path) -> None:
    line = first_error(
        tmp_path, "  - {id: r, on: app_open, when: context.zzz, send: travel_tips}\n"
    )
    assert line.endswith("unknown context 'zzz' (declare it under contexts:)")


def test_a_misspelt_yaml_key_suggests_the_right_one(tmp_path: Path) -> None:
    rule = "  - id: r\n    on: app_open\n    send: travel_tips\n    prority: 80\n"
    line = first_error(tmp_path, rule)
    assert line == (
        f"{where(tmp_path, 16, 5)} [r]: unknown key 'prority' in rules.0; did you mean 'priority'?"
    )


def test_a_misspelt_key_inside_a_union_suggests_from_that_member(tmp_path: Path) -> None:
    (tmp_path / "pack.yaml").write_text(
        BASE + "  - id: r\n    on: app_open\n    send: {mesage: travel_tips}\n"
    )
    out = runner.invoke(app, ["rules", "check", str(tmp_path)]).output
    assert "unknown key 'mesage' in rules.0.send; did you mean 'message'?" in out
    assert "Input should be a valid string" not in out  # the other form of send: is noise


def test_an_unknown_section_suggests_the_right_one(tmp_path: Path) -> None:
    line = first_error(tmp_path, "", base=BASE.replace("rules:\n", "rulez:\n  - {id: r}\n"))
    assert line == f"{where(tmp_path, 12, 1)}: unknown section 'rulez'; did you mean 'rules'?"


def test_an_unknown_event_in_unless_is_an_error(tmp_path: Path) -> None:
    rule = (
        "  - id: cart_reminder\n    on: app_open\n    after: 30m\n"
        "    unless: [trip_completed, purchse]\n    send: travel_tips\n"
    )
    line = first_error(tmp_path, rule)
    assert line == (
        f"{where(tmp_path, 16, 30)} [cart_reminder]: 'unless' names an undeclared event type "
        "'purchse'; did you mean 'purchase'?"
    )


@pytest.mark.parametrize(
    ("end", "col"),
    [
        ("[trip_complete]", 51),
        ("[{on: trip_complete}]", 56),
        ("[{on: [app_open, trip_complete]}]", 67),
    ],
)
def test_an_unknown_event_in_a_context_end_is_an_error(tmp_path: Path, end: str, col: int) -> None:
    base = BASE.replace("end: [trip_completed]", f"end: {end}")
    line = first_error(tmp_path, "  - {id: r, on: app_open, send: travel_tips}\n", base=base)
    assert line == (
        f"{where(tmp_path, 9, col)} [contexts.in_transit]: 'end' names an undeclared event type "
        "'trip_complete'; did you mean 'trip_completed'?"
    )


def test_the_example_and_load_test_packs_still_load() -> None:
    for pack in (RULES, REPO / "load_tests" / "packs" / "loadtest"):
        loaded = load_pack(pack)
        assert loaded.rules and not [f for f in loaded.findings if f.code == "unknown-event"]


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            "event.data.value > '10'",
            "cannot order number against str: remove the quotes around '10' to compare numbers",
        ),
        (
            "customer.attributes.points == '3'",
            "comparing int with str is always false: remove the quotes around '3' to compare "
            "numbers",
        ),
        (
            "customer.attributes.segment == 5",
            "comparing str with int is always false: customer.attributes.segment is a str, so "
            "quote the number ('5'), or declare segment as a number under attributes:",
        ),
        (
            "event.data.order >= 100",
            "cannot order str against int: event.data.order is a str, so quote the number "
            "('100'), or declare order as a number in the event type's data:",
        ),
        (
            "customer.attributes.points in ['1', '2']",
            "a int is never in a list of str: remove the quotes around the numbers in the list",
        ),
        (
            "customer.attributes.points == 'gold'",
            "comparing int with str is always false: customer.attributes.points is a number; "
            "compare it with a number, or declare it as a str under attributes:",
        ),
    ],
)
def test_type_errors_say_how_to_fix_them(tmp_path: Path, when: str, message: str) -> None:
    rule = f'  - id: r\n    on: purchase\n    when: "{when}"\n    send: travel_tips\n'
    line = first_error(tmp_path, rule)
    assert line == f"{where(tmp_path, 15, 12)} [r]: {message}"
