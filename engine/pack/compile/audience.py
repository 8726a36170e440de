"""Campaigns (``campaigns:``): a schedule, an audience condition and a send.

A campaign compiles to a rule on the built-in ``campaign`` event whose conditions are the
audience, so its decisions go through the very arbitration, policies, caps, quiet hours
and holdouts a rule's do, and its errors are placed like a rule's (file:line:col).
"""

from __future__ import annotations

from dataclasses import replace

from engine.campaigns.schedule import CAMPAIGN_EVENT, Schedule, parse_rate
from engine.dsl.compiler import CompiledExpr, compile_all
from engine.pack import schema as S
from engine.pack.compile.files import RuleFileParts
from engine.pack.compile.issues import Issues
from engine.pack.compile.rules import RuleCompiler
from engine.pack.model import CampaignDef
from engine.pack.source import Path_, SourceFile


def compile_campaigns(
    files: list[RuleFileParts], rules: RuleCompiler, rule_ids: set[str], issues: Issues
) -> dict[str, CampaignDef]:
    """Every campaign by id (a disabled one too: it can still be run by hand)."""
    out: dict[str, CampaignDef] = {}
    for part in files:
        for i, c in part.items("campaigns"):
            base: Path_ = ("campaigns", i)
            if c.id in out or c.id in rule_ids:
                what = "campaign" if c.id in out else "rule"
                issues.error(part.src, (*base, "id"),
                             f"duplicate id '{c.id}': a {what} has it already (decisions "
                             "name a campaign as their rule)", c.id)
                continue
            built = _campaign(part.src, base, c, rules, issues)
            if built is not None:
                out[c.id] = built
    return out


def _campaign(
    src: SourceFile, base: Path_, c: S.Campaign, rules: RuleCompiler, issues: Issues
) -> CampaignDef | None:
    try:
        schedule = Schedule.parse(c.schedule.at, c.schedule.cron, c.schedule.tz)
    except ValueError as exc:
        issues.error(src, (*base, "schedule"), str(exc), c.id)
        schedule = None
    try:
        rate = parse_rate(c.rate)
    except ValueError as exc:
        issues.error(src, (*base, "rate"), str(exc), c.id)
        rate = None
    # the send, params, holdout and priority, compiled as a rule's at the same paths
    as_rule = S.Rule(id=c.id, description=c.description, on=CAMPAIGN_EVENT, send=c.send,
                     priority=c.priority, holdout=c.holdout)
    rule = rules.rule(src, base, as_rule, -1)
    audience = _audience(src, base, c, rules)
    if rule is None or audience is None or schedule is None or rate is None:
        return None
    rule = replace(rule, conditions=audience, check=compile_all(list(audience), None),
                   location=src.location((*base, "id")))
    return CampaignDef(c.id, schedule, rate, rule, c.enabled, c.description)


def _audience(
    src: SourceFile, base: Path_, c: S.Campaign, rules: RuleCompiler
) -> tuple[CompiledExpr, ...] | None:
    """The audience conditions in the campaign event's scope (None after an error)."""
    if c.audience is None:
        return ()
    texts = [c.audience] if isinstance(c.audience, str) else c.audience
    scope = rules.scopes.for_triggers((CAMPAIGN_EVENT,))
    out: list[CompiledExpr] = []
    for j, text in enumerate(texts):
        path: Path_ = (*base, "audience") if isinstance(c.audience, str) else (
            *base, "audience", j)
        compiled = rules.values.expr(src, path, text, scope, True)
        if compiled is not None:
            out.append(compiled)
    return tuple(out) if len(out) == len(texts) else None
