"""What `tact explain` shows inside a condition: the values of its sub-expressions.

A condition's value alone ("-> False") does not say why; the values of the calls, the
operands of comparisons and the data paths it reads do ("hours_since(...) = 97.2"). Only
the trace path uses this: the sub-expressions are compiled on first use, never at load and
never on the hot path.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from typing import Any

MAX_PROBES = 12  # per condition: enough for any readable rule, bounded for any other

_SHOWN = (
    ast.Call,
    ast.Attribute,
    ast.Subscript,
    ast.BinOp,
    ast.Compare,
    ast.BoolOp,
    ast.UnaryOp,
    ast.IfExp,
)
_LITERALS = ("true", "false", "null")


def interesting(tree: ast.expr, text: str) -> list[tuple[str, ast.expr]]:
    """The sub-expressions of ``tree`` worth a value, outermost first, each with its text
    as written in ``text`` (the condition's source); the whole expression is not one."""
    out: list[tuple[str, ast.expr]] = []
    seen = {_text(tree, text)}

    def walk(node: ast.AST, top: bool) -> None:
        if len(out) >= MAX_PROBES or isinstance(node, ast.Constant):
            return
        if isinstance(node, ast.Name):
            return  # a root (event, customer...) or a literal: nothing to show alone
        if not top and isinstance(node, _SHOWN):
            shown = _text(node, text)
            if shown not in seen:
                seen.add(shown)
                out.append((shown, node))
        if isinstance(node, ast.Attribute | ast.Subscript):
            return  # customer.attributes alone is not an expression of the language
        if isinstance(node, ast.Call):
            children: list[ast.AST] = list(node.args)
        else:
            children = list(ast.iter_child_nodes(node))
        for child in children:
            walk(child, False)

    walk(tree, True)
    return out


def _text(node: ast.expr, text: str) -> str:
    body = text.strip("\n")
    segment = ast.get_source_segment(body, node)
    if segment is None or "\n" in segment:
        return ast.unparse(node)
    return segment


def show(value: Any, typ: str) -> str:
    """A value as an author reads it: times in ISO 8601 (UTC), numbers rounded, null."""
    if value is None:
        return "null"
    if typ == "time" and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return repr(value)
    if isinstance(value, float):
        return repr(round(value, 3))
    if isinstance(value, frozenset | set):
        return repr(sorted(value, key=repr))
    return repr(value)
