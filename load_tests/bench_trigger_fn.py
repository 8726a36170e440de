"""The upper bound of "one generated function per trigger" (issue 13), measured without
rebuilding the compiler.

Takes one trigger's rules of the 1,000-rule benchmark pack (``load_tests.rule_packs``:
50 rules on ``ev_00``, all 1,000 with ``--same-trigger``) as the pack loader compiled
them, and finds the rules whose conditions hold for each of N events, three ways:

- ``loop``: the core's matching loop (``engine/pipeline/core.py``), one call of each
  rule's compiled ``check`` in priority order, a ``try`` around each;
- ``list``: one generated function with every rule's condition body inlined, each in its
  own ``try``, returning the rules that match, in priority order;
- ``gen``: the same as a generator yielding each matching rule in turn, so the core could
  arbitrate a rule before the next rule's conditions read the history (``sent_count`` and
  friends): the shape a shipped version would need.

The generated functions are built from the same checked AST the compiler makes
(``_Compiler.visit`` over each condition's ``tree``, as ``compile_all`` does), compiled to
a code object and made a function with no builtins: no text is evaluated. Every mode is
checked against ``loop`` (same rules, same faults) before it is measured.

    python -m load_tests.bench_trigger_fn --mode all            # wall clock, µs per event
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/tf.out \\
        python -m load_tests.bench_trigger_fn --mode list --callgrind
    grep ^totals /tmp/tf.out        # instructions of the counted matching; divide by --events
"""

from __future__ import annotations

import argparse
import ast
import gc
import time
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from engine.dsl.compiler import ARGS, _Compiler
from engine.dsl.syntax import const, ref
from engine.dsl.types import Scope
from engine.pack.loader import load_pack_text
from engine.pack.model import CompiledRule, RulePack
from engine.pipeline import decide
from engine.pipeline.core import _Decider
from engine.pipeline.views import event_view
from load_tests.callgrind_decide import instrument
from load_tests.rule_packs import customer_seeds, make_batch, make_states, pack_yaml

TRIGGER = "ev_00"
Args = tuple[Any, ...]  # the six arguments of a compiled condition, for one event
Fault = tuple[str, str]  # rule id, what it raised
Matcher = Callable[[Args, list[Fault]], list[CompiledRule]]


def matching_loop(rules: Sequence[CompiledRule]) -> Matcher:
    """The core's loop (``_Decider.event``, not traced): one call per rule."""
    def match(args: Args, faults: list[Fault]) -> list[CompiledRule]:
        ev, data, customer, contexts, at, ctx = args
        matched: list[CompiledRule] = []
        for rule in rules:
            check = rule.check
            if check is not None:
                try:
                    if not check(ev, data, customer, contexts, at, ctx):
                        continue
                except Exception as exc:
                    faults.append((rule.id, f"{type(exc).__name__}: {exc}"))
                    continue
            matched.append(rule)
        return matched
    return match


def _condition(comp: _Compiler, rule: CompiledRule) -> ast.expr | None:
    """``rule``'s conditions as one expression, as ``compile_all`` joins them (window first);
    None when it has none (always true)."""
    comp.scope = (rule.conditions[0].scope if rule.conditions else None) or Scope()
    bodies = [comp.visit(expr.tree, 0)[0] for expr in rule.conditions]
    if rule.window is not None:
        bodies.insert(0, ast.Compare(left=const(rule.window.start), ops=[ast.LtE(), ast.Lt()],
                                     comparators=[ref("now"), const(rule.window.end)]))
    if not bodies:
        return None
    return bodies[0] if len(bodies) == 1 else ast.BoolOp(op=ast.And(), values=bodies)


def trigger_function(rules: Sequence[CompiledRule], *, generator: bool) -> Callable[..., Any]:
    """One function for all of ``rules``: ``fn(ev, d, customer, contexts, now, ctx, faults)``.

    Each rule's condition body is inlined in its own ``try`` (a rule that raises is a fault
    of that rule, as in the loop). The list form returns the matching rules; the generator
    form yields each in turn.
    """
    comp = _Compiler(Scope())
    comp.globals["_Exception"] = Exception  # the function has no builtins
    body: list[ast.stmt] = [] if generator else [
        ast.Assign(targets=[ast.Name(id="_matched", ctx=ast.Store())],
                   value=ast.List(elts=[], ctx=ast.Load()))]
    for i, rule in enumerate(rules):
        slot = f"_RULE{i}"
        comp.globals[slot] = rule
        take: ast.stmt = (ast.Expr(value=ast.Yield(value=ref(slot))) if generator else
                          ast.Expr(value=ast.Call(func=ast.Attribute(value=ref("_matched"),
                                                                     attr="append",
                                                                     ctx=ast.Load()),
                                                  args=[ref(slot)], keywords=[])))
        condition = _condition(comp, rule)
        if condition is None:
            body.append(take)
            continue
        fault = ast.Expr(value=ast.Call(
            func=ast.Attribute(value=ref("_faults"), attr="append", ctx=ast.Load()),
            args=[ast.Tuple(elts=[const(rule.id), ref("_exc")], ctx=ast.Load())], keywords=[]))
        # try: matched = <condition> / except: fault / else: if matched: take
        body.append(ast.Try(
            body=[ast.Assign(targets=[ast.Name(id="_hit", ctx=ast.Store())], value=condition)],
            handlers=[ast.ExceptHandler(type=ref("_Exception"), name="_exc", body=[fault])],
            orelse=[ast.If(test=ref("_hit"), body=[take], orelse=[])],
            finalbody=[]))
    if not generator:
        body.append(ast.Return(value=ref("_matched")))
    func = ast.FunctionDef(
        name="_tact_trigger",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=a) for a in (*ARGS, "_faults")],
                           kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=body, decorator_list=[])
    module = ast.Module(body=[func], type_ignores=[])
    ast.fix_missing_locations(module)
    code = compile(module, "<tact-trigger>", "exec")
    fn_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    return types.FunctionType(fn_code, comp.globals)


