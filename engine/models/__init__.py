"""The data Tact reads and writes: events, decisions and customer state."""

from engine.models.decision import Decision, Outcome
from engine.models.event import Envelope, Event, parse_event
from engine.models.seed import CustomerSeed, SentSeed
from engine.models.state import CustomerState, PendingFollowup, SentRecord

__all__ = [
    "CustomerSeed",
    "CustomerState",
    "Decision",
    "Envelope",
    "Event",
    "Outcome",
    "PendingFollowup",
    "SentRecord",
    "SentSeed",
    "parse_event",
]
