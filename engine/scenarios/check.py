"""Compare a step's decisions with its expectations, as the scenario README defines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.models.decision import DecisionLike
from engine.scenarios.model import StepExpect


def _key(d: DecisionLike) -> tuple[str, str, str]:
    return (d.customer, d.message, d.channel)


def check_step(expect: StepExpect, decisions: Sequence[DecisionLike], duplicate: bool) -> list[str]:
    """The differences, one line each; empty when the step meets its expectations."""
    problems: list[str] = []
    sent = [d for d in decisions if d.outcome == "sent"]
    if expect.duplicate is not None and expect.duplicate != duplicate:
        problems.append(f"expected duplicate={expect.duplicate}, engine said {duplicate}")
    if expect.sent is not None:
        want = {(e.customer, e.message, e.channel) for e in expect.sent}
        got = {_key(d) for d in sent}
        for k in sorted(want - got):
            problems.append(f"missing sent: {'/'.join(k)}; {_got(decisions, *k)}")
        for k in sorted(got - want):
            problems.append(f"unexpected sent: {'/'.join(k)}")
        by_key = {_key(d): d for d in sent}
        for e in expect.sent:
            d = by_key.get((e.customer, e.message, e.channel))
            if d is None:
                continue
            for pk, pv in (e.params or {}).items():
                if pk not in d.params or not _same(d.params[pk], pv):
                    problems.append(
                        f"{e.message}/{e.channel}: param {pk}={d.params.get(pk)!r}, expected {pv!r}"
                    )
            if e.deliver_after is not None:
                got_after = d.deliver_after
                if got_after is None or got_after.timestamp() != e.deliver_after.timestamp():
                    shown = got_after.isoformat() if got_after else "none"
                    problems.append(
                        f"{e.message}/{e.channel}: deliver_after {shown}, "
                        f"expected {e.deliver_after.isoformat()}"
                    )
    for s in expect.suppressed:
        matches = [
            d
            for d in decisions
            if d.outcome == "suppressed"
            and d.customer == s.customer
            and d.message == s.message
            and (s.channel is None or d.channel == s.channel)
        ]
        instead = _got(decisions, s.customer, s.message, s.channel)
        if not matches:
            problems.append(
                f"missing suppressed: {s.customer}/{s.message} ({s.reason}); {instead}"
            )
        elif not any(s.reason in d.reasons for d in matches):
            seen = "; ".join(",".join(d.reasons) for d in matches)
            problems.append(
                f"suppressed {s.customer}/{s.message}: reasons [{seen}], expected {s.reason}; "
                f"{instead}"
            )
    return problems


def _got(decisions: Sequence[DecisionLike], customer: str, message: str,
         channel: str | None) -> str:
    """What the engine decided for this customer and message instead, on any channel (the
    asked-for one first): outcome, channel, reasons and the rule, so a failing line says
    why without -v."""
    mine = [d for d in decisions if d.customer == customer and d.message == message]
    if not mine:
        return f"got no decision for {customer}/{message}"
    mine.sort(key=lambda d: (d.channel != channel, d.channel))
    return "got " + "; ".join(_describe(d) for d in mine)


def _describe(d: DecisionLike) -> str:
    why = f" ({', '.join(d.reasons)})" if d.reasons else ""
    return f"{d.outcome} {d.message}/{d.channel}{why} by rule {d.rule}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    return bool(a == b)
