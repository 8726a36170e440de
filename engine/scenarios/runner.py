"""Run a scenario in embedded mode: each step moves the clock, then its event is decided."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.embedded import Engine
from engine.models.decision import DecisionRecord
from engine.pack.model import RulePack
from engine.pipeline import RuleFault
from engine.scenarios.check import check_step
from engine.scenarios.model import Scenario
from engine.state.memory import MemoryStateStore


@dataclass
class StepRun:
    step: str
    at: str
    event_id: str | None
    decisions: list[DecisionRecord]
    duplicate: bool
    problems: list[str] = field(default_factory=list)
    explain: list[str] = field(default_factory=list)
    faults: list[RuleFault] = field(default_factory=list)  # what raised (and failed closed)


@dataclass
class ScenarioResult:
    scenario: Scenario
    steps: list[StepRun]

    @property
    def passed(self) -> bool:
        return all(not s.problems for s in self.steps)

    @property
    def problems(self) -> list[str]:
        return [f"{s.step}: {p}" for s in self.steps for p in s.problems]


async def run_scenario(pack: RulePack, sc: Scenario, *, trace: bool = False) -> ScenarioResult:
    store = MemoryStateStore()
    for state in sc.states(pack):
        store.seed(state)
    engine = Engine(pack, store, trace=trace)
    runs: list[StepRun] = []
    for step in sc.steps:
        now = step.at.timestamp()
        # The clock reaches the step's time first: follow-ups due by then fire.
        ticked = await engine.tick(now)
        decisions = list(ticked.decisions) + list(ticked.fired)
        explain = [line for lines in ticked.explain.values() for line in lines]
        faults = list(ticked.faults)
        duplicate = False
        env = step.envelope()
        event_id = None
        if env is not None:
            event_id = env.event.id
            res = await engine.process([env])
            decisions += res.decisions
            duplicate = any(o.status == "duplicate" for o in res.outcomes)
            explain += res.explain.get(env.event.id, [])
            faults += res.faults
        elif step.campaign is not None:  # every customer the store knows, at the step's time
            _, res = await engine.run_campaign(step.campaign, now)
            decisions += res.decisions
            duplicate = any(o.status == "duplicate" for o in res.outcomes)
            explain += [line for lines in res.explain.values() for line in lines]
            faults += res.faults
        explain += [f"fault in {f.rule}: {f.error}" for f in faults]
        run = StepRun(step.id, step.at.isoformat(), event_id, decisions, duplicate, [], explain,
                      faults)
        expect = sc.expect.get(step.id)
        if expect is not None:
            run.problems = check_step(expect, decisions, duplicate)
        runs.append(run)
    return ScenarioResult(sc, runs)
