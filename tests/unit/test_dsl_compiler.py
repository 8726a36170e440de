"""The expression language: what it evaluates, and everything it refuses at compile time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.dsl.compiler import compile_expr
from engine.dsl.functions import EvalContext
from engine.dsl.syntax import MAX_LENGTH
from engine.dsl.types import Scope
from engine.errors import ExpressionError
from engine.models.state import CustomerState, SentRecord

SCOPE = Scope(
    event_data={
        "score": "int",
        "destination": "str",
        "items": "list",
        "meta": "map",
        "value": "number",
    },
    attributes={"segment": "str", "tz": "str", "age": "int"},
    counters=frozenset({"purchases"}),
    windows=frozenset({"failures"}),
    timestamps=frozenset({"last_purchase"}),
    contexts=frozenset({"in_transit"}),
    channels=frozenset({"push", "email"}),
)
NOW = datetime(2026, 6, 1, 21, 30, tzinfo=UTC).timestamp()


def run(
    text: str,
    data: dict | None = None,
    attrs: dict | None = None,
    contexts: frozenset[str] = frozenset(),
    state: CustomerState | None = None,
    **cu: object,
) -> object:
    expr = compile_expr(text, SCOPE)
    st = state or CustomerState("c1", attributes=attrs or {})
    view = {
        "id": "c1",
        "attributes": st.attributes,
        "consent": {"push": True},
        "counters": cu.get("counters", {}),
        "windows": cu.get("windows", {}),
        "timestamps": cu.get("timestamps", {}),
    }
    ev = {"id": "e1", "customer": "c1", "type": "t", "at": NOW, "received": NOW, "data": data or {}}
    return expr.fn(ev, ev["data"], view, contexts, NOW, EvalContext(st))


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        ("event.data.score <= 6", {"score": 3}, True),
        ("event.data.score <= 6", {"score": 9}, False),
        ("event.data.score <= 6", {}, False),  # missing field: null, and null orders nothing
        ("event.data.score <= 6", {"score": "3"}, False),  # bad data: false, not a crash
        ("event.data.destination == 'Lisbon'", {"destination": "Lisbon"}, True),
        ("event.data.destination in ['Lisbon', 'Rome']", {"destination": "Rome"}, True),
        ("event.data.destination not in ['Lisbon', 'Rome']", {"destination": "Rome"}, False),
        ("event.data.meta.deep.deeper == 1", {"meta": {"deep": {"deeper": 1}}}, True),
        ("event.data.meta.deep.deeper == 1", {"meta": "not a map"}, False),
        ("event.data.items[0] == 'a'", {"items": ["a"]}, True),
        ("event.data.items[5] == 'a'", {"items": ["a"]}, False),
        ("len(event.data.items) == 2", {"items": [1, 2]}, True),
        ("event.data.value * 2 > 10", {"value": 6}, True),
        ("event.data.value / 0 == null", {"value": 6}, True),
        ("-event.data.value < 0", {"value": 6}, True),
        ("1 < event.data.score < 5", {"score": 3}, True),
        ("1 < event.data.score < 5", {"score": 7}, False),
        ("event.data.score if event.data.score else 0", {}, 0),
        ("coalesce(event.data.destination, 'home')", {}, "home"),
        ("lower(event.data.destination) == 'lisbon'", {"destination": "LISBON"}, True),
        ("startswith(event.data.destination, 'Lis')", {"destination": "Lisbon"}, True),
        ("matches(event.data.destination, '^L[a-z]+$')", {"destination": "Lisbon"}, True),
        ("contains(event.data.items, 'b')", {"items": ["a", "b"]}, True),
        ("event.data.destination is null", {}, True),
        ("max(event.data.score, 4) == 4", {"score": None}, True),
        ("round(event.data.value, 1) == 2.3", {"value": 2.345}, True),
        ("int('42') + 1 == 43", {}, True),
        ("duration('1h30m') == 5400", {}, True),
    ],
)
def test_evaluates(text: str, data: dict, expected: object) -> None:
    assert run(text, data) == expected


def test_customer_namespaces_and_context() -> None:
    assert run("customer.attributes.segment == 'vip'", attrs={"segment": "vip"}) is True
    assert run("customer.counters.purchases == 0") is True  # counters default to zero
    assert run("customer.windows.failures >= 3", windows={"failures": 3}) is True
    assert run("customer.consent.push and not customer.consent.email") is True
    assert run("context.in_transit", contexts=frozenset({"in_transit"})) is True
    assert run("context.in_transit") is False
    assert run("customer.id == 'c1' and event.type == 't'") is True


def test_time_functions_use_the_customer_zone() -> None:
    hour = NOW - 3 * 3600
    assert (
        run(
            "hours_since(customer.timestamps.last_purchase) == 3",
            timestamps={"last_purchase": hour},
        )
        is True
    )
    assert run("hours_since(customer.timestamps.last_purchase) == null") is True
    # 21:30 UTC is 23:30 in Rome (summer) and 17:30 in New York.
    assert run("local_hour() == 23", attrs={"tz": "Europe/Rome"}) is True
    assert run("local_hour() == 17", attrs={"tz": "America/New_York"}) is True
    assert run("local_hour() == 21", attrs={"tz": "Not/AZone"}) is True  # unknown zone: UTC
    assert run("local_time_between('21:00', '08:00')", attrs={"tz": "Europe/Rome"}) is True
    assert run("local_time_between('09:00', '18:00')", attrs={"tz": "Europe/Rome"}) is False


def test_history_functions() -> None:
    st = CustomerState(
        "c1",
        history=[
            SentRecord("promo", "push", "promotion", NOW - 3600),
            SentRecord("promo", "email", "promotion", NOW - 90000),
        ],
    )
    assert run("sent_count('promo', '24h') == 1", state=st) is True
    assert run("category_sent_count('promotion', '7d') == 2", state=st) is True
    assert run("hours_since(last_sent('promo')) == 1", state=st) is True


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("event.__class__", "access to '__class__' is not allowed", 6),
        ("event.data.__class__.__bases__", "access to '__bases__' is not allowed", 21),
        ("event.data['__globals__']", "access to '__globals__' is not allowed", 0),
        ("__import__('os')", "name '__import__' is not allowed", 0),
        ("__import__('os').system('ls')", "name '__import__' is not allowed", 0),
        ("(lambda: 1)()", "a lambda is not allowed", 1),
        ("lambda: 1", "a lambda is not allowed", 0),
        ("[x for x in event.data.items]", "a comprehension is not allowed", 0),
        ("{x: 1 for x in event.data.items}", "a comprehension is not allowed", 0),
        ("any(x for x in event.data.items)", "unknown function 'any'", 0),
        ("foo(event.type)", "unknown function 'foo'", 0),
        ("lowr(event.type)", "did you mean 'lower'", 0),
        ("open('/etc/passwd')", "unknown function 'open'", 0),
        ("event.type.upper()", "a value of type str has no field 'upper'", 11),
        ("os.system", "unknown name 'os'", 0),
        ("event.data.nope == 1", "unknown field event.data.nope", 11),
        ("customer.attributes.nope == 1", "unknown attribute 'nope'", 20),
        ("customer.counters.nope == 1", "unknown counter 'nope'", 18),
        ("context.nope", "unknown context 'nope'", 8),
        ("customer.consent.fax", "unknown channel 'fax'", 17),
        ("event.data.destination > 5", "cannot order str against int", 0),
        ("event.data.destination == 5", "comparing str with int is always false", 0),
        ("event.data.destination", "a condition must be true or false", 0),
        ("2 ** 64", "the power operator is not allowed", 0),
        ("event.data.score << 2", "a shift operator is not allowed", 0),
        ("f'{event.type}'", "an f-string is not allowed", 0),
        ("(x := 1)", "an assignment expression is not allowed", 1),
        ("{'a': 1}", "a dict literal is not allowed", 0),
        ("event.data.items[1:2]", "subscripts must be a constant", 0),
        ("99999999999999999999 > 1", "integer constant larger than 2**53", 0),
        ("'" + "x" * 300 + "' == 'x'", "string constant longer than 256", 0),
        ("matches(event.data.destination, event.type)", "must be a constant", 32),
        ("matches(event.data.destination, '(')", "invalid regular expression", 32),
        ("lower()", "takes 1 argument(s), got 0", 0),
        ("lower(x=1)", "positional arguments only", 6),
        ("event.data.score and", "syntax error", 20),
    ],
)
def test_rejects(text: str, message: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expr(text, SCOPE, boolean=True)
    assert message in info.value.message
    assert info.value.column == column


def test_bounds() -> None:
    with pytest.raises(ExpressionError, match="longer than"):
        compile_expr("1 == 1 and " * (MAX_LENGTH // 10) + "true", SCOPE)
    with pytest.raises(ExpressionError, match=r"nests deeper|too deeply"):
        compile_expr("abs(" * 40 + "1" + ")" * 40 + " == 1", SCOPE)
    with pytest.raises(ExpressionError, match="nests deeper"):
        compile_expr("not " * 40 + "true", SCOPE)
    with pytest.raises(ExpressionError, match="list longer"):
        compile_expr("event.type in [" + ",".join(["'a'"] * 300) + "]", SCOPE)


def test_compiled_code_has_no_builtins() -> None:
    expr = compile_expr("event.type == 'x'", SCOPE)
    assert expr.fn.__globals__["__builtins__"] == {}
    assert not any(k in expr.fn.__globals__ for k in ("eval", "exec", "open", "__import__"))


def test_undeclared_event_schema_allows_any_field() -> None:
    open_scope = Scope(event_data=None, attributes=None)
    expr = compile_expr("event.data.anything.at.all == 1", open_scope)
    assert expr.type == "bool"


def test_parts_split_top_level_and_for_explain() -> None:
    expr = compile_expr("event.data.score > 1 and context.in_transit", SCOPE)
    assert [p.source for p in expr.parts()] == ["event.data.score > 1", "context.in_transit"]