def generated(rules: Sequence[CompiledRule], *, generator: bool) -> Matcher:
    fn = trigger_function(rules, generator=generator)
    raw: list[tuple[str, BaseException]] = []

    def match(args: Args, faults: list[Fault]) -> list[CompiledRule]:
        if generator:  # the core would arbitrate each rule here, before the next is checked
            matched = []
            for rule in fn(*args, raw):
                matched.append(rule)
        else:
            matched = fn(*args, raw)
        if raw:
            faults.extend((rid, f"{type(exc).__name__}: {exc}") for rid, exc in raw)
            raw.clear()
        return matched
    return match


def event_args(pack: RulePack, n_events: int) -> list[Args]:
    """The six condition arguments of ``n_events`` events on ``TRIGGER``, as the core makes
    them, for customers whose states went through a warm-up batch (history, windows...)."""
    seeds = customer_seeds(500)
    states = make_states(seeds)
    decide(pack, states, make_batch(4000, seeds, seed=5))  # states with a past
    decider = _Decider(pack, trace=False)
    out: list[Args] = []
    for envelope in make_batch(n_events, seeds, event_type=TRIGGER):
        at = envelope.event.at.timestamp()
        env = decider._env(states[envelope.event.customer], event_view(envelope, at), at)
        out.append((env.ev, env.d, env.customer, env.contexts, env.now, env.ctx))
    return out


def run(match: Matcher, all_args: Iterable[Args]) -> tuple[int, list[Fault]]:
    faults: list[Fault] = []
    matched = 0
    for args in all_args:
        matched += len(match(args, faults))
    return matched, faults


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--mode", choices=("loop", "list", "gen", "all"), default="all")
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--same-trigger", action="store_true",
                    help="every rule on one event type (the pack of bench_rules' worst case)")
    ap.add_argument("--repeat", type=int, default=7, help="wall clock: best of N")
    ap.add_argument("--callgrind", action="store_true",
                    help="count one pass of --mode with callgrind (run under valgrind)")
    args = ap.parse_args(argv)
    pack = load_pack_text(pack_yaml(args.rules, same_trigger=args.same_trigger))
    rules = pack.by_trigger[TRIGGER]
    all_args = event_args(pack, args.events)
    matchers: dict[str, Matcher] = {"loop": matching_loop(rules),
                                    "list": generated(rules, generator=False),
                                    "gen": generated(rules, generator=True)}
    expected: list[tuple[list[str], list[Fault]]] = []
    for a in all_args:
        faults: list[Fault] = []
        expected.append(([r.id for r in matchers["loop"](a, faults)], faults))
    for name, match in matchers.items():  # every mode finds what the loop finds
        for a, want in zip(all_args, expected, strict=True):
            faults = []
            got = ([r.id for r in match(a, faults)], faults)
            if got != want:
                raise SystemExit(f"{name}: {got} != {want}")
    modes = list(matchers) if args.mode == "all" else [args.mode]
    matched, _ = run(matchers["loop"], all_args)
    print(f"{len(rules)} rules on {TRIGGER}, {args.events} events, "
          f"{matched / args.events:.2f} rules match per event")
    gc.collect()
    if args.callgrind:
        for name in modes:
            run(matchers[name], all_args)  # warm
            instrument(True)
            run(matchers[name], all_args)
            instrument(False)
        return 0
    best = {name: float("inf") for name in modes}
    for _ in range(args.repeat):  # alternating, best of each
        for name in modes:
            start = time.perf_counter()
            run(matchers[name], all_args)
            best[name] = min(best[name], time.perf_counter() - start)
    for name in modes:
        print(f"{name:5s} {best[name] / args.events * 1e6:8.2f} µs per event (best of "
              f"{args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
