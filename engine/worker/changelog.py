"""The state changelog topic, read back: what :mod:`engine.worker.restore` copies into the
store.

Each record is one customer's committed state: key the customer id, value the stored value
(:mod:`engine.state.wire`), partition the customer's events partition; a record without a
value (a tombstone) deletes the customer. The topic is compacted, so a partition read from
its start gives every customer's latest state. It is read ``read_committed``: a state of a
transaction that aborted is never restored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiokafka import TopicPartition  # type: ignore[import-untyped,unused-ignore]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]

from engine.errors import StateStoreError
from engine.models.state import CustomerState
from engine.state.wire import pack_stored
from engine.worker.restore import Chunk

CHUNK_RECORDS = 5000  # states per store write while restoring
READ_TIMEOUT_S = 30.0  # no progress for this long: the broker is gone, retry the batch
POLL_MS = 50
#: The reading consumer's settings: no group, committed records only, and no broker-side
#: wait for a fetch to fill (500 ms by default: it made each partition's read stall on its
#: last fetch; measured 0.52 s -> 0.025 s per partition of 3,300 states), big fetches.
CONSUMER_OPTIONS: dict[str, object] = {
    "group_id": None, "enable_auto_commit": False, "isolation_level": "read_committed",
    "fetch_max_wait_ms": 10, "max_partition_fetch_bytes": 16 * 1024 * 1024,
}


def state_record(state: CustomerState) -> tuple[bytes, bytes]:
    """A state as a changelog record: (key, value). Produce it to the customer's partition
    (imports, test set-ups); the worker writes its own in each batch's transaction."""
    return state.customer.encode("utf-8"), pack_stored(state, state.version)


class KafkaChangelog:
    """Reads ``topic`` with a group-less consumer (``read_committed``), one partition at a
    time. ``consumer_factory`` builds a not yet started ``AIOKafkaConsumer``."""

    def __init__(self, topic: str, consumer_factory: Callable[[], Any]) -> None:
        self.topic = topic
        self._factory = consumer_factory
        self._consumer: Any = None
        self._lock = asyncio.Lock()

    async def _started(self) -> Any:
        if self._consumer is None:
            consumer = self._factory()
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def end(self, partition: int) -> int:
        tp = TopicPartition(self.topic, partition)
        try:
            consumer = await self._started()
            ends = await asyncio.wait_for(consumer.end_offsets([tp]), READ_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            raise StateStoreError(f"changelog {self.topic}[{partition}]: end offset: "
                                  f"{type(exc).__name__}: {exc}") from exc
        return int(ends[tp])

    async def read(self, partition: int, start: int, end: int
                   ) -> AsyncIterator[tuple[Chunk, int]]:
        tp = TopicPartition(self.topic, partition)
        async with self._lock:
            try:
                consumer = await self._started()
                consumer.assign([tp])
                consumer.seek(tp, start)
                position = start
                while position < end:
                    # short polls: the last position is often a transaction marker, which
                    # the consumer steps over only with its next fetch
                    got = await asyncio.wait_for(
                        consumer.getmany(tp, timeout_ms=POLL_MS, max_records=CHUNK_RECORDS),
                        READ_TIMEOUT_S)
                    msgs = got.get(tp, [])
                    chunk: Chunk = [(m.key.decode("utf-8"), m.value, m.timestamp / 1000.0)
                                    for m in msgs if m.offset < end and m.key is not None]
                    position = max(position, await consumer.position(tp))
                    if chunk:
                        yield chunk, min(position, end)
            except (KafkaError, TimeoutError) as exc:
                raise StateStoreError(f"changelog {self.topic}[{partition}]: read: "
                                      f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
