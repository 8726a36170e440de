"""What operators see of a running `tact run`: /metrics, /api/dashboard, /dashboard, and the
access rules (POST /events and /admin/reload need the token; /metrics and health can be
protected by configuration).

Traffic goes in through the worker's own ``POST /events`` and, for a dead letter, straight to
Kafka; every metric the issue lists is then read back from ``/metrics``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.pack.loader import load_pack
from engine.services import manager
from tests.integration.kafka_utils import REPO, WorkerNames, delete_prefix, http, produce
from tests.integration.worker_proc import WorkerProcess, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

TOKEN = "observability-test-token"


async def _post(url: str, body: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s, \
            s.post(url, data=orjson.dumps(body), headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def _get_text(url: str, token: str | None = None) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s, \
            s.get(url, headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Exposition text -> sample name -> [(labels, value)]."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def _total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
           **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, [])
               if all(lab.get(k) == want for k, want in labels.items()))


def _worker(names: WorkerNames, tmp: Path, **env: str) -> WorkerProcess:
    return WorkerProcess(names, tmp / "worker.log",
                         env={"TACT_API_TOKEN": TOKEN, "TACT_TELEMETRY_INTERVAL_S": "0.3", **env})


@pytest.fixture
def names(services: manager.Connection) -> Iterator[WorkerNames]:
    n = WorkerNames.new("obs", services.bootstrap_servers, services.redis_url)
    yield n
    asyncio.run(delete_prefix(n.redis_url, n.prefix))


def _events(now: str) -> list[dict[str, Any]]:
    """A consented customer leaving a cart (a pending follow-up), an unconsented one (a
    suppression), a shipped order (a sent decision)."""
    return [
        {"id": "obs-1", "customer": "c-obs-1", "type": "profile_updated", "at": now,
         "data": {"attributes": {"segment": "regular", "tz": "UTC"},
                  "consent": {"email": True, "push": True, "sms": True}}},
        {"id": "obs-2", "customer": "c-obs-1", "type": "cart_updated", "at": now,
         "data": {"items": 2, "value": 40.0}},
        {"id": "obs-3", "customer": "c-obs-1", "type": "order_shipped", "at": now,
         "data": {"order": "O-1", "carrier": "UPS"}},
        {"id": "obs-4", "customer": "c-obs-2", "type": "order_shipped", "at": now,
         "data": {"order": "O-2", "carrier": "UPS"}},
    ]


async def test_metrics_dashboard_and_access(names: WorkerNames, tmp_path: Path) -> None:
    pack = load_pack(REPO / "rules")
    version = pack.version
    with _worker(names, tmp_path) as w:
        await w.wait_ready(timeout=30)
        now = datetime.now(UTC).isoformat()
        url = f"{w.base}/events"

        # ingest needs the token
        assert (await _post(url, _events(now)))[0] == 401
        assert (await _post(url, _events(now), token="wrong"))[0] == 401
        status, body = await _post(url, _events(now), token=TOKEN)
        assert status == 202 and body["accepted"] == 4
        # the same event again: recognised as a duplicate
        assert (await _post(url, _events(now)[2], token=TOKEN))[0] == 202
        # invalid input over HTTP is refused; over Kafka it is dead-lettered
        assert (await _post(url, {"id": "x"}, token=TOKEN))[0] == 400
        await produce(names.bootstrap, names.events, [(b"c-obs-9", b"{not json", None)])
        # the admin endpoint needs the token too
        assert (await http("POST", f"{w.base}/admin/reload"))[0] == 401
        assert (await http("POST", f"{w.base}/admin/reload", token=TOKEN))[0] == 200

        async def counted() -> dict[str, Any] | None:
            status, _ctype, text = await _get_text(f"{w.base}/metrics")
            s = _samples(text)
            done = (_total(s, "tact_events_in_total") >= 5
                    and _total(s, "tact_dead_letters_total") >= 1
                    and _total(s, "tact_pending_followups") >= 1)
            return s if status == 200 and done else None

        s = await until(counted, 30, "the metrics of the traffic", interval=0.2)
        status, ctype, _ = await _get_text(f"{w.base}/metrics")
        assert status == 200 and ctype.startswith("text/plain")

        assert _total(s, "tact_events_in_total", type="order_shipped") == 3
        assert _total(s, "tact_events_in_total", type="cart_updated") == 1
        assert _total(s, "tact_duplicate_events_total") == 1
        assert _total(s, "tact_dead_letters_total", reason="json") == 1
        assert _total(s, "tact_decisions_total", outcome="sent", rule="shipping_update",
                      channel="email") >= 1
        assert _total(s, "tact_decisions_total", outcome="suppressed") >= 1
        assert _total(s, "tact_suppressions_total", reason="no_consent") >= 1
        assert _total(s, "tact_batch_size_count") >= 1
        assert _total(s, "tact_batch_size_sum") >= 5
        assert _total(s, "tact_processing_seconds_count") >= 1
        assert _total(s, "tact_end_to_end_seconds_count") >= 5
        ops = {lab["op"] for lab, _ in s["tact_redis_call_seconds_count"]}
        assert {"load", "save"} <= ops, ops
        lag_parts = {lab["partition"] for lab, _ in s["tact_consumer_lag"]}
        assert lag_parts == {"0", "1", "2"}
        assert all(v >= 0 for _, v in s["tact_consumer_lag"])
        assert s["tact_rules_info"] == [({"version": version, "pack": pack.name}, 1.0)]
        assert _total(s, "tact_rule_reloads_total", result="ok") == 1
        assert _total(s, "tact_pending_followups") == 1
        # no customer or event id ever becomes a label value
        labels = {v for series in s.values() for lab, _ in series for v in lab.values()}
        assert not {v for v in labels if v.startswith(("c-obs", "obs-"))}

        # the dashboard's data and page
        async def rated() -> dict[str, Any] | None:
            # the page shows whole seconds: the one the traffic landed in must be over
            status, dash = await http("GET", f"{w.base}/api/dashboard")
            return dash if status == 200 and dash["events_per_s"] > 0 else None

        dash = await until(rated, 5, "a nonzero throughput on the dashboard", interval=0.2)
        assert dash["rules_version"] == version
        assert dash["latency_ms"]["p50"] is not None and dash["latency_ms"]["p99"] is not None
        assert {r["rule"] for r in dash["top_rules"]} >= {"shipping_update"}
        assert dash["dead_letters"] == {"json": 1}
        assert set(dash["lag"]) == {"0", "1", "2"} and dash["pending_followups"] == 1
        status, ctype, html = await _get_text(f"{w.base}/dashboard")
        assert status == 200 and ctype.startswith("text/html") and "api/dashboard" in html
        assert "http://" not in html and "https://" not in html  # no CDN: works offline
        code = w.stop()
    assert code == 0, w.log_tail()


async def test_metrics_and_health_can_be_protected(names: WorkerNames, tmp_path: Path) -> None:
    with _worker(names, tmp_path, TACT_PROTECT_METRICS="true",
                 TACT_PROTECT_HEALTH="true") as w:
        await w.wait_ready(token=TOKEN, timeout=30)
        for path in ("/metrics", "/stats", "/api/dashboard", "/healthz", "/readyz"):
            status, _, _ = await _get_text(w.base + path)
            assert status == 401, path
            status, _, _ = await _get_text(w.base + path, token="wrong")
            assert status == 401, path
            status, _, _ = await _get_text(w.base + path, token=TOKEN)
            assert status == 200, path
        # the page itself is static and carries no data; its polls need the token
        status, _, _ = await _get_text(f"{w.base}/dashboard")
        assert status == 200
        code = w.stop()
    assert code == 0, w.log_tail()
