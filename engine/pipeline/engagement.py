"""Engagement per channel, for ``choose: engaged``: the customer's opens and clicks.

A ``message_opened`` or ``message_clicked`` on one of the pack's channels is kept in the
customer's state (``CustomerState.engaged``: channel -> [times opened, times clicked]), but
only while the pack has an ``engaged`` choice, and only for its longest window: older times
go (on every channel) when the next one is added, and each list keeps its last
:data:`MAX_PER_KIND`. So the state is bounded by the pack's channels, whatever the sender
reports.

The channels are then ordered by the opens and clicks within the choice's window (event
time, an outcome dated after the moment does not count), most first; ties and channels
never engaged keep the message's order. A channel counts at most :data:`MAX_PER_KIND`
opens and as many clicks: past that it is as engaged as can be told.
"""

from __future__ import annotations

from engine.dsl.durations import format_duration
from engine.models.state import CustomerState
from engine.outcomes.events import CLICKED, OPENED

MAX_PER_KIND = 20  # the last opens (and clicks) kept per channel

_KIND = {OPENED: 0, CLICKED: 1}


def record_engagement(st: CustomerState, etype: str, channel: object, now: float,
                      channels: frozenset[str], within: float) -> bool:
    """Keep an open or click on ``channel`` at ``now`` when the pack counts them (``within``
    > 0) and the channel is one of the pack's. Returns whether it was kept."""
    kind = _KIND.get(etype)
    if kind is None or within <= 0 or not isinstance(channel, str) or channel not in channels:
        return False
    kinds = st.engaged.get(channel)
    if kinds is None:
        kinds = st.engaged[channel] = [[], []]
    times = kinds[kind]
    times.append(now)
    if len(times) > 1 and times[-2] > now:  # reported out of order: keep them sorted
        times.sort()
    oldest = now - within
    for name, both in list(st.engaged.items()):  # what no window can count any more goes
        for i, kept in enumerate(both):
            if kept and (kept[0] <= oldest or len(kept) > MAX_PER_KIND):
                both[i] = [t for t in kept if t > oldest][-MAX_PER_KIND:]
        if not both[0] and not both[1]:
            del st.engaged[name]
    return True


def engagement(st: CustomerState, channel: str, now: float, within: float) -> tuple[int, int]:
    """(opens, clicks) on ``channel`` in the ``within`` seconds up to ``now``."""
    kinds = st.engaged.get(channel)
    if kinds is None:
        return 0, 0
    oldest = now - within
    opened, clicked = kinds
    return (sum(1 for t in opened if oldest < t <= now),
            sum(1 for t in clicked if oldest < t <= now))


def engaged_order(st: CustomerState, channels: tuple[str, ...], now: float, within: float
                  ) -> tuple[tuple[str, ...], str]:
    """The channels by opens plus clicks in the window, most first (a stable sort: ties and
    no history keep the message's order), and why, e.g. ``most engaged email (opened 5,
    clicked 2 on email; opened 1 on push in 90d)``."""
    span = format_duration(within)
    counts = {ch: engagement(st, ch, now, within) for ch in channels} if st.engaged else {}
    total = {ch: sum(c) for ch, c in counts.items()}
    if not any(total.values()):
        return channels, f"no opens or clicks in {span}, in order"
    order = tuple(sorted(channels, key=lambda ch: -total[ch]))
    tied = [ch for ch in order if total[ch] == total[order[0]]]
    lead = f"most engaged {order[0]}" if len(tied) == 1 else f"{' and '.join(tied)} tied"
    said = "; ".join(_said(ch, counts[ch]) for ch in order if total[ch])
    return order, f"{lead} ({said} in {span})"


def _said(channel: str, counts: tuple[int, int]) -> str:
    opened, clicked = counts
    parts = [f"opened {opened}"] * bool(opened) + [f"clicked {clicked}"] * bool(clicked)
    return f"{', '.join(parts)} on {channel}"
