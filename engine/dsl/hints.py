"""How to fix a type error: the compiler says what is wrong, these say what to change.

Only the common slips are recognised (a quoted number, a quoted boolean, a data field
declared with one type and compared with another, a time compared with a number or with a
quoted date, a quoted weekday name); for
anything else the hint is empty and the error stands on its own.
"""

from __future__ import annotations

import ast
import math

from engine.dsl.calendar import WEEKDAYS
from engine.dsl.types import NUMERIC

_DECLARED_IN = {
    "customer.attributes.": "under attributes:",
    "event.data.": "in the event type's data:",
}


def compare_hint(left: ast.expr, lt: str, right: ast.expr, rt: str) -> str:
    """': <what to change>' for a comparison of ``left`` (type ``lt``) with ``right``, or ''."""
    for this, other_t in ((left, rt), (right, lt)):
        quoted = _quoted(this)
        if quoted is None:
            continue
        if other_t in NUMERIC and _is_number(quoted):
            return f": remove the quotes around {quoted!r} to compare numbers"
        if other_t == "bool" and quoted in ("true", "false"):
            return f": remove the quotes around {quoted!r} to compare with a boolean"
        if other_t in NUMERIC and quoted.lower() in WEEKDAYS:
            return f": weekdays are numbers, write {quoted.lower()} without quotes"
        if other_t == "time" and quoted[:4].isdigit() and quoted[4:5] == "-":
            return f": write a time as {'date' if len(quoted) == 10 else 'datetime'}({quoted!r})"
    for this, this_t, other, other_t in ((left, lt, right, rt), (right, rt, left, lt)):
        number = _number(other)
        if this_t == "str" and number is not None:
            where = _declared_in(this)
            fix = f"quote the number ('{number}')"
            if where:
                fix += f", or declare {ast.unparse(this).rsplit('.', 1)[-1]} as a number {where}"
            return f": {ast.unparse(this)} is a str, so {fix}"
        if this_t in NUMERIC and isinstance(other, ast.Constant) and isinstance(other.value, str):
            where = _declared_in(this)
            fix = f"compare it with a number, or declare it as a str {where}" if where else ""
            return f": {ast.unparse(this)} is a number" + (f"; {fix}" if fix else "")
        if this_t == "time" and other_t in NUMERIC:
            return (
                f": {ast.unparse(this)} is a time; for an age in hours write "
                f"hours_since({ast.unparse(this)})"
            )
    return ""


def membership_hint(items: ast.expr, elem: str, lt: str) -> str:
    """': <what to change>' for ``x in [...]`` where the list's items are of the wrong type."""
    if not isinstance(items, ast.List | ast.Tuple | ast.Set):
        return ""
    quoted = [q for e in items.elts if (q := _quoted(e)) is not None]
    if lt in NUMERIC and elem == "str" and quoted and all(_is_number(q) for q in quoted):
        return ": remove the quotes around the numbers in the list"
    if lt in NUMERIC and elem == "str" and quoted and all(q.lower() in WEEKDAYS for q in quoted):
        names = ", ".join(q.lower() for q in quoted)
        return f": weekdays are numbers, write {names} without quotes"
    if lt == "str" and elem in NUMERIC:
        return ": quote the items of the list"
    return ""


def _quoted(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _number(node: ast.expr) -> str | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else "-" + inner
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return None


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _declared_in(node: ast.expr) -> str:
    text = ast.unparse(node)
    for prefix, where in _DECLARED_IN.items():
        if text.startswith(prefix) and text.count(".") == 2:
            return where
    return ""
