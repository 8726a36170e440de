"""Pack constants: defined once, used in expressions, params and every duration field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.dsl.compiler import compile_expr
from engine.dsl.types import Scope
from engine.errors import ExpressionError, RulePackError
from engine.pack.loader import load_pack, load_pack_text
from engine.testing import Harness

_register()
runner = CliRunner()

PACK = """\
constants:
  sla: 4h
  week: 1w
  vip_threshold: 500
  ratio: 0.5
  brand: Acme
  loud: true
settings: {dedupe_window: week}
channels: [push, email]
events:
  ticket_opened: {data: {ticket: str}}
  ticket_closed: {data: {ticket: str}}
  purchase: {data: {value: number}}
attributes: {tz: str, spend: number}
updates:
  - {on: purchase, count_in_window: {purchases: week}}
contexts:
  open_ticket: {ttl: sla, start: [ticket_opened], end: [ticket_closed]}
messages:
  chase:
    category: service
    channels: [email]
    cooldown: const.sla
    params: {ticket: event.data.ticket, hours: const.sla / 3600, brand: const.brand}
  big_spender: {category: promotion, channels: [push], params: {loud: const.loud}}
frequency_caps:
  - {id: weekly, categories: [promotion], max: 1, window: week}
rules:
  - {id: chase_ticket, on: ticket_opened, after: sla, unless: [ticket_closed], send: chase,
     relevance: sla}
  - id: big_spender
    on: purchase
    when:
      - event.data.value * const.ratio >= const.vip_threshold
      - sent_count("big_spender", const.week) == 0
    send: big_spender
"""


def test_constants_fill_every_duration_field() -> None:
    pack = load_pack_text(PACK)
    rule = pack.rules_by_id["chase_ticket"]
    assert rule.delay == rule.relevance == 4 * 3600
    assert pack.messages["chase"].cooldown == 4 * 3600
    assert pack.contexts["open_ticket"] == 4 * 3600
    assert pack.windows["purchases"] == 7 * 86400
    assert pack.caps[0].window == 7 * 86400
    assert pack.settings.dedupe_window == 7 * 86400
    assert pack.constants == {"sla": 14400.0, "week": 604800.0, "vip_threshold": 500,
                              "ratio": 0.5, "brand": "Acme", "loud": True}


def test_constants_in_conditions_and_params() -> None:
    h = Harness.from_text(PACK)
    h.customer("c1", attributes={"tz": "UTC"}, consent={"push": True, "email": True})
    assert h.emit("c1", "purchase", {"value": 999}) == []  # 999 * 0.5 < 500
    (d,) = h.emit("c1", "purchase", {"value": 1000})
    assert (d.message, d.outcome, d.params) == ("big_spender", "sent", {"loud": True})
    h.emit("c1", "ticket_opened", {"ticket": "T-1"})
    assert h.advance("3h59m") == []
    (d,) = h.advance("1m")
    assert d.params == {"ticket": "T-1", "hours": 4, "brand": "Acme"}
    h.close()


def test_a_constant_is_inlined_and_typed_at_compile_time() -> None:
    scope = Scope(constants={"limit": (5, "int"), "brand": ("Acme", "str")})
    expr = compile_expr("const.limit + 1", scope)
    assert expr.type == "int"
    assert "_K" not in str(expr.fn.__code__.co_names)  # a literal, not a lookup
    assert expr.fn({}, {}, {}, frozenset(), 0.0, None) == 6
    with pytest.raises(ExpressionError, match="cannot order str against int"):
        compile_expr("const.brand > 3", scope)
    with pytest.raises(ExpressionError, match="a constant has no fields"):
        compile_expr("const.brand.x == 1", scope)


def check(tmp_path: Path, body: str) -> str:
    f = tmp_path / "pack.yaml"
    f.write_text(body, encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 1, result.output
    return result.output.replace(str(f), "pack.yaml")


BASE = """\
constants: {sla: 4h, vip_threshold: 500}
messages:
  m: {category: service, channels: [push]}
rules:
"""


@pytest.mark.parametrize(
    ("rule", "where", "message"),
    [
        ("  - {id: r, on: a, send: m, when: const.vip_treshold > 1}\n", "5:41",
         "unknown constant 'vip_treshold'; did you mean 'const.vip_threshold'?"),
        ("  - {id: r, on: a, send: m, after: sal}\n", "5:36",
         "unknown constant 'sal' where a duration is expected; did you mean 'sla'?"),
        ("  - {id: r, on: a, send: m, after: vip_threshold}\n", "5:36",
         "constant 'vip_threshold' is a number, not a duration"),
        ("  - {id: r, on: a, send: m, when: const.sla == 'x'}\n", "5:35",
         "comparing float with str is always false"),
    ],
)
def test_constant_errors_point_into_the_file(
    tmp_path: Path, rule: str, where: str, message: str
) -> None:
    out = check(tmp_path, BASE + rule)
    assert f"pack.yaml:{where}: error [r]: {message}" in out, out


def test_bad_and_duplicate_constants(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("constants: {sla: 4h}\n")
    (tmp_path / "b.yaml").write_text(
        "constants: {sla: 2h, century: 36501d, list: [1, 2]}\n"
        "messages: {m: {category: c, channels: [push]}}\n"
    )
    with pytest.raises(RulePackError) as info:
        load_pack(tmp_path)
    text = "\n".join(i.render() for i in info.value.issues)
    assert "constant 'sla' is defined twice (first at" in text
    assert "constant 'century': duration '36501d' is longer than a century" in text
    assert "b.yaml:1:" in text and "constants.list" in text  # a list is a schema error
