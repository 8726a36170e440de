"""A failing `tact rules test` line says what the engine did next to what was expected."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from engine.cli import _register, app
from tests.conftest import RULES, SCENARIOS

_register()
runner = CliRunner()


def _failing(tmp_path: Path, name: str, old: str, new: str) -> list[str]:
    text = (SCENARIOS / name).read_text()
    assert old in text
    (tmp_path / name).write_text(text.replace(old, new))
    result = runner.invoke(app, ["rules", "test", "--scenarios", str(tmp_path), str(RULES)])
    assert result.exit_code == 1, result.output
    return [line.strip() for line in result.output.splitlines()]


def test_a_missing_send_shows_the_suppression_and_its_reasons(tmp_path: Path) -> None:
    lines = _failing(
        tmp_path,
        "complaint-holds-promotions.yaml",
        "    sent: []\n    suppressed: [{customer: bruno, message: browse_offer, "
        "reason: open_complaint}]",
        "    sent: [{customer: bruno, message: browse_offer, channel: email}]",
    )
    assert (
        "browses-shoes: missing sent: bruno/browse_offer/email; got suppressed "
        "browse_offer/email (open_complaint) by rule browse_offer_on_view" in lines
    )


def test_a_wrong_reason_shows_the_actual_ones(tmp_path: Path) -> None:
    lines = _failing(
        tmp_path,
        "complaint-holds-promotions.yaml",
        "reason: open_complaint}",
        "reason: frequency_cap}",
    )
    assert (
        "browses-shoes: suppressed bruno/browse_offer: reasons [open_complaint], expected "
        "frequency_cap; got suppressed browse_offer/email (open_complaint) by rule "
        "browse_offer_on_view" in lines
    )


def test_a_missing_suppression_shows_what_was_sent_instead(tmp_path: Path) -> None:
    lines = _failing(
        tmp_path,
        "channel-consent.yaml",
        "suppressed: [{customer: dario, message: shipping_update, channel: push, "
        "reason: no_consent}]",
        "suppressed: [{customer: dario, message: shipping_update, channel: email, "
        "reason: no_consent}]",
    )
    assert (
        "first-parcel: missing suppressed: dario/shipping_update (no_consent); got sent "
        "shipping_update/email by rule shipping_update; suppressed shipping_update/push "
        "(no_consent) by rule shipping_update" in lines
    )


def test_no_decision_at_all_is_said(tmp_path: Path) -> None:
    lines = _failing(
        tmp_path,
        "channel-consent.yaml",
        "{customer: dario, message: shipping_update, channel: email, params: {order: O-1}}",
        "{customer: dario, message: ticket_ack, channel: email}",
    )
    assert (
        "first-parcel: missing sent: dario/ticket_ack/email; got no decision for dario/ticket_ack"
        in lines
    )
