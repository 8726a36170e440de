"""Campaigns (``campaigns:``): the schedule, the compiled section and its errors, and runs in
embedded mode: the same policies, caps, consent and holdouts as a rule, the same decision
ids, exactly once per customer per run, resumable after a crash, throttled."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import pytest

from engine.campaigns.fanout import DONE, FanOut, Progress, campaign_event
from engine.campaigns.memory import DecidingSink, MemoryCheckpoints, MemoryPages
from engine.campaigns.schedule import (
    Schedule,
    campaign_event_id,
    parse_rate,
    run_id,
    run_time,
)
from engine.campaigns.service import due_runs, pick_run
from engine.embedded import Engine
from engine.errors import CampaignError, RulePackError
from engine.models.decision import decision_id
from engine.models.event import Envelope, Event
from engine.models.state import CustomerState, SentRecord
from engine.pack.loader import load_pack_text
from engine.pack.model import RulePack
from engine.pipeline import BatchResult, decide
from engine.pipeline.campaign import MAX_CAMPAIGN_RUNS
from engine.state.memory import MemoryStateStore


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


FRIDAY = _ts("2026-11-27T10:00:00+01:00")  # a Friday, 10:00 in Rome

PACK = """\
channels: [push, email]
categories: [promotion]
events:
  app_open: {}
attributes: {tier: str, tz: str}
messages:
  weekend: {category: promotion, channels: [push]}
policies:
  opted_out:
    when: customer.attributes.tier == "opted_out_gold"
    suppress: {categories: [promotion]}
frequency_caps:
  - {id: promo_daily, channels: [push], categories: [promotion], max: 1, window: 24h}
campaigns:
  - id: weekend_gold
    schedule: {cron: "0 10 * * FRI", tz: Europe/Rome}
    audience: customer.attributes.tier in ["gold", "opted_out_gold"]
    send: weekend
    rate: 100/s
