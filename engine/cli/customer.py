"""`tact customer ID`: the single customer view in the terminal (as ``GET /customers/{id}``).

Reads the customer's stored state like `tact state show` (nothing is written, a state that
does not decode is not quarantined). Exit status: 0 shown, 1 no state stored or it does not
decode, 2 Redis failed.
"""

from __future__ import annotations

import time

import typer

from engine.cli.state import Customer, Partition, _errors, _print_json, _run, _settings
from engine.cli.worker import Prefix, RedisUrl


def customer(customer: Customer, redis_url: RedisUrl = None, redis_prefix: Prefix = "tact:",
             partition: Partition = None) -> None:
    """One customer as JSON: attributes (TACT_PII_ATTRIBUTES masked), consent, counters,
    sets, maps, windows, contexts, pending follow-ups, campaign runs decided, engagement
    per channel (opens and clicks), recent messages and the last decisions."""
    from engine.observability.customer import customer_view
    from engine.state.redis.quarantine import inspect

    found = _run(redis_url, redis_prefix, lambda store: inspect(store, customer, partition))
    if found.state is None:
        why = "no state stored" if found.status == "absent" else \
            f"stored state does not decode: {found.reason} (see `tact state show`)"
        _errors.print(f"{customer}: {why}", highlight=False, markup=False)
        raise typer.Exit(1)
    pii = _settings(redis_url).pii_attributes
    _print_json(customer_view(found.state, now=time.time(), pii=pii))


def register(app: typer.Typer) -> None:
    """Add ``customer`` to the ``tact`` command."""
    app.command("customer")(customer)
