"""A campaign run's event for one customer: exactly once per customer per run.

The fan-out makes one ``campaign`` event per customer per run; the core decides it like any
event, with the campaign's rule (its audience as the conditions) among the rules on
``campaign``. The run id goes into the customer's state (``campaigns``) as the event is
decided, in the same state write and Kafka transaction as its decisions, so a run's event
met again (a fan-out resumed after a crash, a run started twice) decides nothing.
"""

from __future__ import annotations

from typing import Any

from engine.campaigns.schedule import CAMPAIGN_EVENT, run_time
from engine.models.state import CustomerState
from engine.pack.model import CampaignDef, CompiledRule, RulePack
from engine.pipeline.guards import RuleFault

__all__ = ["CAMPAIGN_EVENT", "MAX_CAMPAIGN_RUNS", "RUN_DONE", "campaign_rules", "run_done"]

#: The runs a state remembers; past it the oldest go (a run that old is long finished).
MAX_CAMPAIGN_RUNS = 64
#: Why a run's event decided nothing the second time (docs/reasons.md).
RUN_DONE = "campaign_run_done"


def run_done(st: CustomerState, data: dict[str, Any]) -> bool:
    """Has this customer been decided for the event's run already?"""
    run = data.get("run")
    return type(run) is str and run in st.campaigns


def campaign_rules(
    pack: RulePack, st: CustomerState, data: dict[str, Any], at: float, event_id: str,
    faults: list[RuleFault],
) -> list[CompiledRule]:
    """The rules that decide a ``campaign`` event, highest priority first: its campaign's
    (unless the event names no campaign of the pack, a fault: fail closed) and any rule on
    ``campaign``. Records the run as decided for this customer."""
    others = pack.by_trigger.get(CAMPAIGN_EVENT, [])
    found = _campaign_run(pack, data)
    if isinstance(found, str):
        faults.append(RuleFault(CAMPAIGN_EVENT, event_id, found))
        return others
    campaign, run = found
    runs = st.campaigns
    runs[run] = at
    if len(runs) > MAX_CAMPAIGN_RUNS:
        for old in sorted(runs, key=runs.__getitem__)[: len(runs) - MAX_CAMPAIGN_RUNS]:
            del runs[old]
    if not others:
        return [campaign.rule]
    return sorted([campaign.rule, *others], key=lambda r: (-r.priority, r.order))


def _campaign_run(pack: RulePack, data: dict[str, Any]) -> tuple[CampaignDef, str] | str:
    """The event's enabled campaign and its run, or why there is none."""
    cid, run = data.get("campaign"), data.get("run")
    campaign = pack.campaigns.get(cid) if type(cid) is str else None
    if campaign is None:
        return f"no campaign {cid!r} in the pack"
    if not campaign.enabled:
        return f"campaign {cid!r} is disabled"
    if type(run) is not str or _campaign_of(run) != cid:
        return f"run {run!r} is not a run of campaign {cid!r}"
    return campaign, run


def _campaign_of(run: str) -> str | None:
    try:
        return run_time(run)[0]
    except ValueError:
        return None
