"""`tact campaigns list|run|status|schedule`: scheduled audience sends (docs/campaigns.md).

Parses, configures and delegates to :mod:`engine.campaigns.service`. Exit status: 0 done,
1 refused (no such campaign, disabled, nothing due), 2 Redis or Kafka failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from engine.cli.worker import Brokers, Prefix, RedisUrl, Rules
from engine.errors import CampaignError, TactError

if TYPE_CHECKING:
    from engine.config import TactSettings

app = typer.Typer(no_args_is_help=True)
_console = Console(highlight=False)
_errors = Console(stderr=True, highlight=False)

At = Annotated[str | None, typer.Option(
    "--at", help="The run's scheduled time, ISO 8601 with an offset [default: the latest "
    "the schedule has reached].")]


def _settings(rules: Path | None, brokers: str | None, redis_url: str | None) -> TactSettings:
    from engine.config import TactSettings

    overrides: dict[str, Any] = {"rules_path": rules, "kafka_brokers": brokers,
                                 "redis_url": redis_url}
    return TactSettings(**{k: v for k, v in overrides.items() if v is not None})


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@app.command("list")
def list_(rules: Rules = None) -> None:
    """The pack's campaigns: schedule, rate, next run."""
    from engine.pack.loader import load_pack

    pack = load_pack(_settings(rules, None, None).rules_path)
    now = time.time()
    if not pack.campaigns:
        _console.print(f"pack {pack.name}: no campaigns")
    for c in pack.campaigns.values():
        state = "" if c.enabled else "  (disabled)"
        _console.print(f"{c.id}: {c.schedule.describe()}, {c.rate:g}/s, send "
                       f"{c.rule.message.id}, next {_when(c.schedule.next(now))}{state}")


@app.command("run")
def run(campaign: Annotated[str, typer.Argument(help="The campaign id.")], at: At = None,
        rules: Rules = None, brokers: Brokers = None, redis_url: RedisUrl = None,
        redis_prefix: Prefix = "tact:") -> None:
    """Start (or resume) one run of a campaign; returns when every customer is sent."""
    from engine.campaigns.service import pick_run, streaming_fanout
    from engine.pack.loader import load_pack

    settings = _settings(rules, brokers, redis_url)
    pack = load_pack(settings.rules_path)
    when = None if at is None else _instant(at)

    async def go() -> None:
        found, scheduled = pick_run(pack, campaign, when, time.time())
        async with streaming_fanout(settings, redis_prefix) as streaming:
            progress = await streaming.fanout.run(found, scheduled)
        _console.print(f"{progress.run}: {progress.state}, {progress.scanned} customers, "
                       f"{progress.emitted} events sent")

    _guard(go)


@app.command("status")
def status(redis_url: RedisUrl = None, redis_prefix: Prefix = "tact:") -> None:
    """The latest runs: state, customers scanned, events sent, partitions done."""
    from engine.campaigns.redis import RedisCheckpoints
    from engine.state.redis.client import client_from_settings

    settings = _settings(None, None, redis_url)

    async def go() -> None:
        client = client_from_settings(settings)
        try:
            runs = await RedisCheckpoints(client, redis_prefix).recent()
        finally:
            await client.aclose()
        if not runs:
            _console.print("no campaign runs")
        for p in runs:
            _console.print(f"{p.run}: {p.state}, scanned {p.scanned}, sent {p.emitted}, "
                           f"partitions done {p.partitions_done()}, started "
                           f"{_when(p.started)}, finished {_when(p.finished)}")

    _guard(go)


@app.command("schedule")
def schedule(rules: Rules = None, brokers: Brokers = None, redis_url: RedisUrl = None,
             redis_prefix: Prefix = "tact:",
             every: Annotated[float, typer.Option(help="Seconds between looks.")] = 30.0,
             once: Annotated[bool, typer.Option(help="Look once, run what is due, exit.")]
             = False,
             max_late: Annotated[float, typer.Option(
                 help="Hours after its time a run is still started or resumed.")] = 6.0,
             ) -> None:
    """Run every due campaign run, resuming any cut short; with --once, only once."""
    from engine.campaigns.service import due_runs, streaming_fanout
    from engine.pack.loader import load_pack

    settings = _settings(rules, brokers, redis_url)
    pack = load_pack(settings.rules_path)

    async def go() -> None:
        async with streaming_fanout(settings, redis_prefix) as streaming:
            while True:
                for found, scheduled in await due_runs(pack, time.time(),
                                                       streaming.checkpoints, max_late * 3600):
                    progress = await streaming.fanout.run(found, scheduled)
                    _console.print(f"{progress.run}: {progress.state}, "
                                   f"{progress.emitted} events sent")
                if once:
                    return
                await asyncio.sleep(every)

    _guard(go)


def _instant(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        _errors.print(f"--at {text!r}: expected ISO 8601 with an offset, e.g. "
                      "2026-11-27T10:00+01:00", markup=False)
        raise typer.Exit(1)
    return moment.timestamp()


def _guard(go: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        asyncio.run(go())
    except CampaignError as exc:
        _errors.print(f"campaign: {exc}", markup=False)
        raise typer.Exit(1) from exc
    except (TactError, OSError) as exc:
        _errors.print(f"campaign failed: {exc}", markup=False)
        raise typer.Exit(2) from exc
