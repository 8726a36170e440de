"""The embedded engine (the worker's batch processor, every customer in partition 0) on the
Redis state store, against a real Redis (``TACT_REDIS_URL``) and the local Redis Cluster.

Every test works under its own key prefix (``tact-test-<uuid>:``) and deletes its keys.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.embedded import Engine
from engine.pack.loader import load_pack
from engine.pack.model import RulePack
from engine.scenarios.check import check_step
from engine.scenarios.model import Scenario, load_scenarios
from engine.state.redis import RedisStateStore
from tests.conftest import REPO, SCENARIOS, SHARED_SCENARIOS
from tests.integration.redis_utils import Target, seed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]



# -- the embedded pipeline on Redis -------------------------------------------------------
DUPLICATE_SHIPMENT: dict[str, Any] = {
    "scenario": "redis-duplicate-shipment",
    "customers": {
        "c-700": {
            "attributes": {"segment": "regular", "tz": "Europe/Rome"},
            "consent": {"push": True},
        },
    },
    "steps": [
        {
            "id": "s1",
            "at": "2026-02-02T11:00:00+01:00",
            "event": {
                "id": "ev-700-1",
                "customer": "c-700",
                "type": "order_shipped",
                "data": {"order": "O-70", "carrier": "UPS"},
            },
        },
        {
            "id": "s2",
            "at": "2026-02-02T11:00:05+01:00",
            "event": {
                "id": "ev-700-1",
                "customer": "c-700",
                "type": "order_shipped",
                "data": {"order": "O-70", "carrier": "UPS"},
            },
        },
    ],
}


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_pack(REPO / "rules")


def _open(target: Target, prefix: str) -> RedisStateStore:
    return RedisStateStore.from_settings(target.settings(), prefix=prefix)


async def _seed(store: RedisStateStore, sc: Scenario, pack: RulePack) -> None:
    if sc.customers:
        await seed(store, {st.customer: st for st in sc.states(pack)}, 0)


async def _run(pack: RulePack, sc: Scenario, target: Target, prefix: str) -> list[str]:
    """Run a scenario as the scenario runner does, on a new Redis connection per step."""
    seeder = _open(target, prefix)
    await _seed(seeder, sc, pack)
    await seeder.close()
    problems: list[str] = []
    for step in sc.steps:
        store = _open(target, prefix)  # nothing survives in memory between steps
        try:
            engine = Engine(pack, store)
            ticked = await engine.tick(step.at.timestamp())
            decisions = list(ticked.decisions) + list(ticked.fired)
            duplicate = False
            env = step.envelope()
            if env is not None:
                res = await engine.process([env])
                decisions += res.decisions
                duplicate = any(o.status == "duplicate" for o in res.outcomes)
            elif step.campaign is not None:  # a SCAN of the customers Redis holds
                _, res = await engine.run_campaign(step.campaign, step.at.timestamp())
                decisions += res.decisions
                duplicate = any(o.status == "duplicate" for o in res.outcomes)
        finally:
            await store.close()
        expect = sc.expect.get(step.id)
        if expect is not None:
            problems += [f"{step.id}: {p}" for p in check_step(expect, decisions, duplicate)]
    return problems


async def test_embedded_engine_on_redis_sends_once_and_detects_the_duplicate(
    pack: RulePack, target: Target, prefix: str
) -> None:
    sc = Scenario.model_validate(DUPLICATE_SHIPMENT)
    await _seed(store := _open(target, prefix), sc, pack)
    await store.close()

    env1, env2 = (s.envelope() for s in sc.steps)
    assert env1 is not None and env2 is not None
    first = _open(target, prefix)
    try:
        res = await Engine(pack, first).process([env1])
        assert first.round_trips == 2  # one read, one write
    finally:
        await first.close()
    sent = [(d.customer, d.message, d.channel) for d in res.decisions if d.outcome == "sent"]
    assert sent == [("c-700", "shipping_update", "push")]
    assert res.decisions[0].params.get("order") == "O-70"

    again = _open(target, prefix)  # reloaded from Redis, not from memory
    try:
        res2 = await Engine(pack, again).process([env2])
        assert again.round_trips == 1  # the duplicate changed nothing: nothing written
        state = (await again.load(["c-700"], 0))["c-700"]
    finally:
        await again.close()
    assert [o.status for o in res2.outcomes] == ["duplicate"]
    assert [d for d in res2.decisions if d.outcome == "sent"] == []
    assert "ev-700-1" in state.seen
    assert [h.message for h in state.history] == ["shipping_update"]
    assert state.version == 1  # the seed was version 0


@pytest.mark.parametrize("scenario", [
    *[pytest.param(sc, id=sc.scenario) for sc in load_scenarios(SCENARIOS)],
    *([pytest.param(sc, id=f"shared-{sc.scenario}") for sc in load_scenarios(SHARED_SCENARIOS)]
      if SHARED_SCENARIOS is not None else []),
])
async def test_scenarios_pass_on_redis(
    pack: RulePack, scenario: Scenario, redis_url: str, prefix: str
) -> None:
    assert await _run(pack, scenario, Target(redis_url, cluster=False), prefix) == []
