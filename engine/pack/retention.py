"""History retention follows the pack: sent messages are kept at least as long as any
cooldown, frequency cap window or history lookback (``sent_count(..., '60d')``) needs.

Without this a 60-day cooldown would silently end when the record is pruned (35 days by
default). A ``settings.history_retention`` shorter than the pack needs is an error.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from engine.dsl.durations import format_duration
from engine.dsl.timefns import duration_arg
from engine.errors import SourceLocation

# functions that look back over the sent history, and the index of their window argument
LOOKBACKS = {"sent_count": 1, "category_sent_count": 1}


@dataclass(frozen=True, slots=True)
class Need:
    """Something in the pack that reads sent history this far back."""

    seconds: float
    what: str  # e.g. "message 'referral_invite' has a 60d cooldown"
    location: SourceLocation | None


@dataclass(frozen=True, slots=True)
class Lookback:
    seconds: float
    function: str
    line: int  # of the call in the expression text (1-based), as ExpressionError gives it
    column: int  # 0-based


def lookbacks(tree: ast.expr, constants: dict[str, Any]) -> list[Lookback]:
    """The history windows the calls in an expression read.

    ``constants`` are the pack's, by name, as an expression sees them (``const.x``).
    """
    out: list[Lookback] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        index = LOOKBACKS.get(node.func.id)
        if index is None or len(node.args) <= index:
            continue
        arg = node.args[index]
        if isinstance(arg, ast.Constant):
            value = arg.value
        elif (isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name)
              and arg.value.id == "const" and arg.attr in constants):
            value = constants[arg.attr]
        else:
            continue  # the compiler has rejected it already
        try:
            seconds = duration_arg(value)
        except ValueError:
            continue
        out.append(Lookback(seconds, node.func.id, node.lineno, node.col_offset))
    return out


def longest(needs: list[Need]) -> Need | None:
    return max(needs, key=lambda n: n.seconds, default=None)


def too_short(setting: float, need: Need) -> str:
    where = f" ({need.location})" if need.location else ""
    return (
        f"history_retention {format_duration(setting)} is shorter than the pack needs: "
        f"{need.what}{where}; set at least {format_duration(need.seconds)}, or leave "
        "history_retention out (it follows the pack)"
    )
