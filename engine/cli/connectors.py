"""`tact publish FILE.jsonl` and `tact deliver`: the Kafka publisher and the webhook connector."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from engine.config import TactSettings
from engine.errors import TactError

if TYPE_CHECKING:  # imported lazily at run time: keeps `tact --help` fast
    from connectors.webhook import WebhookDeliverer

_console = Console()
_errors = Console(stderr=True)
_MAX_SHOWN = 50  # bad lines printed one by one; the rest are counted


def publish(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON Lines file, one event per line ('-' reads stdin).", dir_okay=False
        ),
    ],
    topic: Annotated[
        str | None, typer.Option("--topic", help="Topic (env TACT_EVENTS_TOPIC).")
    ] = None,
    brokers: Annotated[
        str | None,
        typer.Option("--brokers", help="Bootstrap servers (env TACT_KAFKA_BROKERS)."),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Validate the whole file first; send nothing if a line is bad."
        ),
    ] = False,
) -> None:
    """Validate and send a file of events, keyed by customer.

    Bad lines are reported with their line numbers. By default the valid lines are sent anyway;
    exit status 1 if any line was bad, 2 if Kafka failed, 0 otherwise.
    """
    from connectors.kafka import Publisher, publish_file

    settings = TactSettings()
    if brokers:
        settings = settings.model_copy(update={"kafka_brokers": brokers})
    try:
        with Publisher(settings, topic) as publisher:
            report = publish_file(publisher, file, strict=strict)
            target = publisher.topic
    except OSError as exc:
        _errors.print(f"[red]cannot read {file}:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    except TactError as exc:
        _errors.print(f"[red]publish failed:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    for number, reason in report.bad[:_MAX_SHOWN]:
        _errors.print(f"{file}:{number}: {reason}", highlight=False, markup=False)
    if len(report.bad) > _MAX_SHOWN:
        _errors.print(f"... and {len(report.bad) - _MAX_SHOWN} more bad line(s)")
    if report.bad and strict:
        _errors.print(f"[red]nothing sent[/] (--strict): {len(report.bad)} bad line(s)")
        raise typer.Exit(1)
    _console.print(f"sent {report.sent} event(s) to {target}", highlight=False)
    if report.bad:
        _errors.print(f"[yellow]{len(report.bad)} bad line(s) skipped[/]")
        raise typer.Exit(1)


def deliver(
    url: Annotated[
        str | None, typer.Option("--url", help="Webhook endpoint (env TACT_WEBHOOK_URL).")
    ] = None,
    group: Annotated[
        str, typer.Option("--group", help="Kafka consumer group of this connector.")
    ] = "tact-webhook",
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts",
            min=1,
            help="Attempts before dead-lettering (env TACT_WEBHOOK_MAX_ATTEMPTS; 5).",
        ),
    ] = None,
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning",
            help="A new consumer group starts at the oldest retained decision (default: newest).",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Deliver sent decisions to a webhook (signed; retried; dead-lettered) until Ctrl-C.

    The secret comes from TACT_WEBHOOK_SECRET only, never from the command line.
    """
    from connectors.webhook import DeliveryConfig, WebhookDeliverer

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore"):  # they log full URLs, which may carry credentials
        logging.getLogger(noisy).setLevel(logging.WARNING)
    overrides: dict[str, object] = {"url": url, "group_id": group, "from_beginning": from_beginning}
    if max_attempts is not None:
        overrides["max_attempts"] = max_attempts
    try:
        config = DeliveryConfig.from_settings(TactSettings(), **overrides)
        asyncio.run(_run_until_signalled(WebhookDeliverer(config)))
    except TactError as exc:
        _errors.print(f"[red]deliver failed:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc


async def _run_until_signalled(deliverer: WebhookDeliverer) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, deliverer.stop)
    await deliverer.run()


def register(app: typer.Typer) -> None:
    """Add ``publish`` and ``deliver`` to the ``tact`` command."""
    app.command("publish")(publish)
    app.command("deliver")(deliver)
