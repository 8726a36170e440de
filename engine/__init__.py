"""Tact engine: models, rule DSL compiler, state model, decision pipeline, worker and CLI."""

__version__ = "0.1.0"
