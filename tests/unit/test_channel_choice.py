"""Channel choice (choose: all | first | {preferred: attribute}): one coherent message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.models.decision import Decision
from engine.models.event import Envelope
from engine.pipeline import decide
from engine.testing import Harness

_register()
runner = CliRunner()

PACK = """
channels: [push, sms, email]
categories: [service, promotion]
events: {shipped: {}, shipped_once: {}, shipped_mine: {}, sale: {}, sale_all: {}}
attributes: {tz: str, preferred_channel: str, orders: int}
messages:
  both: {category: service, channels: [push, email]}
  one: {category: service, channels: [push, sms, email], choose: first, cooldown: 1d}
  mine: {category: service, channels: [push, sms, email], choose: {preferred: preferred_channel}}
  promo: {category: promotion, channels: [push, email], choose: first}
  urgent: {category: service, channels: [push]}
quiet_hours:
  - {id: night, channels: [push], categories: [promotion], start: "21:00", end: "08:00"}
rules:
  - {id: both, on: shipped, send: both}
  - {id: one, on: shipped_once, send: one}
  - {id: mine, on: shipped_mine, send: mine}
  - {id: urgent, on: sale, send: urgent, priority: 9}
  - {id: promo, on: sale, send: promo}
  - {id: promo_all, on: sale_all, send: {message: promo, choose: all}}
