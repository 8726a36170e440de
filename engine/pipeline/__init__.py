"""The decision pipeline."""

from engine.pipeline.core import BatchResult, EventOutcome, RuleFault, decide, tick

__all__ = ["BatchResult", "EventOutcome", "RuleFault", "decide", "tick"]
