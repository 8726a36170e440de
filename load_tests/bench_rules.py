"""Rules benchmark: cost per predicate and per event, against CEL and simpleeval baselines.

Run ``python -m load_tests.bench_rules [--quick]``. Prints tables, then one JSON line.

Fairness notes (also in load_tests/RESULTS.md):

* Tact: the compiled function is called directly with prepared views, as the pipeline does.
* CEL (``common-expression-language``, Rust): each expression is compiled once with
  ``cel.compile`` and the ``cel.Context`` holding the variables is built once per input, so
  only ``Program.execute(context)`` is timed: no parsing and no per-call conversion of
  Python dicts. ``hours_since`` is written as native CEL arithmetic rather than a Python
  callback, the fastest form for CEL.
* simpleeval: ``EvalWithCompoundTypes`` with names and functions set once, and the AST
  parsed once and passed as ``eval(expr, previously_parsed=...)``, so no re-parsing.
* All three must give the same boolean on three different inputs before anything is timed.
* Predicates are timed with ``timeit`` (garbage collector off, the loop overhead of
  ~10 ns included for every engine). Events are timed around whole ``decide()`` calls
  (garbage collector on, fresh customer states each run, the first run a warm-up).
  Figures are medians over repeats.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import timeit
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cel
import simpleeval
from rich.console import Console
from rich.table import Table

from engine.dsl.compiler import compile_expr
from engine.dsl.functions import EvalContext
from engine.dsl.types import Scope
from engine.models import CustomerState
from engine.pack.loader import load_pack_text
from engine.pack.model import RulePack
from engine.pipeline import decide
from load_tests.rule_packs import customer_seeds, make_batch, make_states, pack_yaml

GOAL_PREDICATE_NS = 1000.0
GOAL_EVENT_US = 20.0
GOAL_CEL_RATIO = 30.0
EVENT_KEYS = ("10", "100", "1000", "1000_same_trigger")  # the figures the goals speak of


@dataclass(frozen=True, slots=True)
class Predicate:
    name: str
    tact: str
    cel: str
    simpleeval: str
    simple: bool


PREDICATES: tuple[Predicate, ...] = (
    Predicate("score_le", "event.data.score <= 6", "event.data.score <= 6",
              "event.data.score <= 6", True),
    Predicate("segment_eq", 'customer.attributes.segment == "frequent_flyer"',
              'customer.attributes.segment == "frequent_flyer"',
              'customer.attributes.segment == "frequent_flyer"', True),
    Predicate("category_in", 'event.data.category in ["shoes", "bags"]',
              'event.data.category in ["shoes", "bags"]',
              'event.data.category in ["shoes", "bags"]', True),
    Predicate("window_ge", "customer.windows.payment_failures >= 3",
              "customer.windows.payment_failures >= 3",
              "customer.windows.payment_failures >= 3", True),
    Predicate("context", "context.in_transit", '"in_transit" in context',
              '"in_transit" in context', True),
    Predicate("compound",
              "customer.attributes.points_expiring_days <= 7 and (event.data.value > 100"
              ' or customer.attributes.segment == "vip") and not context.in_transit',
              "customer.attributes.points_expiring_days <= 7 && (event.data.value > 100.0"
              ' || customer.attributes.segment == "vip") && !("in_transit" in context)',
              "customer.attributes.points_expiring_days <= 7 and (event.data.value > 100"
              ' or customer.attributes.segment == "vip") and not ("in_transit" in context)',
              False),
    Predicate("function", "hours_since(customer.timestamps.last_purchase) > 24",
              "(now - customer.timestamps.last_purchase) / 3600.0 > 24.0",
              "hours_since(customer.timestamps.last_purchase) > 24", False),
)

SCOPE = Scope(
    event_data={"score": "int", "category": "str", "value": "number"},
    attributes={"segment": "str", "points_expiring_days": "int", "tz": "str"},
    windows=frozenset({"payment_failures"}),
    timestamps=frozenset({"last_purchase"}),
    contexts=frozenset({"in_transit"}),
    channels=frozenset({"push", "email"}),
)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()

# (score, segment, category, points_expiring_days, value, hours since purchase, failures,
#  in transit). The first is timed: it makes the compound predicate evaluate every operand.
VARIANTS: tuple[tuple[int, str, str, int, float, float, int, bool], ...] = (
    (5, "frequent_flyer", "shoes", 3, 250.0, 48.0, 3, False),
    (9, "vip", "toys", 30, 50.0, 2.0, 0, True),
    (6, "fashion", "bags", 7, 50.0, 24.0, 5, False),
)


@dataclass(slots=True)
class Inputs:
    """One input in the three engines' shapes."""

    tact: tuple[Any, ...]  # (ev, d, cu, cx, now, ctx)
    cel: Any  # a prepared cel.Context
    cel_vars: dict[str, Any]  # what it was built from
    names: dict[str, Any]  # simpleeval names


