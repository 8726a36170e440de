"""The worker's producing of a batch: records grouped per partition, decisions in the
partition a keyed send would pick, and the partitioner's murmur2 computed once per key
across batches (issue 13: it was ~15% of the producer's CPU, once per key per batch)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from engine.worker import produce
from engine.worker.process import OutRecord
from engine.worker.produce import KeyPartitions, send_batches

PARTITIONS = 6


class _Batch:
    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes]] = []

    def append(self, *, key: bytes | None, value: bytes, timestamp: None,
               headers: list[tuple[str, bytes]]) -> object:
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class _Producer:
    """What send_batches uses of AIOKafkaProducer; keeps what was sent, per partition."""

    def __init__(self) -> None:
        self.sent: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> Any:
        self.sent.setdefault((topic, partition), []).extend(batch.records)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _keyed(keys: list[bytes]) -> list[OutRecord]:
    return [OutRecord("decisions", k, b"v-" + k) for k in keys]


async def test_decisions_land_where_a_keyed_send_puts_them() -> None:
    keys = [f"c{i:06d}".encode() for i in range(200)]
    producer = _Producer()
    records = [*_keyed(keys), OutRecord("state", b"c000001", b"s", partition=4)]
    sent = await send_batches(producer, records, KeyPartitions())
    default = DefaultPartitioner()
    all_partitions = list(range(PARTITIONS))
    for key in keys:
        expected = default(key, all_partitions, all_partitions)
        assert (key, b"v-" + key) in producer.sent[("decisions", expected)]
    assert producer.sent[("state", 4)] == [(b"c000001", b"s")]  # named partition kept
    assert sum(n for _f, _t, n in sent) == len(records)


async def test_each_key_is_hashed_once_across_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[bytes] = []
    real = produce.murmur2

    def counting(key: bytes) -> int:
        hashed.append(key)
        return int(real(key))

    monkeypatch.setattr(produce, "murmur2", counting)
    keys = [f"c{i:06d}".encode() for i in range(50)]
    partitions = KeyPartitions()
    first, second = _Producer(), _Producer()
    await send_batches(first, _keyed(keys), partitions)
    await send_batches(second, _keyed(keys[::-1] + keys), partitions)  # the next batches
    assert sorted(hashed) == sorted(keys)
    assert first.sent.keys() == second.sent.keys()


def test_the_memory_is_bounded() -> None:
    partitions = KeyPartitions(limit=3)
    got = [partitions.of(f"k{i}".encode(), PARTITIONS) for i in range(10)]
    assert len(partitions) <= 3
    default = DefaultPartitioner()
    assert got == [default(f"k{i}".encode(), list(range(6)), list(range(6))) for i in range(10)]
