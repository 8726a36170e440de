"""Parsing expression text, and small builders for the AST the compiler emits."""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from collections.abc import Iterable
from typing import Any

from engine.errors import ExpressionError

MAX_LENGTH = 2000
MAX_DEPTH = 32


def err(node: ast.AST, message: str) -> ExpressionError:
    line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
    end_line, end_col = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
    # Point at the offending name in a chain (event.data.__class__), not at its start.
    if isinstance(node, ast.Attribute) and end_line == line and end_col is not None:
        col = end_col - len(node.attr)
    return ExpressionError(message, line, col)


def call(name: str, *args: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


def const(value: Any) -> ast.expr:
    return ast.Constant(value=value)


def dict_get(obj: ast.expr, key: str, default: Any = None) -> ast.expr:
    args: list[ast.expr] = [const(key)]
    if default is not None:
        args.append(const(default))
    return ast.Call(
        func=ast.Attribute(value=obj, attr="get", ctx=ast.Load()), args=args, keywords=[]
    )


def subscript(obj: ast.expr, key: str) -> ast.expr:
    return ast.Subscript(value=obj, slice=const(key), ctx=ast.Load())


def ref(n: str) -> ast.expr:
    return ast.Name(id=n, ctx=ast.Load())


def describe(node: ast.AST) -> str:
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


def suggest(name: str, candidates: Iterable[str] | None = None) -> str:
    """"; did you mean 'x'?" for the closest of ``candidates`` (default: the functions), or ""."""
    if candidates is None:
        from engine.dsl.functions import FUNCTIONS  # late: functions imports nothing from here

        candidates = FUNCTIONS
    close = difflib.get_close_matches(name, sorted(candidates), n=1)
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
