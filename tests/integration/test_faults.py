"""Faults against the real services under a steady load: nothing lost, nothing twice.

A private stack (Kafka + Redis with AOF, own services dir and free ports: the shared
services are never touched) and a `tact run` worker take 3,000 events over 300 customers,
produced at a steady ~150/s in five phases, one fault or two per phase:

0. worker SIGKILL;            1. Kafka broker restart (stop + up);
2. Redis SIGKILL, 5 s down, up (AOF);  3. Redis FLUSHALL under the running worker;
4. worker SIGKILL twice, the second while the restarted worker is starting up.

One scenario rather than a test per fault: the broker start (~10 s) and the worker start-ups
are most of the cost, and a state has to survive every fault in turn, as in production. Each
phase's probe customers say which fault broke what (:mod:`tests.integration.fault_load`).

Checks, against embedded mode on the same events and ticks: every decision id once and
equal, every invalid event one dead letter, every customer's final state in Redis equal;
per phase, a customer who consented before the fault gets a consent-requiring message after
it, a capped customer stays capped, and a follow-up pending over the fault fires.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.fault_load import Plan
from tests.integration.fault_run import expected, judge, run
from tests.integration.fault_stack import PrivateStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PLAN = Plan(faults=[["worker_kill"], ["kafka_restart"], ["redis_kill"], ["flushall"],
                    ["worker_kill", "worker_kill"]],
            events_per_phase=600, customers=300, rate=150.0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    private = PrivateStack(tmp_path_factory.mktemp("services"))
    try:
        private.up()
        yield private
    finally:
        private.down()


async def test_faults_under_load_lose_nothing_and_repeat_nothing(
        stack: PrivateStack, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    try:
        out = await run(stack, PLAN, log)
    finally:
        print(f"worker log: {log}")
    exp = await expected(out)
    figures, problems = judge(out, exp)
    print("\n".join([*out.timeline, *out.rss, str(figures)]))

    assert out.exit_code == 0
    assert figures["events"] == len(PLAN.faults) * PLAN.events_per_phase
    assert figures["decisions"] > 1000 and figures["dead_letters"] > 10  # a real load
    assert not problems, "\n".join(problems)
    text = log.read_text(errors="replace")
    # the flush was seen and repaired from the changelog, not just outlived; Redis stayed
    # down long enough (5 s) for batches to fail and be retried, not only for client retries
    assert "rebuilding the state store from the changelog" in text
    assert "batch failed (" in text
