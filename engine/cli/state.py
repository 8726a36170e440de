"""`tact state show|repair|reset CUSTOMER`: a customer's stored state, for operators.

Parses, configures and delegates to :mod:`engine.state.redis.quarantine`. Exit status: 0 done
(or nothing to do), 1 refused (nothing sound to salvage, or not confirmed), 2 Redis failed.
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

from engine.cli.worker import Prefix, RedisUrl
from engine.errors import StateDecodeError, TactError

if TYPE_CHECKING:
    from engine.state.redis import RedisStateStore

app = typer.Typer(no_args_is_help=True)
_console = Console()
_errors = Console(stderr=True)
T = TypeVar("T")

Customer = Annotated[str, typer.Argument(help="The customer id (the events' key).")]


@app.command("show")
def show(customer: Customer, redis_url: RedisUrl = None, redis_prefix: Prefix = "tact:") -> None:
    """The customer's stored state as JSON, or why it does not decode (quarantined)."""
    from engine.state.redis.quarantine import inspect

    found = _run(redis_url, redis_prefix, lambda store: inspect(store, customer))
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
) -> None:
    """Rewrite a quarantined state from what still decodes (version bumped).

    Fields and entries of the wrong type are dropped and listed; the old value stays at the
    quarantine key. A state that decodes is left alone.
    """
    from engine.state.redis.quarantine import repair as do_repair

    try:
        done = _run(redis_url, redis_prefix,
                    lambda store: do_repair(store, customer, dry_run=dry_run))
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
) -> None:
    """Delete the customer's state: their next event starts afresh.

    The raw value is kept at the quarantine key (unless --purge) and in --backup.
    """
    from engine.state.redis.quarantine import reset as do_reset

    what = "state and its quarantine copy" if purge else "state"
    if not yes and not typer.confirm(f"Delete the {what} of {customer}?"):
        raise typer.Exit(1)
    done = _run(redis_url, redis_prefix,
                lambda store: do_reset(store, customer, purge=purge, backup=backup))
    gone = "no state stored" if done.deleted_bytes is None else \
        f"deleted {done.deleted_bytes} bytes of state"
    kept = "; raw copy kept at the quarantine key" if done.quarantine_kept else ""
    saved = f"; written to {done.backup}" if done.backup else ""
    _console.print(f"{customer}: {gone}{kept}{saved}", highlight=False, markup=False)


def _run(redis_url: str | None, prefix: str,
         action: Callable[[RedisStateStore], Awaitable[T]]) -> T:
    """Open the store, run ``action`` on it, close it; Redis errors exit 2."""
    from engine.config import TactSettings
    from engine.state.redis import RedisStateStore

    async def go() -> T:
        overrides: dict[str, Any] = {"redis_url": redis_url} if redis_url else {}
        settings = TactSettings(**overrides)
        store = RedisStateStore.from_settings(settings, prefix=prefix)
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
