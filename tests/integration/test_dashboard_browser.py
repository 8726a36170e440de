"""The live dashboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium) against a running `tact run` fed with synthetic
traffic. The page must show a nonzero throughput, the rules version, the top rules and the
latency; the test saves a screenshot in its tmp dir, and with ``TACT_UPDATE_SCREENSHOT=1``
also to ``docs/img/dashboard.png`` (the README's picture). The "Did it work?" section must
show the outcome totals seeded in Redis for the period chosen in its selector.

Nothing is downloaded at test time: the browser and the driver are the Debian packages
(``.ci/run`` installs them), given to selenium by path, so selenium-manager never runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from engine.outcomes.aggregate import add_totals
from engine.pack.loader import load_pack
from engine.services import manager
from load_tests.demo_model import DemoTraffic
from load_tests.generator import produce
from tests.integration.kafka_utils import REPO, WorkerNames, delete_prefix, http
from tests.integration.worker_proc import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = REPO / "docs/img/dashboard.png"
RATE = 400.0  # synthetic events per second
WARM_UP_S = 12.0  # traffic before the page opens, so the chart has some history
WAIT_S = 20.0  # for the page to show live figures
PLACEHOLDER = "\u2013"  # the en dash the page shows before it has a figure


READ_PAGE = """
const t = (id) => document.querySelector(`[data-testid="${id}"]`);
const rows = (id) => Array.from(t(id).rows, (tr) => Array.from(tr.cells, (td) => td.textContent));
return {throughput: t("throughput").textContent, p50: t("latency-p50").textContent,
        p99: t("latency-p99").textContent, version: t("rules-version").textContent.trim(),
        reloads: t("reloads").textContent.trim(), status: t("status").textContent.trim(),
        top_rules: rows("top-rules")};
"""


def _number(text: str) -> float | None:
    """A figure as the page formats it (``toLocaleString``: "1,234.5"); None for a dash."""
    try:
        return float(text.replace(",", "").replace("\u202f", "").strip())
    except ValueError:
        return None


def chromium_driver(user_data_dir: Path) -> Any:
    """Headless Debian Chromium through Debian's chromedriver; no selenium-manager."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--lang=en-US",
                "--window-size=1400,1000", "--hide-scrollbars",
                f"--user-data-dir={user_data_dir}"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


def read_dashboard(driver: Any, url: str, screenshot: Path, wait_s: float = WAIT_S
                   ) -> dict[str, Any]:
    """Open the dashboard, wait until it shows live traffic, screenshot it; the figures."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def figures() -> dict[str, Any]:
        # read in one script: the page re-renders its tables every second, so elements
        # found in one call may be gone (stale) by the next
        raw: dict[str, Any] = driver.execute_script(READ_PAGE)
        return {**raw, "throughput": _number(raw["throughput"]), "p50": _number(raw["p50"]),
                "p99": _number(raw["p99"]),
                "top_rules": [r for r in raw["top_rules"] if len(r) == 3]}

    def live(_: Any) -> dict[str, Any] | None:
        got = figures()
        ok = ((got["throughput"] or 0) > 0 and got["p50"] is not None
              and got["version"] not in ("", PLACEHOLDER) and got["top_rules"])
        return got if ok else None

    driver.get(url)
    try:
        got: dict[str, Any] = WebDriverWait(driver, wait_s, poll_frequency=0.25).until(live)
    except TimeoutException:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot.with_suffix(".timeout.png")))
        raise AssertionError(f"the dashboard showed no live traffic within {wait_s}s: "
                             f"{figures()}") from None
    time.sleep(1.2)  # one more poll, so the chart includes the latest second
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(screenshot)), "the screenshot was not saved"
    return got


READ_UPLIFT = """
const t = (id) => document.querySelector(`[data-testid="${id}"]`);
return {period: t("uplift-section").dataset.period || "", status: t("uplift-status").textContent,
        rows: Array.from(t("uplift-rows").rows, (tr) => Array.from(tr.cells,
                                                                   (td) => td.textContent))};