"""


def _pack(text: str = PACK) -> RulePack:
    return load_pack_text(text, "pack.yaml")


def _errors(text: str) -> str:
    with pytest.raises(RulePackError) as exc:
        _pack(text)
    return "\n".join(i.render() for i in exc.value.issues)


# -- schedule ---------------------------------------------------------------------------------
def test_cron_is_read_in_its_zone() -> None:
    s = Schedule.parse(None, "0 10 * * FRI", "Europe/Rome")
    assert s.latest(FRIDAY) == FRIDAY  # due exactly now counts
    assert s.latest(FRIDAY - 1) == FRIDAY - 7 * 86400
    assert s.next(FRIDAY) == FRIDAY + 7 * 86400
    summer = _ts("2026-07-03T10:00:00+02:00")  # Rome's summer time: still 10:00 local
    assert s.next(summer - 60) == summer


def test_a_one_off_schedule() -> None:
    s = Schedule.parse("2026-11-27T10:00", None, "Europe/Rome")
    assert s.at == FRIDAY
    assert s.latest(FRIDAY - 1) is None and s.latest(FRIDAY + 99) == FRIDAY
    assert s.next(FRIDAY) is None


@pytest.mark.parametrize(("at", "cron", "message"), [
    (None, None, "exactly one of 'at' or 'cron'"),
    ("2026-11-27T10:00", "0 10 * * *", "exactly one of 'at' or 'cron'"),
    (None, "0 10 * * * *", "has 6 fields; expected 5"),
    (None, "61 10 * * *", "invalid cron"),
    (None, "0 10 * * FRX", "invalid cron"),
    ("27/11/2026", None, "expected a date and time"),
])
def test_bad_schedules(at: str | None, cron: str | None, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        Schedule.parse(at, cron, "UTC")
    assert message in str(exc.value)


def test_run_ids_and_event_ids() -> None:
    run = run_id("weekend_gold", FRIDAY)
    assert run == "weekend_gold@20261127T090000Z"
    assert run_time(run) == ("weekend_gold", FRIDAY)
    assert campaign_event_id(run, "c-1") == f"{run}/c-1"
    long = campaign_event_id(run, "c" * 199)
    assert len(long) <= 200 and long != campaign_event_id(run, "c" * 198 + "d")
    with pytest.raises(ValueError, match="not a campaign run id"):
        run_time("weekend_gold")


@pytest.mark.parametrize(("text", "per_second"), [
    ("500/s", 500.0), ("60000/m", 1000.0), ("3600/h", 1.0), (250, 250.0), (" 2.5 / s", 2.5)])
def test_rates(text: str | int, per_second: float) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("text", ["fast", "0/s", "5/d", "2000000/s", -3])
def test_bad_rates(text: str | int) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


# -- the section ------------------------------------------------------------------------------
def test_the_section_compiles_to_a_rule_on_the_campaign_event() -> None:
    c = _pack().campaigns["weekend_gold"]
    assert c.rate == 100.0 and c.schedule.cron == "0 10 * * FRI"
    assert c.rule.id == "weekend_gold" and c.rule.triggers == ("campaign",)
    assert c.rule.message.id == "weekend" and len(c.rule.conditions) == 1
    assert c.rule.location is not None and c.rule.location.line == 15


@pytest.mark.parametrize(("change", "where", "message"), [
    (('cron: "0 10 * * FRI"', 'cron: "0 25 * * FRI"'), "pack.yaml:16:15", "invalid cron"),
    (("rate: 100/s", "rate: lots"), "pack.yaml:19:11", "expected a rate"),
    (('tier in ["gold", "opted_out_gold"]', "tier == 3"), "pack.yaml:17:15",
     "comparing str with int"),
    (('tier in ["gold", "opted_out_gold"]', "tiers == 'x'"), "pack.yaml:17:35",
     "did you mean 'tier'"),
    (("send: weekend", "send: weekned"), "pack.yaml:18:11", "did you mean 'weekend'"),
    (("tz: Europe/Rome", "tz: Europe/Roma"), "pack.yaml:16:15", "Europe/Rome"),
])
def test_errors_say_where(change: tuple[str, str], where: str, message: str) -> None:
    out = _errors(PACK.replace(*change))
    assert where in out and message in out, out


def test_a_campaign_id_must_not_be_a_rule_id_or_the_event_declared() -> None:
    out = _errors(PACK + "rules:\n  - {id: weekend_gold, on: app_open, send: weekend}\n")
    assert "duplicate id 'weekend_gold'" in out
    out = _errors(PACK.replace("  app_open: {}", "  app_open: {}\n  campaign: {}"))
    assert "'campaign' is the built-in event of campaign runs" in out


# -- runs in embedded mode --------------------------------------------------------------------
def _customers() -> MemoryStateStore:
    store = MemoryStateStore()
    for i in range(10):
        store.seed(CustomerState(f"g-{i}", attributes={"tier": "gold", "tz": "Europe/Rome"},
                                 consent={"push": True}))
    store.seed(CustomerState("silver", attributes={"tier": "silver"}, consent={"push": True}))
    store.seed(CustomerState("no-consent", attributes={"tier": "gold"}))
    store.seed(CustomerState("opted-out", attributes={"tier": "opted_out_gold"},
                             consent={"push": True}))
    store.seed(CustomerState("capped", attributes={"tier": "gold"}, consent={"push": True},
                             history=[SentRecord("other", "push", "promotion", FRIDAY - 3600)]))
    return store


def _run(engine: Engine, at: float = FRIDAY) -> tuple[Progress, BatchResult]:
    return asyncio.run(engine.run_campaign("weekend_gold", at))


def test_a_run_decides_each_customer_through_the_policies() -> None:
    engine = Engine(_pack(), _customers())
    progress, result = _run(engine)
    assert progress.state == "done" and progress.scanned == 14 == progress.emitted
    got = {d.customer: (d.outcome, d.reasons) for d in result.decisions}
    assert got == {**{f"g-{i}": ("sent", []) for i in range(10)},
                   "no-consent": ("suppressed", ["no_consent"]),
                   "opted-out": ("suppressed", ["opted_out"]),
                   "capped": ("suppressed", ["frequency_cap"])}
    run = run_id("weekend_gold", FRIDAY)
    for d in result.decisions:  # the ids a rule's decisions get, from the run's event
        assert d.id == decision_id(campaign_event_id(run, d.customer), "weekend_gold", "push")
        assert d.rule == "weekend_gold" and d.message == "weekend"


def test_exactly_once_per_customer_per_run() -> None:
    engine = Engine(_pack(), _customers())
    _run(engine)
    _, again = _run(engine)  # started again: the checkpoint says done, nothing is sent
    assert again.decisions == [] and again.outcomes == []
    engine.campaign_runs.runs.clear()  # the checkpoint lost: every event is sent again...
    progress, lost = _run(engine)
    assert progress.emitted == 14
    assert lost.decisions == []  # ...and each is a duplicate for the worker
    assert {o.status for o in lost.outcomes} == {"duplicate"} and len(lost.outcomes) == 14
    _, next_week = _run(engine, FRIDAY + 7 * 86400)  # the next run decides again
    assert sum(d.outcome == "sent" for d in next_week.decisions) == 11  # the cap is over


def test_the_run_is_remembered_even_under_another_event_id() -> None:
    pack = _pack()
    st = CustomerState("g", attributes={"tier": "gold"}, consent={"push": True})
    run = run_id("weekend_gold", FRIDAY)
    first, second = (Envelope.at_event_time(_event(run, "g", eid)) for eid in ("a", "b"))
    assert [d.outcome for d in decide(pack, {"g": st}, [first]).decisions] == ["sent"]
    res = decide(pack, {"g": st}, [second])
    assert res.decisions == [] and [o.status for o in res.outcomes] == ["duplicate"]
    assert st.campaigns == {run: FRIDAY}
    back = CustomerState.from_wire(st.to_wire())
    assert back.campaigns == {run: FRIDAY}


def test_runs_remembered_are_bounded() -> None:
    pack = _pack()
    st = CustomerState("g", attributes={"tier": "silver"})
    week = 7 * 86400
    for k in range(MAX_CAMPAIGN_RUNS + 5):
        run = run_id("weekend_gold", FRIDAY + k * week)
        env = Envelope.at_event_time(_event(run, "g", f"e{k}", FRIDAY + k * week))
        decide(pack, {"g": st}, [env])
    assert len(st.campaigns) == MAX_CAMPAIGN_RUNS
    assert run_id("weekend_gold", FRIDAY) not in st.campaigns  # the oldest went


@pytest.mark.parametrize(("campaign", "run"), [
    ("nope", "nope@20261127T090000Z"),  # not in the pack
    ("weekend_gold", "other@20261127T090000Z"),  # a run of another campaign
    ("weekend_gold", "garbage"),
])
def test_a_bad_campaign_event_decides_nothing(campaign: str, run: str) -> None:
    pack = _pack()
    st = CustomerState("g", attributes={"tier": "gold"}, consent={"push": True})
    env = Envelope.at_event_time(_event(run, "g", "x", data={"campaign": campaign, "run": run}))
    res = decide(pack, {"g": st}, [env])
    assert res.decisions == [] and [f.rule for f in res.faults] == ["campaign"]
    assert st.campaigns == {}


def test_a_disabled_campaign_does_not_run() -> None:
    pack = _pack(PACK + "    enabled: false\n")
    with pytest.raises(CampaignError, match="disabled"):
        _run(Engine(pack, _customers()))
    st = CustomerState("g", attributes={"tier": "gold"}, consent={"push": True})
    run = run_id("weekend_gold", FRIDAY)
    res = decide(pack, {"g": st}, [Envelope.at_event_time(_event(run, "g", "x"))])
    assert res.decisions == []  # an event emitted before it was disabled: silence


def _event(run: str, customer: str, eid: str, at: float = FRIDAY,
           data: dict[str, str] | None = None) -> Event:
    ev = campaign_event(run.partition("@")[0], run, customer, at)
    return ev.model_copy(update={"id": eid, **({"data": data} if data else {})})


# -- the fan-out ------------------------------------------------------------------------------
class _Crash(Exception):
    pass


def test_a_crashed_fan_out_resumes_from_its_checkpoint() -> None:
    pack = _pack()
    store = MemoryStateStore()
    for p in range(3):
        for i in range(25):
            store.seed(CustomerState(f"c-{p}-{i}", attributes={"tier": "gold"},
                                     consent={"push": True}), partition=p)
    decider_store = MemoryStateStore()
    engine = Engine(pack, decider_store)
    sent: list[str] = []
    decided: list[str] = []

    pages = 0
    crash = True

    async def deliver(batch: Sequence[Envelope]) -> None:
        nonlocal pages
        sent.extend(e.event.customer for e in batch)
        res = await engine.process(batch)
        decided.extend(d.customer for d in res.decisions if d.outcome == "sent")
        pages += 1
        if crash and pages == 5:  # the page is out, its checkpoint not yet saved
            raise _Crash

    checkpoints = MemoryCheckpoints()
    campaign = replace(pack.campaigns["weekend_gold"], rate=40.0)  # pages of 10
    store_states = {f"c-{p}-{i}" for p in range(3) for i in range(25)}
    for c in store_states:  # the engine decides on the same customers' states
        decider_store.seed(CustomerState(c, attributes={"tier": "gold"}, consent={"push": True}))

    async def no_wait(_s: float) -> None:
        return None

    def fanout() -> FanOut:
        return FanOut(MemoryPages(store), DecidingSink(deliver), checkpoints, [0, 1, 2],
                      clock=lambda: FRIDAY, sleep=no_wait)

    with pytest.raises(_Crash):
        asyncio.run(fanout().run(campaign, FRIDAY))
    mid = checkpoints.runs[run_id("weekend_gold", FRIDAY)]
    assert mid.cursors[0] == DONE and mid.cursors[1] == 10 and mid.finished is None
    assert len(sent) == 45  # pages of 10: 25 of partition 0, 20 of partition 1
    crash = False
    done = asyncio.run(fanout().run(campaign, FRIDAY))
    assert done.state == "done" and set(done.cursors.values()) == {DONE}
    assert len(sent) == 85 and set(sent) == store_states  # the page in flight went again
    assert sorted(decided) == sorted(store_states)  # and yet one send each


def test_the_fan_out_keeps_to_its_rate() -> None:
    pack = _pack()
    store = MemoryStateStore()
    for i in range(100):
        store.seed(CustomerState(f"c-{i}"))
    now = [1000.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    async def drop(_batch: object) -> None:
        return None

    campaign = replace(pack.campaigns["weekend_gold"], rate=50.0)
    fanout = FanOut(MemoryPages(store), DecidingSink(drop), MemoryCheckpoints(), [0],
                    clock=lambda: now[0], sleep=sleep)
    progress = asyncio.run(fanout.run(campaign, 0.0))
    assert progress.emitted == 100
    # 100 customers at 50/s in pages of 12: the last page goes once 96 went, at 96/50 s
    assert now[0] - 1000.0 == pytest.approx(96 / 50)


def test_the_scheduler_picks_the_latest_unfinished_run() -> None:
    pack = _pack()
    checkpoints = MemoryCheckpoints()
    due = asyncio.run(due_runs(pack, FRIDAY + 3600, checkpoints))
    assert [(c.id, at) for c, at in due] == [("weekend_gold", FRIDAY)]
    engine = Engine(pack, _customers())
    engine.campaign_runs = checkpoints
    _run(engine)
    assert asyncio.run(due_runs(pack, FRIDAY + 3600, checkpoints)) == []
    assert [at for _, at in asyncio.run(due_runs(pack, FRIDAY + 7 * 86400, checkpoints))] \
        == [FRIDAY + 7 * 86400]
    assert pick_run(pack, "weekend_gold", None, FRIDAY + 60)[1] == FRIDAY
    # a run not started, or not finished, 6 hours after its time is not sent late
    assert asyncio.run(due_runs(pack, FRIDAY + 7 * 86400 + 6 * 3600 + 1, checkpoints)) == []
    assert len(asyncio.run(due_runs(pack, FRIDAY + 7 * 86400 + 6 * 3600 + 1, checkpoints,
                                    max_late=7 * 3600))) == 1
    with pytest.raises(CampaignError, match="no campaign 'nope'"):
        pick_run(pack, "nope", None, FRIDAY)
