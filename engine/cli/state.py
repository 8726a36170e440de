"""`tact state show|repair|reset CUSTOMER` and `tact state restore`, for operators.

Parses, configures and delegates to :mod:`engine.state.redis.quarantine` and
:mod:`engine.worker.restore`. Exit status: 0 done (or nothing to do), 1 refused (nothing
sound to salvage, or not confirmed), 2 Redis or Kafka failed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from engine.cli.worker import Brokers, Prefix, RedisUrl
from engine.errors import StateDecodeError, TactError

if TYPE_CHECKING:
    from engine.state.redis import RedisStateStore

app = typer.Typer(no_args_is_help=True)
_console = Console()
_errors = Console(stderr=True)
T = TypeVar("T")

Customer = Annotated[str, typer.Argument(help="The customer id (the events' key).")]
Partition = Annotated[int | None, typer.Option(
    "--partition", help="The customer's partition [default: from the id, as Kafka's "
    "partitioner does, over TACT_EVENTS_PARTITIONS].")]


@app.command("show")
def show(customer: Customer, redis_url: RedisUrl = None, redis_prefix: Prefix = "tact:",
         partition: Partition = None) -> None:
    """The customer's stored state as JSON, or why it does not decode (quarantined)."""
    from engine.state.redis.quarantine import inspect

    found = _run(redis_url, redis_prefix, lambda store: inspect(store, customer, partition))
    out: dict[str, Any] = {
        "customer": found.customer, "status": found.status, "reason": found.reason,
        "stored_bytes": found.stored_bytes, "quarantine_copy_bytes": found.quarantine_bytes,
    }
    if found.state is not None:
        out["state"] = asdict(found.state)
    _print_json(out)


@app.command("repair")
def repair(
    customer: Customer,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, write nothing.")] = False,
    redis_url: RedisUrl = None,
    redis_prefix: Prefix = "tact:",
    partition: Partition = None,
) -> None:
    """Rewrite a quarantined state from what still decodes (version bumped).

    Fields and entries of the wrong type are dropped and listed; the old value stays at the
    quarantine key. A state that decodes is left alone.
    """
    from engine.state.redis.quarantine import repair as do_repair

    try:
        done = _run(redis_url, redis_prefix,
                    lambda store: do_repair(store, customer, dry_run=dry_run,
                                            partition=partition))
    except StateDecodeError as exc:
        _errors.print(f"cannot repair {customer}: {exc.reason}; `tact state reset` starts "
                      "the customer afresh", highlight=False, markup=False)
        raise typer.Exit(1) from exc
    if done.status != "corrupt":
        _console.print(f"{customer}: state {done.status}, nothing to repair", highlight=False)
        return
    verb = "would write" if dry_run else "wrote"
    _console.print(f"{customer}: {done.reason}; {verb} version {done.version}",
                   highlight=False, markup=False)
    for note in done.dropped:
        _console.print(f"  dropped {note}", highlight=False, markup=False)
    if not done.dropped:
        _console.print("  nothing dropped", highlight=False)


@app.command("reset")
def reset(
    customer: Customer,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    purge: Annotated[
        bool, typer.Option("--purge", help="Delete the quarantine copy too (gone for good).")
    ] = False,
    backup: Annotated[
        Path | None,
        typer.Option("--backup", dir_okay=False,
                     help="Write the raw stored value to this file first."),
    ] = None,
    redis_url: RedisUrl = None,
    redis_prefix: Prefix = "tact:",
    partition: Partition = None,
) -> None:
    """Delete the customer's state in Redis: their next event starts afresh.

    The raw value is kept at the quarantine key (unless --purge) and in --backup. The
    changelog keeps the customer's last committed state: a later `tact state restore` of
    the partition brings that back.
    """
    from engine.state.redis.quarantine import reset as do_reset

    what = "state and its quarantine copy" if purge else "state"
    if not yes and not typer.confirm(f"Delete the {what} of {customer}?"):
        raise typer.Exit(1)
    done = _run(redis_url, redis_prefix,
                lambda store: do_reset(store, customer, purge=purge, backup=backup,
                                       partition=partition))
    gone = "no state stored" if done.deleted_bytes is None else \
        f"deleted {done.deleted_bytes} bytes of state"
    kept = "; raw copy kept at the quarantine key" if done.quarantine_kept else ""
    saved = f"; written to {done.backup}" if done.backup else ""
    _console.print(f"{customer}: {gone}{kept}{saved}", highlight=False, markup=False)


@app.command("restore")
def restore(
    partition: Annotated[list[int] | None, typer.Option(
        "--partition", help="A partition to rebuild (repeat for several) [default: all].")] = None,
    brokers: Brokers = None,
    redis_url: RedisUrl = None,
    redis_prefix: Prefix = "tact:",
) -> None:
    """Rebuild Redis from the state changelog (TACT_STATE_TOPIC): each partition's states
    are deleted, then copied from the changelog, and its mark set.

    Best with the workers stopped; a running worker notices and catches up its partitions.
    """
    from engine.worker.runtime import rebuild

    def report(line: str) -> None:
        _console.print(line, highlight=False, markup=False)

    try:
        done = asyncio.run(rebuild(_settings(redis_url, brokers), redis_prefix, partition,
                                   report))
    except (TactError, OSError) as exc:
        _errors.print(f"restore failed: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from exc
    total = sum(r.states for r in done)
    seconds = sum(r.seconds for r in done)
    _console.print(f"restored {total} states in {len(done)} partition(s) in {seconds:.2f} s",
                   highlight=False)


def _settings(redis_url: str | None, brokers: str | None = None) -> Any:
    from engine.config import TactSettings

    overrides: dict[str, Any] = {}
    if redis_url:
        overrides["redis_url"] = redis_url
    if brokers:
        overrides["kafka_brokers"] = brokers
    return TactSettings(**overrides)


def _run(redis_url: str | None, prefix: str,
         action: Callable[[RedisStateStore], Awaitable[T]]) -> T:
    """Open the store, run ``action`` on it, close it; Redis errors exit 2."""
    from engine.state.redis import RedisStateStore

    async def go() -> T:
        store = RedisStateStore.from_settings(_settings(redis_url), prefix=prefix)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except StateDecodeError:
        raise
    except (TactError, ValueError, OSError) as exc:
        _errors.print(f"state command failed: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from exc


def _print_json(data: dict[str, Any]) -> None:
    # bytes, a msgpack timestamp: shown as text; inf stays Infinity (an open-ended context)
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
