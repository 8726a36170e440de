"""What the worker tells operators: Prometheus metrics and the live dashboard's window.

The batch loop calls :meth:`Telemetry.batch_committed` once per committed batch (never for a
batch that will be retried, so nothing is counted twice); a timer calls
:meth:`Telemetry.refresh` for the gauges that are read rather than counted (consumer lag,
pending follow-ups, the pack served, reloads). The web endpoints render from here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from engine.campaigns.fanout import Progress
from engine.observability.live import LiveStats
from engine.observability.metrics import Metrics
from engine.pack.model import RulePack
from engine.worker.process import Processed
from engine.worker.stats import WorkerStats

log = logging.getLogger("tact.worker")

# end-to-end latencies observed per batch, spread evenly over it: a histogram observation
# costs about a microsecond, and a sample keeps the percentiles
LATENCY_SAMPLE = 256


class Telemetry:
    def __init__(self, stats: WorkerStats, metrics: Metrics | None = None,
                 live: LiveStats | None = None) -> None:
        self.stats = stats
        self.metrics = metrics or Metrics()
        self.live = live or LiveStats()
        self.lag: dict[int, int] = {}
        self.pending_followups = 0
        self._pack_key: tuple[str, str] | None = None
        self._reloads_seen: dict[str, int] = {}
        self.campaign_runs: list[Progress] = []  # the latest, newest first (checkpoints)

    # -- counted, per batch ---------------------------------------------------------------
    def batch_committed(self, processed: Processed, *, size: int, seconds: float,
                        produced_ms: Iterable[int], done: float | None = None) -> None:
        """Count a committed batch. ``produced_ms``: the events' Kafka timestamps."""
        m = self.metrics
        done = time.time() if done is None else done
        m.count(processed.counts)
        if processed.result.kpis:
            m.count_kpis(processed.result.kpis)
        m.outcomes.count(processed.counts.decisions, processed.result.facts)
        m.batch_size.observe(size)
        m.processing.observe(seconds)
        stamps = produced_ms if isinstance(produced_ms, list) else list(produced_ms)
        step = max(1, -(-len(stamps) // LATENCY_SAMPLE))  # evenly over the batch's partitions
        latencies = [max(0.0, done - ts / 1000.0) for ts in stamps[::step] if ts > 0]
        for value in latencies:
            m.end_to_end.observe(value)
        self.live.record(processed.counts, latencies=latencies)

    def redis_call(self, op: str, seconds: float) -> None:
        """The state store's and the outbox's round-trip hook."""
        self.metrics.redis.labels(op).observe(seconds)

    # -- read, on a timer -----------------------------------------------------------------
    def set_pack(self, pack: RulePack) -> None:
        key = (pack.name, pack.version)
        if key != self._pack_key:
            self._pack_key = key
            self.metrics.set_pack(pack.name, pack.version, pack.event_types)

    def refresh(self, *, pack: RulePack | None, lag: dict[int, int] | None = None,
                pending_followups: int | None = None) -> None:
        if pack is not None:
            self.set_pack(pack)
        for result, n in self.stats.reloads.items():
            seen = self._reloads_seen.get(result, 0)
            if n > seen:
                self.metrics.reloads.labels(result).inc(n - seen)
                self._reloads_seen[result] = n
        if lag is not None:
            self.lag = dict(lag)
            self.metrics.set_lag(self.lag)
        if pending_followups is not None:
            self.pending_followups = pending_followups
            self.metrics.pending_followups.set(pending_followups)

    def set_campaign_runs(self, runs: list[Progress], campaigns: Iterable[str]) -> None:
        """The latest runs read from their checkpoints; the gauges show, per campaign of the
        pack, its latest run (a campaign gone from the pack is not a label any more)."""
        self.campaign_runs = runs
        known = set(campaigns)
        latest: dict[str, Progress] = {}
        for p in runs:  # newest first: the first met is the latest
            if p.campaign in known:
                latest.setdefault(p.campaign, p)
        self.metrics.set_campaign_runs(
            (c, p.scanned, p.emitted, p.finished is None) for c, p in latest.items())

    # -- rendered -------------------------------------------------------------------------
    def render_metrics(self) -> bytes:
        return self.metrics.render()

    def dashboard(self, window_s: int = 120) -> dict[str, Any]:
        """The JSON the live dashboard polls."""
        body = self.live.snapshot(window_s)
        body.update({
            "rules_version": self.stats.rules_version,
            "pack": self._pack_key[0] if self._pack_key else "",
            "reloads": sum(self.stats.reloads.values()),
            "reloads_by_result": dict(self.stats.reloads),
            "lag": {str(p): n for p, n in sorted(self.lag.items())},
            "lag_total": sum(self.lag.values()),
            "pending_followups": self.pending_followups,
            "events_total": sum(self.stats.events_in.values()),
            "decisions_total": sum(self.stats.decisions.values()),
            "dead_letters_total": sum(self.stats.dead_letters.values()),
            "campaigns": self._campaigns(),
        })
        return body

    def _campaigns(self) -> list[dict[str, Any]]:
        """The latest runs, with what this worker decided for each campaign since it
        started (decisions name the campaign as their rule)."""
        rules = self.live.rules
        return [{
            "run": p.run, "campaign": p.campaign, "state": p.state,
            "scanned": p.scanned, "emitted": p.emitted,
            "partitions_done": p.partitions_done(), "started": p.started,
            "finished": p.finished, "sent": rules[(p.campaign, "sent")],
            "suppressed": rules[(p.campaign, "suppressed")],
        } for p in self.campaign_runs[:10]]
