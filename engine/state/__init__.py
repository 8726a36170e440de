"""Customer state stores: the batch interface (``base``), the stored value (``wire``), and
one package per backend (``memory``, ``redis``)."""

from engine.state.base import BatchRead, PartitionWrite, StateStore
from engine.state.memory import MemoryStateStore

__all__ = ["BatchRead", "MemoryStateStore", "PartitionWrite", "StateStore"]
