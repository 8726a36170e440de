"""Channel choice: which of a message's channels are tried, in what order (``choose:``).

With ``choose: first``, ``{preferred: attribute}`` or ``engaged`` a message goes out on one
channel per moment; :meth:`engine.pipeline.policies.Arbiter.consider` tries the channels in
this order.
"""

from __future__ import annotations

from engine.models.state import CustomerState
from engine.pack.model import ChannelChoice
from engine.pipeline.engagement import engaged_order

CHANNEL_CHOSEN = "channel_chosen"  # the suppression reason: another channel carries it


def channel_order(
    choice: ChannelChoice, channels: tuple[str, ...], st: CustomerState, now: float
) -> tuple[tuple[str, ...], str]:
    """The channels in the order they are tried, and how that order was made (for traces).

    The customer's preferred channel goes first when it is one of the message's channels;
    any other value (absent, unknown, not a string) leaves the pack's order. Engagement
    orders them by the customer's opens and clicks (:func:`engaged_order`).
    """
    if choice.engaged is not None:
        return engaged_order(st, channels, now, choice.engaged)
    if choice.preferred is None:
        return channels, "first"
    wanted = st.attributes.get(choice.preferred)
    if isinstance(wanted, str) and wanted in channels:
        return (wanted, *(c for c in channels if c != wanted)), f"preferred {wanted}"
    if wanted is None:
        return channels, "no preferred channel, in order"
    return channels, f"preferred {wanted!r} is not one of {', '.join(channels)}, in order"
