"""Quiet hours: when a message that may be sent is delivered, in the customer's local time."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from engine.pack.model import CompiledRule, RulePack
from engine.pipeline.state_ops import Env


def deliver_after(
    pack: RulePack, rule: CompiledRule, channel: str, env: Env
) -> tuple[float | None, str | None]:
    """When quiet hours hold the message back: the end of the quiet window, local time.

    ``env.now`` must be :func:`~engine.dsl.timefns.in_range` (the arbiter checks): then the
    local time, and the end of the window a day later, are representable in every zone.
    """
    best: float | None = None
    which = None
    local: datetime | None = None
    for q in pack.quiet_hours:
        if not q.scope.matches(rule.message, channel):
            continue
        if local is None:
            local = datetime.fromtimestamp(env.now, env.ctx.tz)
        minute = local.hour * 60 + local.minute
        inside = (
            (q.start <= minute < q.end)
            if q.start <= q.end
            else (minute >= q.start or minute < q.end)
        )
        if not inside:
            continue
        end = datetime.combine(local.date(), time(q.end // 60, q.end % 60), tzinfo=env.ctx.tz)
        if end <= local:
            end = datetime.combine(
                local.date() + timedelta(days=1), time(q.end // 60, q.end % 60), tzinfo=env.ctx.tz
            )
        ts = end.timestamp()
        if best is None or ts > best:
            best, which = ts, q.id
    return best, which
