"""Which caps and policies cover a candidate message, worked out once; holdout groups."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from engine.models.records import SentRecord
from engine.pack.model import RulePack, ScopeFilter

#: The reasons of a candidate held out and nothing else: a "virtual send" (policies.Arbiter).
HELD_ONLY = ["holdout"]


def in_holdout(customer: str, percent: float, salt: str) -> bool:
    """Deterministic: the same customer is in the same group on every worker and replay."""
    h = hashlib.blake2b(f"{salt}\x1f{customer}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % 10000 < percent * 100


def held_at(history: Sequence[SentRecord], message: str, at: float) -> bool:
    """Whether ``message``'s entry at ``at`` is a held one (for explain)."""
    return any(h.held for h in history if h.message == message and h.at == at)


def held_in_cap(history: Sequence[SentRecord], since: float, cap: int,
                scopes: ScopeMemo) -> int:
    """How many held entries after ``since`` the pack's cap ``cap`` counts (for explain)."""
    return sum(1 for h in history if h.held and h.at > since
               and cap in scopes.record_caps(h.category, h.message, h.channel))


class ScopeMemo:
    """Which caps and policies apply to a (category, message, channel), worked out once.

    One per batch (the pack does not change within one): scope checks were a large part of
    arbitration, repeated for every history record and every candidate.
    """

    __slots__ = ("_candidates", "_caps", "_pack", "_policies")

    def __init__(self, pack: RulePack) -> None:
        self._pack = pack
        self._caps: dict[tuple[str, str, str], tuple[int, ...]] = {}
        self._policies: dict[tuple[str, str, str], tuple[int, ...]] = {}
        self._candidates: dict[tuple[str, str, str], tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def candidate(self, category: str, message: str,
                  channel: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(policies, caps) covering a candidate message on a channel: one lookup."""
        key = (category, message, channel)
        both = self._candidates.get(key)
        if both is None:
            both = self._candidates[key] = (self.policies(category, message, channel),
                                            self.record_caps(category, message, channel))
        return both

    def record_caps(self, category: str, message: str, channel: str) -> tuple[int, ...]:
        """Indexes of the caps whose scope covers such a record, in pack order."""
        return _covering(self._caps, self._pack.caps, (category, message, channel))

    def policies(self, category: str, message: str, channel: str) -> tuple[int, ...]:
        """Indexes of the policies whose scope covers such a message, in pack order."""
        return _covering(self._policies, self._pack.policies, (category, message, channel))


class _Scoped(Protocol):
    @property
    def scope(self) -> ScopeFilter: ...


def _covering(cache: dict[tuple[str, str, str], tuple[int, ...]], items: Sequence[_Scoped],
              key: tuple[str, str, str]) -> tuple[int, ...]:
    """Indexes of ``items`` whose scope matches ``key``, worked out once per key."""
    hits = cache.get(key)
    if hits is None:
        hits = cache[key] = tuple(i for i, item in enumerate(items)
                                  if item.scope.matches_record(*key))
    return hits
