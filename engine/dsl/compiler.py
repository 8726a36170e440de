"""Compile the expression language: parse to an AST, allow a whitelist, type-check, compile.

Expressions use a small subset of Python's syntax. Raw text is never evaluated: Python's
parser gives an AST, every node is checked against a whitelist and rewritten into a new
AST that only calls the helpers in :mod:`engine.dsl.runtime` and the whitelisted
functions, and that AST is compiled once, at load, to a function with no builtins.

Names: ``event``, ``customer``, ``context``, ``now`` and the constants ``true``, ``false``,
``null``. Attribute access only walks data (dicts), never Python objects, and a missing
field is ``null``.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.dsl import runtime
from engine.dsl.functions import FUNCTIONS
from engine.dsl.types import Scope, comparable, equatable, is_numeric, join
from engine.errors import ExpressionError

MAX_LENGTH = 2000
MAX_DEPTH = 32
MAX_STRING = 256
MAX_ITEMS = 256
MAX_INT = 2**53

ARGS = ("ev", "d", "cu", "cx", "now", "ctx")
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


@dataclass(frozen=True, slots=True)
class CompiledExpr:
    """A compiled expression: call ``fn(ev, d, cu, cx, now, ctx)``."""

    source: str
    fn: Evaluator
    type: str
    tree: ast.expr = field(repr=False)  # the parsed (checked) source AST, for static analysis
    contexts: frozenset[str] = frozenset()
    scope: Scope | None = field(default=None, repr=False, compare=False)

    def parts(self) -> list[CompiledExpr]:
        """The top-level 'and' operands compiled on their own, so explain can show each value."""
        tree = self.tree
        if not (isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And)) or not self.scope:
            return [self]
        return [compile_expr(ast.unparse(v), self.scope) for v in tree.values]


def _err(node: ast.AST, message: str) -> ExpressionError:
    line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
    end_line, end_col = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
    # Point at the offending name in a chain (event.data.__class__), not at its start.
    if isinstance(node, ast.Attribute) and end_line == line and end_col is not None:
        col = end_col - len(node.attr)
    return ExpressionError(message, line, col)


def _call(name: str, *args: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


def _const(value: Any) -> ast.expr:
    return ast.Constant(value=value)


def _dict_get(obj: ast.expr, key: str, default: Any = None) -> ast.expr:
    args: list[ast.expr] = [_const(key)]
    if default is not None:
        args.append(_const(default))
    return ast.Call(
        func=ast.Attribute(value=obj, attr="get", ctx=ast.Load()), args=args, keywords=[]
    )


def _subscript(obj: ast.expr, key: str) -> ast.expr:
    return ast.Subscript(value=obj, slice=_const(key), ctx=ast.Load())


def _name(n: str) -> ast.expr:
    return ast.Name(id=n, ctx=ast.Load())


class _Compiler:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.globals: dict[str, Any] = {"__builtins__": {}, **runtime.HELPERS}
        self.contexts: set[str] = set()
        self._k = 0

    def _constant_slot(self, value: Any) -> ast.expr:
        self._k += 1
        name = f"_K{self._k}"
        self.globals[name] = value
        return _name(name)

    # -- entry ----------------------------------------------------------------------
    def visit(self, node: ast.AST, depth: int) -> tuple[ast.expr, str]:
        if depth > MAX_DEPTH:
            raise _err(node, f"expression nests deeper than {MAX_DEPTH} levels")
        method = getattr(self, "v_" + type(node).__name__, None)
        if method is None:
            raise _err(node, f"{_describe(node)} is not allowed in expressions")
        result: tuple[ast.expr, str] = method(node, depth + 1)
        return result

    # -- leaves ---------------------------------------------------------------------
    def v_Constant(self, node: ast.Constant, depth: int) -> tuple[ast.expr, str]:
        v = node.value
        if v is None:
            return _const(None), "null"
        if isinstance(v, bool):
            return _const(v), "bool"
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                raise _err(node, f"integer constant larger than 2**53: {v}")
            return _const(v), "int"
        if isinstance(v, float):
            return _const(v), "float"
        if isinstance(v, str):
            if len(v) > MAX_STRING:
                raise _err(node, f"string constant longer than {MAX_STRING} characters")
            return _const(v), "str"
        raise _err(node, f"constant of type {type(v).__name__} is not allowed")

    def v_Name(self, node: ast.Name, depth: int) -> tuple[ast.expr, str]:
        if node.id in _CONSTANT_NAMES:
            value = _CONSTANT_NAMES[node.id]
            return self.v_Constant(ast.Constant(value=value), depth)
        return self._path(node, node, [])

    def v_Attribute(self, node: ast.Attribute, depth: int) -> tuple[ast.expr, str]:
        return self._chain(node, depth)

    def v_Subscript(self, node: ast.Subscript, depth: int) -> tuple[ast.expr, str]:
        return self._chain(node, depth)

    # -- data paths -----------------------------------------------------------------
    def _chain(self, node: ast.expr, depth: int) -> tuple[ast.expr, str]:
        keys: list[tuple[ast.AST, str | int]] = []
        cur: ast.expr = node
        while True:
            if isinstance(cur, ast.Attribute):
                if cur.attr.startswith("_"):
                    raise _err(cur, f"access to '{cur.attr}' is not allowed")
                keys.append((cur, cur.attr))
                cur = cur.value
            elif isinstance(cur, ast.Subscript):
                sl = cur.slice
                if (
                    not isinstance(sl, ast.Constant)
                    or isinstance(sl.value, bool)
                    or not (isinstance(sl.value, str | int))
                ):
                    raise _err(cur, "subscripts must be a constant string or integer")
                if isinstance(sl.value, str) and sl.value.startswith("_"):
                    raise _err(cur, f"access to '{sl.value}' is not allowed")
                keys.append((cur, sl.value))
                cur = cur.value
            else:
                break
        keys.reverse()
        if not isinstance(cur, ast.Name):
            self.visit(cur, depth)  # a forbidden call or name below is the clearer error
            raise _err(cur, "attributes can only be read from event, customer or context")
        if depth + len(keys) > MAX_DEPTH:
            raise _err(node, f"expression nests deeper than {MAX_DEPTH} levels")
        return self._path(node, cur, keys)

    def _path(
        self, node: ast.expr, root: ast.Name, keys: list[tuple[ast.AST, str | int]]
    ) -> tuple[ast.expr, str]:
        name = root.id
        if name == "now":
            if keys:
                raise _err(keys[0][0], "now is a time and has no fields")
            return _name("now"), "time"
        if name == "event":
            return self._event(root, keys)
        if name == "customer":
            return self._customer(root, keys)
        if name == "context":
            return self._context(root, keys)
        if name.startswith("_"):
            raise _err(root, f"name '{name}' is not allowed")
        if name in FUNCTIONS:
            raise _err(root, f"'{name}' is a function: call it as {name}(...)")
        raise _err(root, f"unknown name '{name}' (use event, customer, context or now)")

    def _rest(
        self, base: ast.expr, typ: str, keys: list[tuple[ast.AST, str | int]]
    ) -> tuple[ast.expr, str]:
        """Walk into user data below a declared field: null-safe, untyped."""
        for node, key in keys:
            if typ not in ("map", "list", "any"):
                raise _err(node, f"a value of type {typ} has no field '{key}'")
            base = (
                _call("_g", base, _const(key))
                if isinstance(key, str)
                else _call("_idx", base, _const(key))
            )
            typ = "any"
        return base, typ

    def _event(self, root: ast.Name, keys: list[tuple[ast.AST, str | int]]) -> tuple[ast.expr, str]:
        if not keys:
            raise _err(root, "name a field of the event, e.g. event.type or event.data.x")
        node, key = keys[0]
        if key in ("id", "customer", "type"):
            return self._rest(_subscript(_name("ev"), str(key)), "str", keys[1:])
        if key in ("at", "received"):
            return self._rest(_subscript(_name("ev"), str(key)), "time", keys[1:])
        if key != "data":
            raise _err(node, f"the event has no field '{key}' (id, customer, type, at, data)")
        if len(keys) == 1:
            return _name("d"), "map"
        fnode, fkey = keys[1]
        if not isinstance(fkey, str):
            raise _err(fnode, "event.data fields are named, not indexed")
        declared = self.scope.event_data
        if declared is None:
            typ = "any"
        elif fkey in declared:
            typ = declared[fkey]
        else:
            known = ", ".join(sorted(declared)) or "none"
            raise _err(fnode, f"unknown field event.data.{fkey} for the trigger (known: {known})")
        return self._rest(_dict_get(_name("d"), fkey), typ, keys[2:])

    def _customer(
        self, root: ast.Name, keys: list[tuple[ast.AST, str | int]]
    ) -> tuple[ast.expr, str]:
        if not keys:
            raise _err(root, "name a field of the customer, e.g. customer.attributes.segment")
        node, section = keys[0]
        if section == "id":
            return self._rest(_subscript(_name("cu"), "id"), "str", keys[1:])
        sections = ("attributes", "consent", "counters", "windows", "timestamps")
        if section not in sections:
            raise _err(node, f"the customer has no field '{section}' ({', '.join(sections)}, id)")
        if len(keys) == 1:
            raise _err(node, f"name one of customer.{section}'s fields")
        fnode, fkey = keys[1]
        if not isinstance(fkey, str):
            raise _err(fnode, f"customer.{section} fields are named, not indexed")
        base = _subscript(_name("cu"), str(section))
        s = self.scope
        if section == "attributes":
            attrs = s.attributes
            if attrs is not None and fkey not in attrs:
                raise _err(fnode, f"unknown attribute '{fkey}' (declare it under attributes:)")
            typ = "any" if attrs is None else attrs[fkey]
            return self._rest(_dict_get(base, fkey), typ, keys[2:])
        if section == "consent":
            if s.channels and fkey not in s.channels:
                raise _err(fnode, f"unknown channel '{fkey}'")
            return self._rest(_dict_get(base, fkey, False), "bool", keys[2:])
        known = {"counters": s.counters, "windows": s.windows, "timestamps": s.timestamps}[
            str(section)
        ]
        if fkey not in known:
            raise _err(
                fnode, f"unknown {str(section)[:-1]} '{fkey}' (declare it in a state update)"
            )
        if section == "timestamps":
            return self._rest(_dict_get(base, fkey), "time", keys[2:])
        typ = "int" if section == "windows" else "float"
        return self._rest(_dict_get(base, fkey, 0), typ, keys[2:])

    def _context(
        self, root: ast.Name, keys: list[tuple[ast.AST, str | int]]
    ) -> tuple[ast.expr, str]:
        if len(keys) != 1 or not isinstance(keys[0][1], str):
            raise _err(root, "name one context, e.g. context.in_transit")
        node, key = keys[0]
        if key not in self.scope.contexts:
            raise _err(node, f"unknown context '{key}' (declare it under contexts:)")
        self.contexts.add(key)
        return ast.Compare(left=_const(key), ops=[ast.In()], comparators=[_name("cx")]), "bool"

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
                raise _err(node, f"sign applied to a {typ}")
            return (_call("_neg", operand) if isinstance(node.op, ast.USub) else operand), typ
        raise _err(node, f"{_describe(node.op)} is not allowed in expressions")

    def v_BinOp(self, node: ast.BinOp, depth: int) -> tuple[ast.expr, str]:
        helper = _BINOPS.get(type(node.op))
        if helper is None:
            raise _err(node, f"{_describe(node.op)} is not allowed in expressions")
        left, lt = self.visit(node.left, depth)
        right, rt = self.visit(node.right, depth)
        typ = self._binop_type(node, helper, lt, rt)
        return _call(helper, left, right), typ

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
        raise _err(node, f"{_describe(node.op)} between {lt} and {rt} is not allowed")

    def v_Compare(self, node: ast.Compare, depth: int) -> tuple[ast.expr, str]:
        left, lt = self.visit(node.left, depth)
        pieces: list[ast.expr] = []
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right, rt = self._comparator(op, comp, depth)
            pieces.append(self._compare_one(node, op, left, lt, right, rt))
            left, lt = right, rt
        if len(pieces) == 1:
            return pieces[0], "bool"
        return ast.BoolOp(op=ast.And(), values=pieces), "bool"

    def _comparator(self, op: ast.cmpop, comp: ast.expr, depth: int) -> tuple[ast.expr, str]:
        if isinstance(op, ast.In | ast.NotIn) and isinstance(comp, ast.List | ast.Tuple | ast.Set):
            items = [self.visit(e, depth) for e in comp.elts]
            if len(items) > MAX_ITEMS:
                raise _err(comp, f"list longer than {MAX_ITEMS} items")
            if all(isinstance(e, ast.Constant) for e, _ in items):
                values = [e.value for e, _ in items if isinstance(e, ast.Constant)]
                kinds = {t for _, t in items}
                elem = kinds.pop() if len(kinds) == 1 else "any"
                return self._constant_slot(frozenset(values)), f"list:{elem}"
            return ast.List(elts=[e for e, _ in items], ctx=ast.Load()), "list"
        return self.visit(comp, depth)

    def _compare_one(
        self, node: ast.Compare, op: ast.cmpop, left: ast.expr, lt: str, right: ast.expr, rt: str
    ) -> ast.expr:
        if isinstance(op, ast.Eq | ast.NotEq):
            if not equatable(lt, rt):
                raise _err(node, f"comparing {lt} with {rt} is always false")
            return ast.Compare(left=left, ops=[type(op)()], comparators=[right])
        if isinstance(op, ast.Is | ast.IsNot):
            if not (isinstance(right, ast.Constant) and right.value is None):
                raise _err(node, "'is' only compares with null; use == otherwise")
            return ast.Compare(left=left, ops=[type(op)()], comparators=[right])
        if isinstance(op, ast.In | ast.NotIn):
            if rt.startswith("list:"):
                elem = rt[5:]
                if not equatable(lt, elem):
                    raise _err(node, f"a {lt} is never in a list of {elem}")
            elif rt not in ("list", "map", "str", "any", "null"):
                raise _err(node, f"'in' needs a list, map or string on the right, not {rt}")
            return _call("_in" if isinstance(op, ast.In) else "_nin", left, right)
        helper = _ORDER.get(type(op))
        if helper is None:
            raise _err(node, f"{_describe(op)} is not allowed in expressions")
        if not comparable(lt, rt):
            raise _err(node, f"cannot order {lt} against {rt}")
        return _call(helper, left, right)

    def v_IfExp(self, node: ast.IfExp, depth: int) -> tuple[ast.expr, str]:
        test, _ = self.visit(node.test, depth)
        body, bt = self.visit(node.body, depth)
        orelse, ot = self.visit(node.orelse, depth)
        return ast.IfExp(test=test, body=body, orelse=orelse), join(bt, ot)

    def v_List(self, node: ast.List, depth: int) -> tuple[ast.expr, str]:
        if len(node.elts) > MAX_ITEMS:
            raise _err(node, f"list longer than {MAX_ITEMS} items")
        elts = [self.visit(e, depth)[0] for e in node.elts]
        return ast.List(elts=elts, ctx=ast.Load()), "list"

    v_Tuple = v_List

    # -- calls ----------------------------------------------------------------------
    def v_Call(self, node: ast.Call, depth: int) -> tuple[ast.expr, str]:
        if not isinstance(node.func, ast.Name):
            self.visit(node.func, depth)  # report a lambda or a forbidden name precisely
            raise _err(node.func, "only the built-in functions can be called, by name")
        name = node.func.id
        if name.startswith("_"):
            raise _err(node.func, f"name '{name}' is not allowed")
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise _err(node.func, f"unknown function '{name}'{_suggest(name)}")
        if node.keywords:
            raise _err(node.keywords[0], f"{name}() takes positional arguments only")
        nargs = len(node.args)
        most = None if spec.variadic else len(spec.params)
        if nargs < spec.min_args or (most is not None and nargs > most):
            want = (
                f"{spec.min_args}"
                if most == spec.min_args
                else (f"{spec.min_args} or more" if most is None else f"{spec.min_args} to {most}")
            )
            raise _err(node, f"{name}() takes {want} argument(s), got {nargs}")
        args: list[ast.expr] = [_name(n) for n in spec.needs]
        types_: list[str] = []
        for i, a in enumerate(node.args):
            prep = (spec.constant_args or {}).get(i)
            if prep is not None:
                if not isinstance(a, ast.Constant):
                    raise ExpressionError(
                        f"argument {i + 1} of {name}() must be a constant", a.lineno, a.col_offset
                    )
                try:
                    prepared = prep(a.value)
                except ValueError as exc:
                    raise _err(a, f"{name}(): {exc}") from None
                args.append(self._constant_slot(prepared))
                types_.append("str")
                continue
            expr, typ = self.visit(a, depth)
            accepted = spec.params[min(i, len(spec.params) - 1)]
            if typ.startswith("list:"):
                typ = "list"
            if typ not in accepted:
                raise _err(a, f"argument {i + 1} of {name}() cannot be a {typ}")
            args.append(expr)
            types_.append(typ)
        if name == "duration" and isinstance(args[0], ast.Name):
            return _const(self.globals[args[0].id]), "float"
        self.globals["F_" + name] = spec.impl
        returns = spec.returns
        if name == "coalesce":
            returns = types_[0]
            for t in types_[1:]:
                returns = join(returns, t)
        return _call("F_" + name, *args), returns


def _describe(node: ast.AST) -> str:
    names = {
        "Lambda": "a lambda",
        "ListComp": "a comprehension",
        "SetComp": "a comprehension",
        "DictComp": "a comprehension",
        "GeneratorExp": "a generator expression",
        "NamedExpr": "an assignment expression",
        "JoinedStr": "an f-string",
        "Dict": "a dict literal",
        "Set": "a set literal",
        "Starred": "unpacking",
        "Await": "await",
        "Yield": "yield",
        "YieldFrom": "yield",
        "Pow": "the power operator",
        "MatMult": "the @ operator",
        "BitAnd": "a bitwise operator",
        "BitOr": "a bitwise operator",
        "BitXor": "a bitwise operator",
        "LShift": "a shift operator",
        "RShift": "a shift operator",
        "Invert": "the ~ operator",
        "Slice": "a slice",
        "keyword": "a keyword argument",
    }
    return names.get(type(node).__name__, type(node).__name__)


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse(text: str) -> ast.expr:
    """Parse expression text to Python's AST, translating syntax errors.

    A multi-line expression (a YAML block) is read as if in parentheses, so that lines
    continue naturally; positions still refer to the text as written.
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    body = text.strip("\n")
    if not body.strip():
        raise ExpressionError("empty expression")
    multiline = "\n" in body
    if multiline:
        _check_brackets(body)
    try:
        tree = ast.parse("(\n" + body + "\n)" if multiline else body, mode="eval")
    except SyntaxError as exc:
        msg = exc.msg or "invalid syntax"
        line = (exc.lineno or 1) - (1 if multiline else 0)
        lines = body.splitlines() or [""]
        line = min(max(line, 1), len(lines))
        # Python reports "unexpected end" with no offset: point past the last character.
        col = exc.offset - 1 if exc.offset else len(lines[line - 1])
        raise ExpressionError(f"syntax error: {msg}", line, col) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("expression is too deeply nested") from None
    if multiline:
        ast.increment_lineno(tree, -1)
    return tree.body


def _check_brackets(body: str) -> None:
    """Refuse text whose brackets close before they open: wrapping must not change meaning."""
    import io
    import tokenize

    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(body).readline):
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
                if depth < 0:
                    raise ExpressionError(
                        f"syntax error: unmatched '{tok.string}'", tok.start[0], tok.start[1]
                    )
    except (tokenize.TokenError, SyntaxError):
        return  # incomplete input: the parser gives the precise error


def compile_expr(text: str, scope: Scope, *, boolean: bool = False) -> CompiledExpr:
    """Compile expression text in a scope. ``boolean`` requires a condition-typed result."""
    tree = parse(text)
    comp = _Compiler(scope)
    body, typ = comp.visit(tree, 0)
    if typ.startswith("list:"):
        typ = "list"
    if boolean and typ not in ("bool", "any", "null"):
        raise ExpressionError(
            f"a condition must be true or false, but this is a {typ}", tree.lineno, tree.col_offset
        )
    fn = _build(body, comp.globals)
    return CompiledExpr(text, fn, typ, tree, frozenset(comp.contexts), scope)


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