def make_inputs(v: tuple[int, str, str, int, float, float, int, bool]) -> Inputs:
    score, segment, category, points, value, hours, failures, transit = v
    data = {"score": score, "category": category, "value": value}
    ev = {"id": "e1", "customer": "c1", "type": "ev", "at": NOW, "received": NOW, "data": data}
    attrs = {"segment": segment, "points_expiring_days": points, "tz": "Europe/Paris"}
    state = CustomerState("c1", attributes=attrs)
    cu = {"id": "c1", "attributes": attrs, "consent": {"push": True}, "counters": {},
          "windows": {"payment_failures": failures},
          "timestamps": {"last_purchase": NOW - hours * 3600.0}}
    cx = frozenset({"in_transit"}) if transit else frozenset()
    names = {"event": ev, "customer": cu, "context": cx, "now": NOW}
    cel_vars = {"event": ev, "customer": cu, "context": sorted(cx), "now": NOW}
    return Inputs((ev, data, cu, cx, NOW, EvalContext(state)), cel.Context(cel_vars), cel_vars,
                  names)


def _simpleeval(names: dict[str, Any]) -> simpleeval.EvalWithCompoundTypes:
    now = names["now"]

    def hours_since(t: Any) -> float | None:
        return (now - t) / 3600.0 if isinstance(t, int | float) else None

    return simpleeval.EvalWithCompoundTypes(names=names, functions={"hours_since": hours_since})


def _time_ns(stmt: str, env: dict[str, Any], repeats: int, target_s: float) -> float:
    """Median ns per call; the loop count is tuned so one repeat lasts about ``target_s``."""
    timer = timeit.Timer(stmt, globals=env)
    number = 1
    while True:
        took = timer.timeit(number)
        if took >= target_s / 4 or number >= 10_000_000:
            break
        number *= 4 if took < target_s / 40 else 2
    number = max(1, int(number * target_s / max(took, 1e-9)))
    return statistics.median(timer.repeat(repeats, number)) / number * 1e9


def bench_predicates(repeats: int, target_s: float) -> tuple[dict[str, dict[str, float]], float]:
    """ns per evaluation for each predicate and engine; and ns to build one cel.Context."""
    inputs = [make_inputs(v) for v in VARIANTS]
    out: dict[str, dict[str, float]] = {}
    for p in PREDICATES:
        fn = compile_expr(p.tact, SCOPE, boolean=True).fn
        prog = cel.compile(p.cel)
        tree = simpleeval.EvalWithCompoundTypes.parse(p.simpleeval)
        for k, inp in enumerate(inputs):
            got = (bool(fn(*inp.tact)), prog.execute(inp.cel),
                   _simpleeval(inp.names).eval(p.simpleeval, tree))
            if got[1] is not got[0] or got[2] is not got[0]:
                raise RuntimeError(f"predicate {p.name}, input {k}: engines disagree "
                                   f"(tact, cel, simpleeval) = {got!r}; fix the translation")
        timed = inputs[0]
        ev, d, cu, cx, now, ctx = timed.tact
        se = _simpleeval(timed.names)
        out[p.name] = {
            "tact": _time_ns("fn(ev, d, cu, cx, now, ctx)",
                             {"fn": fn, "ev": ev, "d": d, "cu": cu, "cx": cx, "now": now,
                              "ctx": ctx}, repeats, target_s),
            "cel": _time_ns("run(c)", {"run": prog.execute, "c": timed.cel}, repeats, target_s),
            "simpleeval": _time_ns("run(src, tree)", {"run": se.eval, "src": p.simpleeval,
                                                      "tree": tree}, repeats, target_s),
        }
    # Not part of cel_ratio: what a CEL engine would pay once per event to convert views.
    context_ns = _time_ns("mk(v)", {"mk": cel.Context, "v": inputs[0].cel_vars}, repeats,
                          target_s)
    return out, context_ns


