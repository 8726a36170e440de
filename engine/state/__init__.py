"""Customer state stores: the batch interface (``base``) and one package per backend."""

from engine.state.base import StateStore
from engine.state.memory import MemoryStateStore

__all__ = ["MemoryStateStore", "StateStore"]
