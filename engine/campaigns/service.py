"""Campaign runs against the real services: the fan-out wired to Redis and Kafka from the
settings, and the scheduler's choice of what is due.

The scheduler keeps no memory of its own: a run is due when its campaign's schedule has
reached it (not long ago) and its checkpoint (in Redis) does not say it finished. So a
scheduler that restarts, or two that run at once, start the same runs under the same ids,
and a run cut short resumes from its checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]

from connectors.kafka.clients import aio_idempotent_producer
from engine.campaigns.fanout import Checkpoints, FanOut, Progress
from engine.campaigns.redis import KafkaSink, RedisCheckpoints, RedisPages
from engine.campaigns.schedule import run_id
from engine.config import TactSettings
from engine.errors import CampaignError
from engine.pack.model import CampaignDef, RulePack
from engine.state.redis.client import client_from_settings

__all__ = ["DEFAULT_MAX_LATE", "Streaming", "due_runs", "pick_run", "streaming_fanout"]

DEFAULT_MAX_LATE = 6 * 3600.0  # the scheduler starts or resumes a run this long after its time


@dataclass(slots=True)
class Streaming:
    """A fan-out on the real services, and its parts (for status and tests)."""

    fanout: FanOut
    checkpoints: RedisCheckpoints
    sink: KafkaSink


@asynccontextmanager
async def streaming_fanout(
    settings: TactSettings, prefix: str, *, clock: Callable[[], float] = time.time,
    on_page: Callable[[Progress], Awaitable[None]] | None = None,
) -> AsyncIterator[Streaming]:
    """A fan-out over the Redis store under ``prefix`` into the events topic."""
    client = client_from_settings(settings)
    producer = aio_idempotent_producer(settings, linger_ms=5)
    try:
        try:
            await producer.start()
        except KafkaError as exc:
            raise CampaignError(f"kafka producer did not start: {type(exc).__name__}: {exc}"
                                ) from exc
        checkpoints = RedisCheckpoints(client, prefix)
        sink = KafkaSink(producer, settings.events_topic)
        fanout = FanOut(RedisPages(client, prefix), sink, checkpoints,
                        range(settings.events_partitions), clock=clock, on_page=on_page)
        yield Streaming(fanout, checkpoints, sink)
    finally:
        await producer.stop()
        await client.aclose()


def pick_run(pack: RulePack, campaign: str, at: float | None, now: float
             ) -> tuple[CampaignDef, float]:
    """The campaign and the scheduled time of the run to start: ``at`` when given (run by
    hand, e.g. a test send), else the latest the schedule has reached by ``now``."""
    found = pack.campaigns.get(campaign)
    if found is None:
        known = ", ".join(sorted(pack.campaigns)) or "none"
        raise CampaignError(f"no campaign {campaign!r} in pack {pack.name} (campaigns: {known})")
    if not found.enabled:
        raise CampaignError(f"campaign {campaign!r} is disabled (enabled: false)")
    scheduled = at if at is not None else found.schedule.latest(now)
    if scheduled is None:
        raise CampaignError(f"campaign {campaign!r} has no run due yet "
                            f"({found.schedule.describe()}); give --at to run one now")
    return found, scheduled


async def due_runs(pack: RulePack, now: float, checkpoints: Checkpoints,
                   max_late: float = DEFAULT_MAX_LATE) -> list[tuple[CampaignDef, float]]:
    """The runs to start or resume now: per enabled campaign, the latest scheduled run,
    unless it finished or was scheduled more than ``max_late`` seconds ago. A run the
    scheduler missed, or could not finish, in time is not sent late (fail closed: a Friday
    offer on Monday is a message nobody should get); ``tact campaigns run --at`` still can."""
    out: list[tuple[CampaignDef, float]] = []
    for campaign in pack.campaigns.values():
        scheduled = campaign.schedule.latest(now) if campaign.enabled else None
        if scheduled is None or now - scheduled > max_late:
            continue
        progress = await checkpoints.load(run_id(campaign.id, scheduled))
        if progress is None or progress.finished is None:
            out.append((campaign, scheduled))
    return out
