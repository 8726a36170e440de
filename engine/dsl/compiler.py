"""Compile the expression language: parse to an AST, allow a whitelist, type-check, compile.

Expressions use a small subset of Python's syntax. Raw text is never evaluated: Python's
parser gives an AST, every node is checked against a whitelist and rewritten into a new
AST that only calls the helpers in :mod:`engine.dsl.runtime` and the whitelisted
functions, and that AST is compiled once, at load, to a function with no builtins.

Names: ``event``, ``customer``, ``context``, ``now``, the pack's constants ``const.<name>``
(inlined: typed and valued at compile time), the constants ``true``, ``false``, ``null``,
and ``monday`` to ``sunday`` (0 to 6, what ``local_weekday()`` gives). Attribute access only
walks data (dicts), never Python objects, and a missing field is ``null``.
"""

from __future__ import annotations

import ast
import math
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.dsl import runtime
from engine.dsl.calendar import WEEKDAYS
from engine.dsl.calls import CallChecker
from engine.dsl.hints import compare_hint, membership_hint
from engine.dsl.probes import interesting
from engine.dsl.syntax import MAX_DEPTH, call, const, describe, err, parse, ref
from engine.dsl.types import Scope, comparable, equatable, is_numeric, join
from engine.errors import ExpressionError

MAX_STRING = 256
MAX_ITEMS = 256
MAX_INT = 2**53

ARGS = ("ev", "d", "customer", "contexts", "now", "ctx")
_CONSTANT_NAMES = {"true": True, "false": False, "null": None}
_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "_add",
    ast.Sub: "_sub",
    ast.Mult: "_mul",
    ast.Div: "_div",
    ast.FloorDiv: "_fdiv",
    ast.Mod: "_mod",
}
_ORDER: dict[type[ast.cmpop], str] = {ast.Lt: "_lt", ast.LtE: "_le", ast.Gt: "_gt", ast.GtE: "_ge"}

Evaluator = Callable[..., Any]
_Operand = tuple[ast.expr, str, ast.expr]  # compiled, its type, as written


@dataclass(frozen=True, slots=True)
class CompiledExpr:
    """A compiled expression: call ``fn(ev, d, customer, contexts, now, ctx)``."""

    source: str
    fn: Evaluator
    type: str
    tree: ast.expr = field(repr=False)  # the parsed (checked) source AST, for static analysis
    contexts: frozenset[str] = frozenset()
    scope: Scope | None = field(default=None, repr=False, compare=False)
    # What explain compiled from this expression on first use (parts, probes): never at load.
    memo: dict[str, list[CompiledExpr]] = field(default_factory=dict, repr=False, compare=False)

    def parts(self) -> list[CompiledExpr]:
        """The top-level 'and' operands compiled on their own, so explain can show each value."""
        tree = self.tree
        if not (isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And)) or not self.scope:
            return [self]
        if "parts" not in self.memo:
            self.memo["parts"] = [compile_expr(ast.unparse(v), self.scope) for v in tree.values]
        return self.memo["parts"]

    def probes(self) -> list[CompiledExpr]:
        """Its calls, comparison operands and data paths compiled on their own, outermost
        first, so explain can show why it has its value (``source`` is the text as written)."""
        if "probes" not in self.memo:
            found: list[CompiledExpr] = []
            for shown, node in interesting(self.tree, self.source) if self.scope else ():
                try:
                    sub = compile_expr(ast.unparse(node), self.scope or Scope())
                except ExpressionError:
                    continue  # a piece that only makes sense in place: nothing to show
                found.append(CompiledExpr(shown, sub.fn, sub.type, sub.tree, sub.contexts))
            self.memo["probes"] = found
        return self.memo["probes"]


