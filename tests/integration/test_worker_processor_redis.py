"""The batch processor on the real Redis store: one read and one write per batch once the
partition is checked against the changelog, and a Redis that lost the partition's keys is
rebuilt from the changelog before the next batch (here the changelog is kept in memory; the
worker's own fault tests use the real topic)."""

from __future__ import annotations

import pytest
import redis

from engine.state.redis import RedisStateStore
from engine.worker.process import BatchProcessor
from engine.worker.restore import Restorer
from engine.worker.stats import WorkerStats
from tests.unit.test_worker_processor import PACK, MemoryChangelog, _records, _seeded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _worker(store: RedisStateStore, log: MemoryChangelog) -> BatchProcessor:
    stats = WorkerStats()
    return BatchProcessor(store, stats, decisions_topic="d", dead_letter_topic="dl",
                          state_topic="s", restorer=Restorer(store, log, stats))


async def test_one_read_and_one_write_per_batch(store: RedisStateStore) -> None:
    log = MemoryChangelog()
    await _seeded(log)
    ops: list[str] = []
    store.observe = lambda op, _s: ops.append(op)
    p = _worker(store, log)
    for start in (0, 8, 16):
        out = await p.process(PACK, _records(8, start))
        await p.apply(out, log.commit(out))
        assert out.decisions >= 8
    # the first batch found no mark: the partition was rebuilt (restore calls), then read
    # again; from then on the mark is the one this worker wrote: one load, one save
    first = ops.index("save") + 1
    assert ops[0] == "load" and set(ops[1:first - 2]) == {"restore"}
    assert ops[first - 2:] == ["load", "save"] * 3


async def test_flushed_keys_are_rebuilt_from_the_changelog(
        store: RedisStateStore, admin: redis.Redis) -> None:
    log = MemoryChangelog()
    await _seeded(log)
    p = _worker(store, log)
    out = await p.process(PACK, _records(8))
    await p.apply(out, log.commit(out))
    before = await store.load([f"c-{c}" for c in range(4)])
    keys = list(admin.scan_iter(match=f"{store.prefix}*"))
    assert keys and admin.delete(*keys) == len(keys)  # Redis lost it all
    replay = await p.process(PACK, _records(8))
    replay.account()
    assert replay.records == [] and p.stats.duplicates == 8  # the states came back
    after = await store.load([f"c-{c}" for c in range(4)])
    assert {c: st.to_wire() for c, st in after.items()} == \
        {c: st.to_wire() for c, st in before.items()}
    assert p.stats.restores["rebuild"] == 2


async def test_a_committed_batch_adds_its_sent_decisions_to_the_report(
        store: RedisStateStore) -> None:
    from datetime import date

    from engine.outcomes.aggregate import ReportWriter, read_totals

    log = MemoryChangelog()
    await _seeded(log)
    stats = WorkerStats()
    p = BatchProcessor(store, stats, decisions_topic="d", dead_letter_topic="dl",
                       state_topic="s", restorer=Restorer(store, log, stats),
                       report=ReportWriter(store.client, store.prefix))
    out = await p.process(PACK, _records(8))
    sent = [d for d in out.result.decisions if d.outcome == "sent"]
    assert sent
    days = sorted({d.decided_at.date() for d in sent})
    assert await read_totals(store.client, store.prefix, days[0], days[-1]) == {}  # not yet
    await p.apply(out, log.commit(out))  # committed: added once
    totals = await read_totals(store.client, store.prefix, days[0], days[-1])
    expected: dict[str, float] = {}
    for d in sent:
        key = f"{d.rule}|{d.message}|sent|sent"
        expected[key] = expected.get(key, 0.0) + 1
    assert totals == expected
    assert await read_totals(store.client, store.prefix, date(2000, 1, 1),
                             date(2000, 1, 2)) == {}
