"""Embedded mode: the worker's batch processor with a state store, in-process, no Kafka.

Rule authors use it to test, explain, simulate and replay; the streaming worker runs the
same :class:`~engine.worker.process.BatchProcessor` around Kafka batches and Redis. Here each
batch is applied at once (there is no transaction to wait for) and every customer lives in
partition 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.campaigns.fanout import CustomerPages, FanOut, Progress
from engine.campaigns.memory import DecidingSink, MemoryCheckpoints, MemoryPages
from engine.campaigns.redis import RedisPages
from engine.errors import CampaignError
from engine.models.event import Envelope
from engine.pack.model import RulePack
from engine.pipeline import BatchResult
from engine.state.base import StateStore
from engine.state.memory import MemoryStateStore
from engine.state.redis import RedisStateStore
from engine.worker.process import BatchProcessor, InRecord
from engine.worker.stats import WorkerStats


class Engine:
    def __init__(
        self, pack: RulePack, store: StateStore | None = None, *, trace: bool = False
    ) -> None:
        self.pack = pack
        self.store: StateStore = store if store is not None else MemoryStateStore()
        self.trace = trace
        self.stats = WorkerStats()
        self._offset = 0
        self.campaign_runs = MemoryCheckpoints()

    def swap_pack(self, pack: RulePack) -> None:
        """Atomically replace the pack; callers do it between batches."""
        self.pack = pack

    def _processor(self) -> BatchProcessor:
        return BatchProcessor(self.store, self.stats, trace=self.trace)

    async def _run(self, items: Sequence[Envelope | float]) -> BatchResult:
        records = []
        for item in items:
            records.append(InRecord(0, self._offset, item))
            self._offset += 1
        processor = self._processor()
        out = await processor.process(self.pack, records)
        await processor.apply(out, {})
        out.account()
        return out.result

    async def process(self, batch: Sequence[Envelope]) -> BatchResult:
        """One batch: one state read, the pipeline, one state write (changed customers)."""
        return await self._run(batch)

    async def tick(self, now: float) -> BatchResult:
        """Fire the follow-ups due by ``now`` (event time)."""
        return await self._run([float(now)])

    async def run_campaign(self, campaign: str, at: float) -> tuple[Progress, BatchResult]:
        """Run (or resume) ``campaign``'s run scheduled at ``at`` over every customer in
        the store (memory or Redis), each page decided as it goes, every event dated ``at``.
        Returns the run's progress and what it decided."""
        found = self.pack.campaigns.get(campaign)
        if found is None:
            raise CampaignError(f"no campaign {campaign!r} in pack {self.pack.name}")
        pages, partitions = self._customer_pages()
        result = BatchResult()

        async def decide(batch: Sequence[Envelope]) -> None:
            result.add(await self.process(batch))

        async def no_wait(_seconds: float) -> None:  # event time: nothing to wait for
            return None

        fanout = FanOut(pages, DecidingSink(decide), self.campaign_runs, partitions,
                        clock=lambda: at, sleep=no_wait)
        return await fanout.run(found, at), result

    def _customer_pages(self) -> tuple[CustomerPages, list[int]]:
        """Where a campaign finds every known customer, and in which partitions."""
        if isinstance(self.store, MemoryStateStore):
            return MemoryPages(self.store), self.store.partitions() or [0]
        if isinstance(self.store, RedisStateStore):  # embedded: every customer in partition 0
            return RedisPages(self.store.client, self.store.prefix), [0]
        raise CampaignError(f"embedded campaigns cannot walk {type(self.store).__name__}")
