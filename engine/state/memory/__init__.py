"""In-memory state store: embedded mode (rule authoring, simulation, tests)."""

from engine.state.memory.store import MemoryStateStore

__all__ = ["MemoryStateStore"]
