"""The decision pipeline."""

from engine.pipeline.core import BatchResult, EventOutcome, decide, tick
from engine.pipeline.guards import RuleFault

__all__ = ["BatchResult", "EventOutcome", "RuleFault", "decide", "tick"]
