"""Fuzzing the expression compiler and the pipeline's guards with Hypothesis (issue 9.8).

Generated expressions (from the language's own tokens, plus random text) either compile or
raise ExpressionError; compiled ones, run on generated data, return at once and raise
nothing; and a pack built from them decides without an exception escaping, every decision
serialisable. CI runs a bounded number of examples; set TACT_FUZZ_EXAMPLES for more (then
the examples are random, not the fixed CI set).
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.dsl.compiler import compile_expr
from engine.dsl.functions import FUNCTIONS, EvalContext
from engine.dsl.types import Scope
from engine.errors import ExpressionError, RulePackError
from engine.models.event import Envelope, Event
from engine.models.state import CustomerState, SentRecord
from engine.pack.loader import load_pack_text
from engine.pipeline import decide

_EXAMPLES = os.environ.get("TACT_FUZZ_EXAMPLES")
EXAMPLES = int(_EXAMPLES) if _EXAMPLES else 400
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a shared CI machine: the per-call limit below is what matters
    derandomize=_EXAMPLES is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PER_CALL_S = 0.5

SCOPE = Scope(
    event_data=None,
    attributes=None,
    counters=frozenset({"c"}),
    windows=frozenset({"w"}),
    timestamps=frozenset({"t"}),
    contexts=frozenset({"vip"}),
    channels=frozenset({"push"}),
)
NOW = 1_780_000_000.0

# -- expressions ------------------------------------------------------------------------
_paths = st.sampled_from([
    "event.data.a", "event.data.b", "event.data.s", "event.data.m.k", "event.data.l[0]",
    "event.data.l[-1]", 'event.data.m["k"]', "event.at", "event.id", "event.received",
    "customer.attributes.x", "customer.counters.c", "customer.windows.w",
    "customer.timestamps.t", "customer.consent.push", "customer.id", "context.vip", "now",
    "true", "false", "null", "event.data", "event.data.__class__", "customer.attributes",
])  # fmt: skip
_numbers = st.one_of(
    st.integers(-(2**53), 2**53),
    st.sampled_from([0, -1, 2**53 + 1, 2**70, 100000000, -100000000]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e308", "1e999", "5e-324", "0.1", "-0.0"]),
).map(lambda n: n if isinstance(n, str) else repr(n))
_strings = st.one_of(
    st.text(max_size=12).map(json.dumps),
    st.sampled_from(['"21:00"', '"24h"', '"1e400s"', '"(a+)+b"', '"[bad"', '"x" * 300']),
)
_leaves = st.one_of(_paths, _numbers, _strings)
# mostly what the language allows, so that most examples compile, and some of what it refuses
_names = st.sampled_from([*FUNCTIONS, *FUNCTIONS, "eval", "__import__", "roundd"])
_BINOPS = ["+", "-", "*", "/", "//", "%"] * 3 + ["**", "&", "<<", "@"]
_CMPOPS = ["<", "<=", ">", ">=", "==", "!=", "in", "not in", "is", "is not"]


def _compound(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(_BINOPS), children).map(" ".join),
        st.tuples(children, st.sampled_from(_CMPOPS), children).map(" ".join),
        st.tuples(children, st.sampled_from(["and", "or"]), children).map(" ".join),
        st.tuples(st.sampled_from(["-", "not ", "+", "~"]), children).map("".join),
        children.map(lambda c: f"({c})"),
        st.tuples(children, children, children).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
        st.lists(children, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(_names, st.lists(children, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
    )


GRAMMAR = st.recursive(_leaves, _compound, max_leaves=12)
_TOKENS = st.sampled_from([
    "event", "customer", "context", "now", ".", "data", "[", "]", "(", ")", ",", "'", '"',
    "1", "-", "+", "*", "/", "%", "and", "or", "not", "if", "else", "in", "is", "null",
    "round", "len", "matches", "\n", " ", "lambda", ":", "=", "{", "}", "f'", "#", "\\",
])  # fmt: skip
SOUP = st.lists(_TOKENS, max_size=30).map("".join)
_RANDOM = st.one_of(SOUP, st.text(max_size=60))
EXPRESSIONS = st.integers(0, 4).flatmap(lambda i: _RANDOM if i == 0 else GRAMMAR)

# -- data -------------------------------------------------------------------------------
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**80), 2**80),
    st.sampled_from([10**4000, 2**63, -(2**63), 1e308, NOW, 253402343999.0, -1e18]),
    st.floats(),  # NaN and infinities too: the wire accepts them
    st.text(max_size=20), st.sampled_from(["x" * 100_000, "9" * 4000]),
)  # fmt: skip
_json = st.recursive(
    _scalars,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=4), c,
                                                                  max_size=4)),
    max_leaves=10,
)
_fields = st.fixed_dictionaries(
    {}, optional={k: _json for k in ("a", "b", "s", "m", "l", "x")}
)


def _ctx(attributes: dict[str, Any]) -> EvalContext:
    history = [SentRecord("m", "push", "promotion", NOW - 60 * i) for i in range(20)]
    return EvalContext(CustomerState("c", attributes=attributes, history=history))


def _compile(text: str, boolean: bool) -> Any:
    try:
        return compile_expr(text, SCOPE, boolean=boolean)
    except ExpressionError as exc:
        assert exc.message  # a reason for the author, with a position
        assert exc.line >= 1 and exc.column >= 0
        return None


@FUZZ
@pytest.mark.timeout(60 + EXAMPLES // 5)
@given(text=EXPRESSIONS, boolean=st.sampled_from([False, False, True]), data=_fields, attrs=_fields,
       now=st.sampled_from([NOW, 253402343999.0, -62135647200.0]))
def test_compile_and_evaluate_generated_expressions(
    text: str, boolean: bool, data: dict[str, Any], attrs: dict[str, Any], now: float
) -> None:
    expr = _compile(text, boolean)
    event("compiled" if expr is not None else "rejected")
    if expr is None:
        return
    ev = {"id": "e", "customer": "c", "type": "t", "at": now, "received": now, "data": data}
    cu = {"id": "c", "attributes": attrs, "consent": {"push": True}, "counters": {"c": 1.5},
          "windows": {"w": 3}, "timestamps": {"t": now - 10}}
    t0 = time.perf_counter()
    expr.fn(ev, data, cu, frozenset({"vip"}), now, _ctx(attrs))  # total: raises nothing
    assert time.perf_counter() - t0 < PER_CALL_S, text


PACK = """
settings: {max_per_event_per_channel: 3}
channels: [push]
categories: [promotion]
events: {hit: {data: {a: any, b: any, s: any, m: any, l: any, x: any}}}
attributes: {x: any, tz: str}
contexts: {vip: {start: [hit]}}
updates: [{on: hit, set: {x: @upd@}, count_in_window: {w: 1h}, increment: {c: 1}, timestamp: [t]}]
messages: {m: {category: promotion, channels: [push], params: {p: @param@}}}
policies: {pol: {when: @policy@, suppress: {categories: [promotion]}}}
quiet_hours: [{id: q, channels: [push], categories: [promotion], start: "21:00", end: "08:00"}]
rules: [{id: r, on: hit, when: @cond@, send: m}]
"""


def _pack(**exprs: str) -> Any:
    text = PACK
    for k, v in exprs.items():
        text = text.replace(f"@{k}@", json.dumps(v))  # a JSON string is a YAML string
    try:
        return load_pack_text(text)
    except RulePackError:
        return None


TIMES = ["2026-06-01T12:00:00+00:00", "2026-06-01T23:00:00+00:00",  # the second in quiet hours
         "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"]


def _slot(default: str, test: bool) -> st.SearchStrategy[str]:
    """A generated expression for one place in the pack, or a plain one (so packs load)."""
    fuzzed = GRAMMAR.map(lambda e: f"({e}) != null") if test else GRAMMAR
    return st.one_of(st.just(default), fuzzed, GRAMMAR)


@FUZZ
@given(cond=_slot("true", True), policy=_slot("false", True), param=_slot("event.data.a", False),
       upd=_slot("1", False), data=_fields, attrs=_fields, at=st.sampled_from(TIMES))
@pytest.mark.timeout(60 + EXAMPLES // 2)
def test_a_pack_of_generated_expressions_decides_and_fails_closed(
    cond: str, policy: str, param: str, upd: str, data: dict[str, Any], attrs: dict[str, Any],
    at: str,
) -> None:
    pack = _pack(cond=cond, policy=policy, param=param, upd=upd)
    event("pack loaded" if pack is not None else "pack rejected")
    if pack is None:
        return
    st_ = CustomerState("c", attributes=attrs, consent={"push": True})
    env = Envelope(Event(id="e1", customer="c", type="hit", at=datetime.fromisoformat(at),
                         data=data), datetime.fromisoformat(at).timestamp())
    for trace in (False, True):
        result = decide(pack, {"c": st_}, [env], trace=trace)  # no exception escapes
        for d in result.decisions:
            wire = orjson.loads(d.to_json())  # every decision serialises
            if d.outcome == "sent":
                p = d.params.get("p")
                assert not (isinstance(p, float) and not math.isfinite(p))
                assert wire["params"] == json.loads(json.dumps(d.params))
        st_ = CustomerState("c", attributes=attrs, consent={"push": True})