"""
# outcome totals seeded in Redis (the worker reads them as the report does): today a clear
# uplift (30% against 10%), and 20 days ago a row the 30-day period shows and 7 days does not
SEEDED_TODAY = {"promo_rule|promo_msg|sent|sent": 200.0, "promo_rule|promo_msg|sent|touched": 200.0,
                "promo_rule|promo_msg|sent|converted": 60.0,
                "promo_rule|promo_msg|holdout|touched": 100.0,
                "promo_rule|promo_msg|holdout|converted": 10.0}
SEEDED_EARLIER = {"old_rule|old_msg|sent|sent": 5.0}
# survey answers: today 6 promoters, 2 passives, 2 detractors; 20 days ago 10 detractors,
# which only the 30-day column counts
KPIS_TODAY = {"nps|promoter": 6.0, "nps|passive": 2.0, "nps|detractor": 2.0, "nps|sum": 80.0}
KPIS_EARLIER = {"nps|detractor": 10.0, "nps|sum": 30.0}


async def seed_uplift(names: WorkerNames) -> None:
    client = aioredis.Redis.from_url(names.redis_url)
    today = datetime.now(UTC).date()
    try:
        earlier = (today - timedelta(days=20)).isoformat()
        await add_totals(client, names.prefix, {
            today.isoformat(): SEEDED_TODAY, earlier: SEEDED_EARLIER},
            kpis={today.isoformat(): KPIS_TODAY, earlier: KPIS_EARLIER})
    finally:
        await client.aclose()


def read_uplift(driver: Any, screenshot: Path, wait_s: float = WAIT_S
                ) -> dict[str, dict[str, Any]]:
    """The uplift section's rows for the 7-day period, then for 30 days (chosen in its
    selector): period -> {"rows": {rule: cells}, "status": ...}; a screenshot of it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    def shown(period: str, rule: str) -> Any:
        def check(_: Any) -> dict[str, Any] | None:
            got: dict[str, Any] = driver.execute_script(READ_UPLIFT)
            rows = {r[0]: r for r in got["rows"] if len(r) == 14}
            return {**got, "rows": rows} if got["period"] == period and rule in rows else None
        return WebDriverWait(driver, wait_s, poll_frequency=0.25).until(check)

    out = {"7d": shown("7d", "promo_rule")}
    Select(driver.find_element(By.CSS_SELECTOR, '[data-testid="uplift-period"]')
           ).select_by_value("30d")
    out["30d"] = shown("30d", "old_rule")
    driver.execute_script('document.querySelector(\'[data-testid="uplift-section"]\')'
                          '.scrollIntoView()')
    assert driver.save_screenshot(str(screenshot)), "the screenshot was not saved"
    return out


READ_KPIS = """
return Array.from(document.querySelector('[data-testid="experience-kpis"]').rows,
                  (tr) => Array.from(tr.cells, (td) => td.textContent));
"""


def read_kpis(driver: Any, wait_s: float = WAIT_S) -> list[list[str]]:
    """The experience panel's rows, once it shows the NPS row."""
    from selenium.webdriver.support.ui import WebDriverWait

    def check(_: Any) -> list[list[str]] | bool:
        got: list[list[str]] = driver.execute_script(READ_KPIS)
        return got if any(r and r[0] == "NPS" for r in got) else False
    found: list[list[str]] = WebDriverWait(driver, wait_s, poll_frequency=0.25).until(check)
    return found


def _nps_cell(cell: str) -> tuple[float, int]:
    """"7.4 (148)" -> (7.4, 148)."""
    value, answers = cell.replace(",", "").rstrip(")").split(" (")
    return float(value.replace("\u2212", "-")), int(answers)


def _no_selenium_manager(*_: Any, **__: Any) -> Any:
    raise AssertionError("selenium-manager ran: the driver must be Debian's, given by path")


