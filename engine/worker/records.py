"""The records of one batch: in (decoded, with their source), out (to produce), and the result.

:class:`InRecord` is what the consumer decoded; :class:`OutRecord` one record to produce in
the batch's transaction; :class:`Processed` all of a batch's output, its counts and the
states to write once it committed. :class:`RecordFailed` pins a fault to one record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.models.event import Envelope
from engine.observability.counts import BatchCounts
from engine.pipeline import BatchResult
from engine.state.base import Encoded
from engine.worker.codec import DeadLetter, Source

__all__ = ["InRecord", "OutRecord", "Processed", "RecordFailed"]


@dataclass(slots=True)
class InRecord:
    """A consumed record, decoded. ``partition`` is the source partition number (the events,
    ticks and changelog topics are co-partitioned). ``source``, ``key`` and ``value`` are
    the original record, for a dead letter should processing fail."""

    partition: int
    offset: int
    item: Envelope | DeadLetter | float | None  # event, dead letter, tick clock, skipped
    source: Source | None = None
    key: bytes | None = None
    value: bytes | None = None


class RecordFailed(Exception):
    """Processing raised for the record at ``index`` of the batch (nothing was written)."""

    def __init__(self, index: int, error: BaseException) -> None:
        self.index = index
        self.error = error
        super().__init__(f"record {index}: {type(error).__name__}: {error}")


@dataclass(slots=True)
class OutRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int | None = None  # None: the default partitioner's, from the key


def _nothing() -> None:
    return None


@dataclass(slots=True)
class Processed:
    """What the caller produces, then writes to the store; counts for the log and stats."""

    records: list[OutRecord]
    decisions: int = 0
    dead_letters: int = 0
    runs: int = 1
    account: Callable[[], None] = _nothing  # updates the stats: call once committed
    # the batch counted once, for the stats and the metrics: events by type, decisions,
    # dead letters by kind, duplicates, rule faults
    counts: BatchCounts = field(default_factory=BatchCounts)
    #: per partition, the changed customers' states and stored values, for the store
    writes: dict[int, dict[str, Encoded]] = field(default_factory=dict)
    #: what the core said (decisions, outcomes, faults, traces), for embedded callers
    result: BatchResult = field(default_factory=BatchResult)

    @classmethod
    def joined(cls, parts: Sequence[Processed]) -> Processed:
        """The parts of a batch run around a failed record, as one, in order."""
        accounts = [p.account for p in parts]

        def account() -> None:
            for acc in accounts:
                acc()

        counts, result = BatchCounts(), BatchResult()
        writes: dict[int, dict[str, Encoded]] = {}
        for p in parts:
            counts.add(p.counts)
            result.add(p.result)
            for partition, states in p.writes.items():
                writes.setdefault(partition, {}).update(states)
        return cls([r for p in parts for r in p.records], sum(p.decisions for p in parts),
                   sum(p.dead_letters for p in parts), sum(p.runs for p in parts), account,
                   counts, writes, result)
