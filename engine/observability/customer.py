"""The single customer view: one customer's state as JSON, for operators.

One function builds it for every surface: ``GET /customers/{id}`` on the worker, the
``/customers/{id}`` page (which renders that JSON) and ``tact customer ID``. Attributes
named in ``TACT_PII_ATTRIBUTES`` are masked. Customer data is untrusted: whoever renders
this escapes it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from engine.campaigns.schedule import run_time
from engine.models.state import KEY_SEP, CustomerState, RecentDecision

#: What a masked attribute's value shows.
MASK = "•••"

#: Where a decision's trace is: traces exist only in explain mode, not in stored state.
TRACE_HINT = "traces are not stored: `tact explain` replays an event with its trace"


def iso(ts: float) -> str | None:
    """Epoch seconds as ISO 8601 UTC; None for an open end (inf) or a time out of range."""
    if not math.isfinite(ts):
        return None
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def shown(entry: str) -> str:
    """A counter's or timestamp's entry as people read it: ``name``, or ``name[key]`` for
    one key's instance."""
    name, _, key = entry.partition(KEY_SEP)
    return f"{name}[{key}]" if key else name


def mask_attributes(attributes: Mapping[str, Any], pii: Collection[str]) -> dict[str, Any]:
    """The attributes with the value of every one named in ``pii`` replaced by :data:`MASK`."""
    return {name: MASK if name in pii else value for name, value in attributes.items()}


def campaign_runs(runs: Mapping[str, float]) -> list[dict[str, Any]]:
    """The campaign runs the customer was decided for, the latest decided first: each with
    its campaign and scheduled time read from the run id (None when it is not one)."""
    out = []
    for run, decided in sorted(runs.items(), key=lambda item: item[1], reverse=True):
        try:
            campaign, scheduled = run_time(run)
        except ValueError:  # shown as stored: the view never hides what the state holds
            out.append({"run": run, "campaign": None, "scheduled": None, "decided": iso(decided)})
            continue
        out.append({"run": run, "campaign": campaign, "scheduled": iso(scheduled),
                    "decided": iso(decided)})
    return out


def engagement_rows(engaged: Mapping[str, list[list[float]]]) -> dict[str, dict[str, Any]]:
    """Per channel, the opens and clicks kept for ``choose: engaged`` (the pack's longest
    engaged window, as of the last one) and the time of the latest, most engaged first."""
    kept = [(channel, len(opened), len(clicked), max(opened[-1:] + clicked[-1:]))
            for channel, (opened, clicked) in engaged.items() if opened or clicked]
    kept.sort(key=lambda row: -(row[1] + row[2]))  # stable: ties as stored
    return {channel: {"opened": opened, "clicked": clicked, "last": iso(last)}
            for channel, opened, clicked, last in kept}


def customer_view(
    st: CustomerState,
    *,
    now: float,
    pii: Collection[str] = (),
    windows: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """What the operator sees of ``st`` at ``now`` (epoch seconds): attributes (masked),
    consent, counters, timestamps, sets (member -> time added), maps, windows, contexts,
    pending follow-ups (earliest due first), campaign runs decided, engagement per channel
    (opens and clicks, most engaged first), recent messages and
    decisions (newest first). ``windows`` (name -> length in seconds, from the
    rule pack) adds how many of each window's events are still inside it."""
    window_rows: dict[str, Any] = {}
    for name, times in st.windows.items():
        row: dict[str, Any] = {"stored": len(times), "last": iso(max(times)) if times else None}
        length = None if windows is None else windows.get(name)
        if length is not None:
            row["in_window"] = sum(1 for t in times if t > now - length)
        window_rows[name] = row
    contexts = []
    for entry, until in sorted(st.contexts.items()):
        name, _, key = entry.partition(KEY_SEP)
        contexts.append({"name": name, "key": key or None, "until": iso(until),
                         "active": until > now})
    decisions = [d for d in (r if isinstance(r, RecentDecision) else RecentDecision.unpack(r)
                             for r in reversed(st.recent)) if d is not None]
    return {
        "customer": st.customer,
        "version": st.version,
        "last_event": iso(st.last_event) if st.last_event else None,
        "attributes": mask_attributes(st.attributes, pii),
        "masked": sorted(set(pii) & st.attributes.keys()),
        "consent": dict(st.consent),
        "counters": {shown(entry): value for entry, value in st.counters.items()},
        "timestamps": {shown(entry): iso(at) for entry, at in st.timestamps.items()},
        "sets": {name: {member: iso(added) for member, added in members.items()}
                 for name, members in st.sets.items()},
        "maps": {name: {key: {"value": value, "put": iso(at)}
                        for key, (value, at) in entries.items()}
                 for name, entries in st.maps.items()},
        "windows": window_rows,
        "contexts": contexts,
        "active_contexts": sorted({c["name"] for c in contexts if c["active"]}),
        "followups": [
            {"rule": f.rule, "key": f.key, "due": iso(f.due), "overdue": f.due <= now,
             "event_id": f.event.get("id") if isinstance(f.event.get("id"), str) else None}
            for f in sorted(st.followups, key=lambda f: f.due)
        ],
        "campaigns": campaign_runs(st.campaigns),
        "engaged": engagement_rows(st.engaged),
        "messages": [
            {"message": h.message, "channel": h.channel, "category": h.category, "at": iso(h.at),
             "held": h.held}  # held: held out (not sent), counted for cooldowns and caps
            for h in reversed(st.history)
        ],
        "decisions": [
            {"id": r.id, "at": iso(r.at), "rule": r.rule, "message": r.message,
             "channel": r.channel, "outcome": r.outcome, "reasons": list(r.reasons)}
            for r in decisions
        ],
        "trace": TRACE_HINT,
    }
