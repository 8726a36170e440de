"""The single customer view of a running `tact run`: ``GET /customers/{id}`` behind the
token, the ``/customers/{id}`` page in headless Chromium (customer data shown as text, never
run as HTML; TACT_PII_ATTRIBUTES masked), the dashboard's search box, and `tact customer`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.services import manager
from tests.integration.kafka_utils import REPO, WorkerNames, delete_prefix, http
from tests.integration.test_dashboard_browser import (
    CHROMEDRIVER,
    CHROMIUM,
    _no_selenium_manager,
    chromium_driver,
)
from tests.integration.test_worker_observability import _post
from tests.integration.worker_proc import WorkerProcess, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TOKEN = "customer-view-test-token"
CUSTOMER = "c-view-1"
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
BOLD = "<b>x</b>"  # a parcel's and a product's key: shown as these characters, never bold
RUN = "weekend_gold@20261127T090000Z"  # a run of rules/campaigns.yaml's weekend_gold

READ_PAGE = """
const t = (id) => document.querySelector(`[data-testid="${id}"]`);
const rows = (id) => Array.from(t(id).rows, (tr) => Array.from(tr.cells, (td) => td.textContent));
return {ready: document.body.dataset.ready || "", status: t("status").textContent,
        customer: t("customer-id").textContent, attributes: rows("attributes"),
        consent: rows("consent"), decisions: rows("decisions"), messages: rows("messages"),
        counters: rows("counters"), timestamps: rows("timestamps"), maps: rows("maps"),
        sets: rows("sets"), campaigns: rows("campaigns"), engaged: rows("engaged"),
        trace: t("trace-hint").textContent, pwned: window.__pwned || 0,
        injected: document.querySelectorAll("main script, main img, main b").length};
