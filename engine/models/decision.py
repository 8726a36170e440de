"""A decision: a message sent (possibly deferred), or suppressed with every reason."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["sent", "suppressed"]

# Fixed namespace: decision ids must be the same on every machine and every replay.
_NS = uuid.UUID("8f0f7d1e-3b0a-4c59-9a43-54a1d2f1c0de")


def decision_id(event_id: str, rule: str, channel: str) -> str:
    """Deterministic id, so a redelivered event yields the same id (idempotent delivery)."""
    return str(uuid.uuid5(_NS, f"{event_id}\x1f{rule}\x1f{channel}"))


class Decision(BaseModel):
    """What the engine decided for one (event, rule, channel)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    event_id: str
    customer: str
    rule: str
    message: str
    template: str
    category: str
    channel: str
    params: dict[str, Any] = Field(default_factory=dict)
    outcome: Outcome
    reasons: list[str] = Field(default_factory=list)
    deliver_after: datetime | None = None
    decided_at: datetime
    priority: int = 0
    rules_version: str = ""
    trace: list[str] = Field(default_factory=list)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="python"), option=orjson.OPT_NON_STR_KEYS)
