"""Static findings on a compiled pack: what can be known wrong without running it.

These are warnings: the pack still loads. ``tact rules check --strict`` fails on them.
"""

from __future__ import annotations

import ast
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from engine.errors import RuleIssue, SourceLocation
from engine.pack.model import CompiledRule, RulePack


def static_findings(pack: RulePack, where: dict[str, SourceLocation]) -> list[RuleIssue]:
    out: list[RuleIssue] = []

    def warn(msg: str, rule: str | None, code: str, loc: SourceLocation | None = None) -> None:
        out.append(RuleIssue(msg, loc or where.get(rule or ""), rule, "warning", code))

    declared = set(pack.event_types)
    sent: set[str] = {c.rule.message.id for c in pack.campaigns.values()}
    for r in pack.rules:
        sent.add(r.message.id)
        if declared:
            unknown = [t for t in r.triggers if t not in declared]
            if unknown and len(unknown) == len(r.triggers):
                warn(
                    f"can never fire: event type(s) {', '.join(unknown)} are not declared "
                    "under events:",
                    r.id,
                    "never-fires",
                )
            elif unknown:
                warn(
                    f"event type(s) {', '.join(unknown)} are not declared under events:",
                    r.id,
                    "unknown-event",
                )
        why = contradiction(r)
        if why:
            warn(
                f"can never fire: its conditions contradict each other ({why})", r.id, "never-fires"
            )
    for mid, m in pack.messages.items():
        if mid not in sent:
            warn(f"message '{mid}' is not sent by any rule or campaign", None,
                 "unused-message", m.location)
    ties: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    for r in pack.rules:
        if r.delay is not None:
            continue
        for t in r.triggers:
            for ch in r.channels:
                ties[(t, ch, r.priority)].append(r.id)
    for (t, ch, prio), ids in sorted(ties.items()):
        if len(ids) > 1:
            warn(
                f"priority tie: rules {', '.join(ids)} all have priority {prio} on {t} via {ch}; "
                "the earlier rule in the pack wins",
                ids[1],
                "priority-tie",
            )
    used = {c for r in pack.rules for e in r.conditions for c in e.contexts}
    used |= {c for p in pack.policies for c in p.condition.contexts}
    started = {c.context for lst in pack.context_starts.values() for c in lst}
    for name in sorted(pack.contexts):
        if name not in used:
            warn(
                f"context '{name}' is declared but no rule or policy reads it",
                None,
                "unused-context",
            )
        if name not in started:
            warn(f"context '{name}' is never started by any event", None, "unknown-context")
    return out


@dataclass
class _Range:
    lo: float = -math.inf
    lo_strict: bool = False
    hi: float = math.inf
    hi_strict: bool = False
    eq: set[Any] = field(default_factory=set)
    ne: set[Any] = field(default_factory=set)
    within: set[Any] | None = None

    def empty(self) -> str | None:
        if len(self.eq) > 1:
            return "equal to " + " and ".join(map(repr, sorted(self.eq, key=repr)))
        if self.lo > self.hi or (self.lo == self.hi and (self.lo_strict or self.hi_strict)):
            return f"no number is both above {self.lo:g} and below {self.hi:g}"
        if self.within is not None and not self.within:
            return "the allowed lists have nothing in common"
        for v in self.eq:
            if v in self.ne:
                return f"both equal and not equal to {v!r}"
            if self.within is not None and v not in self.within:
                return f"{v!r} is not in the allowed list"
            if isinstance(v, int | float) and not isinstance(v, bool) and not self._inside(v):
                return f"{v!r} is outside the allowed range"
        return None

    def _inside(self, v: float) -> bool:
        lo_ok = v > self.lo if self.lo_strict else v >= self.lo
        hi_ok = v < self.hi if self.hi_strict else v <= self.hi
        return lo_ok and hi_ok


_FLIP = {
    ast.Lt: ast.Gt,
    ast.LtE: ast.GtE,
    ast.Gt: ast.Lt,
    ast.GtE: ast.LtE,
    ast.Eq: ast.Eq,
    ast.NotEq: ast.NotEq,
}


def _conjuncts(tree: ast.expr) -> list[ast.expr]:
    if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And):
        return [c for v in tree.values for c in _conjuncts(v)]
    return [tree]


def _is_const(n: ast.expr) -> bool:
    return isinstance(n, ast.Constant) or (
        isinstance(n, ast.Name) and n.id in ("true", "false", "null")
    )


def _value(n: ast.expr) -> Any:
    if isinstance(n, ast.Name):
        return {"true": True, "false": False, "null": None}[n.id]
    return n.value if isinstance(n, ast.Constant) else None


def contradiction(rule: CompiledRule) -> str | None:
    """A reason the rule's conditions can never all hold, where that is decidable."""
    ranges: dict[str, _Range] = defaultdict(_Range)
    for cond in rule.conditions:
        for c in _conjuncts(cond.tree):
            if _is_const(c) and not _value(c):
                return f"'{ast.unparse(c)}' is always false"
            if not isinstance(c, ast.Compare) or len(c.ops) != 1:
                continue
            left, op, right = c.left, c.ops[0], c.comparators[0]
            if _is_const(left) and not _is_const(right):
                flipped = _FLIP.get(type(op))
                if flipped is None:
                    continue
                left, right, op = right, left, flipped()
            if _is_const(left) or not isinstance(left, ast.Attribute | ast.Name | ast.Subscript):
                continue
            key = ast.unparse(left)
            rng = ranges[key]
            if isinstance(op, ast.In | ast.NotIn) and isinstance(right, ast.List | ast.Tuple):
                if all(_is_const(e) for e in right.elts):
                    vals = {_value(e) for e in right.elts}
                    if isinstance(op, ast.In):
                        rng.within = vals if rng.within is None else rng.within & vals
                    else:
                        rng.ne |= vals
                continue
            if not _is_const(right):
                continue
            v = _value(right)
            if isinstance(op, ast.Eq):
                rng.eq.add(v)
            elif isinstance(op, ast.NotEq):
                rng.ne.add(v)
            elif isinstance(v, int | float) and not isinstance(v, bool):
                if isinstance(op, ast.Gt | ast.GtE) and (
                    v > rng.lo or (v == rng.lo and isinstance(op, ast.Gt))
                ):
                    rng.lo, rng.lo_strict = float(v), isinstance(op, ast.Gt)
                elif isinstance(op, ast.Lt | ast.LtE) and (
                    v < rng.hi or (v == rng.hi and isinstance(op, ast.Lt))
                ):
                    rng.hi, rng.hi_strict = float(v), isinstance(op, ast.Lt)
    for key, rng in ranges.items():
        why = rng.empty()
        if why:
            return f"{key}: {why}"
    return None
