"""The scenario file format (see shared/scenarios/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from engine.errors import ScenarioError
from engine.models.event import Envelope, Event, parse_event
from engine.models.state import CustomerSeed


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(_M):
    id: str
    at: AwareDatetime
    received: AwareDatetime | None = None
    event: dict[str, Any] | None = None

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


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        data = YAML(typ="safe").load(p.read_text(encoding="utf-8"))
        sc = Scenario.model_validate({**data, "path": str(p)})
    except (OSError, YAMLError) as exc:
        raise ScenarioError(f"{p}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ScenarioError(f"{p}: {loc}: {first['msg']}") from None
    ids = [s.id for s in sc.steps]
    unknown = sorted(set(sc.expect) - set(ids))
    if unknown:
        raise ScenarioError(f"{p}: expect names unknown steps: {', '.join(unknown)}")
    return sc


def load_scenarios(where: str | Path) -> list[Scenario]:
    p = Path(where)
    files = sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if p.is_dir() else [p]
    return [load_scenario(f) for f in files]
