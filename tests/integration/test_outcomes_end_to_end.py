"""Did it work, end to end: a real `tact run` on a small pack with a goal and a holdout.

The test sends logins for consenting customers, reads the decisions from the decisions
topic (sent, or held out), sends the senders' outcome events (delivered, opened, clicked)
with the decisions' ids, and goal events (purchases) for some customers of each group.
It then checks the counts, rates and 95% interval in ``tact report --format json`` (the
CLI, run as a process), on ``/api/dashboard/uplift`` (also after a restart: the totals are
in Redis) and in the Prometheus counters on ``/metrics``, against values computed here with
the test's own two-proportion formula.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from math import sqrt
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.services import manager
from tests.integration.kafka_utils import (
    REPO,
    CommittedReader,
    WorkerNames,
    after,
    delete_prefix,
    http,
    produce,
    wait_committed,
)
from tests.integration.worker_proc import WorkerProcess, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

RULE, MESSAGE = "offer_on_login", "welcome_offer"
PACK = f"""
channels: [push]
events:
  login: {{}}
  purchase: {{data: {{amount: number}}}}
  profile_updated: {{data: {{consent: map}}}}
updates:
  - {{on: profile_updated, merge_consent: event.data.consent}}
messages:
  {MESSAGE}: {{category: promotion, channels: [push],
                 goal: {{event: purchase, within: 7d, value: event.data.amount}}}}
rules:
  - {{id: {RULE}, on: login, send: {MESSAGE}, holdout: {{percent: 40, salt: e2e}}}}
