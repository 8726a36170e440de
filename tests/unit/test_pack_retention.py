"""History retention follows the pack: a 60-day cooldown lasts 60 days, not 35."""

from __future__ import annotations

import pytest

from engine.errors import RulePackError
from engine.pack.loader import load_pack_text
from engine.testing import Harness

DAY = 86400.0

PACK = """\
channels: [email]
events:
  nps: {data: {score: int}}
attributes: {tz: str}
messages:
  referral: {category: promotion, channels: [email], cooldown: 60d}
rules:
  - {id: referral, on: nps, when: event.data.score >= 9, send: referral}
"""


def test_a_long_cooldown_holds_past_the_default_retention() -> None:
    h = Harness.from_text(PACK, start="2026-03-01T10:00:00+00:00")
    h.customer("c1", attributes={"tz": "UTC"}, consent={"email": True})
    (first,) = h.emit("c1", "nps", {"score": 10})
    assert first.outcome == "sent"
    h.clock.advance("40d")
    (again,) = h.emit("c1", "nps", {"score": 10})
    assert again.reasons == ["cooldown"]  # before: history pruned at 35 days, sent again
    h.clock.advance("21d")
    (later,) = h.emit("c1", "nps", {"score": 10})
    assert later.outcome == "sent"
    h.close()


@pytest.mark.parametrize(
    ("extra", "days"),
    [
        ("", 60),
        ("frequency_caps: [{id: quarterly, max: 3, window: 90d}]\n", 90),
        ("policies: {p: {when: 'category_sent_count(\"promotion\", \"100d\") > 3',"
         " suppress: {}}}\n", 100),
        ("constants: {long: 120d}\npolicies: {p: {when: 'sent_count(\"referral\", const.long)"
         " > 3', suppress: {}}}\n", 120),
        ("settings: {history_retention: 200d}\n", 200),
    ],
)
def test_retention_is_the_longest_need(extra: str, days: int) -> None:
    assert load_pack_text(PACK + extra).settings.history_retention == days * DAY


def test_default_retention_when_nothing_needs_longer() -> None:
    pack = load_pack_text(PACK.replace("cooldown: 60d", "cooldown: 3d"))
    assert pack.settings.history_retention == 35 * DAY


def test_a_shorter_setting_is_an_error_naming_what_needs_longer() -> None:
    text = PACK + "settings:\n  history_retention: 35d\n"
    with pytest.raises(RulePackError) as info:
        load_pack_text(text, "pack.yaml")
    (issue,) = info.value.issues
    assert issue.render().startswith(
        "pack.yaml:10:22: error [settings.history_retention]: history_retention 35d is shorter "
        "than the pack needs: message 'referral' has a 60d cooldown (pack.yaml:6:64); set at "
        "least 60d, or leave history_retention out (it follows the pack)"
    ), issue.render()


def test_a_lookback_in_an_expression_is_located() -> None:
    text = (PACK + "settings: {history_retention: 61d}\n"
            "policies:\n  p:\n    when: 'true and sent_count(\"referral\", \"90d\") > 3'\n"
            "    suppress: {}\n")
    with pytest.raises(RulePackError) as info:
        load_pack_text(text, "pack.yaml")
    assert "sent_count(...) looks back 90d (pack.yaml:12:21)" in info.value.issues[0].message
