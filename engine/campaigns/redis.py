"""The fan-out's parts for the streaming worker: the customers are the Redis store's state
keys (SCAN per partition), checkpoints are Redis keys, the sink is the events topic.

Checkpoint keys (beside the store's, under the same prefix; see engine/state/redis/keys.py)::

    {prefix}campaign-run:<run id>   string: the run's Progress as JSON
    {prefix}campaign-runs           sorted set: run id -> started (for status and the dashboard)

A run's checkpoint lives as long as the state TTL: a run id is met again only within it.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]
from redis.asyncio import RedisCluster

from engine.campaigns.fanout import Progress, RunPage
from engine.errors import CampaignError
from engine.state.redis.client import AnyRedis, redis_errors, text
from engine.state.redis.keys import Keys

__all__ = ["KafkaSink", "RedisCheckpoints", "RedisPages"]

RUN_TTL_SECONDS = 90 * 86400
RECENT_RUNS = 50  # runs listed by status and the dashboard


class RedisPages:
    """A partition's customers: SCAN over its state keys (on a cluster, on the node holding
    the partition's slot). SCAN returns every key present for the whole walk at least once;
    a key seen twice is decided once by the worker."""

    def __init__(self, client: AnyRedis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)

    async def page(self, partition: int, cursor: int, count: int) -> tuple[int, list[str]]:
        pattern = self.keys.states_pattern(partition)
        strip = len(pattern) - 1  # the pattern less its '*'
        options: dict[str, Any] = {}
        if isinstance(self.client, RedisCluster):
            options["target_nodes"] = self.client.get_node_from_key(self.keys.tag(partition))
        with redis_errors("campaign scan"):
            nxt, found = await self.client.scan(cursor=cursor, match=pattern, count=count,
                                                **options)
        if isinstance(nxt, dict):  # redis-py's cluster answer: ({node: cursor}, keys)
            nxt = next(iter(nxt.values()), 0)
        return int(nxt), [text(k)[strip:] for k in found]


class RedisCheckpoints:
    def __init__(self, client: AnyRedis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, run: str) -> str:
        return f"{self.prefix}campaign-run:{run}"

    async def load(self, run: str) -> Progress | None:
        with redis_errors("campaign checkpoint"):
            raw = await self.client.get(self._key(run))
        return None if raw is None else _progress(raw)

    async def save(self, progress: Progress) -> None:
        value = orjson.dumps({
            "run": progress.run, "campaign": progress.campaign,
            "scheduled": progress.scheduled, "started": progress.started,
            "cursors": {str(p): c for p, c in progress.cursors.items()},
            "scanned": progress.scanned, "emitted": progress.emitted,
            "finished": progress.finished,
        })
        index = f"{self.prefix}campaign-runs"
        with redis_errors("campaign checkpoint"):
            await self.client.set(self._key(progress.run), value, ex=RUN_TTL_SECONDS)
            await self.client.zadd(index, {progress.run: progress.started})

    async def recent(self, limit: int = RECENT_RUNS) -> list[Progress]:
        """The latest runs started, newest first."""
        with redis_errors("campaign checkpoint"):
            runs = await self.client.zrevrange(f"{self.prefix}campaign-runs", 0, limit - 1)
            raws = [await self.client.get(self._key(text(r))) for r in runs
                    if isinstance(r, bytes | str)]
        return [_progress(raw) for raw in raws if isinstance(raw, bytes | str)]


def _progress(raw: bytes | str) -> Progress:
    try:
        d = orjson.loads(raw)
        return Progress(
            run=str(d["run"]), campaign=str(d["campaign"]), scheduled=float(d["scheduled"]),
            started=float(d["started"]),
            cursors={int(p): int(c) for p, c in d["cursors"].items()},
            scanned=int(d["scanned"]), emitted=int(d["emitted"]),
            finished=None if d["finished"] is None else float(d["finished"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CampaignError(f"unreadable campaign checkpoint: {type(exc).__name__}: {exc}"
                            ) from None


class KafkaSink:
    """Produces a page's events to the events topic, keyed by customer, on the page's
    partition (the store keeps a customer under the partition Kafka's partitioner gives
    their id, so it is the one a producer keyed by the id would pick), in as few record
    batches as fit, and waits for every acknowledgement (an idempotent producer,
    ``acks=all``). ``offsets`` holds the highest offset written per partition (a test
    waits for the worker to commit past them)."""

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.offsets: dict[int, int] = {}

    async def send(self, page: RunPage) -> None:
        try:
            sent: list[tuple[Any, int]] = []  # (a batch's future, its record count)
            batch, count = self.producer.create_batch(), 0
            for key, value in page.records():
                if batch.append(key=key, value=value, timestamp=None) is None:  # full
                    sent.append((await self._send(batch, page.partition), count))
                    batch, count = self.producer.create_batch(), 0
                    batch.append(key=key, value=value, timestamp=None)
                count += 1
            if count:
                sent.append((await self._send(batch, page.partition), count))
            for future, n in sent:
                meta = await future  # a batch's metadata gives its first record's offset
                last = meta.offset + n - 1
                if last > self.offsets.get(meta.partition, -1):
                    self.offsets[meta.partition] = last
        except KafkaError as exc:
            raise CampaignError(f"kafka produce of campaign events failed: "
                                f"{type(exc).__name__}: {exc}") from exc

    async def _send(self, batch: Any, partition: int) -> Any:
        return await self.producer.send_batch(batch, self.topic, partition=partition)