class _Compiler(CallChecker):
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.globals: dict[str, Any] = {"__builtins__": {}, **runtime.HELPERS}
        self.contexts: set[str] = set()
        self._k = 0

    def _constant_slot(self, value: Any) -> ast.expr:
        self._k += 1
        name = f"_K{self._k}"
        self.globals[name] = value
        return ref(name)

    # -- entry ----------------------------------------------------------------------
    def visit(self, node: ast.AST, depth: int) -> tuple[ast.expr, str]:
        if depth > MAX_DEPTH:
            raise err(node, f"expression nests deeper than {MAX_DEPTH} levels")
        method = getattr(self, "v_" + type(node).__name__, None)
        if method is None:
            raise err(node, f"{describe(node)} is not allowed in expressions")
        result: tuple[ast.expr, str] = method(node, depth + 1)
        return result

    # -- leaves ---------------------------------------------------------------------
    def v_Constant(self, node: ast.Constant, depth: int) -> tuple[ast.expr, str]:
        v = node.value
        if v is None:
            return const(None), "null"
        if isinstance(v, bool):
            return const(v), "bool"
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                raise err(node, f"integer constant larger than 2**53: {v}")
            return const(v), "int"
        if isinstance(v, float):
            if not math.isfinite(v):
                raise err(node, "number constant out of range")
            return const(v), "float"
        if isinstance(v, str):
            if len(v) > MAX_STRING:
                raise err(node, f"string constant longer than {MAX_STRING} characters")
            return const(v), "str"
        raise err(node, f"constant of type {type(v).__name__} is not allowed")

    def v_Name(self, node: ast.Name, depth: int) -> tuple[ast.expr, str]:
        if node.id in _CONSTANT_NAMES:
            value = _CONSTANT_NAMES[node.id]
            return self.v_Constant(ast.Constant(value=value), depth)
        if node.id in WEEKDAYS:  # local_weekday()'s numbers, by name: nobody guesses 0
            return const(WEEKDAYS[node.id]), "int"
        return self._path(node, node, [])

    def v_Attribute(self, node: ast.Attribute, depth: int) -> tuple[ast.expr, str]:
        return self._chain(node, depth)

    def v_Subscript(self, node: ast.Subscript, depth: int) -> tuple[ast.expr, str]:
        return self._chain(node, depth)

    # -- operators ------------------------------------------------------------------
    def v_BoolOp(self, node: ast.BoolOp, depth: int) -> tuple[ast.expr, str]:
        parts = [self.visit(v, depth) for v in node.values]
        typ = "bool" if all(t == "bool" for _, t in parts) else "any"
        return ast.BoolOp(op=type(node.op)(), values=[p for p, _ in parts]), typ

    def v_UnaryOp(self, node: ast.UnaryOp, depth: int) -> tuple[ast.expr, str]:
        operand, typ = self.visit(node.operand, depth)
        if isinstance(node.op, ast.Not):
            return ast.UnaryOp(op=ast.Not(), operand=operand), "bool"
        if isinstance(node.op, ast.USub | ast.UAdd):
            if not (is_numeric(typ) or typ in ("any", "null")):
                raise err(node, f"sign applied to a {typ}")
            return (call("_neg", operand) if isinstance(node.op, ast.USub) else operand), typ
        raise err(node, f"{describe(node.op)} is not allowed in expressions")

    def v_BinOp(self, node: ast.BinOp, depth: int) -> tuple[ast.expr, str]:
        helper = _BINOPS.get(type(node.op))
        if helper is None:
            raise err(node, f"{describe(node.op)} is not allowed in expressions")
        left, lt = self.visit(node.left, depth)
        right, rt = self.visit(node.right, depth)
        typ = self._binop_type(node, helper, lt, rt)
        return call(helper, left, right), typ

    @staticmethod
    def _binop_type(node: ast.BinOp, helper: str, lt: str, rt: str) -> str:
        loose = {"any", "null"}
        if helper == "_add" and lt == "str" and rt in ("str", *loose):
            return "str"
        if helper == "_sub" and lt == "time" and rt == "time":
            return "float"
        if helper in ("_add", "_sub") and lt == "time" and (is_numeric(rt) or rt in loose):
            return "time"
        if (is_numeric(lt) or lt in loose) and (is_numeric(rt) or rt in loose):
            if helper == "_div":
                return "float"
            return "int" if lt == rt == "int" else ("any" if "any" in (lt, rt) else "number")
        raise err(node, f"{describe(node.op)} between {lt} and {rt} is not allowed")

    def v_Compare(self, node: ast.Compare, depth: int) -> tuple[ast.expr, str]:
        left, lt = self.visit(node.left, depth)
        written = node.left  # the source of the left operand, for hints on type errors
        pieces: list[ast.expr] = []
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right, rt = self._comparator(op, comp, depth)
            pieces.append(self._compare_one(node, op, (left, lt, written), (right, rt, comp)))
            left, lt, written = right, rt, comp
        if len(pieces) == 1:
            return pieces[0], "bool"
        return ast.BoolOp(op=ast.And(), values=pieces), "bool"

    def _comparator(self, op: ast.cmpop, comp: ast.expr, depth: int) -> tuple[ast.expr, str]:
        if isinstance(op, ast.In | ast.NotIn) and isinstance(comp, ast.List | ast.Tuple | ast.Set):
            items = [self.visit(e, depth) for e in comp.elts]
            if len(items) > MAX_ITEMS:
                raise err(comp, f"list longer than {MAX_ITEMS} items")
            if all(isinstance(e, ast.Constant) for e, _ in items):
                values = [e.value for e, _ in items if isinstance(e, ast.Constant)]
                kinds = {t for _, t in items}
                elem = kinds.pop() if len(kinds) == 1 else "any"
                return self._constant_slot(frozenset(values)), f"list:{elem}"
            return ast.List(elts=[e for e, _ in items], ctx=ast.Load()), "list"
        return self.visit(comp, depth)

    def _compare_one(
        self, node: ast.Compare, op: ast.cmpop, lhs: _Operand, rhs: _Operand
    ) -> ast.expr:
        left, lt, lsrc = lhs
        right, rt, rsrc = rhs
        if isinstance(op, ast.Eq | ast.NotEq):
            if not equatable(lt, rt):
                hint = compare_hint(lsrc, lt, rsrc, rt)
                raise err(node, f"comparing {lt} with {rt} is always false{hint}")
            return ast.Compare(left=left, ops=[type(op)()], comparators=[right])
        if isinstance(op, ast.Is | ast.IsNot):
            if not (isinstance(right, ast.Constant) and right.value is None):
                raise err(node, "'is' only compares with null; use == otherwise")
            return ast.Compare(left=left, ops=[type(op)()], comparators=[right])
        if isinstance(op, ast.In | ast.NotIn) and rt.startswith("map:"):
            if lt not in ("str", "int", "number", "any", "null"):
                raise err(node, f"a map's keys are text or whole numbers, never a {lt}")
            has = call("_mhas", left, right)
            return has if isinstance(op, ast.In) else ast.UnaryOp(op=ast.Not(), operand=has)
        if isinstance(op, ast.In | ast.NotIn):
            if rt.startswith("list:"):
                elem = rt[5:]
                if not equatable(lt, elem):
                    hint = membership_hint(rsrc, elem, lt)
                    raise err(node, f"a {lt} is never in a list of {elem}{hint}")
            elif rt not in ("list", "map", "str", "any", "null"):
                raise err(node, f"'in' needs a list, map or string on the right, not {rt}")
            return call("_in" if isinstance(op, ast.In) else "_nin", left, right)
        helper = _ORDER.get(type(op))
        if helper is None:
            raise err(node, f"{describe(op)} is not allowed in expressions")
        if not comparable(lt, rt):
            raise err(node, f"cannot order {lt} against {rt}{compare_hint(lsrc, lt, rsrc, rt)}")
        return call(helper, left, right)

    def v_IfExp(self, node: ast.IfExp, depth: int) -> tuple[ast.expr, str]:
        test, _ = self.visit(node.test, depth)
        body, bt = self.visit(node.body, depth)
        orelse, ot = self.visit(node.orelse, depth)
        return ast.IfExp(test=test, body=body, orelse=orelse), join(bt, ot)

    def v_List(self, node: ast.List, depth: int) -> tuple[ast.expr, str]:
        if len(node.elts) > MAX_ITEMS:
            raise err(node, f"list longer than {MAX_ITEMS} items")
        elts = [self.visit(e, depth)[0] for e in node.elts]
        return ast.List(elts=elts, ctx=ast.Load()), "list"

    v_Tuple = v_List