"""


def outcomes(decisions: list[Decision], message: str) -> list[tuple[str, str, list[str]]]:
    return [(d.channel, d.outcome, d.reasons) for d in decisions if d.message == message]


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    yield harness
    harness.close()


def test_all_stays_the_default_every_channel_sends(h: Harness) -> None:
    h.customer("c1", consent={"push": True, "email": True})
    assert outcomes(h.emit("c1", "shipped"), "both") == [
        ("push", "sent", []),
        ("email", "sent", []),
    ]


def test_first_sends_on_one_channel_and_records_the_others(h: Harness) -> None:
    h.customer("c1", consent={"push": True, "sms": True, "email": True})
    assert outcomes(h.emit("c1", "shipped_once"), "one") == [
        ("push", "sent", []),
        ("sms", "suppressed", ["channel_chosen"]),
        ("email", "suppressed", ["channel_chosen"]),
    ]


def test_a_channel_that_fails_keeps_its_own_reason_and_the_next_one_sends(h: Harness) -> None:
    h.customer("c1", consent={"email": True})
    assert outcomes(h.emit("c1", "shipped_once"), "one") == [
        ("push", "suppressed", ["no_consent"]),
        ("sms", "suppressed", ["no_consent"]),
        ("email", "sent", []),
    ]


def test_when_no_channel_passes_each_keeps_its_reasons(h: Harness) -> None:
    h.customer("c1", consent={"push": True})
    h.emit("c1", "shipped_once")
    h.clock.advance("1h")  # the message's cooldown holds on every channel
    assert outcomes(h.emit("c1", "shipped_once"), "one") == [
        ("push", "suppressed", ["cooldown"]),
        ("sms", "suppressed", ["no_consent", "cooldown"]),
        ("email", "suppressed", ["no_consent", "cooldown"]),
    ]


@pytest.mark.parametrize(
    ("preferred", "consent", "want"),
    [
        (  # the customer's choice goes first
            "email",
            {"push": True, "email": True},
            [
                ("email", "sent", []),
                ("push", "suppressed", ["channel_chosen"]),
                ("sms", "suppressed", ["channel_chosen"]),
            ],
        ),
        (  # no consent on it: the others, in the pack's order
            "sms",
            {"push": True, "email": True},
            [
                ("sms", "suppressed", ["no_consent"]),
                ("push", "sent", []),
                ("email", "suppressed", ["channel_chosen"]),
            ],
        ),
        (  # not one of the message's channels: the pack's order
            "fax",
            {"sms": True, "email": True},
            [
                ("push", "suppressed", ["no_consent"]),
                ("sms", "sent", []),
                ("email", "suppressed", ["channel_chosen"]),
            ],
        ),
        (
            None,
            {"push": True},
            [
                ("push", "sent", []),
                ("sms", "suppressed", ["channel_chosen"]),
                ("email", "suppressed", ["channel_chosen"]),
            ],
        ),
    ],
)
def test_the_preferred_channel_then_the_fallback_order(
    h: Harness, preferred: str | None, consent: dict[str, bool], want: list[object]
) -> None:
    attrs = {} if preferred is None else {"preferred_channel": preferred}
    h.customer("c1", attributes=attrs, consent=consent)
    assert outcomes(h.emit("c1", "shipped_mine"), "mine") == want


def test_a_channel_taken_by_a_higher_priority_message_falls_through(h: Harness) -> None:
    h.customer("c1", consent={"push": True, "email": True})
    decisions = h.emit("c1", "sale")
    assert outcomes(decisions, "urgent") == [("push", "sent", [])]
    assert outcomes(decisions, "promo") == [
        ("push", "suppressed", ["lower_priority"]),
        ("email", "sent", []),
    ]


def test_a_rule_can_override_the_messages_choice(h: Harness) -> None:
    h.customer("c1", consent={"push": True, "email": True})
    # the message says first; the rule's send says all
    assert outcomes(h.emit("c1", "sale_all"), "promo") == [
        ("push", "sent", []),
        ("email", "sent", []),
    ]


def test_first_prefers_a_channel_that_sends_now_over_one_held_by_quiet_hours() -> None:
    h = Harness.from_text(PACK, start="2026-01-01T22:00:00+00:00")
    h.customer("c1", attributes={"tz": "UTC"}, consent={"push": True, "email": True})
    decisions = h.emit("c1", "sale")
    promo = [(d.channel, d.outcome, d.reasons, d.deliver_after) for d in decisions
             if d.message == "promo"]
    assert promo == [
        ("push", "suppressed", ["lower_priority"], None),
        ("email", "sent", [], None),
    ]
    h.close()


def test_when_every_channel_waits_for_quiet_hours_the_first_is_deferred() -> None:
    pack = PACK.replace("{id: night, channels: [push], ", "{id: night, ").replace(
        "  - {id: urgent, on: sale, send: urgent, priority: 9}\n", ""
    )
    h = Harness.from_text(pack, start="2026-01-01T22:00:00+00:00")
    h.customer("c1", attributes={"tz": "UTC"}, consent={"push": True, "email": True})
    promo = [(d.channel, d.outcome, d.reasons, d.deliver_after and d.deliver_after.isoformat())
             for d in h.emit("c1", "sale") if d.message == "promo"]
    assert promo == [
        ("push", "sent", [], "2026-01-02T08:00:00+00:00"),
        ("email", "suppressed", ["channel_chosen"], None),
    ]
    h.close()


def test_a_quiet_channel_passed_over_is_channel_chosen_and_the_later_one_sends() -> None:
    pack = PACK.replace("  - {id: urgent, on: sale, send: urgent, priority: 9}\n", "")
    h = Harness.from_text(pack, start="2026-01-01T22:00:00+00:00")
    h.customer("c1", attributes={"tz": "UTC"}, consent={"push": True, "email": True})
    assert outcomes(h.emit("c1", "sale"), "promo") == [
        ("push", "suppressed", ["channel_chosen"]),
        ("email", "sent", []),
    ]
    h.close()


def test_only_the_chosen_channel_counts_for_history_and_caps(h: Harness) -> None:
    h.customer("c1", consent={"push": True, "sms": True, "email": True})
    h.emit("c1", "shipped_once")
    assert [(r.message, r.channel) for r in h.state("c1").history if r.message == "one"] == [
        ("one", "push")
    ]


def test_explain_says_which_channel_carries_it(h: Harness) -> None:
    h.customer("c1", attributes={"preferred_channel": "email"}, consent={"email": True})
    env = Envelope.at_event_time(h.source.event("c1", "shipped_mine", id="e1"))
    result = decide(h.pack, {"c1": h.state("c1")}, [env], trace=True)
    by_channel = {d.channel: d.trace for d in result.decisions if d.message == "mine"}
    assert by_channel["email"][-2:] == ["channel choice preferred email: email carries it", "sent"]
    assert by_channel["push"][-2:] == [
        "channel choice preferred email: email carries it -> channel_chosen",
        "suppressed: channel_chosen",
    ]


@pytest.mark.parametrize(
    ("choose", "col", "message"),
    [
        ("{preferred: favourite}", 79,
         "unknown attribute 'favourite' (declare it under attributes:)"),
        ("{preferred: orders}", 79, "attribute 'orders' is declared int; a channel name is a str"),
    ],
)
def test_choice_errors_point_into_the_file(
    tmp_path: Path, choose: str, col: int, message: str
) -> None:
    body = PACK.replace("choose: {preferred: preferred_channel}", f"choose: {choose}")
    (tmp_path / "pack.yaml").write_text(body, encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first == f"{tmp_path / 'pack.yaml'}:9:{col}: error [messages.mine]: {message}"
