"""The scenario file format (docs/scenarios.md). Errors point at file:line:col."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from engine.errors import EventValidationError
from engine.models.event import Envelope, Event, parse_event
from engine.models.seed import CustomerSeed
from engine.models.state import CustomerState
from engine.pack.model import RulePack
from engine.pack.source import SourceFile
from engine.scenarios.seeds import StartingState
from engine.scenarios.source import invalid, located, read_yaml


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(_M):
    id: str
    at: AwareDatetime
    received: AwareDatetime | None = None
    event: dict[str, Any] | None = None
    campaign: str | None = None  # a run of this campaign, scheduled at ``at``, instead

    def envelope(self) -> Envelope | None:
        if self.event is None:
            return None
        raw = {**self.event, "at": self.at.isoformat()}
        ev: Event = parse_event(raw)
        received = (self.received or self.at).timestamp()
        return Envelope(ev, received)


class ExpectedSent(_M):
    customer: str
    message: str
    channel: str
    params: dict[str, Any] | None = None
    deliver_after: AwareDatetime | None = None


class ExpectedSuppressed(_M):
    customer: str
    message: str
    reason: str
    channel: str | None = None


class StepExpect(_M):
    sent: list[ExpectedSent] | None = None
    suppressed: list[ExpectedSuppressed] = Field(default_factory=list)
    duplicate: bool | None = None


class Scenario(_M):
    scenario: str
    story: str = ""
    customers: dict[str, CustomerSeed] = Field(default_factory=dict)
    steps: list[Step]
    expect: dict[str, StepExpect] = Field(default_factory=dict)
    path: str = Field("", exclude=True)
    _source: SourceFile | None = PrivateAttr(default=None)

    @property
    def start(self) -> float | None:
        """The first step's time: relative times in ``customers`` count from it."""
        return self.steps[0].at.timestamp() if self.steps else None

    def states(self, pack: RulePack) -> list[CustomerState]:
        """The customers' starting states for ``pack`` (raises ScenarioError, located)."""
        seeds = StartingState(self.customers, self._source, ("customers",))
        return seeds.states(pack, self.start)


def load_scenario(path: str | Path) -> Scenario:
    """Read and check one scenario file; any error is a ScenarioError at file:line:col."""
    src = read_yaml(path)
    if "path" in src.data:
        raise located(src, ("path", "__key__"), "unknown key 'path' in the file")
    try:
        sc = Scenario.model_validate({**src.data, "path": str(path)})
    except ValidationError as exc:
        raise invalid(src, exc) from None
    sc._source = src
    for i, step in enumerate(sc.steps):
        try:
            step.envelope()
        except EventValidationError as exc:
            raise located(src, _event_path(step, i, exc.reason),
                          f"step {step.id}: event {exc.reason}") from None
    seen: set[str] = set()
    for i, step in enumerate(sc.steps):
        if step.event is not None and step.campaign is not None:
            raise located(src, ("steps", i, "campaign"),
                          f"step {step.id}: an event or a campaign run, not both")
        if step.id in seen:
            raise located(src, ("steps", i, "id"), f"step id {step.id!r} is used twice")
        seen.add(step.id)
    for name in sc.expect:
        if name not in seen:
            raise located(src, ("expect", name, "__key__"),
                          f"expect names an unknown step {name!r} (steps: "
                          f"{', '.join(s.id for s in sc.steps)})")
    return sc


def load_scenarios(where: str | Path) -> list[Scenario]:
    p = Path(where)
    files = sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if p.is_dir() else [p]
    return [load_scenario(f) for f in files]


def _event_path(step: Step, index: int, reason: str) -> tuple[str | int, ...]:
    """Where an event's error is: at the field its reason names ("type: ..."), if any."""
    field = reason.split(":", 1)[0].split(".", 1)[0]
    inside = step.event is not None and field in step.event
    return ("steps", index, "event", field) if inside else ("steps", index, "event")