def compile_expr(text: str, scope: Scope, *, boolean: bool = False) -> CompiledExpr:
    """Compile expression text in a scope. ``boolean`` requires a condition-typed result."""
    tree = parse(text)
    comp = _Compiler(scope)
    body, typ = comp.visit(tree, 0)
    if typ.startswith(("list:", "map:")):
        typ = typ.partition(":")[0]
    if boolean and typ not in ("bool", "any", "null"):
        raise ExpressionError(
            f"a condition must be true or false, but this is a {typ}", tree.lineno, tree.col_offset
        )
    fn = _build(body, comp.globals)
    return CompiledExpr(text, fn, typ, tree, frozenset(comp.contexts), scope)


def compile_all(
    exprs: list[CompiledExpr], window: tuple[float, float] | None = None
) -> Evaluator | None:
    """All conditions of a rule as one function: one call per rule on the hot path.

    The expressions were compiled (and checked) already; their source trees are compiled
    again together, under one set of globals, joined with ``and``. A campaign ``window``
    (start, end) goes first, as ``start <= now < end``: two float comparisons, and outside
    the campaign nothing else is evaluated.
    """
    if not exprs and window is None:
        return None
    if len(exprs) == 1 and window is None:
        return exprs[0].fn
    comp = _Compiler((exprs[0].scope if exprs else None) or Scope())
    bodies = [comp.visit(e.tree, 0)[0] for e in exprs]
    if window is not None:
        start, end = window
        bodies.insert(0, ast.Compare(left=const(start), ops=[ast.LtE(), ast.Lt()],
                                     comparators=[ref("now"), const(end)]))
    body = bodies[0] if len(bodies) == 1 else ast.BoolOp(op=ast.And(), values=bodies)
    return _build(body, comp.globals)


def _build(body: ast.expr, globals_: dict[str, Any]) -> Evaluator:
    func = ast.FunctionDef(
        name="_tact_expr",
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=a) for a in ARGS],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=[ast.Return(value=body)],
        decorator_list=[],
    )
    module = ast.Module(body=[func], type_ignores=[])
    ast.fix_missing_locations(module)
    code = compile(module, "<tact-expression>", "exec")
    # Build the function from its code object directly: no exec, no eval, no builtins.
    fn_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    return types.FunctionType(fn_code, globals_)
