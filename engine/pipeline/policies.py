"""From qualifying rules to decisions: suppression policies, arbitration, quiet hours."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from typing import Any

from engine.dsl.durations import format_duration as fmt
from engine.models.decision import Decision, decision_id
from engine.models.state import CustomerState, SentRecord
from engine.pack.model import CompiledRule, Param, RulePack
from engine.pipeline.state_ops import Env


def in_holdout(customer: str, percent: float, salt: str) -> bool:
    """Deterministic: the same customer is in the same group on every worker and replay."""
    h = hashlib.blake2b(f"{salt}\x1f{customer}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % 10000 < percent * 100


def deliver_after(
    pack: RulePack, rule: CompiledRule, channel: str, env: Env
) -> tuple[float | None, str | None]:
    """When quiet hours hold the message back: the end of the quiet window, local time."""
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


class Arbiter:
    """Turns the rules that qualified for one moment into decisions.

    Rules come in priority order; a candidate that survives every policy takes one of
    the channel's slots for this event, or is suppressed as ``lower_priority``. What is
    sent is recorded in history at once, so caps and cooldowns see it for the next one.
    """

    def __init__(
        self,
        pack: RulePack,
        st: CustomerState,
        env: Env,
        event_id: str,
        event_age: float,
        trace: bool,
    ) -> None:
        self.pack = pack
        self.st = st
        self.env = env
        self.event_id = event_id
        self.event_age = event_age
        self.trace = trace
        self.slots: dict[str, int] = {}
        self._policy: dict[str, bool] = {}
        self.decisions: list[Decision] = []

    def policy_holds(self, pid: str, i: int) -> bool:
        hit = self._policy.get(pid)
        if hit is None:
            try:
                hit = bool(self.env.eval(self.pack.policies[i].condition))
            except Exception:
                hit = False  # a broken policy must not send what it meant to stop
            self._policy[pid] = hit
        return hit

    def reasons(
        self, rule: CompiledRule, channel: str, notes: list[str] | None = None
    ) -> list[str]:
        """Every reason that applies; with ``notes``, also what each check found."""
        st, now, msg = self.st, self.env.now, rule.message
        out: list[str] = []

        def check(name: str, hit: bool, detail: str, reason: str) -> None:
            if hit:
                out.append(reason)
            if notes is not None:
                notes.append(f"{name}: {detail}{' -> ' + reason if hit else ''}")

        if rule.holdout:
            check(
                "holdout",
                in_holdout(st.customer, *rule.holdout),
                f"{rule.holdout[0]:g}% group",
                "holdout",
            )
        if rule.relevance is not None:
            check(
                "relevance",
                self.event_age > rule.relevance,
                f"received {fmt(max(self.event_age, 0))} after the event, window "
                f"{fmt(rule.relevance)}",
                "stale",
            )
        check(
            f"consent {channel}",
            not st.consent.get(channel),
            "given" if st.consent.get(channel) else "missing",
            "no_consent",
        )
        for i, p in enumerate(self.pack.policies):
            if p.scope.matches(msg, channel):
                hit = self.policy_holds(p.id, i)
                check(f"policy {p.id}", hit, f"{p.condition.source} is {hit}", p.id)
        if msg.cooldown is not None:
            since = now - msg.cooldown
            last = max((h.at for h in st.history if h.message == msg.id), default=None)
            check(
                f"cooldown {fmt(msg.cooldown)}",
                last is not None and last > since,
                "never sent" if last is None else f"last sent {fmt(now - last)} ago",
                "cooldown",
            )
        for cap in self.pack.caps:
            if cap.scope.matches(msg, channel):
                since = now - cap.window
                n = sum(
                    1
                    for h in st.history
                    if h.at > since and cap.scope.matches_record(h.category, h.message, h.channel)
                )
                check(f"cap {cap.id}", n >= cap.max, f"{n} of {cap.max} used", "frequency_cap")
        if "frequency_cap" in out:  # several caps may hit; the reason is listed once
            out = [
                r
                for i, r in enumerate(out)
                if r != "frequency_cap" or out.index("frequency_cap") == i
            ]
        return out

    def params(self, rule: CompiledRule) -> dict[str, Any]:
        out: dict[str, Any] = {}
        p: Param
        for k, p in rule.params.items():
            try:
                out[k] = self.env.value(p)
            except Exception:
                out[k] = None
        return out

    def consider(self, rule: CompiledRule, event_id: str | None = None) -> list[Decision]:
        made: list[Decision] = []
        params = self.params(rule)
        limit = self.pack.settings.max_per_event_per_channel
        for ch in rule.channels:
            trace: list[str] = []
            reasons = self.reasons(rule, ch, trace if self.trace else None)
            after = None
            if not reasons:
                if self.slots.get(ch, 0) >= limit:
                    reasons = ["lower_priority"]
                else:
                    self.slots[ch] = self.slots.get(ch, 0) + 1
                    after, quiet = deliver_after(self.pack, rule, ch, self.env)
                    if self.trace and quiet:
                        trace.append(f"quiet hours {quiet}: deferred")
                    self.st.history.append(
                        SentRecord(rule.message.id, ch, rule.message.category, self.env.now)
                    )
            if self.trace:
                if reasons == ["lower_priority"]:
                    trace.append(
                        f"arbitration: {ch} already has {limit} message(s) for this "
                        "event -> lower_priority"
                    )
                trace.append("sent" if not reasons else "suppressed: " + ", ".join(reasons))
            made.append(
                self._decision(rule, ch, params, reasons, after, trace, event_id or self.event_id)
            )
        self.decisions.extend(made)
        return made

    def _decision(
        self,
        rule: CompiledRule,
        channel: str,
        params: dict[str, Any],
        reasons: list[str],
        after: float | None,
        trace: list[str],
        event_id: str,
    ) -> Decision:
        msg = rule.message
        return Decision.model_construct(
            id=decision_id(event_id, rule.id, channel),
            event_id=event_id,
            customer=self.st.customer,
            rule=rule.id,
            message=msg.id,
            template=msg.template,
            category=msg.category,
            channel=channel,
            params=params,
            outcome="suppressed" if reasons else "sent",
            reasons=reasons,
            deliver_after=datetime.fromtimestamp(after, UTC) if after is not None else None,
            decided_at=datetime.fromtimestamp(self.env.now, UTC),
            priority=rule.priority,
            rules_version=self.pack.version,
            trace=trace,
        )
