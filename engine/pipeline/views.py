"""The read-only views expressions see: ``event``, ``customer`` and ``context``."""

from __future__ import annotations

from typing import Any

from engine.models.event import Envelope
from engine.models.state import KEY_SEP, CustomerState
from engine.pack.model import MapSpec, SetSpec
from engine.pipeline.maps import live_maps


def event_view(env: Envelope, at: float) -> dict[str, Any]:
    ev = env.event
    return {
        "id": ev.id,
        "customer": ev.customer,
        "type": ev.type,
        "at": at,
        "received": env.received,
        "data": ev.data,
    }


def window_counts(st: CustomerState, now: float, windows: dict[str, float]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, times in st.windows.items():
        w = windows.get(name)
        if w is not None:
            since = now - w
            counts[name] = sum(1 for t in times if t > since)
    return counts


def live_sets(st: CustomerState, now: float, sets: dict[str, SetSpec]) -> dict[str, Any]:
    """Each declared set's members not yet expired at ``now``, as a tuple."""
    live: dict[str, Any] = {}
    for name, members in st.sets.items():
        spec = sets.get(name)
        if spec is not None:
            ttl = spec.ttl
            if ttl is None:
                live[name] = tuple(members)
            else:
                since = now - ttl
                live[name] = tuple(m for m, t in members.items() if t > since)
    return live


def customer_view(
    st: CustomerState, now: float, windows: dict[str, float],
    sets: dict[str, SetSpec] | None = None, maps: dict[str, MapSpec] | None = None,
) -> dict[str, Any]:
    counts = window_counts(st, now, windows) if st.windows else {}
    return {
        "id": st.customer,
        "attributes": st.attributes,
        "consent": st.consent,
        "counters": st.counters,
        "windows": counts,
        "timestamps": st.timestamps,
        "sets": live_sets(st, now, sets) if st.sets and sets else {},
        "maps": live_maps(st, now, maps) if st.maps and maps else {},
    }


def active_contexts(st: CustomerState, now: float) -> frozenset[str]:
    if not st.contexts:
        return frozenset()
    # a keyed context's instance counts for its name: context.x is "any instance active"
    return frozenset(
        name.partition(KEY_SEP)[0] for name, until in st.contexts.items() if until > now
    )
