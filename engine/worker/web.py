"""The worker's web endpoints, on the Faust app's web server (``TACT_WEB_PORT``, 6066).

Open by default: ``/healthz`` and ``/readyz`` (``TACT_PROTECT_HEALTH`` puts them behind the
token; an open ``/readyz`` shows only its checks' states, the details need the token),
``/metrics``, ``/stats``, ``/api/dashboard`` and ``/api/dashboard/uplift?period=today|7d|30d``
(``TACT_PROTECT_METRICS``), and the
``/dashboard`` page, which holds no data itself. Always behind the bearer
``TACT_API_TOKEN``: ``POST /events``, ``POST /admin/reload`` and ``GET /customers/{id}``
(the single customer view as JSON; a browser asking for HTML there gets the page, which
holds no data and fetches the JSON with the token of its ``#token=`` fragment). With no
(or a blank) token configured, every token-guarded endpoint answers 403: disabled, never
open.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import faust
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import SecretStr

from connectors.http.ingest import IngestHandler, bearer_matches, make_aiohttp_view
from engine.errors import TactError
from engine.observability.customer import customer_view
from engine.outcomes.view import DEFAULT_PERIOD, UnknownPeriodError, uplift_section
from engine.state.redis.keys import partition_of
from engine.worker.runtime import StreamWorker


def authenticated(token: SecretStr | None, auth_header: str | None) -> bool:
    """Whether the request carries ``Authorization: Bearer <TACT_API_TOKEN>``; never true
    when no token is configured (a blank one is none: see ``TactSettings``)."""
    if token is None or not token.get_secret_value().strip():
        return False
    return bearer_matches(auth_header, token.get_secret_value().encode())


def refusal(token: SecretStr | None, auth_header: str | None,
            protected: bool) -> tuple[int, dict[str, str]] | None:
    """None when the request may go on; else the (status, body) refusing it.

    Protected endpoints need ``Authorization: Bearer <TACT_API_TOKEN>``; with no token
    configured they are disabled (403) rather than open.
    """
    if not protected:
        return None
    if token is None or not token.get_secret_value().strip():
        return 403, {"error": "disabled: set TACT_API_TOKEN to use this endpoint"}
    if authenticated(token, auth_header):
        return None
    return 401, {"error": "missing or wrong bearer token"}


def readiness_view(body: dict[str, Any], detailed: bool) -> dict[str, Any]:
    """What ``/readyz`` shows: to anyone, whether it is ready and each check's state; the
    rest (rules version, last batch error, rule-file errors quoting the files) only to a
    request with the token."""
    if detailed:
        return body
    return {"ready": body["ready"], "checks": dict(body["checks"])}


@functools.cache
def dashboard_html() -> bytes:
    return (resources.files("engine.observability") / "static" / "dashboard.html").read_bytes()


@functools.cache
def customer_html() -> bytes:
    return (resources.files("engine.observability") / "static" / "customer.html").read_bytes()


def wants_html(accept: str | None) -> bool:
    """Whether the request is a browser's page load (``Accept: text/html, ...``) rather
    than a call for data (the page's own fetch, curl, scripts): those get JSON."""
    return accept is not None and "text/html" in accept


async def customer_lookup(worker: StreamWorker, customer: str) -> tuple[int, dict[str, Any]]:
    """(status, body) of ``GET /customers/{customer}``: 200 and the view; 404 for a customer
    with no stored state; 409 when the stored state does not decode (it is quarantined, as
    the worker would; ``tact state show`` says why); 503 when the store cannot answer."""
    store = worker.store
    if store is None:
        return 503, {"error": "the worker has not started yet"}
    part = partition_of(customer, worker.settings.events_partitions)
    try:
        read = await store.read({customer: part})
    except TactError as exc:
        return 503, {"error": f"state store: {exc}"}
    if customer in read.quarantined:
        return 409, {"error": "stored state does not decode (quarantined): "
                     f"{read.quarantined[customer]}"}
    st = read.states.get(customer)
    if st is None or st.version == 0:  # the store's fresh state: nothing was ever written
        return 404, {"error": "no state stored for this customer"}
    windows = worker.watcher.pack.windows if worker.watcher.loaded else None
    return 200, customer_view(st, now=time.time(), pii=worker.settings.pii_attributes,
                              windows=windows)


async def kpi_section(worker: StreamWorker) -> dict[str, Any]:
    """The dashboard's experience KPIs per period (engine/outcomes/kpi_board); with no
    Redis (a memory store) there are none to show."""
    board = worker.kpi_board
    if board is None:
        return {"error": "no aggregates without Redis"}
    section: dict[str, Any] = await board.section()
    return section


async def uplift_lookup(worker: StreamWorker, period: str | None
                        ) -> tuple[int, dict[str, Any]]:
    """(status, body) of ``GET /api/dashboard/uplift``: 200 and the dashboard's "Did it
    work?" section (:func:`engine.outcomes.view.uplift_section`); 400 for a period not
    offered; 503 when there is no Redis (the totals live there) or it cannot answer."""
    report = worker.report
    if report is None:
        return 503, {"error": "outcome totals are kept in Redis; this worker has none"}
    try:
        body = await uplift_section(report.client, report.prefix, period or DEFAULT_PERIOD,
                                    today=datetime.now(UTC).date())
    except UnknownPeriodError as exc:
        return 400, {"error": str(exc)}
    except TactError as exc:
        return 503, {"error": f"outcome totals: {exc}"}
    return 200, body


def add_views(app: faust.App, worker: StreamWorker) -> None:
    s = worker.settings

    class Guarded(faust.web.View):
        """A view behind the bearer token when :attr:`protected` is true."""

        protected = False

        async def dispatch(self, request: Any) -> Any:
            refused = refusal(s.api_token, request.headers.get("Authorization"),
                              self.protected)
            if refused is not None:
                status, body = refused
                return self.json(body, status=status)
            return await super().dispatch(request)

    @app.page("/healthz")  # type: ignore[untyped-decorator,unused-ignore]
    class Health(Guarded):
        protected = s.protect_health

        async def get(self, request: Any) -> Any:
            task = worker.task
            dead = task is not None and task.done()
            return self.json({"alive": not dead}, status=503 if dead else 200)

    @app.page("/readyz")  # type: ignore[untyped-decorator,unused-ignore]
    class Ready(Guarded):
        protected = s.protect_health

        async def get(self, request: Any) -> Any:
            if not worker.started:
                return self.json({"ready": False, "checks": {"started": False}}, status=503)
            body = await worker.readiness()
            detailed = authenticated(s.api_token, request.headers.get("Authorization"))
            return self.json(readiness_view(body, detailed), status=200 if body["ready"] else 503)

    @app.page("/stats")  # type: ignore[untyped-decorator,unused-ignore]
    class Stats(Guarded):
        protected = s.protect_metrics

        async def get(self, request: Any) -> Any:
            return self.json(worker.stats.snapshot())

    @app.page("/metrics")  # type: ignore[untyped-decorator,unused-ignore]
    class Metrics(Guarded):
        protected = s.protect_metrics

        async def get(self, request: Any) -> Any:
            return web.Response(body=worker.telemetry.render_metrics(),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/dashboard")  # type: ignore[untyped-decorator,unused-ignore]
    class Dashboard(Guarded):
        # no data in the page; with protect_metrics on, it sends the token given in its URL
        # fragment (which never reaches the server) with each poll
        async def get(self, request: Any) -> Any:
            return web.Response(body=dashboard_html(), content_type="text/html",
                                charset="utf-8", headers={"Cache-Control": "no-store"})

    @app.page("/api/dashboard")  # type: ignore[untyped-decorator,unused-ignore]
    class DashboardData(Guarded):
        protected = s.protect_metrics

        async def get(self, request: Any) -> Any:
            body = worker.telemetry.dashboard()
            body["kpis"] = await kpi_section(worker)
            return self.json(body)

    @app.page("/api/dashboard/uplift")  # type: ignore[untyped-decorator,unused-ignore]
    class Uplift(Guarded):
        protected = s.protect_metrics

        async def get(self, request: Any) -> Any:
            status, body = await uplift_lookup(worker, request.query.get("period"))
            return self.json(body, status=status, headers={"Cache-Control": "no-store"})

    @app.page("/customers/{customer}")  # type: ignore[untyped-decorator,unused-ignore]
    class Customer(Guarded):
        # the page is open (no data in it); the JSON is always behind the token
        async def get(self, request: Any, customer: str) -> Any:
            if wants_html(request.headers.get("Accept")):
                return web.Response(body=customer_html(), content_type="text/html",
                                    charset="utf-8", headers={"Cache-Control": "no-store"})
            refused = refusal(s.api_token, request.headers.get("Authorization"), True)
            if refused is not None:
                status, body = refused
            else:
                status, body = await customer_lookup(worker, customer)
            return self.json(body, status=status, headers={"Cache-Control": "no-store"})

    ingest = make_aiohttp_view(IngestHandler.from_settings(s, worker.ingest))

    @app.page("/events")  # type: ignore[untyped-decorator,unused-ignore]
    class Events(Guarded):
        # the ingest handler checks the token itself, before reading the body
        async def post(self, request: Any) -> Any:
            return await ingest(request)

    @app.page("/admin/reload")  # type: ignore[untyped-decorator,unused-ignore]
    class Reload(Guarded):
        protected = True

        async def post(self, request: Any) -> Any:
            outcome = await worker.watcher.reload()
            return self.json(outcome.as_dict(), status=200 if outcome.ok else 422)
