"""Embedded mode: the pipeline plus a state store, in-process, with no Kafka and no Redis.

Rule authors use it to test, explain, simulate and replay; the streaming worker wraps
the same calls around Kafka batches and the Redis store.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.models.event import Envelope
from engine.pack.model import RulePack
from engine.pipeline import BatchResult, decide, tick
from engine.state.base import StateStore
from engine.state.memory import MemoryStateStore


class Engine:
    def __init__(
        self, pack: RulePack, store: StateStore | None = None, *, trace: bool = False
    ) -> None:
        self.pack = pack
        self.store: StateStore = store if store is not None else MemoryStateStore()
        self.trace = trace

    def swap_pack(self, pack: RulePack) -> None:
        """Atomically replace the pack; callers do it between batches."""
        self.pack = pack

    async def process(self, batch: Sequence[Envelope]) -> BatchResult:
        """One batch: one state read, the pipeline, one state write (changed customers)."""
        customers = list(dict.fromkeys(env.event.customer for env in batch))
        states = await self.store.load(customers)
        result = decide(self.pack, states, batch, trace=self.trace)
        if result.changed:
            await self.store.save({c: states[c] for c in result.changed})
        return result

    async def tick(self, now: float) -> BatchResult:
        """Fire the follow-ups due by ``now`` (event time)."""
        due = await self.store.due_customers(now)
        if not due:
            return BatchResult()
        states = await self.store.load(due)
        result = tick(self.pack, states, now, trace=self.trace)
        # Save every customer the index named, even with nothing fired: saving re-indexes
        # (or un-indexes) its next follow-up, so a stale index entry cannot come back forever.
        await self.store.save(states)
        return result
