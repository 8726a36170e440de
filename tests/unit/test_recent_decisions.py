"""The customer view's last decisions (``CustomerState.recent``): the core builds them only
for the decisions that can be kept, and keeps exactly what remembering every decision
one by one, as it is made, would keep (the same state bytes, the same view)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine.models.decision import DecisionRecord
from engine.models.event import Envelope, parse_event
from engine.models.state import RECENT_DECISIONS, CustomerState, RecentDecision
from engine.observability.customer import customer_view
from engine.pack.loader import load_pack_text
from engine.pack.model import RulePack
from engine.pipeline.core import decide, tick
from engine.state.wire import encode_state

T = TypeVar("T")
START = 1_772_442_000  # 2026-03-02 09:00 UTC, whole seconds: decided_at gives them back

recents = st.builds(RecentDecision, st.text(max_size=6), st.integers(0, 10**9).map(float),
                    st.text(max_size=6), st.text(max_size=6), st.sampled_from(["push", "email"]),
                    st.sampled_from(["sent", "suppressed"]),
                    st.lists(st.sampled_from(["cooldown", "no_consent"]), max_size=2))



def sized(elements: st.SearchStrategy[T], most: int) -> st.SearchStrategy[list[T]]:
    """Lists of any length up to ``most``, long ones as likely as short ones (past 20)."""
    return st.integers(0, most).flatmap(lambda n: st.lists(elements, min_size=n, max_size=n))


def _one_by_one(start: list[bytes | RecentDecision],
                made: list[RecentDecision]) -> list[bytes | RecentDecision]:
    """The reference: ``remember`` for each decision as it is made (what the core did)."""
    state = CustomerState("c", recent=list(start))
    for decision in made:
        state.remember(decision)
    return state.recent


@given(sized(recents, 30), sized(recents, 50))
def test_remember_all_keeps_what_remembering_one_by_one_keeps(
        before: list[RecentDecision], made: list[RecentDecision]) -> None:
    start: list[bytes | RecentDecision] = [r.pack() for r in before]  # a stored state's bytes
    state = CustomerState("c", recent=list(start))
    room = state.recent_room()
    state.remember_all(made[-room:])  # only the newest that can be kept are built
    assert state.recent == _one_by_one(start, made)
    assert len(state.recent) == max(len(before), min(len(before) + len(made), RECENT_DECISIONS))


# -- through decide(): generated packs, customers and events -----------------------------------
@cache  # hypothesis shrinks a failure through many examples of the same rules
def _pack(rules: tuple[tuple[bool, bool], ...]) -> RulePack:
    return load_pack_text(_pack_text(rules))


def _pack_text(rules: Sequence[tuple[bool, bool]]) -> str:
    """Rules on ``ping`` in priority order, each sending on push and email (two decisions):
    (on a cooldown, a follow-up 10 minutes later unless ``stop``)."""
    lines = ["channels: [push, email]", "events:", "  ping: {}", "  stop: {}", "messages:"]
    for i, (cooling, _) in enumerate(rules):
        lines.append(f"  m{i}: {{category: promotion, channels: [push, email]"
                     + (", cooldown: 5m}" if cooling else "}"))
    lines.append("rules:")
    for i, (_, later) in enumerate(rules):
        lines += [f"  - id: r{i}", "    on: ping", f"    send: m{i}", f"    priority: {100 - i}"]
        if later:
            lines += ["    after: 10m", "    unless: [stop]"]
    return "\n".join(lines) + "\n"


def _decisions_by_customer(made: list[DecisionRecord]) -> dict[str, list[RecentDecision]]:
    out: dict[str, list[RecentDecision]] = {}
    for d in made:
        out.setdefault(d.customer, []).append(RecentDecision(
            d.id, d.decided_at.timestamp(), d.rule, d.message, d.channel, d.outcome, d.reasons))
    return out


def _check_against_one_by_one(pack: RulePack, start: dict[str, list[bytes | RecentDecision]],
                              states: dict[str, CustomerState], batch: list[Envelope],
                              now: float) -> None:
    result = decide(pack, states, batch)
    ticked = tick(pack, states, now)
    made = [d for outcome in result.outcomes for d in outcome.decisions]  # fired, then its own
    expected = _decisions_by_customer(made + ticked.fired)
    for customer, state in states.items():
        reference = CustomerState(customer, recent=_one_by_one(start[customer],
                                                               expected.get(customer, [])))
        packed = [r if type(r) is bytes else r.pack() for r in state.recent]
        assert packed == [r if type(r) is bytes else r.pack() for r in reference.recent]
        assert (customer_view(state, now=now)["decisions"]
                == customer_view(reference, now=now)["decisions"])
        assert encode_state(state) == encode_state(replace(state, recent=reference.recent))


# no shrinking: a failure here takes minutes to shrink; the failing example is printed
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(rules=sized(st.tuples(st.booleans(), st.booleans()), 24).filter(bool),
       customers=st.lists(st.tuples(st.booleans(), st.booleans(), sized(recents, 25)),
                          min_size=1, max_size=3),
       events=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["ping", "stop"]),
                                 st.integers(0, 900)), min_size=1, max_size=12))
def test_decide_keeps_the_decisions_remembering_each_would_keep(
        rules: list[tuple[bool, bool]], customers: list[tuple[bool, bool, list[RecentDecision]]],
        events: list[tuple[int, str, int]]) -> None:
    pack = _pack(tuple(rules))
    start: dict[str, list[bytes | RecentDecision]] = {
        f"c{i}": [r.pack() for r in before] for i, (_, _, before) in enumerate(customers)}
    states = {f"c{i}": CustomerState(f"c{i}", consent={"push": push, "email": email},
                                     recent=list(start[f"c{i}"]))
              for i, (push, email, _) in enumerate(customers)}
    batch: list[Envelope] = []
    at = START
    for k, (who, etype, gap) in enumerate(events):
        at += gap
        raw = {"id": f"e{k}", "customer": f"c{who % len(customers)}", "type": etype,
               "at": datetime.fromtimestamp(at, UTC).isoformat()}
        batch.append(Envelope(parse_event(raw), at + 1.0))
    _check_against_one_by_one(pack, start, states, batch, at + 3600.0)


def test_a_pack_with_a_hundred_decisions_per_event_keeps_the_last_twenty() -> None:
    """60 rules, 120 decisions per event, 5 events: each event's last 20 are what is kept."""
    pack = load_pack_text(_pack_text([(i % 3 == 0, False) for i in range(60)]))
    states = {"c0": CustomerState("c0", consent={"push": True, "email": True})}
    batch = [Envelope(parse_event({"id": f"e{k}", "customer": "c0", "type": "ping",
                                   "at": datetime.fromtimestamp(START + 60 * k, UTC).isoformat()}),
                      START + 60.0 * k)
             for k in range(5)]
    _check_against_one_by_one(pack, {"c0": []}, states, batch, START + 3600.0)
    kept = states["c0"].recent
    assert len(kept) == RECENT_DECISIONS
    assert [(r.rule, r.channel) for r in kept if isinstance(r, RecentDecision)][-2:] == [
        ("r59", "push"), ("r59", "email")]
