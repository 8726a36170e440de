"""The streaming worker (``tact run``): Kafka events in batches through the core.

Modules: :mod:`~engine.worker.app` (the Faust app: lifecycle, web, timers),
:mod:`~engine.worker.runtime` (the worker assembled), :mod:`~engine.worker.batch` (the batch
consumer and its transaction), :mod:`~engine.worker.process` (one batch through the core),
:mod:`~engine.worker.outbox`, :mod:`~engine.worker.followups`, :mod:`~engine.worker.reload`,
:mod:`~engine.worker.codec`, :mod:`~engine.worker.stats`. Design: ``docs/worker.md``.
"""

from engine.worker.runtime import StreamWorker, WorkerOptions
from engine.worker.stats import WorkerStats

__all__ = ["StreamWorker", "WorkerOptions", "WorkerStats"]
