"""Producing a batch's records: one record batch per partition, partitions as Kafka's
default partitioner picks them, remembered across batches."""

from __future__ import annotations

from typing import Any

from aiokafka.partitioner import murmur2  # type: ignore[import-untyped,unused-ignore]

from engine.worker.process import OutRecord

__all__ = ["KeyPartitions", "send_batches"]


class KeyPartitions:
    """The default partitioner's partition for a key (murmur2, as a keyed ``send`` picks it),
    remembered across batches: aiokafka's murmur2 is pure Python (a few µs a key, ~15% of
    the producer's CPU), and a customer's key comes back batch after batch. At most
    ``limit`` keys per partition count; when full it starts again empty."""

    def __init__(self, limit: int = 100_000) -> None:  # ~10 MB when full
        self.limit = limit
        self._by_count: dict[int, dict[bytes, int]] = {}

    def of(self, key: bytes, partitions: int) -> int:
        known = self._by_count.get(partitions)
        if known is None:
            known = self._by_count[partitions] = {}
        p = known.get(key)
        if p is None:
            if len(known) >= self.limit:
                known.clear()
            p = known[key] = (murmur2(key) & 0x7FFFFFFF) % partitions
        return p

    def __len__(self) -> int:
        return sum(map(len, self._by_count.values()))


async def send_batches(producer: Any, records: list[OutRecord],
                       key_partitions: KeyPartitions | None = None
                       ) -> list[tuple[Any, str, int]]:
    """Queue the records as one record batch per partition (``send`` costs ~20us a record);
    (future, topic, records) of each.

    Partitions are chosen as the default partitioner does (murmur2 of the key), so a
    customer's decisions land where a keyed ``send`` would put them, unless the record
    names its partition (the changelog: the source partition).
    """
    partition_of = (KeyPartitions() if key_partitions is None else key_partitions).of
    counts: dict[str, int] = {}
    groups: dict[tuple[str, int], list[OutRecord]] = {}
    for r in records:
        n = counts.get(r.topic)
        if n is None:
            n = counts[r.topic] = len(await producer.partitions_for(r.topic))
        if r.partition is not None:
            p = r.partition
        elif r.key is None:
            p = 0
        else:
            p = partition_of(r.key, n)
        groups.setdefault((r.topic, p), []).append(r)
    sent: list[tuple[Any, str, int]] = []
    for (topic, p), rs in groups.items():
        batch = producer.create_batch()
        for r in rs:
            if batch.append(key=r.key, value=r.value, timestamp=None,
                            headers=r.headers) is not None:
                continue
            if batch.record_count():
                n = batch.record_count()
                sent.append((await producer.send_batch(batch, topic, partition=p), topic, n))
                batch = producer.create_batch()
                if batch.append(key=r.key, value=r.value, timestamp=None,
                                headers=r.headers) is not None:
                    continue
            # larger than a whole batch: the producer splits nothing, send it alone
            sent.append((await producer.send(topic, r.value, key=r.key, partition=p,
                                             headers=r.headers), topic, 1))
        if batch.record_count():
            n = batch.record_count()
            sent.append((await producer.send_batch(batch, topic, partition=p), topic, n))
    return sent