"""
CUSTOMERS = 120
Z95 = 1.959963984540054  # the normal distribution's 97.5th percentile (a 95% interval)

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def _event(customer: str, etype: str, at: float, data: dict[str, Any]) -> Record:
    iso = datetime.fromtimestamp(at, UTC).isoformat()
    ev = {"id": f"{etype}-{uuid.uuid4().hex[:12]}", "customer": customer, "type": etype,
          "at": iso, "data": data}
    return customer.encode(), orjson.dumps(ev), [("tact-received", iso.encode())]


def expected_uplift(c1: int, n1: int, c0: int, n0: int) -> dict[str, Any]:
    """The two-proportion comparison, written out here rather than taken from the engine:
    rates, their difference, the unpooled normal 95% interval, and whether it is
    significant (each group has 5+ conversions and non-conversions, and 0 is outside)."""
    p1, p0 = c1 / n1, c0 / n0
    diff = p1 - p0
    half = Z95 * sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    large = min(c1, n1 - c1, c0, n0 - c0) >= 5
    significant = large and (diff - half > 0 or diff + half < 0)
    verdict = ("not significant yet" if not significant
               else "significant uplift" if diff > 0 else "significant drop")
    return {"conversion_rate": p1, "holdout_rate": p0, "uplift_abs": diff,
            "uplift_rel": diff / p0, "ci_low": diff - half, "ci_high": diff + half,
            "verdict": verdict}


def _check_row(row: dict[str, Any], counts: dict[str, float], stats: dict[str, Any]) -> None:
    for key, want in counts.items():
        assert row[key] == want, (key, row)
    for key, want in stats.items():
        if isinstance(want, float):
            assert row[key] == pytest.approx(want, rel=1e-9, abs=1e-12), (key, row)
        else:
            assert row[key] == want, (key, row)


def _metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name in ("tact_outcome_total", "tact_goal_value_total")}


def _outcome(group: str, stage: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("tact_outcome_total", (("group", group), ("message", MESSAGE), ("rule", RULE),
                                   ("stage", stage)))


def _value(group: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("tact_goal_value_total", (("group", group), ("message", MESSAGE), ("rule", RULE)))


def _report_cli(names: WorkerNames, since: str, until_: str) -> dict[str, Any]:
    cli = subprocess.run(
        [sys.executable, "-c", "from engine.cli import main; main()", "report", "--format",
         "json", "--since", since, "--until", until_, "--redis-prefix", names.prefix],
        env=names.env(), cwd=str(REPO), capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    body: dict[str, Any] = json.loads(cli.stdout)
    return body


async def test_outcomes_and_uplift_end_to_end(services: manager.Connection,
                                              tmp_path: Path) -> None:
    names = WorkerNames.new("outcomes", services.bootstrap_servers, services.redis_url)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "pack.yaml").write_text(PACK)
    args = ["--rules", str(rules), "--no-wall-clock"]
    customers = [f"e2e-{i:03d}" for i in range(CUSTOMERS)]
    t0 = time.time() - 120  # event time: a couple of minutes ago, today (UTC)
    today = datetime.now(UTC).date()
    since = (today - timedelta(days=1)).isoformat()  # a run that crosses midnight
    log = tmp_path / "worker.log"
    try:
        with WorkerProcess(names, log, args=args) as w:
            await w.wait_ready()
            async with CommittedReader(names.bootstrap, names.decisions) as reader:
                # 1. consent, then a login each: sent, or held out
                meta = await produce(names.bootstrap, names.events, [
                    rec for c in customers for rec in (
                        _event(c, "profile_updated", t0, {"consent": {"push": True}}),
                        _event(c, "login", t0 + 1, {}))])
                await wait_committed(names.bootstrap, names.group, after(meta))
                decisions = [orjson.loads(r.value) for r in await reader.read_new()]
            sent = {d["customer"]: d for d in decisions if d["outcome"] == "sent"}
            held = sorted(d["customer"] for d in decisions if d["reasons"] == ["holdout"])
            treated = sorted(sent)
            assert len(treated) + len(held) == CUSTOMERS, decisions
            assert len(treated) >= 40 and len(held) >= 25, (len(treated), len(held))

            # 2. the sender's reports: all delivered, every 2nd opened, every 4th clicked;
            # purchases: 3 in 5 treated customers, 1 in 5 held out
            reports: list[Record] = []
            opened = treated[::2]
            clicked = treated[::4]
            for stage, who in (("delivered", treated), ("opened", opened),
                               ("clicked", clicked)):
                for c in who:
                    d = sent[c]
                    reports.append(_event(c, f"message_{stage}", t0 + 10, {
                        "decision_id": d["id"], "channel": d["channel"], "rule": d["rule"],
                        "message": d["message"]}))
            buyers = {"treated": [c for i, c in enumerate(treated) if i % 5 < 3],
                      "holdout": [c for i, c in enumerate(held) if i % 5 == 0]}
            amount = {c: 10.0 + i for i, c in enumerate(customers)}
            reports += [_event(c, "purchase", t0 + 20, {"amount": amount[c]})
                        for group in buyers.values() for c in group]
            meta = await produce(names.bootstrap, names.events, reports)
            await wait_committed(names.bootstrap, names.group, after(meta))

            # 3. what the report must say, computed here
            n1, c1 = len(treated), len(buyers["treated"])
            n0, c0 = len(held), len(buyers["holdout"])
            counts = {"sent": n1, "delivered": n1, "opened": len(opened),
                      "clicked": len(clicked), "failed": 0, "touched": n1, "converted": c1,
                      "value": sum(amount[c] for c in buyers["treated"]),
                      "holdout_touched": n0, "holdout_converted": c0,
                      "holdout_value": sum(amount[c] for c in buyers["holdout"])}
            stats = expected_uplift(c1, n1, c0, n0)
            assert stats["verdict"] == "significant uplift", stats  # the test's own design

            # the totals are added just after each commit: wait until the last batch's are in
            async def converted() -> dict[str, Any] | None:
                _, body = await http("GET", f"{w.base}/api/dashboard/uplift?period=7d")
                rows = body.get("rows") or [{}]
                done = rows[0].get("holdout_converted") == c0 and rows[0].get("converted") == c1
                return body if done else None

            section = await until(converted, 30, "the conversions on /api/dashboard/uplift")
            (row,) = section["rows"]
            assert (row["rule"], row["message"]) == (RULE, MESSAGE)
            _check_row(row, counts, stats)
            assert section["until"] == today.isoformat() and section["period"] == "7d"
            status, bad = await http("GET", f"{w.base}/api/dashboard/uplift?period=1y")
            assert status == 400 and "7d" in bad["error"]

            # 4. the Prometheus counters: the same figures, for Grafana
            _, _, text = await _get_text(f"{w.base}/metrics")
            got = _metrics(text)
            for stage in ("sent", "delivered", "opened", "clicked", "touched", "converted"):
                assert got[_outcome("treated", stage)] == counts[stage], (stage, got)
            assert got[_outcome("holdout", "touched")] == n0
            assert got[_outcome("holdout", "converted")] == c0
            assert got[_value("treated")] == counts["value"]
            assert got[_value("holdout")] == counts["holdout_value"]
            assert w.stop() == 0, w.log_tail()

        # 5. the CLI reads the same totals from Redis
        (cli_row,) = (await asyncio.to_thread(_report_cli, names, since, today.isoformat())
                      )["rows"]
        _check_row(cli_row, counts, stats)

        # 6. a new worker (the old one gone) shows the same section: the totals are in Redis
        with WorkerProcess(names, log, args=args) as again:
            await again.wait_ready()
            status, section = await http("GET", f"{again.base}/api/dashboard/uplift?period=7d")
            assert status == 200
            assert section["rows"] == [cli_row]
    finally:
        await delete_prefix(names.redis_url, names.prefix)


async def _get_text(url: str) -> tuple[int, str, str]:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s, \
            s.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()