async def test_dashboard_shows_live_traffic_in_chromium(services: manager.Connection,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver "
                    "(.ci/run installs them)")
    assert CHROMEDRIVER.exists(), (f"{CHROMIUM} is there but {CHROMEDRIVER} is not: "
                                   "apt-get install chromium-driver")
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    monkeypatch.setattr(SeleniumManager, "binary_paths", _no_selenium_manager)
    monkeypatch.setenv("SE_OFFLINE", "true")

    names = WorkerNames.new("dashboard", services.bootstrap_servers, services.redis_url)
    stop = asyncio.Event()

    def traffic() -> Iterator[dict[str, Any]]:
        # the demo's customers (consenting, on the example pack's journeys), as `tact demo`
        # feeds them: the picture shows what the demo shows, not an artefact of bare traffic
        customers = DemoTraffic(2000, seed=7, id_prefix=f"dash-{uuid.uuid4().hex[:6]}-")
        for _ in range(int(RATE * 600)):
            if stop.is_set():
                return
            yield customers.next_event(datetime.now(UTC).isoformat())

    try:
        with WorkerProcess(names, tmp_path / "worker.log",
                           env={"TACT_TELEMETRY_INTERVAL_S": "0.5"},
                           args=["--rules", str(REPO / "rules")]) as w:
            await w.wait_ready()
            await seed_uplift(names)
            status, _ = await http("GET", f"{w.base}/api/dashboard")
            assert status == 200, f"GET /api/dashboard answered {status}"
            producer = asyncio.create_task(produce(
                traffic(), names.events, names.bootstrap, rate=RATE, live_time=True,
                max_seconds=180))
            try:
                await asyncio.sleep(WARM_UP_S)
                assert not producer.done(), producer.exception()
                shot = tmp_path / "dashboard.png"
                driver = await asyncio.to_thread(chromium_driver, tmp_path / "chromium-profile")
                try:
                    got = await asyncio.to_thread(read_dashboard, driver,
                                                  f"{w.base}/dashboard", shot)
                    uplift = await asyncio.to_thread(read_uplift, driver,
                                                     tmp_path / "uplift.png")
                    kpis = await asyncio.to_thread(read_kpis, driver)
                finally:
                    await asyncio.to_thread(driver.quit)
            finally:
                stop.set()
                sent = await asyncio.wait_for(producer, 30)
            assert w.running, w.log_tail()
    finally:
        await delete_prefix(names.redis_url, names.prefix)

    assert sent.events > 0
    assert got["throughput"] > 0, got
    assert got["p50"] is not None and got["p50"] >= 0, got
    assert got["p99"] is not None and got["p99"] >= got["p50"], got
    assert got["version"] == load_pack(REPO / "rules").version, got
    assert got["top_rules"] and all(r[0] and r[0] != "none yet" for r in got["top_rules"]), got
    assert got["status"].startswith("live"), got
    assert _number(got["reloads"]) is not None, got
    assert shot.stat().st_size > 10_000, "the screenshot looks empty"
    # the uplift section: 30% of 200 treated against 10% of 100 held out
    promo = uplift["7d"]["rows"]["promo_rule"]
    assert promo[:7] == ["promo_rule", "promo_msg", "200", "0", "0", "0", "60"], promo
    assert promo[7:11] == ["30.00%", "0", "10.00%", "20.00%"], promo
    assert promo[11].endswith("%") and " to " in promo[11], promo
    assert promo[12:] == ["200.00%", "significant uplift"], promo
    assert "old_rule" not in uplift["7d"]["rows"], uplift
    assert uplift["30d"]["rows"]["promo_rule"] == promo, uplift
    assert uplift["30d"]["rows"]["old_rule"][2] == "5", uplift
    assert " to " in uplift["30d"]["status"], uplift
    # the experience panel: NPS per period, "value (answers)". Live traffic answers surveys
    # too (today), so the check is that 30 days = 7 days + the 10 detractors seeded 20 days ago
    nps_row = next(r for r in kpis if r[0] == "NPS")
    (nps_7d, answers_7d), (nps_30d, answers_30d) = (_nps_cell(c) for c in nps_row[2:])
    assert answers_7d >= 10 and answers_30d == answers_7d + 10, kpis
    net_7d = round(nps_7d * answers_7d / 100)  # promoters - detractors
    assert abs(nps_30d - 100 * (net_7d - 10) / answers_30d) < 0.06, kpis
    if os.environ.get("TACT_UPDATE_SCREENSHOT"):  # the README's picture, on request only
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