"""


@pytest.fixture
def names(services: manager.Connection) -> Iterator[WorkerNames]:
    n = WorkerNames.new("customer", services.bootstrap_servers, services.redis_url)
    yield n
    asyncio.run(delete_prefix(n.redis_url, n.prefix))


def _events(now: str) -> list[dict[str, Any]]:
    return [
        {"id": "cv-1", "customer": CUSTOMER, "type": "profile_updated", "at": now,
         "data": {"attributes": {"segment": HOSTILE, "email": "jo@example.com", "tz": "UTC"},
                  "consent": {"email": True, "push": False}}},
        {"id": "cv-2", "customer": CUSTOMER, "type": "order_shipped", "at": now,
         "data": {"order": "O-1", "carrier": "UPS"}},
        {"id": "cv-3", "customer": CUSTOMER, "type": "delivery_failed", "at": now,
         "data": {"parcel": BOLD, "carrier": "UPS"}},
        {"id": "cv-4", "customer": CUSTOMER, "type": "product_page_viewed", "at": now,
         "data": {"sku": BOLD, "price": 80}},
        {"id": "cv-5", "customer": CUSTOMER, "type": "item_returned", "at": now,
         "data": {"order": "O-1", "category": BOLD}},
        # what the campaign fan-out sends each customer of a run
        {"id": f"{RUN}/{CUSTOMER}", "customer": CUSTOMER, "type": "campaign", "at": now,
         "data": {"campaign": "weekend_gold", "run": RUN}},
        # the receiver reports the shipping update opened: engagement for choose: engaged
        {"id": "cv-6", "customer": CUSTOMER, "type": "message_opened", "at": now,
         "data": {"decision_id": "d-cv", "channel": "email", "rule": "shipping_update",
                  "message": "shipping_update"}},
    ]


async def _get(url: str, token: str | None = None, accept: str | None = None
               ) -> tuple[int, str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if accept:
        headers["Accept"] = accept
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s, \
            s.get(url, headers=headers) as resp:
        ctype = resp.headers.get("Content-Type", "")
        body = await resp.json() if ctype.startswith("application/json") else await resp.text()
        return resp.status, ctype, body


def _read_page(driver: Any, url: str) -> dict[str, Any]:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 15, poll_frequency=0.2).until(
        lambda d: d.execute_script("return document.body.dataset.ready || ''"))
    got: dict[str, Any] = driver.execute_script(READ_PAGE)
    return got


def _search(driver: Any, url: str, customer: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    box = driver.find_element(By.CSS_SELECTOR, '[data-testid="customer-search-id"]')
    box.send_keys(customer)
    box.submit()
    WebDriverWait(driver, 10).until(lambda d: "/customers/" in d.current_url)
    current: str = driver.current_url
    return current


async def test_customer_view_endpoint_page_and_cli(names: WorkerNames, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"TACT_API_TOKEN": TOKEN, "TACT_PII_ATTRIBUTES": "email,phone"}
    with WorkerProcess(names, tmp_path / "worker.log", env=env) as w:
        await w.wait_ready(timeout=30)
        now = datetime.now(UTC).isoformat()
        status, body = await _post(f"{w.base}/events", _events(now), token=TOKEN)
        assert status == 202, body
        url = f"{w.base}/customers/{CUSTOMER}"

        async def decided() -> dict[str, Any] | None:
            status, _, view = await _get(url, TOKEN)
            ready = status == 200 and view["decisions"] and view["maps"] and view["counters"] \
                and view["sets"] and view["campaigns"] and view["engaged"]
            return view if ready else None

        view = await until(decided, 30, "the customer's decisions in the view", interval=0.3)
        assert view["customer"] == CUSTOMER
        assert view["attributes"]["email"] == "•••" and view["masked"] == ["email"]
        assert view["attributes"]["segment"] == HOSTILE  # JSON carries it as is
        assert view["consent"] == {"email": True, "push": False}
        assert {d["rule"] for d in view["decisions"]} >= {"shipping_update"}
        sent = [d for d in view["decisions"] if d["outcome"] == "sent"]
        assert sent and sent[0]["channel"] == "email"
        assert any(m["message"] == "shipping_update" for m in view["messages"]), view
        assert "jo@example.com" not in json.dumps(view)
        # keyed instances as name[key]; a map's entries with the time each was put
        assert view["counters"][f"failed_deliveries[{BOLD}]"] == 1
        stamp = view["timestamps"][f"last_failed_delivery[{BOLD}]"]
        entry = view["maps"]["last_viewed_price"][BOLD]
        assert entry["value"] == 80.0 and entry["put"] == stamp
        # a set's members with the time each was added; the campaign runs decided
        added = view["sets"]["returned_categories"][BOLD]
        assert added == stamp
        assert [(c["run"], c["campaign"], c["scheduled"]) for c in view["campaigns"]] == [
            (RUN, "weekend_gold", "2026-11-27T09:00:00+00:00")]
        decided = view["campaigns"][0]["decided"]

        # the JSON is behind the token; an unknown customer is a 404
        assert (await _get(url))[0] == 401
        assert (await _get(url, "wrong"))[0] == 401
        assert (await http("GET", f"{w.base}/customers/nobody-here", token=TOKEN))[0] == 404
        # a browser's page load gets the page, which holds no data
        status, ctype, html = await _get(url, accept="text/html,application/xhtml+xml")
        assert status == 200 and ctype.startswith("text/html") and "jo@" not in html
        assert "http://" not in html and "https://" not in html  # no CDN

        # the terminal shows the same view
        cli = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", "from engine.cli import main; main()", "customer", CUSTOMER,
             "--redis-prefix", names.prefix],
            env=names.env(TACT_PII_ATTRIBUTES="email"), cwd=str(REPO), capture_output=True,
            text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        shown = json.loads(cli.stdout)
        assert shown["attributes"]["email"] == "•••"
        assert [d["id"] for d in shown["decisions"]] == [d["id"] for d in view["decisions"]]
        assert shown["sets"] == view["sets"] and shown["campaigns"] == view["campaigns"]

        if not CHROMIUM.exists():
            pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
        assert CHROMEDRIVER.exists()
        from selenium.webdriver.common.selenium_manager import SeleniumManager

        monkeypatch.setattr(SeleniumManager, "binary_paths", _no_selenium_manager)
        monkeypatch.setenv("SE_OFFLINE", "true")
        driver = await asyncio.to_thread(chromium_driver, tmp_path / "chromium-profile")
        try:
            page = await asyncio.to_thread(_read_page, driver, f"{url}#token={TOKEN}")
            landed = await asyncio.to_thread(_search, driver,
                                             f"{w.base}/dashboard#token={TOKEN}", CUSTOMER)
            refused = await asyncio.to_thread(_read_page, driver, url)  # no token
        finally:
            await asyncio.to_thread(driver.quit)
        code = w.stop()
    assert code == 0, w.log_tail()

    assert page["ready"] == "1", page
    assert page["customer"] == CUSTOMER
    attributes = dict(tuple(row) for row in page["attributes"] if len(row) == 2)
    assert attributes["segment"] == HOSTILE  # shown as text ...
    assert page["pwned"] == 0 and page["injected"] == 0  # ... never run
    assert attributes["email"] == "•••"
    assert ["email", "yes"] in page["consent"]
    assert page["decisions"] and page["decisions"][0][1] == view["decisions"][0]["rule"]
    assert "tact explain" in page["trace"]
    assert [f"failed_deliveries[{BOLD}]", "1"] in page["counters"]
    assert [f"last_failed_delivery[{BOLD}]", stamp] in page["timestamps"]
    assert ["last_viewed_price", BOLD, "80", stamp] in page["maps"]
    assert page["sets"] == [["returned_categories", BOLD, added]]
    assert page["campaigns"] == [["weekend_gold", RUN, "2026-11-27T09:00:00+00:00", decided]]
    opened = view["engaged"]["email"]
    assert (opened["opened"], opened["clicked"]) == (1, 0), view["engaged"]
    assert page["engaged"] == [["email", "1", "0", opened["last"]]]
    assert landed == f"{url}#token={TOKEN}"
    assert refused["ready"] == "error" and "401" in refused["status"]
