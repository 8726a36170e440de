"""From qualifying rules to decisions: suppression policies, arbitration, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.dsl.durations import format_duration as fmt
from engine.dsl.timefns import MAX_TS, MIN_TS, in_range
from engine.models.decision import DecisionRecord, Outcome, decision_id
from engine.models.state import RECENT_DECISIONS, CustomerState, RecentDecision, SentRecord
from engine.pack.model import ChannelChoice, CompiledRule, Param, RulePack
from engine.pipeline.choice import CHANNEL_CHOSEN, channel_order
from engine.pipeline.guards import PARAM_ERROR, POLICY_ERROR, RuleFault, describe, json_value
from engine.pipeline.quiet import deliver_after
from engine.pipeline.scopes import HELD_ONLY, ScopeMemo, held_at, held_in_cap, in_holdout

__all__ = ["Arbiter", "ScopeMemo", "in_holdout"]  # the last two moved to scopes.py
from engine.pipeline.state_ops import Env


class Arbiter:
    """Turns the rules that qualified for one moment into decisions.

    Rules come in priority order; a candidate that survives every policy takes one of
    the channel's slots for this event, or is suppressed as ``lower_priority``. What is
    sent is recorded in history at once, so caps and cooldowns see it for the next one.
    Cap counts and last-sent times are computed once per moment and kept up to date.

    A candidate whose only reason is its rule's holdout is judged on as a send (slots,
    quiet hours) and, if it would have gone out, recorded in history as *held*: the
    control group then meets the same cooldowns, caps and slots as the treated group, so
    both are eligible at the same moments (docs/outcomes.md, "Holdout, like for like").

    It fails closed: a policy whose condition raises holds (``policy_error``), a param
    that raises or is not a JSON value suppresses the decision (``param_error``), and a
    moment outside the representable dates suppresses everything (``policy_error``). Each
    such fault is appended to ``faults`` (the batch's, so the worker counts it).
    """

    def __init__(
        self,
        pack: RulePack,
        st: CustomerState,
        env: Env,
        event_id: str,
        event_age: float,
        trace: bool,
        scopes: ScopeMemo | None = None,
        faults: list[RuleFault] | None = None,
    ) -> None:
        self.pack = pack
        self.scopes = scopes if scopes is not None else ScopeMemo(pack)
        self.st = st
        self.env = env
        self.event_id = event_id
        self.event_age = event_age
        self.trace = trace
        self.faults: list[RuleFault] = faults if faults is not None else []
        self.slots: dict[str, int] = {}
        self._policy: dict[int, str] = {}  # policy index -> its reason now, "" if it does not hold
        self._policy_errors: dict[int, str] = {}  # for explain: what a failed policy raised
        self._caps: list[int] | None = None
        self._last: dict[str, float] | None = None
        self.decisions: list[DecisionRecord] = []
        # An event dated at the very edge of the calendar: no local time, no quiet hours, no
        # decided_at to write. Its decisions are suppressed, stamped with the nearest date.
        self._timeless = not in_range(env.now)
        if self._timeless:
            self._fault("event_time", f"event time {env.now!r} is outside years 1 to 9999")
        self._decided_at = datetime.fromtimestamp(min(max(env.now, MIN_TS), MAX_TS), UTC)

    def _fault(self, label: str, error: str) -> None:
        self.faults.append(RuleFault(label, self.event_id, error))

    def policy_reason(self, i: int) -> str:
        """Policy ``i``'s reason now: its id when it holds, ``policy_error`` when its
        condition raised (fail closed: a broken policy holds), "" when it does not hold."""
        reason = self._policy.get(i)
        if reason is None:
            p = self.pack.policies[i]
            try:
                reason = p.id if self.env.eval(p.condition) else ""
            except Exception as exc:
                reason = POLICY_ERROR
                self._policy_errors[i] = describe(exc)
                self._fault(f"policy:{p.id}", self._policy_errors[i])
            self._policy[i] = reason
        return reason

    def policy_holds(self, i: int) -> bool:
        return bool(self.policy_reason(i))

    def cap_counts(self) -> list[int]:
        if self._caps is None:
            # one pass over the history: the caps a record counts for are memoised by its
            # (category, message, channel), the windows checked per cap as before
            now, caps = self.env.now, self.pack.caps
            since = [now - cap.window for cap in caps]
            counts = [0] * len(caps)
            if caps:
                oldest = min(since)
                hits_of = self.scopes.record_caps
                for h in self.st.history:
                    at = h.at
                    if at <= oldest:
                        continue
                    for i in hits_of(h.category, h.message, h.channel):
                        if at > since[i]:
                            counts[i] += 1
            self._caps = counts
        return self._caps

    def last_sent(self) -> dict[str, float]:
        if self._last is None:
            last: dict[str, float] = {}
            for h in self.st.history:
                if h.at > last.get(h.message, float("-inf")):
                    last[h.message] = h.at
            self._last = last
        return self._last

    def _record(self, rule: CompiledRule, channel: str, held: bool) -> None:
        msg, now = rule.message, self.env.now
        self.st.history.append(SentRecord(msg.id, channel, msg.category, now, held))
        if self._caps is not None:
            for i in self.scopes.record_caps(msg.category, msg.id, channel):
                self._caps[i] += 1
        if self._last is not None:
            self._last[msg.id] = now

    def reasons(
        self, rule: CompiledRule, channel: str, notes: list[str] | None = None
    ) -> list[str]:
        """Every reason that applies; with ``notes``, also what each check found."""
        if notes is None:
            return self._reasons(rule, channel)
        st, now, msg = self.st, self.env.now, rule.message
        out: list[str] = []
        if rule.holdout:
            held = in_holdout(st.customer, *rule.holdout)
            if held:
                out.append("holdout")
            if notes is not None:
                notes.append(f"holdout {rule.holdout[0]:g}%: {'in' if held else 'out'}")
        if rule.relevance is not None:
            stale = self.event_age > rule.relevance
            if stale:
                out.append("stale")
            if notes is not None:
                notes.append(
                    f"relevance: received {fmt(max(self.event_age, 0))} after the "
                    f"event, window {fmt(rule.relevance)}" + (" -> stale" * stale)
                )
        if st.bounced and channel in st.bounced:
            out.append("channel_bounced")
            notes.append(f"{channel} bounced (hard) -> channel_bounced until consent is given "
                         "again")
        if channel in msg.consent_free:
            notes.append(f"consent {channel}: not required for {msg.id} (pack consent rules)")
        else:
            consent = bool(st.consent.get(channel))
            if not consent:
                out.append("no_consent")
            notes.append(f"consent {channel}: " + ("given" if consent else "missing -> no_consent"))
        policies = self.pack.policies
        for i in self.scopes.policies(msg.category, msg.id, channel):
            p = policies[i]
            reason = self.policy_reason(i)
            if reason and reason not in out:
                out.append(reason)
            if i in self._policy_errors:
                notes.append(f"policy {p.id}: {p.condition.source} raised "
                             f"{self._policy_errors[i]} -> {POLICY_ERROR}")
            else:
                notes.append(f"policy {p.id}: {p.condition.source} is {bool(reason)}"
                             + (f" -> {p.id}" if reason else ""))
        if msg.cooldown is not None:
            last = self.last_sent().get(msg.id)
            cooling = last is not None and last > now - msg.cooldown
            if cooling:
                out.append("cooldown")
            if notes is not None:
                seen = "never sent" if last is None else (
                    f"last held out (not sent) {fmt(now - last)} ago"
                    if held_at(st.history, msg.id, last) else f"last sent {fmt(now - last)} ago")
                notes.append(f"cooldown {fmt(msg.cooldown)}: {seen}" + (" -> cooldown" * cooling))
        if self.pack.caps:
            counts = self.cap_counts()
            capped = False
            caps = self.pack.caps
            for i in self.scopes.record_caps(msg.category, msg.id, channel):
                cap = caps[i]
                full = counts[i] >= cap.max
                capped = capped or full
                if notes is not None:
                    held_entries = held_in_cap(st.history, now - cap.window, i, self.scopes)
                    notes.append(
                        f"cap {cap.id}: {counts[i]} of {cap.max} used"
                        + (f" ({held_entries} held out, not sent)" if held_entries else "")
                        + (" -> frequency_cap" * full)
                    )
                elif full:
                    break
            if capped:
                out.append("frequency_cap")
        return out

    def _reasons(self, rule: CompiledRule, channel: str) -> list[str]:
        """:meth:`reasons` without notes (the hot path): the same checks, in the same order."""
        st, msg = self.st, rule.message
        out: list[str] = []
        if rule.holdout and in_holdout(st.customer, *rule.holdout):
            out.append("holdout")
        if rule.relevance is not None and self.event_age > rule.relevance:
            out.append("stale")
        if st.bounced and channel in st.bounced:
            out.append("channel_bounced")
        if not st.consent.get(channel) and channel not in msg.consent_free:
            out.append("no_consent")
        policies, caps = self.scopes.candidate(msg.category, msg.id, channel)
        for i in policies:
            reason = self.policy_reason(i)
            if reason and reason not in out:  # two broken policies: one policy_error
                out.append(reason)
        if msg.cooldown is not None:
            last = self.last_sent().get(msg.id)
            if last is not None and last > self.env.now - msg.cooldown:
                out.append("cooldown")
        if caps:
            counts = self.cap_counts()
            pack_caps = self.pack.caps
            for i in caps:
                if counts[i] >= pack_caps[i].max:
                    out.append("frequency_cap")
                    break
        return out

    def params(self, rule: CompiledRule) -> tuple[dict[str, Any], list[str]]:
        """The message params that could be evaluated, and a note on each that could not
        (it raised, or is not a JSON value): any such note suppresses the decision."""
        out: dict[str, Any] = {}
        failed: list[str] = []
        p: Param
        for k, p in rule.params.items():
            try:
                v = self.env.value(p)
            except Exception as exc:
                failed.append(f"param {k} raised {describe(exc)}")
                continue
            if json_value(v):
                out[k] = v
            else:
                failed.append(f"param {k} is not a JSON value ({type(v).__name__})")
        for note in failed:
            self._fault(rule.id, note)
        return out, failed

    def consider(self, rule: CompiledRule) -> list[DecisionRecord]:
        choice = rule.choice
        if choice is not None:
            return self._consider_one(rule, choice)
        made: list[DecisionRecord] = []
        params, bad_params = self.params(rule)
        for ch in rule.channels:
            reasons, after, trace = self._judge(rule, ch, bad_params)
            if not reasons or reasons == HELD_ONLY:
                self._take(rule, ch, trace, held=bool(reasons))
            if self.trace:
                trace.append("sent" if not reasons else "suppressed: " + ", ".join(reasons))
            made.append(self._decision(rule, ch, params, reasons, after, trace))
        self.decisions.extend(made)
        return made

    def _judge(
        self, rule: CompiledRule, ch: str, bad_params: list[str]
    ) -> tuple[list[str], float | None, list[str]]:
        """Why ``rule`` may not go out on ``ch`` now (nothing: it may; only ``holdout``: it
        would have, see :meth:`_take`), when it would be delivered (quiet hours; None
        unless it goes out), and the trace. Takes nothing: see :meth:`_take`."""
        trace: list[str] = []
        reasons = self.reasons(rule, ch, trace if self.trace else None)
        if bad_params:
            reasons.insert(0, PARAM_ERROR)
            if self.trace:
                trace.extend(f"{note} -> {PARAM_ERROR}" for note in bad_params)
        if self._timeless and POLICY_ERROR not in reasons:
            reasons.append(POLICY_ERROR)
            if self.trace:
                trace.append(f"event time outside years 1 to 9999 -> {POLICY_ERROR}")
        after = None
        held = reasons == HELD_ONLY  # judged on as a send: a held-out send is counted alike
        if not reasons or held:
            limit = self.pack.settings.max_per_event_per_channel
            if self.slots.get(ch, 0) >= limit:
                reasons = [*reasons, "lower_priority"]
                if self.trace:
                    trace.append(
                        f"arbitration: {ch} already has {limit} message(s) for "
                        "this event -> lower_priority"
                    )
            elif self.pack.quiet_hours:
                try:
                    after, quiet = deliver_after(self.pack, rule, ch, self.env)
                except Exception as exc:  # fail closed: no safe delivery time known
                    self._fault("quiet_hours", describe(exc))
                    reasons = [*reasons, POLICY_ERROR]
                    if self.trace:
                        trace.append(f"quiet hours raised {describe(exc)} -> {POLICY_ERROR}")
                else:
                    if self.trace and quiet:
                        trace.append(f"quiet hours {quiet}: deferred")
        return reasons, after, trace

    def _take(self, rule: CompiledRule, ch: str, trace: list[str], held: bool) -> None:
        """``rule`` goes out on ``ch``, or would but for its holdout (``held``): either way
        it takes one of the channel's slots for this event and is recorded in history."""
        self.slots[ch] = self.slots.get(ch, 0) + 1
        self._record(rule, ch, held)
        if held and self.trace:
            trace.append("held out: recorded as held (not sent); its cooldown, caps and "
                         "slot count as a send's")

    def _consider_one(self, rule: CompiledRule, choice: ChannelChoice) -> list[DecisionRecord]:
        """One channel for the message: the first, in order, that may send now; if every
        one that passes would wait for quiet hours to end, the first of those. Channels
        before it keep their own reasons; the others are suppressed ``channel_chosen``."""
        params, bad_params = self.params(rule)
        order, why = channel_order(choice, rule.channels, self.st, self.env.now)
        judged: list[tuple[list[str], float | None, list[str]]] = []
        pick: str | None = None
        held = False  # the pick is held out (the holdout is per customer: all are)
        for ch in order:
            reasons, after, trace = self._judge(rule, ch, bad_params)
            judged.append((reasons, after, trace))
            if (not reasons or reasons == HELD_ONLY) and (after is None or pick is None):
                pick, held = ch, bool(reasons)
                if after is None:
                    break  # sends now: the channels after it are not even checked
        made: list[DecisionRecord] = []
        chosen = [*HELD_ONLY, CHANNEL_CHOSEN] if held else [CHANNEL_CHOSEN]
        for i, ch in enumerate(order):
            reasons, after, trace = judged[i] if i < len(judged) else ([], None, [])
            if ch == pick:
                self._take(rule, ch, trace, held)
                if self.trace:
                    trace.append(f"channel choice {why}: {ch} carries it")
            elif not reasons or reasons == HELD_ONLY:
                reasons, after = list(chosen), None
                if self.trace:
                    trace.append(f"channel choice {why}: {pick} carries it -> {CHANNEL_CHOSEN}")
            if self.trace:
                trace.append("sent" if not reasons else "suppressed: " + ", ".join(reasons))
            made.append(self._decision(rule, ch, params, reasons, after, trace))
        self.decisions.extend(made)
        return made

    def remember(self) -> None:
        """Keep this moment's decisions in the customer view (``CustomerState.recent``).

        Called once the moment is decided: only the newest ``recent_room()`` can be kept,
        so only those are built (a pack may make a hundred decisions per event).
        """
        decisions = self.decisions
        if decisions:
            now, st = self.env.now, self.st
            if len(decisions) > RECENT_DECISIONS:
                decisions = decisions[-st.recent_room():]
            st.remember_all([RecentDecision(d.id, now, d.rule, d.message, d.channel, d.outcome,
                                            d.reasons) for d in decisions])

    def _decision(
        self,
        rule: CompiledRule,
        channel: str,
        params: dict[str, Any],
        reasons: list[str],
        after: float | None,
        trace: list[str],
    ) -> DecisionRecord:
        msg = rule.message
        did = decision_id(self.event_id, rule.id, channel)
        outcome: Outcome = "suppressed" if reasons else "sent"
        if reasons:
            after = None  # a held-out send's delivery time is not the decision's
        # positional: with 16 keywords the call costs about three times as much
        return DecisionRecord(
            did, self.event_id, self.st.customer, rule.id, msg.id, msg.template, msg.category,
            channel, params, outcome, reasons,
            datetime.fromtimestamp(after, UTC) if after is not None else None,
            self._decided_at, rule.priority, self.pack.version, trace,
        )
