"""Dedupe markers of the Redis state store: ``{prefix}seen:<event id>`` strings with a TTL."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from redis.asyncio import Redis


class SeenMarkers:
    """``mark_seen`` / ``seen`` for :class:`~connectors.redis.store.RedisStateStore`.

    ``CustomerState.seen`` already dedupes events inside the state, which is what the
    pipeline uses. These markers (``SET NX EX``) are for callers that must drop duplicates
    *before* loading any state (an ingestion edge, a webhook receiver), or that must remember
    an event longer than the state itself lives.
    """

    _redis: Redis
    prefix: str
    dedupe_ttl_seconds: int

    def _trip(self, operation: str) -> AbstractContextManager[None]:
        raise NotImplementedError  # provided by the store: counted, timed, errors translated

    def seen_key(self, event_id: str) -> str:
        return f"{self.prefix}seen:{event_id}"

    async def mark_seen(self, event_ids: Sequence[str]) -> list[bool]:
        """Mark event ids as seen (``SET NX EX dedupe_ttl``) in one round trip.

        Returns, for each id, True if it had been seen before (a duplicate) and False if
        this call marked it first. An id repeated within the call is a duplicate the
        second time.
        """
        if not event_ids:
            return []
        with self._trip("mark_seen"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for ev in event_ids:
                    pipe.set(self.seen_key(ev), b"1", nx=True, ex=self.dedupe_ttl_seconds)
                results: list[bool | None] = await pipe.execute()
        return [not bool(r) for r in results]

    async def seen(self, event_ids: Sequence[str]) -> list[bool]:
        """For each id, whether it is marked as seen (one round trip, marks nothing)."""
        if not event_ids:
            return []
        with self._trip("seen"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for ev in event_ids:
                    pipe.exists(self.seen_key(ev))
                results: list[int] = await pipe.execute()
        return [bool(r) for r in results]
