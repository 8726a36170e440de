"""The built-in outcome event types: what a sender reports back about a decision.

Every pack knows them (a pack that declares events gets them added, and may not declare
them itself), so rules, updates and expressions may use them like any declared event.
Each carries the decision's id, as the webhook connector passes it (``Idempotency-Key``
and the body's ``id``); ``rule`` and ``message`` (echoed from the decision) let the report
count the outcome without a lookup. ``message_failed`` with ``reason: hard_bounce``
marks the channel bounced: it is suppressed (``channel_bounced``) until consent to it is
given again.
"""

from __future__ import annotations

DELIVERED = "message_delivered"
OPENED = "message_opened"
CLICKED = "message_clicked"
FAILED = "message_failed"

#: A ``message_failed`` reason that suppresses the channel.
HARD_BOUNCE = "hard_bounce"

_DATA = {"decision_id": "str", "channel": "str", "rule": "str", "message": "str",
         "reason": "str"}

#: event type -> its data's field types (the shape of a pack's ``events:``)
OUTCOME_EVENTS: dict[str, dict[str, str]] = {
    DELIVERED: dict(_DATA), OPENED: dict(_DATA), CLICKED: dict(_DATA), FAILED: dict(_DATA),
}

#: event type -> the report metric it counts
METRIC_OF = {DELIVERED: "delivered", OPENED: "opened", CLICKED: "clicked", FAILED: "failed"}
