"""Consent requirements: internal and transactional sends that need no customer consent."""

from __future__ import annotations

import pytest

from engine.errors import RulePackError
from engine.pack.loader import load_pack_text
from engine.testing import Harness

PACK = """\
channels: [push, email, webhook]
categories: [service, promotion, internal]
consent:
  channels: {webhook: none, email: required}
  categories: {service: none}
events:
  ticket_opened: {data: {topic: str}}
attributes: {tz: str}
messages:
  escalation: {category: internal, channels: [webhook]}
  ack: {category: service, channels: [push, email]}
  promo: {category: promotion, channels: [push, webhook]}
  override: {category: promotion, channels: [push], consent: none}
  strict: {category: service, channels: [push], consent: required}
rules:
  - {id: escalate, on: ticket_opened, send: escalation}
  - {id: ack, on: ticket_opened, send: ack}
  - {id: promo, on: ticket_opened, send: promo}
  - {id: override, on: ticket_opened, send: override, priority: -1}
  - {id: strict, on: ticket_opened, send: strict, priority: -2}
"""


def test_exemptions_are_resolved_once_per_message_and_channel() -> None:
    msgs = load_pack_text(PACK).messages
    assert msgs["escalation"].consent_free == {"webhook"}  # the channel says none
    assert msgs["ack"].consent_free == {"push"}  # category none; email's "required" wins
    assert msgs["promo"].consent_free == {"webhook"}
    assert msgs["override"].consent_free == {"push"}  # the message's own setting decides
    assert msgs["strict"].consent_free == frozenset()


def test_a_send_that_needs_no_consent_is_not_suppressed() -> None:
    h = Harness.from_text(PACK)
    h.customer("c1", attributes={"tz": "UTC"}, consent={})  # no consent on any channel
    decided = {(d.message, d.channel): d for d in h.emit("c1", "ticket_opened", {"topic": "x"})}
    assert decided[("escalation", "webhook")].outcome == "sent"
    assert decided[("ack", "push")].outcome == "sent"
    assert decided[("ack", "email")].reasons == ["no_consent"]
    assert decided[("promo", "push")].reasons == ["no_consent"]
    assert decided[("override", "push")].reasons == ["lower_priority"]  # ack took push first
    h.close()


def test_explain_says_why_consent_was_not_checked() -> None:
    h = Harness.from_text(PACK, trace=True)
    h.customer("c1", attributes={"tz": "UTC"}, consent={})
    (esc,) = [d for d in h.emit("c1", "ticket_opened", {"topic": "x"})
              if d.message == "escalation"]
    assert "consent webhook: not required for escalation (pack consent rules)" in esc.trace
    h.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("consent: {channels: {webhok: none}}",
         "2:22: error [consent.channels]: unknown channel 'webhok'; did you mean 'webhook'?"),
        ("consent: {categories: {internl: none}}",
         "2:24: error [consent.categories]: unknown category 'internl'; did you mean 'internal'?"),
        ("consent: {channels: {webhook: optional}}",
         "consent.channels.webhook: Input should be 'required' or 'none'"),
    ],
)
def test_consent_errors(section: str, message: str) -> None:
    text = "channels: [push, webhook]\n" + section + "\ncategories: [internal]\n"
    with pytest.raises(RulePackError) as info:
        load_pack_text(text + "messages: {m: {category: internal, channels: [webhook]}}\n")
    rendered = "\n".join(i.render() for i in info.value.issues)
    assert message in rendered, rendered