@dataclass(slots=True)
class EventFigure:
    us: float  # median per event
    best_us: float
    rules_per_event: float  # rules whose trigger matched, evaluated per event
    qualified_per_event: float
    decisions_per_event: float
    sent_per_event: float
    load_s: float
    events: int


def bench_events(n_rules: int, same_trigger: bool, no_match: bool, n_events: int,
                 repeats: int) -> EventFigure:
    t0 = time.perf_counter()
    text = pack_yaml(n_rules, same_trigger=same_trigger, no_match=no_match)
    pack: RulePack = load_pack_text(text)
    load_s = time.perf_counter() - t0
    seeds = customer_seeds(500)
    batch = make_batch(n_events, seeds, event_type="ev_00" if same_trigger else None)
    rules_seen = sum(len(pack.by_trigger.get(e.event.type, ())) for e in batch)
    times: list[float] = []
    res = None
    for r in range(repeats + 1):  # the first run warms up and is not counted
        states = make_states(seeds)
        gc.collect()
        t = time.perf_counter()
        res = decide(pack, states, batch)
        took = time.perf_counter() - t
        if r:
            times.append(took / n_events * 1e6)
    if res is None:
        raise RuntimeError("no timed run")
    if res.faults:
        raise RuntimeError(f"{len(res.faults)} rule faults, e.g. {res.faults[0]}")
    qualified = len({(d.event_id, d.rule) for d in res.decisions})
    return EventFigure(
        us=statistics.median(times), best_us=min(times), rules_per_event=rules_seen / n_events,
        qualified_per_event=qualified / n_events,
        decisions_per_event=len(res.decisions) / n_events,
        sent_per_event=sum(d.outcome == "sent" for d in res.decisions) / n_events,
        load_s=load_s, events=n_events,
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def summarise(pred: dict[str, dict[str, float]], cel_context_ns: float,
              events: dict[str, EventFigure], mode: str, elapsed: float) -> dict[str, Any]:
    cel_ratio = statistics.median(_ratio(v["cel"], v["tact"]) for v in pred.values())
    se_ratio = statistics.median(_ratio(v["simpleeval"], v["tact"]) for v in pred.values())
    simple_max = max(pred[p.name]["tact"] for p in PREDICATES if p.simple)
    return {
        "predicate_ns": {k: {e: round(ns, 1) for e, ns in v.items()} for k, v in pred.items()},
        "event_us": {k: round(f.us, 2) for k, f in events.items() if k in EVENT_KEYS},
        "cel_ratio": round(cel_ratio, 2),
        "simpleeval_ratio": round(se_ratio, 2),
        "cel_context_us": round(cel_context_ns / 1000, 2),
        "goals": {
            "predicate_le_1us": simple_max <= GOAL_PREDICATE_NS,
            "event_le_20us_at_1000": events["1000"].us <= GOAL_EVENT_US,
            "cel_ge_30x": cel_ratio >= GOAL_CEL_RATIO,
        },
        "event_detail": {k: {"rules_per_event": round(f.rules_per_event, 1),
                             "qualified_per_event": round(f.qualified_per_event, 2),
                             "decisions_per_event": round(f.decisions_per_event, 2),
                             "sent_per_event": round(f.sent_per_event, 2),
                             "best_us": round(f.best_us, 2), "events": f.events,
                             "load_s": round(f.load_s, 2)} for k, f in events.items()},
        "mode": mode,
        "python": sys.version.split()[0],
        "elapsed_s": round(elapsed, 1),
    }


def print_tables(console: Console, pred: dict[str, dict[str, float]],
                 events: dict[str, EventFigure], summary: dict[str, Any]) -> None:
    t = Table(title="Per predicate (median ns per evaluation)")
    for col in ("predicate", "simple", "tact", "cel", "simpleeval", "cel/tact", "simpleeval/tact"):
        t.add_column(col, justify="left" if col == "predicate" else "right")
    for p in PREDICATES:
        v = pred[p.name]
        t.add_row(p.name, "yes" if p.simple else "", f"{v['tact']:.0f}", f"{v['cel']:.0f}",
                  f"{v['simpleeval']:.0f}", f"{_ratio(v['cel'], v['tact']):.1f}x",
                  f"{_ratio(v['simpleeval'], v['tact']):.1f}x")
    console.print(t)
    t = Table(title="Per event through decide() (median µs per event)")
    for col in ("pack", "rules/event", "qualified/event", "decisions/event", "sent/event",
                "µs/event", "best µs", "events", "load s"):
        t.add_column(col, justify="left" if col == "pack" else "right")
    for k, f in events.items():
        t.add_row(k, f"{f.rules_per_event:.1f}", f"{f.qualified_per_event:.2f}",
                  f"{f.decisions_per_event:.2f}", f"{f.sent_per_event:.2f}", f"{f.us:.1f}",
                  f"{f.best_us:.1f}", str(f.events), f"{f.load_s:.2f}")
    console.print(t)
    g = summary["goals"]
    console.print(f"cel_ratio {summary['cel_ratio']}x (goal ≥ {GOAL_CEL_RATIO:g}x: "
                  f"{_ok(g['cel_ge_30x'])}), simpleeval_ratio {summary['simpleeval_ratio']}x; "
                  f"simple predicate ≤ 1 µs: {_ok(g['predicate_le_1us'])}; "
                  f"≤ {GOAL_EVENT_US:g} µs/event at 1,000 rules: "
                  f"{_ok(g['event_le_20us_at_1000'])}")
    console.print(f"(for reference: building one cel.Context from these views costs "
                  f"{summary['cel_context_us']} µs, paid once per event by a CEL engine; "
                  "not counted in cel_ratio)")


def _ok(flag: bool) -> str:
    return "met" if flag else "MISSED"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="a smaller run, under 30 s")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    if args.quick:
        repeats, target_s, spread_events, same_events = 3, 0.015, 800, 60
    else:
        repeats, target_s, spread_events, same_events = 7, 0.2, 5000, 500
    console = Console(highlight=False, width=max(Console().width, 120))
    pred, cel_context_ns = bench_predicates(repeats, target_s)
    events: dict[str, EventFigure] = {}
    configs: list[tuple[str, int, bool, bool, int]] = [
        ("10", 10, False, False, spread_events), ("100", 100, False, False, spread_events),
        ("1000", 1000, False, False, spread_events),
        ("1000_same_trigger", 1000, True, False, same_events),
    ]
    if not args.quick:  # diagnostic (matching without decisions); one more pack to load
        configs.append(("1000_no_match", 1000, False, True, spread_events))
    for key, n_rules, same, no_match, n_events in configs:
        events[key] = bench_events(n_rules, same, no_match, n_events, repeats)
    summary = summarise(pred, cel_context_ns, events, "quick" if args.quick else "full",
                        time.perf_counter() - started)
    print_tables(console, pred, events, summary)
    sys.stdout.flush()
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
